// load_suite() throws ConfigError and nothing else (its callers catch that one): a value in a
// case's `fields` that JSON cannot hold (a map used as a key) is a bad suite naming the field.
// It used to escape as ManifestError (found by fuzz_test_suite, F14).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gpuadmit/config.h"
#include "webhook/cli/test/test_suite.h"

namespace {

namespace fs = std::filesystem;

TEST(TestSuite, AnExpectedValueJsonCannotHoldIsABadSuite) {
  const fs::path path = fs::temp_directory_path() / ("gpuadmit-suite-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << "cases:\n"
                         "  - name: an expected value with a map as a key\n"
                         "    expect: allow\n"
                         "    manifest: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}]}}\n"
                         "    fields:\n"
                         "      /metadata/name: {? {a: 1} : b}\n";
  try {
    gpuadmit::cli::load_suite(path.string());
    ADD_FAILURE() << "loaded";
  } catch (const gpuadmit::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("cases[0].fields./metadata/name: the expected value is not JSON"),
              std::string::npos)
        << error.what();
  }
  fs::remove(path);
}

}  // namespace
