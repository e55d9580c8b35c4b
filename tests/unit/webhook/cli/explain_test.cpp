// `gpu-admit explain` prints each policy's keys from their declarations (PolicyInfo::keys, the
// same list the config parser accepts), and each policy's README (policies/<name>/README.md)
// shows that output verbatim.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gpuadmit/engine.h"
#include "tests/support/command_output.h"
#include "webhook/cli/commands.h"

namespace {

namespace fs = std::filesystem;
using namespace gpuadmit;

std::string explain(const std::string& arguments, int& status) {
  return gpuadmit::testing::command_output((fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string() + " explain " + arguments + " 2>&1",
                                 status);
}

std::string read(const fs::path& path) {
  std::ifstream in(fs::path(GPUADMIT_SOURCE_DIR) / path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each policy's reference is policies/<name>/README.md: adding a policy stays in its folder.
TEST(Explain, EachPolicyFolderReadmeHasItsDeclaredKeys) {
  for (const PolicyInfo& info : policy_registry()) {
    const fs::path page = fs::path("policies") / std::string(info.name) / "README.md";
    EXPECT_NE(read(page).find(cli::policy_key_table(info.keys)), std::string::npos)
        << page << ": its key table differs from the policy's declaration; paste the output of "
        << "`gpu-admit explain " << info.name << " -o markdown`:\n" << cli::policy_key_table(info.keys);
  }
  EXPECT_NE(read("README.md").find(cli::policy_key_table(PolicySettings::keys())), std::string::npos)
      << "paste `gpu-admit explain settings -o markdown` into README.md";
}

TEST(Explain, APolicyItsKeysAndTheirDefaults) {
  int status = -1;
  const std::string out = explain("dev-shm", status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(out.starts_with("dev-shm (mutating)\n")) << out;
  EXPECT_NE(out.find("  memoryFraction (number; default 0.5)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  volumeName (string; default dshm)\n"), std::string::npos) << out;
  EXPECT_NE(explain("gpu-quota", status).find("gpu-quota (validating, reads the cluster model)"), std::string::npos);
  EXPECT_EQ(explain("gpu-shape -o markdown", status),
            cli::policy_key_table(find_policy("gpu-shape")->keys));
  const std::string all = explain("", status);
  for (const PolicyInfo& info : policy_registry())
    EXPECT_NE(all.find("  " + std::string(info.name) + " "), std::string::npos) << info.name;
  EXPECT_NE(explain("nope", status).find("no policy 'nope' (built-in policies: gpu-tolerations"), std::string::npos);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

// The declaration is what the parser accepts: every declared key loads, an undeclared one is an
// error naming it.
TEST(Explain, TheDeclaredKeysAreTheAcceptedKeys) {
  for (const PolicyInfo& info : policy_registry())
    for (const PolicyKey& key : info.keys) {
      try {
        Engine::from_yaml("policies:\n  " + std::string(info.name) + ":\n    " + std::string(key.name) + ": ~\n", "c.yaml");
      } catch (const ConfigError& error) {
        EXPECT_EQ(std::string(error.what()).find("unknown key"), std::string::npos) << info.name << "." << key.name
                                                                                    << ": " << error.what();
      }
    }
  try {
    Engine::from_yaml("policies:\n  dev-shm:\n    memoryFractions: 0.5\n", "c.yaml");
    FAIL() << "an undeclared key loaded";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("memoryFractions"), std::string::npos) << error.what();
  }
}

}  // namespace
