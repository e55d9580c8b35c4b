// Every JSON text of the project and the public fixtures: the corpus that tests of a JSON reader
// or writer run over (parse_json against nlohmann's parser, append_json against dump()).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/command_output.h"

namespace gpuadmit::testing {

// Calls `visit` with each file's path and text (files under 8 MiB); returns how many there were.
// The fuzz corpora hold JSON without the extension, as every other file does with it.
inline std::size_t for_each_json_file(const std::function<void(const std::filesystem::path&, const std::string&)>& visit) {
  namespace fs = std::filesystem;
  std::vector<fs::path> roots = {fs::path(GPUADMIT_SOURCE_DIR) / "tests", fs::path(GPUADMIT_SOURCE_DIR) / "manifests"};
  if (fs::exists(fs::path(GPUADMIT_SHARED_DIR) / "fixtures")) roots.push_back(fs::path(GPUADMIT_SHARED_DIR) / "fixtures");
  std::size_t files = 0;
  for (const fs::path& root : roots)
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (!entry.is_regular_file() || entry.file_size() > (8u << 20)) continue;
      const bool corpus = entry.path().string().find("/fuzz/corpus/") != std::string::npos;
      if (!corpus && entry.path().extension() != ".json") continue;
      ++files;
      visit(entry.path(), read_text(entry.path()));
    }
  return files;
}

}  // namespace gpuadmit::testing
