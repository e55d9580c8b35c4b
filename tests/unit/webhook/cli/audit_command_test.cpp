// `gpu-admit audit` judges what is stored as `gpu-admit check` judges a creation: on the same
// objects, the same policies fire, the same ones exempt, and the same objects are denied. The
// two differ by design in one thing only, the room and quota an object's own running pods hold
// (Request::stored; tests/unit/engine/audit_test.cpp), so the comparison runs with the
// checks that read them (gpu-quota, gpu-capacity's current capacity) off.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string gpu_admit() { return (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string(); }

// The shipped config with the two checks of current use turned off.
std::string config_without_current_use() {
  std::string yaml = gpuadmit::testing::read_text(fs::path(GPUADMIT_SOURCE_DIR) / "policies/default.yaml");
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) yaml.replace(at, from.size(), to);
  };
  replace("  gpu-quota:\n    mode: enforce", "  gpu-quota:\n    mode: off");
  replace("checkCurrentCapacity: true", "checkCurrentCapacity: false");
  return yaml;
}

class AuditCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gpuadmit-audit-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "objects");
    std::ofstream(dir_ / "config.yaml") << config_without_current_use();
  }
  void TearDown() override { fs::remove_all(dir_); }

  json run(const std::string& arguments) {
    int status = -1;
    const std::string out = gpuadmit::testing::command_output(gpu_admit() + " " + arguments + " 2>/dev/null", status);
    EXPECT_TRUE(WIFEXITED(status)) << arguments;
    EXPECT_LE(WEXITSTATUS(status), 1) << arguments << "\n" << out;
    try {
      return json::parse(out);
    } catch (const std::exception& error) {
      ADD_FAILURE() << arguments << ": " << error.what() << "\n" << out.substr(0, 2000);
      return json();
    }
  }

  fs::path dir_;
};

TEST_F(AuditCommand, JudgesTheSameObjectsAsCheck) {
  // The examples and the public fixtures: every kind of GPU workload the project knows.
  std::size_t copied = 0;
  for (const fs::path& folder : {fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples", fs::path(GPUADMIT_SHARED_DIR) / "fixtures/public"}) {
    if (!fs::is_directory(folder)) continue;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.path().extension() != ".yaml") continue;
      fs::copy_file(entry.path(), dir_ / "objects" / (std::to_string(copied++) + "-" + entry.path().filename().string()));
    }
  }
  ASSERT_GE(copied, 5u);
  const std::string cluster = (fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string();
  const std::string config = (dir_ / "config.yaml").string();
  const json checked = run("check -o json --config " + config + " --cluster " + cluster + " " + (dir_ / "objects").string());
  const json audited = run("audit -o json --config " + config + " --cluster " + cluster + " --cluster " + (dir_ / "objects").string());
  ASSERT_TRUE(checked.is_array());
  ASSERT_TRUE(audited.is_object());

  std::map<std::string, json> flagged;  // kind/namespace/name → audit's object
  for (const json& object : audited["objects"])
    flagged.emplace(object["kind"].get<std::string>() + "/" + object["namespace"].get<std::string>() + "/" +
                        object["name"].get<std::string>(),
                    object);
  std::set<std::string> compared;
  std::size_t denied = 0;
  for (const json& result : checked) {
    if (!result.contains("kind") || result.contains("skipped") || result.contains("error")) continue;
    const std::string key = result["kind"].get<std::string>() + "/" + result["namespace"].get<std::string>() + "/" +
                            result["name"].get<std::string>();
    if (!compared.insert(key).second) continue;  // a name two fixtures share: the snapshot keeps one
    std::set<std::string> fired, exempted;
    for (const json& policy : result["policies"]) (policy["exempted"] ? exempted : fired).insert(policy["policy"]);
    std::set<std::string> failing, skipped;
    bool denied_today = false;
    if (auto it = flagged.find(key); it != flagged.end()) {
      denied_today = it->second["deniedToday"];
      for (const json& r : it->second["results"]) (r["result"] == "skip" ? skipped : failing).insert(r["policy"]);
    }
    EXPECT_EQ(failing, fired) << key << " in " << result["file"];
    EXPECT_EQ(skipped, exempted) << key;
    EXPECT_EQ(denied_today, !result["allowed"].get<bool>()) << key << ": " << result.value("message", "");
    denied += denied_today;
  }
  EXPECT_GE(compared.size(), 20u);
  EXPECT_GE(denied, 1u) << "the comparison covers denials too";
}

