// One definition of a GPU resource: a name in the config's `gpuResources` counts as a GPU for
// the policies, the capacity model (node GPU counts, pools, namespace usage) and `inventory`
// alike, and a name left out counts nowhere. Before, the model hard-coded nvidia.com/gpu,
// nvidia.com/gpu.shared and nvidia.com/mig-*, so a configured GPU resource passed gpu-quota.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"
#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;
using gpuadmit::Engine;
using gpuadmit::GpuResources;
using gpuadmit::capacity::ClusterModel;
using nlohmann::json;

constexpr const char* kVgpu = "example.com/vgpu";

json vgpu_node(const std::string& name, int vgpus) {
  return {{"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"status",
           {{"allocatable", {{"cpu", "64"}, {"memory", "512Gi"}, {"pods", "110"}, {kVgpu, std::to_string(vgpus)}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json vgpu_pod(const std::string& ns, const std::string& name, const std::string& node, int vgpus) {
  json resources = {{kVgpu, std::to_string(vgpus)}, {"cpu", "1"}, {"memory", "1Gi"}};
  json spec = {{"containers", {{{"name", "c"}, {"image", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"},
                                {"resources", {{"requests", resources}, {"limits", resources}}}}}}};
  if (!node.empty()) spec["nodeName"] = node;
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", spec}, {"status", {{"phase", "Running"}}}};
}

std::shared_ptr<const Engine> quota_engine(const std::string& gpu_resources) {
  return Engine::from_yaml("gpuResources: " + gpu_resources +
                               "\npolicies:\n  gpu-quota:\n    budgets: [{namespace: team, gpus: 2}]\n",
                           "quota.yaml");
}

// Node n1 with 4 example.com/vgpu, and a pod of `team` running there on 2 of them.
void add_node_with_a_running_pod(ClusterModel& model) {
  model.upsert_node(vgpu_node("n1", 4));
  model.upsert_pod(vgpu_pod("team", "running", "n1", 2));
}

gpuadmit::ReviewOutcome review_one_more(const Engine& engine, const ClusterModel& model) {
  return engine.review(gpuadmit::request_for_manifest(vgpu_pod("team", "more", "", 1), "team"), &model);
}

TEST(GpuResources, AConfiguredResourceCountsInTheModelAndTheQuota) {
  auto engine = quota_engine("[example.com/vgpu]");
  ClusterModel model(engine->config().gpu);
  add_node_with_a_running_pod(model);
  {
    auto view = model.read();
    EXPECT_EQ(view.node("n1")->gpu_devices, 4);
    EXPECT_EQ(view.namespace_usage("team").devices(), 2);
    EXPECT_EQ(view.namespaces_with_usage(), std::vector<std::string>{"team"});
  }
  // The namespace already holds its 2 GPUs: one more is over the budget.
  auto outcome = review_one_more(*engine, model);
  EXPECT_FALSE(outcome.response.allowed);
  EXPECT_NE(outcome.response.status_message.find("uses 2 of its 2 GPUs"), std::string::npos) << outcome.response.status_message;
}

TEST(GpuResources, AResourceLeftOutCountsNowhere) {
  auto engine = quota_engine("[]");
  ClusterModel model(engine->config().gpu);
  add_node_with_a_running_pod(model);
  auto view = model.read();
  EXPECT_EQ(view.node("n1")->gpu_devices, 0);
  EXPECT_EQ(view.namespace_usage("team").devices(), 0);
  EXPECT_TRUE(view.namespaces_with_usage().empty());
  // Not a GPU for the quota, and not a GPU pod for the mutations either.
  auto outcome = review_one_more(*engine, model);
  EXPECT_TRUE(outcome.response.allowed) << outcome.response.status_message;
  EXPECT_TRUE(outcome.response.patch.empty()) << outcome.response.patch.dump();
}

// nvidia.com/gpu.shared is a GPU because the default config lists it, not because the model
// knows the name: a config without it makes it an ordinary extended resource everywhere.
TEST(GpuResources, TimeSlicedSharesCountOnlyWhenListed) {
  json node = vgpu_node("n1", 0);
  node["status"]["allocatable"].erase(kVgpu);
  node["status"]["allocatable"]["nvidia.com/gpu.shared"] = "16";
  ClusterModel listed(Engine::from_default()->config().gpu);
  listed.upsert_node(node);
  EXPECT_EQ(listed.read().node("n1")->gpu_devices, 16);
  ClusterModel unlisted(GpuResources{});
  unlisted.upsert_node(node);
  EXPECT_EQ(unlisted.read().node("n1")->gpu_devices, 0);
  EXPECT_EQ(unlisted.read().pools().front()->name, "cpu-only");
}

TEST(GpuResources, InventoryCountsTheConfiguredResources) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-gpu-resources-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "cluster.json") << json{{"kind", "List"}, {"items", {vgpu_node("n1", 4), vgpu_pod("team", "p", "n1", 3)}}}.dump();
  std::ofstream(dir / "config.yaml") << "gpuResources: [example.com/vgpu]\npolicies:\n  gpu-shape: {}\n";
  const std::string command = std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit inventory -o json --cluster " +
                              (dir / "cluster.json").string();
  int status = -1;
  const json with = json::parse(gpuadmit::testing::command_output(command + " --config " + (dir / "config.yaml").string(), status));
  ASSERT_EQ(status, 0);
  EXPECT_EQ(with["pools"][0]["gpusPerNode"], 4);
  EXPECT_EQ(with["pools"][0]["gpus"]["allocated"], 3);
  EXPECT_EQ(with["namespaces"], json::parse(R"([{"namespace": "team", "gpus": 3, "byResource": {"example.com/vgpu": 3}}])"));
  const json without = json::parse(gpuadmit::testing::command_output(command, status));  // the default config
  ASSERT_EQ(status, 0);
  EXPECT_EQ(without["pools"][0]["gpusPerNode"], 0);
  EXPECT_EQ(without["namespaces"], json::array());
  fs::remove_all(dir);
}

}  // namespace
