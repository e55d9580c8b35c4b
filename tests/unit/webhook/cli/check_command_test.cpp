// `gpu-admit check` prints each reason for a denial on its own line, from the review's structured
// denials: a message that quotes input containing "; [" (the separator of the AdmissionReview's
// joined status message) stays one line. It used to be split there.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gpuadmit/engine.h"
#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kPod = R"(apiVersion: v1
kind: Pod
metadata: {name: p, namespace: team}
spec:
  containers:
  - name: c
    image: "ubuntu; [x] y"
    resources: {limits: {nvidia.com/gpu: 1}}
)";

TEST(CheckCommand, EachDenialIsOneLineWhateverItQuotes) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "pod.yaml") << kPod;
  const std::string command = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string() + " check " + (dir / "pod.yaml").string();
  int status = -1;
  const std::string out = gpuadmit::testing::command_output(command + " 2>&1", status);
  fs::remove_all(dir);
  std::vector<std::string> denied;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("  denied: ")) denied.push_back(line.substr(10));
  ASSERT_EQ(denied.size(), 2u) << out;
  EXPECT_TRUE(denied[0].starts_with("[image-registries] spec.containers[0].image: \"ubuntu; [x] y\" is not a valid"))
      << denied[0];
  EXPECT_TRUE(denied[1].starts_with("[gpu-shape] ")) << denied[1];
}

TEST(CheckCommand, TheStatusMessageJoinsTheStructuredDenials) {
  auto engine = gpuadmit::Engine::from_default();
  const nlohmann::json pod = {
      {"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}, {"namespace", "team"}}},
      {"spec", {{"containers", {{{"name", "c"}, {"image", "ubuntu; [x] y"},
                                 {"resources", {{"limits", {{"nvidia.com/gpu", 1}}}}}}}}}}};
  const gpuadmit::ReviewOutcome outcome = engine->review(gpuadmit::request_for_manifest(pod, "team"));
  ASSERT_EQ(outcome.denials.size(), 2u);
  EXPECT_EQ(outcome.denials[0].policy, "image-registries");
  EXPECT_EQ(outcome.denials[0].field, "spec.containers[0].image");
  EXPECT_EQ(outcome.response.status_message,
            "gpu-admit denied Pod team/p: " + outcome.denials[0].text() + "; " + outcome.denials[1].text());
}

// Documents are reviewed as they are read: those before a bad document in the same file are
// reported, then the file is named as unreadable (exit 2), and the next file is still checked.
TEST(CheckCommand, DocumentsBeforeABadOneInTheFileAreStillReported) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-partial-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n"
                                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken}\n";
  std::ofstream(dir / "b.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: next}\n";
  const std::string command = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string() + " check " + dir.string();
  int status = -1;
  const std::string out = gpuadmit::testing::command_output(command + " 2>&1", status);
  fs::remove_all(dir);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("a.yaml:1: ConfigMap default/first: skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("gpu-admit check: " + (dir / "a.yaml").string() + ":7:"), std::string::npos) << out;
  EXPECT_NE(out.find("b.yaml:1: ConfigMap default/next: skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("2 objects: 0 allowed (0 mutated), 0 denied, 2 skipped, 1 unreadable"), std::string::npos) << out;
}

}  // namespace