TEST_F(AuditCommand, WritesPolicyReportsAndSaysWhatEnforceWouldDeny) {
  std::ofstream(dir_ / "objects" / "deployments.yaml") << R"(apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: single, namespace: ml}
  spec:
    replicas: 1
    selector: {matchLabels: {app: single}}
    template:
      metadata: {labels: {app: single}}
      spec:
        containers:
        - name: server
          image: nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04
          resources: {limits: {nvidia.com/gpu: 1, cpu: 2, memory: 8Gi}, requests: {nvidia.com/gpu: 1, cpu: 2, memory: 8Gi}}
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: single-1
    namespace: ml
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: single, uid: u, controller: true}]
  spec:
    replicas: 1
    selector: {matchLabels: {app: single}}
    template:
      metadata: {labels: {app: single}}
      spec:
        containers:
        - name: server
          image: nvcr.io/nvidia/cuda:latest
          resources: {limits: {nvidia.com/gpu: 1}}
)";
  const std::string cluster = (fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string();
  const std::string objects = (dir_ / "objects").string();
  const json audited = run("audit -o json --cluster " + cluster + " --cluster " + objects);
  // The ReplicaSet is judged through its Deployment: its floating tag is not reported twice.
  bool replica_set = false, single = false;
  for (const json& object : audited["objects"]) {
    replica_set = replica_set || object["kind"] == "ReplicaSet";
    if (object["name"] != "single") continue;
    single = true;
    EXPECT_FALSE(object["deniedToday"].get<bool>());
    bool availability = false;
    for (const json& r : object["results"])
      if (r["policy"] == "gpu-availability") {
        availability = true;
        EXPECT_EQ(r["mode"], "warn");
        EXPECT_EQ(r["result"], "fail");
        EXPECT_TRUE(r["deniedIfEnforced"].get<bool>());
      }
    EXPECT_TRUE(availability) << object.dump(2);
  }
  EXPECT_TRUE(single);
  EXPECT_FALSE(replica_set);
  EXPECT_GE(audited["deniedIfEnforced"].get<int>(), 1);
  EXPECT_GE(audited["policies"]["gpu-availability"]["deniedIfEnforced"].get<int>(), 1);

  const json reports = run("audit -o policyreport --cluster " + cluster + " --cluster " + objects);
  ASSERT_EQ(reports["kind"], "List");
  bool ml = false, cluster_report = false;
  for (const json& report : reports["items"]) {
    EXPECT_EQ(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    if (report["kind"] == "ClusterPolicyReport") cluster_report = true;
    if (report["kind"] == "PolicyReport" && report["metadata"]["namespace"] == "ml") {
      ml = true;
      EXPECT_GE(report["summary"]["fail"].get<int>(), 1);
    }
  }
  EXPECT_TRUE(ml);
  EXPECT_TRUE(cluster_report);

  int status = -1;
  const std::string text = gpuadmit::testing::command_output(gpu_admit() + " audit --cluster " + cluster + " --cluster " + objects, status);
  EXPECT_NE(text.find("Deployment ml/single\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  fail [gpu-availability] (warn, would be denied if enforce)\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" more if every policy were enforce\n"), std::string::npos) << text;
}

TEST_F(AuditCommand, NeedsASnapshotAndNamesABadOne) {
  int status = -1;
  gpuadmit::testing::command_output(gpu_admit() + " audit 2>&1", status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ofstream(dir_ / "bad.yaml") << "kind: [unclosed\n";
  const std::string out = gpuadmit::testing::command_output(gpu_admit() + " audit --cluster " + (dir_ / "bad.yaml").string() + " 2>&1", status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(out.find("bad.yaml"), std::string::npos) << out;
}

}  // namespace
