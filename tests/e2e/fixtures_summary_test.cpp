// `gpu-admit check ../shared/fixtures/public/` with the shipped configuration, summarised one
// object a line (file, object, decision, policies) and compared with
// tests/fixtures_public_summary.txt, where each decision was reviewed by hand.
// GPUADMIT_UPDATE_GOLDEN=1 rewrites the expected summary; read the diff before committing.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kExpected = fs::path(GPUADMIT_SOURCE_DIR) / "tests" / "fixtures_public_summary.txt";

using gpuadmit::testing::command_output;

// "denied", "warned" (allowed with warnings), "allowed", or "skipped: why"; then the policies
// that denied, else the ones that warned.
std::string summarise(const json& result) {
  std::string decision;
  std::set<std::string> policies;
  if (result.contains("skipped")) {
    decision = "skipped: " + result["skipped"].get<std::string>();
  } else if (!result["allowed"].get<bool>()) {
    decision = "denied";
    for (const json& p : result["policies"])
      if (p["denied"].get<bool>()) policies.insert(p["policy"].get<std::string>());
  } else if (!result["warnings"].empty()) {
    decision = "warned";
    for (const json& warning : result["warnings"]) {
      const std::string text = warning.get<std::string>();
      if (text.starts_with("[")) policies.insert(text.substr(1, text.find(']') - 1));
    }
  } else {
    decision = "allowed";
  }
  std::string names;
  for (const std::string& name : policies) names += (names.empty() ? "" : ", ") + name;
  const std::string name = result["name"].get<std::string>();
  const std::string object = result["kind"].get<std::string>() + " " + (name.empty() ? "<unnamed>" : name);
  return fs::path(result["file"].get<std::string>()).lexically_relative(GPUADMIT_SHARED_DIR "/fixtures/public").string() +
         " | " + object + " | " + decision + (names.empty() ? "" : " | " + names);
}

TEST(PublicFixtures, CheckWithDefaultConfigMatchesReviewedSummary) {
  const fs::path fixtures = fs::path(GPUADMIT_SHARED_DIR) / "fixtures" / "public";
  if (!fs::exists(fixtures)) GTEST_SKIP() << "no " << fixtures;
  int status = 0;
  const std::string output =
      command_output(std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit check -o json " + fixtures.string() + " 2>/dev/null", status);
  json results = json::parse(output, nullptr, false);
  ASSERT_TRUE(results.is_array()) << output.substr(0, 2000);
  std::string summary = "# file | object | decision | policies (gpu-admit check, shipped policies/default.yaml)\n";
  for (const json& result : results) {
    if (result.contains("skipped") && result["kind"].get<std::string>().empty()) continue;  // not an object
    summary += summarise(result) + "\n";
  }
  if (std::getenv("GPUADMIT_UPDATE_GOLDEN")) {
    std::ofstream(kExpected) << summary;
    GTEST_SKIP() << "rewrote " << kExpected;
  }
  std::ifstream in(kExpected);
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), summary);
}

}  // namespace
