// Shared by the libFuzzer targets: the engines and cluster they review against (built once),
// temporary files for entry points that only take paths, and the switch that skips inputs of
// already-known crash classes so that a long run explores past them.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"

namespace gpuadmit::fuzz {

inline std::string source_path(const std::string& relative) {
  return std::string(GPUADMIT_SOURCE_DIR) + "/" + relative;
}

inline std::string read_source_file(const std::string& relative) {
  std::ifstream in(source_path(relative), std::ios::binary);
  if (!in) std::abort();  // the fuzz build runs from its own source tree
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline const Engine& default_engine() {
  static const std::shared_ptr<const Engine> engine = Engine::from_default();
  return *engine;
}

// The sample cluster of `scripts/demo.sh`, so that gpu-capacity and gpu-quota run too.
inline const capacity::ClusterModel& sample_cluster() {
  static const std::unique_ptr<capacity::ClusterModel> cluster =
      capacity::ClusterModel::load({source_path("manifests/examples/cluster.json")},
                                    default_engine().config().gpu);
  return *cluster;
}

// A folder of this process's own, removed when it exits normally (-runs=0 replays in CI).
inline const std::string& temp_dir() {
  static const std::string dir = [] {
    std::string pattern = "/tmp/gpuadmit-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) std::abort();
    return pattern;
  }();
  static const bool cleanup = std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir(), ignored);
  }) == 0;
  (void)cleanup;
  return dir;
}

// A file that holds the current input, for entry points that read paths; rewritten for every
// input (-jobs runs separate processes, each with its own folder).
inline std::string write_temp_file(std::string_view name, std::string_view data) {
  const std::string path = temp_dir() + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) std::abort();
  return path;
}

// GPUADMIT_FUZZ_SKIP_KNOWN=1 rejects inputs that reach crash classes already reported (deep
// nesting, numbers past double's range, YAML aliases, int64-sized GPU counts and memory
// quantities that overflow the quota sums and the MiB rounding, invalid UTF-8 that reaches a
// JSON answer, a YAML document that starts with ','), so a run can look for new ones. Replays
// (CI) leave it unset: the committed crashers must keep failing until they are fixed.
inline bool skip_known_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("GPUADMIT_FUZZ_SKIP_KNOWN");
    return value && std::string_view(value) == "1";
  }();
  return enabled;
}

inline bool skip_known_classes(std::string_view data) {
  if (!skip_known_enabled()) return false;
  // yaml-cpp 0.7's LoadAll loops forever, allocating, on a document that starts with ','
  // (jbeder/yaml-cpp#1040, fixed in 0.8.0+ by #1319).
  for (std::size_t start = 0; start != std::string_view::npos;) {
    const std::size_t token = data.find_first_not_of(" \t\r\n", start);
    if (token != std::string_view::npos && data[token] == ',') return true;
    start = data.find("---", start);
    if (start != std::string_view::npos) start += 3;
  }
  int depth = 0, max_depth = 0;
  std::size_t digit_run = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    digit_run = c >= '0' && c <= '9' ? digit_run + 1 : 0;
    if (digit_run >= 16) return true;  // near INT64_MAX
    if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    if (c == ']' || c == '}') --depth;
    // YAML anchors and aliases ("&a", "*a" after a separator; globs such as "nvcr.io/**" pass).
    if ((c == '&' || c == '*') && i + 1 < data.size() && std::isalnum(static_cast<unsigned char>(data[i + 1])) &&
        (i == 0 || std::string_view(" \t\n[{,:-").find(data[i - 1]) != std::string_view::npos))
      return true;
    if (static_cast<unsigned char>(c) >= 0x80) return true;  // possibly invalid UTF-8
    // An exponent of three digits or more: 1e999 is past double (out_of_range in nlohmann); of
    // two, and E/P suffixes: quantities that saturate int64 and overflow the MiB rounding.
    if ((c == 'E' || c == 'P') && i > 0 && data[i - 1] >= '0' && data[i - 1] <= '9') return true;
    if ((c == 'e' || c == 'E') && i > 0 && data[i - 1] >= '0' && data[i - 1] <= '9') {
      std::size_t j = i + 1;
      if (j < data.size() && (data[j] == '+' || data[j] == '-')) ++j;
      std::size_t digits = 0;
      while (j < data.size() && data[j] >= '0' && data[j] <= '9') ++j, ++digits;
      if (digits >= 2) return true;
    }
  }
  // Indentation nests YAML too; 64 levels of either is far past any real manifest.
  return max_depth > 64;
}

}  // namespace gpuadmit::fuzz
