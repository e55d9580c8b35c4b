// `gpu-admit explain` prints each policy's keys from their declarations (PolicyInfo::keys, the
// same list the config parser accepts), and each policy's README (policies/<name>/README.md)
// shows that output verbatim.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "engine/capacity/cluster_model.h"
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

std::string read(const fs::path& path) { return gpuadmit::testing::read_text(fs::path(GPUADMIT_SOURCE_DIR) / path); }

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

namespace {

// The section of `policy` in `yaml` (policies/default.yaml): from its line to the next policy's.
std::pair<std::size_t, std::size_t> section_of(const std::string& yaml, const std::string& policy) {
  const std::size_t start = yaml.find("\n  " + policy + ":\n");
  if (start == std::string::npos) return {std::string::npos, std::string::npos};
  std::size_t end = start + 1;
  while ((end = yaml.find("\n  ", end + 1)) != std::string::npos && yaml.compare(end, 4, "\n   ") == 0) {
  }
  return {start + 1, end == std::string::npos ? yaml.size() : end + 1};
}

// The declared default as a YAML scalar ("0 (no limit)" gives 0), or "" for one that is not a
// plain scalar (a list, "required", "none").
std::string scalar_default(const PolicyKey& key) {
  static const std::regex plain(R"((true|false|violation|warning|off|-?[0-9]+(\.[0-9]+)?([KMGTPE]i?)?|[a-z][a-z0-9-]*)( \(.*\))?)");
  const std::string type(key.type), fallback(key.fallback);
  std::smatch match;
  if (type != "bool" && type != "integer" && type != "number" && type != "quantity" && type != "string" &&
      type != "level")
    return "";
  if (!std::regex_match(fallback, match, plain) || match[1] == "required" || match[1] == "none") return "";
  return match[1];
}

}  // namespace

// A declared default is what the policy does when the key is absent: with the key written out
// at its declared default, every golden request gets the same answer as without it (each
// policy in enforce mode, against the sample cluster). A declared default the code does not use
// makes some answer differ.
TEST(Explain, DeclaredDefaultsAreTheDefaultsThePoliciesUse) {
  const std::string base_yaml = read("policies/default.yaml");
  auto cluster = capacity::ClusterModel::load({(fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string()},
                                              Engine::from_default()->config().gpu);
  std::vector<std::string> requests;
  for (const auto& entry : fs::directory_iterator(fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden"))
    requests.push_back(read(fs::relative(entry.path() / "request.json", GPUADMIT_SOURCE_DIR)));
  std::size_t compared = 0;
  for (const PolicyInfo& info : policy_registry()) {
    const std::string name(info.name);
    std::string policy_yaml = base_yaml;  // a policy default.yaml leaves out is added at its end
    if (section_of(policy_yaml, name).first == std::string::npos) policy_yaml += "  " + name + ":\n    mode: enforce\n";
    auto [start, end] = section_of(policy_yaml, name);
    ASSERT_NE(start, std::string::npos) << name;
    std::string section = policy_yaml.substr(start, end - start);
    section = std::regex_replace(section, std::regex("mode: (off|warn|audit)"), "mode: enforce");
    for (const PolicyKey& key : info.keys) {
      const std::string fallback = scalar_default(key);
      if (fallback.empty()) continue;
      // default.yaml's own line for the key, if any, goes: absent in one, the declared default in the other.
      const std::string without_key =
          std::regex_replace(section, std::regex("    " + std::string(key.name) + ":[^\n]*\n"), "");
      std::string with_key = without_key;
      with_key.insert(with_key.find('\n') + 1, "    " + std::string(key.name) + ": " + fallback + "\n");
      std::string without_yaml = policy_yaml, with_yaml = policy_yaml;
      without_yaml.replace(start, end - start, without_key);
      with_yaml.replace(start, end - start, with_key);
      std::shared_ptr<const Engine> without;
      try {
        without = Engine::from_yaml(without_yaml, "absent.yaml");
      } catch (const ConfigError&) {
        continue;  // a policy not in default.yaml whose other keys are required: nothing to compare
      }
      auto with = Engine::from_yaml(with_yaml, "declared.yaml");
      for (const std::string& request : requests)
        EXPECT_EQ(answer_admission_review(*without, request, cluster.get()).body,
                  answer_admission_review(*with, request, cluster.get()).body)
            << name << "." << key.name << ": the declared default " << key.fallback << " is not what it does";
      ++compared;
    }
  }
  EXPECT_GE(compared, 20u);  // most scalar keys are left at their defaults in default.yaml
}
