// `gpu-admit test`: load_suite() reads a suite file and the config, cluster and manifests it
// names, and throws ConfigError only; a suite that loads is run. The suite is written where
// the shipped suites' relative paths still resolve (config.yaml as in policies/gpu-affinity/,
// ../../manifests/examples/cluster.json), so seeds from policies/ load in full.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "gpuadmit/config.h"
#include "tests/fuzz/fuzz_common.h"
#include "webhook/cli/test/test_suite.h"

namespace fs = std::filesystem;

namespace {

std::string suite_dir() {
  static const std::string dir = [] {
    const fs::path root = gpuadmit::fuzz::temp_dir();
    const fs::path tests = root / "policies" / "tests";
    fs::create_directories(tests);
    fs::create_symlink(gpuadmit::fuzz::source_path("policies/gpu-affinity/config.yaml"), tests / "config.yaml");
    fs::create_directory_symlink(gpuadmit::fuzz::source_path("manifests"), root / "manifests");
    return tests.string();
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(text)) return -1;
  const std::string dir = suite_dir();
  const std::string path = dir + "/suite.yaml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  gpuadmit::cli::Suite suite;
  try {
    suite = gpuadmit::cli::load_suite(path);
  } catch (const gpuadmit::ConfigError&) {
    return 0;
  }
  gpuadmit::cli::junit_xml(gpuadmit::cli::run_suite(suite));
  return 0;
}
