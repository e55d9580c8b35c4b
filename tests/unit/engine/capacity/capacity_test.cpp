// The capacity model and the gpu-capacity / gpu-quota policies: loader, GFD facts, scenarios
// from the playbooks, quota tables.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/capacity/placement.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using capacity::ClusterModel;

const std::string kSource = GPUADMIT_SOURCE_DIR;
const std::string kShared = GPUADMIT_SHARED_DIR;

json gpu_taint() { return json::array({{{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}}}); }

json make_node(const std::string& name, const std::string& cpu, const std::string& memory, int gpus,
               json labels = json::object(), json taints = json::array()) {
  json allocatable = {{"cpu", cpu}, {"memory", memory}, {"ephemeral-storage", "100Gi"}, {"pods", "110"}};
  if (gpus) allocatable["nvidia.com/gpu"] = std::to_string(gpus);
  labels["kubernetes.io/hostname"] = name;
  return {{"kind", "Node"}, {"metadata", {{"name", name}, {"labels", labels}}}, {"spec", {{"taints", taints}}},
          {"status", {{"allocatable", allocatable}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json gpu_labels(const std::string& product, int count, int memory_mib, int cc_major, int cc_minor,
                const std::string& driver = "550.54.15") {
  auto dot = driver.find('.');
  auto dot2 = driver.find('.', dot + 1);
  return {{"nvidia.com/gpu.product", product},
          {"nvidia.com/gpu.count", std::to_string(count)},
          {"nvidia.com/gpu.memory", std::to_string(memory_mib)},
          {"nvidia.com/gpu.compute.major", std::to_string(cc_major)},
          {"nvidia.com/gpu.compute.minor", std::to_string(cc_minor)},
          {"nvidia.com/cuda.driver-version.major", driver.substr(0, dot)},
          {"nvidia.com/cuda.driver-version.minor", driver.substr(dot + 1, dot2 - dot - 1)},
          {"nvidia.com/cuda.driver-version.revision", driver.substr(dot2 + 1)}};
}

json make_pod(const std::string& ns, const std::string& name, const std::string& node, json requests) {
  json spec = {{"containers", {{{"name", "c"}, {"image", "x"}, {"resources", {{"requests", requests}}}}}}};
  if (!node.empty()) spec["nodeName"] = node;
  return {{"kind", "Pod"}, {"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", spec}, {"status", {{"phase", "Running"}}}};
}

json pod_spec(json requests, json extra = json::object()) {
  json spec = {{"containers", {{{"name", "c"}, {"image", "x"}, {"resources", {{"requests", requests}, {"limits", requests}}}}}},
               {"tolerations", {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}}}};
  for (auto& [k, v] : extra.items()) spec[k] = v;
  return spec;
}

capacity::Placement place(const ClusterModel& model, const json& spec, capacity::GpuRequirements req = {},
                          std::int64_t replicas = 1, capacity::PoolRulesLookup rules = {}) {
  auto view = model.read();
  return capacity::place(view, spec, capacity::PodShape::from_pod_spec(spec, {}), req, replicas, rules);
}

const capacity::PoolVerdict& verdict_of(const capacity::Placement& p, const std::string& pool) {
  for (const auto& v : p.pools)
    if (v.pool->name == pool) return v;
  throw std::runtime_error("no pool " + pool);
}

// ---- loader and GFD facts ----

TEST(CapacityLoader, ReadsTheFakeGpuOperatorNodes) {
  auto model = ClusterModel::load({kShared + "/fixtures/public/nodes"}, {});
  auto view = model->read();
  ASSERT_EQ(view.node_count(), 2u);  // four files, two node names: later files replace earlier ones
  const capacity::NodeState* mig = view.node("qa-mig-worker-gpu-a100");
  ASSERT_NE(mig, nullptr);
  EXPECT_EQ(mig->gpu.product, "NVIDIA-A100-SXM4-40GB");
  EXPECT_EQ(mig->gpu.mig, capacity::MigStrategy::Mixed);
  EXPECT_EQ(mig->gpu.driver->to_string(), "520.56.06");  // deprecated cuda.driver.* labels
  EXPECT_EQ(mig->gpu.cuda->to_string(), "11.8");         // cuda.runtime.* labels
  EXPECT_EQ(mig->gpu.compute, std::make_pair(8, 0));
  EXPECT_EQ(mig->allocatable.cpu_milli, 12000);
  EXPECT_EQ(mig->allocatable.memory, 87425380LL * 1024);
  const capacity::NodeState* t4 = view.node("qa-mig-worker-gpu-1");
  ASSERT_NE(t4, nullptr);
  EXPECT_EQ(t4->gpu.product, "Tesla-T4");
  EXPECT_EQ(t4->gpu.memory_mib, 15360);
  EXPECT_EQ(t4->gpu_devices, 2);
}

TEST(CapacityLoader, MigProfilesFromLabels) {
  auto model = ClusterModel::load({kShared + "/fixtures/public/nodes/run-ai__fake-gpu-operator__design_samples_ge2.9_mig_node_7g-40gb.yaml"}, {});
  const capacity::NodeState* node = model->read().node("qa-mig-worker-gpu-a100");
  ASSERT_EQ(node->gpu.mig_profiles.size(), 1u);
  EXPECT_EQ(node->gpu.mig_profiles[0].name, "7g.40gb");
  EXPECT_EQ(node->gpu.mig_profiles[0].count, 1);
  EXPECT_EQ(node->gpu.mig_profiles[0].memory_mib, 40192);
  EXPECT_EQ(node->gpu.device_memory_mib("nvidia.com/mig-7g.40gb"), 40192);
  EXPECT_EQ(node->gpu.device_memory_mib("nvidia.com/mig-3g.20gb"), 20 * 1024);  // from the profile name
  EXPECT_EQ(node->gpu_devices, 1);
}

TEST(CapacityLoader, ShippedExampleCluster) {
  auto model = ClusterModel::load({kSource + "/manifests/examples/cluster.json"}, {});
  auto view = model->read();
  EXPECT_EQ(view.node_count(), 19u);
  EXPECT_EQ(view.namespace_usage("ml-training").devices(), 24);  // the Succeeded pod holds nothing
  EXPECT_EQ(view.namespace_usage("ml-serving").devices(), 11);   // incl. the pending pod
  const capacity::NodeState* t4 = view.node("gpu-t4-ts-0");
  EXPECT_EQ(t4->gpu.sharing, capacity::Sharing::TimeSlicing);
  EXPECT_EQ(t4->gpu.replicas, 4);
  EXPECT_EQ(t4->gpu.cuda->to_string(), "11.4");  // from driver 470.223.02 by the toolkit table
}

std::string load_error(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  try {
    ClusterModel::load({path}, {});
  } catch (const capacity::SnapshotError& error) {
    return error.what();
  }
  return "no error";
}

TEST(CapacityLoader, BrokenSnapshotsNameFileAndObject) {
  std::string e = load_error("bad-quantity.json",
                             R"({"kind":"List","items":[{"kind":"Node","metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"lots"}}}]})");
  EXPECT_NE(e.find("bad-quantity.json: items[0]: Node n1: status.allocatable.cpu"), std::string::npos) << e;
  e = load_error("truncated.json", R"({"kind":"List","items":[{"kind":"Node")");
  EXPECT_NE(e.find("truncated.json: not valid JSON"), std::string::npos) << e;
  e = load_error("no-name.yaml", "kind: Pod\nmetadata: {namespace: a}\nspec: {}\n");
  EXPECT_NE(e.find("no-name.yaml:1: Pod a/<unnamed>: metadata.name is missing"), std::string::npos) << e;
  e = load_error("bad-pod.json", R"({"kind":"Pod","metadata":{"name":"p","namespace":"a"},"spec":{"containers":[{"name":"c","resources":{"requests":{"memory":"12Q"}}}]}})");
  EXPECT_NE(e.find("bad-pod.json: Pod a/p:"), std::string::npos) << e;
  EXPECT_NE(load_error("empty.json", "").find("empty.json: not valid JSON"), std::string::npos);
  try {
    ClusterModel::load({"/nonexistent/cluster.json"}, {});
    ADD_FAILURE();
  } catch (const capacity::SnapshotError& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/cluster.json"), std::string::npos);
  }
}

TEST(GpuFacts, CudaCompatibility) {
  EXPECT_EQ(capacity::cuda_supported_by_driver(*capacity::Version::parse("535.104.05"))->to_string(), "12.2");
  EXPECT_EQ(capacity::cuda_supported_by_driver(*capacity::Version::parse("550.54.14"))->to_string(), "12.4");
  EXPECT_EQ(capacity::cuda_supported_by_driver(*capacity::Version::parse("550.54.13"))->to_string(), "12.3");
  EXPECT_FALSE(capacity::cuda_supported_by_driver(*capacity::Version::parse("440.33")));
  auto archs = capacity::parse_cuda_archs("sm_80, sm_90a,compute_86");
  ASSERT_EQ(archs.size(), 3u);
  EXPECT_TRUE(archs[0].runs_on({8, 6}));    // cubin: same major, higher minor
  EXPECT_FALSE(archs[0].runs_on({9, 0}));
  EXPECT_TRUE(archs[1].runs_on({9, 0}));
  EXPECT_FALSE(archs[1].runs_on({9, 1}));   // arch-specific: exactly 9.0
  EXPECT_TRUE(archs[2].runs_on({12, 0}));   // PTX: anything newer
  EXPECT_FALSE(archs[2].runs_on({8, 0}));
  EXPECT_THROW(capacity::parse_cuda_archs("ampere"), std::invalid_argument);
}

// ---- model mutations ----

TEST(CapacityModel, UsageFollowsPodsAndNodes) {
  ClusterModel model;
  model.upsert_pod(make_pod("team", "early", "n1", {{"cpu", "1"}, {"nvidia.com/gpu", "1"}}));  // before its node
  model.upsert_node(make_node("n1", "8", "32Gi", 4));
  {
    auto view = model.read();
    EXPECT_EQ(view.node("n1")->used.get("nvidia.com/gpu"), 1);
    EXPECT_EQ(view.node("n1")->used.cpu_milli, 1000);
    EXPECT_EQ(view.namespace_usage("team").devices(), 1);
  }
  model.upsert_pod(make_pod("team", "early", "n1", {{"cpu", "2"}, {"nvidia.com/gpu", "2"}}));  // replaced
  EXPECT_EQ(model.read().node("n1")->used.get("nvidia.com/gpu"), 2);
  json done = make_pod("team", "early", "n1", {{"nvidia.com/gpu", "2"}});
  done["status"]["phase"] = "Succeeded";
  model.upsert_pod(done);
  EXPECT_EQ(model.read().node("n1")->used.get("nvidia.com/gpu"), 0);
  EXPECT_EQ(model.read().namespace_usage("team").devices(), 0);
  model.upsert_pod(make_pod("team", "p", "n1", {{"nvidia.com/gpu", "1"}}));
  EXPECT_TRUE(model.delete_node("n1"));
  EXPECT_EQ(model.read().pools().size(), 0u);
  model.upsert_node(make_node("n1", "8", "32Gi", 4));  // its pod still counts when it returns
  EXPECT_EQ(model.read().node("n1")->used.get("nvidia.com/gpu"), 1);
  EXPECT_TRUE(model.delete_pod("team", "p"));
  EXPECT_FALSE(model.delete_pod("team", "p"));
  EXPECT_EQ(model.read().node("n1")->used.get("nvidia.com/gpu"), 0);
  model.upsert_namespace({{"kind", "Namespace"}, {"metadata", {{"name", "team"}}}});
  EXPECT_TRUE(model.delete_namespace("team"));
  EXPECT_THROW(model.upsert_node(json{{"kind", "Node"}, {"metadata", json::object()}}), capacity::SnapshotError);
}

TEST(CapacityModel, NodesWithTheSameGpuSignatureShareAPool) {
  ClusterModel model;
  for (int i = 0; i < 5; ++i) model.upsert_node(make_node("a" + std::to_string(i), "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0), gpu_taint()));
  model.upsert_node(make_node("b0", "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-40GB", 8, 40960, 8, 0), gpu_taint()));
  auto view = model.read();
  ASSERT_EQ(view.pools().size(), 2u);
  EXPECT_EQ(view.pools()[1]->name, "NVIDIA-A100-SXM4-80GB×8");
  EXPECT_EQ(view.pools()[1]->nodes.size(), 5u);
  EXPECT_FALSE(view.pools()[1]->label_uniform("kubernetes.io/hostname"));
  EXPECT_TRUE(view.pools()[1]->label_uniform("nvidia.com/gpu.product"));
}

TEST(CapacityModel, APageOfNodesAppliesTheGoodOnesAndNamesTheBadOne) {
  ClusterModel model;
  std::vector<json> page = {make_node("n2", "8", "32Gi", 4), json{{"kind", "Node"}, {"metadata", json::object()}},
                            make_node("n1", "8", "32Gi", 4)};
  std::vector<std::string> rejected;
  model.upsert_nodes(page, [&](const json&, const std::exception& error) { rejected.push_back(error.what()); });
  ASSERT_EQ(rejected.size(), 1u);
  auto view = model.read();
  EXPECT_EQ(view.node_count(), 2u);
  ASSERT_EQ(view.pools().size(), 1u);
  // The pool is sorted and summed once the page is in, as after upsert_node one by one.
  ASSERT_EQ(view.pools()[0]->nodes.size(), 2u);
  EXPECT_EQ(view.pools()[0]->nodes[0]->name, "n1");
  EXPECT_EQ(view.pools()[0]->free.size(), 2u);
}

// A page of nodes applied while reviews read: every read sees whole pools, never a page half in.
TEST(CapacityModel, ReadersNeverSeeAPageOfNodesHalfApplied) {
  ClusterModel model;
  std::vector<json> pages[2];  // the same nodes, their allocatable changing from page to page
  for (int i = 0; i < 40; ++i) {
    pages[0].push_back(make_node("n" + std::to_string(i), "16", "64Gi", 2));
    pages[1].push_back(make_node("n" + std::to_string(i), "32", "128Gi", 4));
  }
  std::thread writer([&] {
    for (int round = 0; round < 200; ++round) model.upsert_nodes(pages[round % 2], [](const json&, const std::exception&) {});
  });
  for (int i = 0; i < 300; ++i) {
    auto view = model.read();
    for (const auto* pool : view.pools()) {
      ASSERT_EQ(pool->free.size(), pool->nodes.size());
      for (std::size_t k = 0; k + 1 < pool->nodes.size(); ++k) ASSERT_LT(pool->nodes[k]->name, pool->nodes[k + 1]->name);
    }
  }
  writer.join();
  EXPECT_EQ(model.read().node_count(), 40u);
}

TEST(CapacityModel, ReadersAndAWriterAtOnce) {
  ClusterModel model;
  for (int i = 0; i < 20; ++i) model.upsert_node(make_node("n" + std::to_string(i), "16", "64Gi", 2));
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      model.upsert_pod(make_pod("ns", "p" + std::to_string(i % 50), "n" + std::to_string(i % 20), {{"nvidia.com/gpu", "1"}}));
      if (i % 7 == 0) model.delete_pod("ns", "p" + std::to_string(i % 50));
    }
  });
  int checked = 0;
  for (int i = 0; i < 300; ++i) {
    auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}));
    EXPECT_EQ(p.capable_nodes, 20u);
    ++checked;
  }
  writer.join();
  EXPECT_EQ(checked, 300);
}

// ---- scenarios ----

TEST(CapacityScenario, ManyNodesWithOneFreeGpuEachAndAPodAskingForTwo) {
  ClusterModel model;
  for (int i = 0; i < 10; ++i) {
    const std::string name = "gpu-node-" + std::to_string(i);
    model.upsert_node(make_node(name, "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0), gpu_taint()));
    model.upsert_pod(make_pod("t", "busy-" + std::to_string(i), name, {{"nvidia.com/gpu", "7"}}));
  }
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "2"}}));
  EXPECT_TRUE(p.can_ever_run());
  EXPECT_EQ(p.capable_nodes, 10u);
  EXPECT_FALSE(p.fits_now());
  EXPECT_EQ(p.largest_free_gpus, 1);
  EXPECT_EQ(p.largest_free_node->name, "gpu-node-0");
  EXPECT_TRUE(place(model, pod_spec({{"nvidia.com/gpu", "1"}})).fits_now());
}

TEST(CapacityScenario, AFreeGpuButNotEnoughCpu) {
  ClusterModel model;
  model.upsert_node(make_node("n", "32", "256Gi", 4, gpu_labels("NVIDIA-L40S", 4, 46068, 8, 9), gpu_taint()));
  model.upsert_pod(make_pod("t", "cpu-hog", "n", {{"cpu", "30"}, {"nvidia.com/gpu", "1"}}));
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}, {"cpu", "4"}}));
  EXPECT_TRUE(p.can_ever_run());
  EXPECT_FALSE(p.fits_now());
  EXPECT_EQ(p.largest_free_gpus, 3);
  auto view = model.read();
  EXPECT_EQ(capacity::stranded_now(*view.node("n"), view.gpu()), 3);  // 2 cpu left: less than one 8-cpu share
}

TEST(CapacityScenario, GpuMemory40VersusA100With80) {
  ClusterModel model;
  model.upsert_node(make_node("a40", "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-40GB", 8, 40960, 8, 0), gpu_taint()));
  model.upsert_node(make_node("a80", "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0), gpu_taint()));
  capacity::GpuRequirements need60;
  need60.memory_mib = 60 * 1024;
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}), need60);
  EXPECT_EQ(p.capable_nodes, 1u);
  EXPECT_EQ(verdict_of(p, "NVIDIA-A100-SXM4-40GB×8").outcome, capacity::PoolVerdict::Outcome::GpuUnsuitable);
  EXPECT_EQ(verdict_of(p, "NVIDIA-A100-SXM4-40GB×8").reason, "GPU memory 40960 MiB, 61440 MiB needed");
  capacity::GpuRequirements need100;
  need100.memory_mib = 100 * 1024;
  p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}), need100);
  EXPECT_FALSE(p.can_ever_run());
  EXPECT_EQ(p.largest_gpu_product, "NVIDIA-A100-SXM4-80GB");
  EXPECT_EQ(p.largest_gpu_memory_mib, 81920);
}

TEST(CapacityScenario, MigMixedStrategy) {
  ClusterModel model;
  json labels = gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0);
  labels["nvidia.com/mig.strategy"] = "mixed";
  labels["nvidia.com/mig-1g.10gb.count"] = "16";
  labels["nvidia.com/mig-1g.10gb.memory"] = "9728";
  labels["nvidia.com/mig-3g.40gb.count"] = "8";
  labels["nvidia.com/mig-3g.40gb.memory"] = "40192";
  json node = make_node("mig", "96", "1000Gi", 0, labels, gpu_taint());
  node["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] = "16";
  node["status"]["allocatable"]["nvidia.com/mig-3g.40gb"] = "8";
  model.upsert_node(node);
  model.upsert_node(make_node("full", "96", "1000Gi", 8, gpu_labels("NVIDIA-H100-80GB-HBM3", 8, 81559, 9, 0), gpu_taint()));
  auto p = place(model, pod_spec({{"nvidia.com/mig-3g.40gb", "1"}}));
  EXPECT_EQ(p.capable_nodes, 1u);
  EXPECT_EQ(verdict_of(p, "NVIDIA-H100-80GB-HBM3×8").reason, "0 nvidia.com/mig-3g.40gb per node, 1 nvidia.com/mig-3g.40gb requested");
  capacity::GpuRequirements need;
  need.memory_mib = 20 * 1024;  // a 1g.10gb slice has 9728 MiB
  EXPECT_FALSE(place(model, pod_spec({{"nvidia.com/mig-1g.10gb", "1"}}), need).can_ever_run());
  EXPECT_FALSE(place(model, pod_spec({{"nvidia.com/mig-7g.80gb", "1"}})).can_ever_run());
}

TEST(CapacityScenario, TimeSlicedPoolCountsReplicas) {
  ClusterModel model;
  json labels = gpu_labels("Tesla-T4-SHARED", 1, 15360, 7, 5);
  labels["nvidia.com/gpu.replicas"] = "4";
  labels["nvidia.com/gpu.sharing-strategy"] = "time-slicing";
  model.upsert_node(make_node("t4", "8", "30Gi", 4, labels, gpu_taint()));
  EXPECT_EQ(model.read().node("t4")->gpu.sharing, capacity::Sharing::TimeSlicing);
  EXPECT_TRUE(place(model, pod_spec({{"nvidia.com/gpu", "4"}})).can_ever_run());
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "5"}}));
  EXPECT_FALSE(p.can_ever_run());
  EXPECT_EQ(p.pools[0].reason, "4 GPUs per node, 5 requested");
  EXPECT_EQ(p.pools[0].pool->name, "Tesla-T4-SHARED×1 time-slicing×4");
}

TEST(CapacityScenario, CordonedNode) {
  ClusterModel model;
  json node = make_node("n", "32", "128Gi", 2);
  node["spec"]["unschedulable"] = true;
  model.upsert_node(node);
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}));
  EXPECT_FALSE(p.can_ever_run());
  EXPECT_EQ(p.pools[0].reason, "cordoned (spec.unschedulable)");
  json tolerant = pod_spec({{"nvidia.com/gpu", "1"}});
  tolerant["tolerations"].push_back({{"key", "node.kubernetes.io/unschedulable"}, {"operator", "Exists"}, {"effect", "NoSchedule"}});
  EXPECT_TRUE(place(model, tolerant).can_ever_run());
}

TEST(CapacityScenario, NoExecuteTaint) {
  ClusterModel model;
  model.upsert_node(make_node("n", "32", "128Gi", 2, json::object(),
                              json::array({{{"key", "maintenance"}, {"value", "true"}, {"effect", "NoExecute"}},
                                           {{"key", "soft"}, {"effect", "PreferNoSchedule"}}})));
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}));
  EXPECT_FALSE(p.can_ever_run());
  EXPECT_EQ(p.pools[0].reason, "taint maintenance=true:NoExecute not tolerated");
  json tolerant = pod_spec({{"nvidia.com/gpu", "1"}});
  tolerant["tolerations"].push_back({{"key", "maintenance"}, {"operator", "Equal"}, {"value", "true"}, {"effect", "NoExecute"}});
  EXPECT_TRUE(place(model, tolerant).can_ever_run());  // PreferNoSchedule never blocks
}

TEST(CapacityScenario, SidecarInitContainersCount) {
  ClusterModel model;
  model.upsert_node(make_node("n", "8", "32Gi", 1));
  json spec = pod_spec({{"cpu", "6"}, {"nvidia.com/gpu", "1"}});
  // A sidecar runs beside the app container: 6 + 3 cpu > 8.
  spec["initContainers"] = {{{"name", "proxy"}, {"image", "x"}, {"restartPolicy", "Always"}, {"resources", {{"requests", {{"cpu", "3"}}}}}}};
  auto p = place(model, spec);
  EXPECT_FALSE(p.can_ever_run());
  EXPECT_EQ(p.pools[0].reason, "8 cpu per node, 9 cpu requested");
  // An ordinary init container runs before: max(6, 7) = 7 cpu fits.
  spec["initContainers"] = {{{"name", "fetch"}, {"image", "x"}, {"resources", {{"requests", {{"cpu", "7"}}}}}}};
  EXPECT_TRUE(place(model, spec).can_ever_run());
  spec["overhead"] = {{"cpu", "1500m"}};  // RuntimeClass overhead is added
  EXPECT_FALSE(place(model, spec).can_ever_run());
}

TEST(CapacityScenario, NodeSelectionUsesSchedulerSemantics) {
  ClusterModel model;
  for (int i = 0; i < 4; ++i) {
    json labels = gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0);
    labels["rack"] = std::to_string(i);
    model.upsert_node(make_node("a" + std::to_string(i), "96", "1000Gi", 8, labels, gpu_taint()));
  }
  json spec = pod_spec({{"nvidia.com/gpu", "1"}}, {{"nodeSelector", {{"gpu-type", "h100"}}}});
  EXPECT_FALSE(place(model, spec).can_ever_run());
  EXPECT_EQ(place(model, spec).eligible_nodes, 0u);
  // A label that differs inside the pool is checked node by node (Gt is numeric).
  spec = pod_spec({{"nvidia.com/gpu", "1"}},
                  {{"affinity", {{"nodeAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution",
                                                    {{"nodeSelectorTerms", {{{"matchExpressions", {{{"key", "rack"}, {"operator", "Gt"}, {"values", {"1"}}}}}}}}}}}}}}});
  EXPECT_EQ(place(model, spec).capable_nodes, 2u);
  spec = pod_spec({{"nvidia.com/gpu", "1"}}, {{"nodeSelector", {{"kubernetes.io/hostname", "a3"}}}});
  EXPECT_EQ(place(model, spec).capable_nodes, 1u);
}

TEST(CapacityScenario, CudaVersionAndArchitecture) {
  ClusterModel model;
  model.upsert_node(make_node("old", "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0, "535.104.05"), gpu_taint()));
  model.upsert_node(make_node("new", "96", "1000Gi", 8, gpu_labels("NVIDIA-H100-80GB-HBM3", 8, 81559, 9, 0, "550.54.15"), gpu_taint()));
  capacity::GpuRequirements cuda124;
  cuda124.cuda = capacity::Version::parse("12.4");
  auto p = place(model, pod_spec({{"nvidia.com/gpu", "1"}}), cuda124);
  EXPECT_EQ(p.capable_nodes, 1u);
  EXPECT_EQ(verdict_of(p, "NVIDIA-A100-SXM4-80GB×8").reason, "driver 535.104.05 runs CUDA up to 12.2, 12.4 needed");
  capacity::GpuRequirements sm90;
  sm90.archs = capacity::parse_cuda_archs("sm_90");
  EXPECT_EQ(place(model, pod_spec({{"nvidia.com/gpu", "1"}}), sm90).capable_nodes, 1u);
  capacity::GpuRequirements sm80;
  sm80.archs = capacity::parse_cuda_archs("sm_80");  // a cubin for 8.0 does not run on 9.0
  EXPECT_EQ(place(model, pod_spec({{"nvidia.com/gpu", "1"}}), sm80).capable_nodes, 1u);
  sm80.archs = capacity::parse_cuda_archs("sm_80,compute_80");  // PTX JIT runs on 9.0
  EXPECT_EQ(place(model, pod_spec({{"nvidia.com/gpu", "1"}}), sm80).capable_nodes, 2u);
}

TEST(CapacityScenario, StrandingUsesExactIntegers) {
  capacity::Amounts node;
  node.cpu_milli = 96000;
  node.memory = 1000LL << 30;
  capacity::PodShape shape;
  shape.gpu_devices = 1;
  shape.requests.cpu_milli = 12000;  // exactly one share
  EXPECT_EQ(capacity::stranded_gpus(node, 8, shape), 0);
  shape.requests.cpu_milli = 12001;
  EXPECT_EQ(capacity::stranded_gpus(node, 8, shape), 1);
  shape.requests.cpu_milli = 48000;
  EXPECT_EQ(capacity::stranded_gpus(node, 8, shape), 3);
  shape.gpu_devices = 0;  // a pod without GPUs on a GPU node
  shape.requests.cpu_milli = 100;
  EXPECT_EQ(capacity::stranded_gpus(node, 8, shape), 1);
  // A share that is not a whole number: 1/3 of memory per GPU.
  node.memory = 3 * 1000003;
  shape.requests = {};
  shape.gpu_devices = 1;
  shape.requests.memory = 1000003;
  EXPECT_EQ(capacity::stranded_gpus(node, 3, shape), 0);
}

// ---- the policies through the engine ----

struct Reviewed {
  bool allowed;
  std::string message;
  std::vector<std::string> warnings;
  std::map<std::string, std::string> audit;
};

Reviewed review(const std::string& config, const ClusterModel* model, json object, const std::string& operation = "CREATE",
                json old_object = nullptr) {
  auto engine = Engine::from_yaml(config, "test.yaml");
  Request request = request_for_manifest(object, "default");
  request.operation = operation;
  request.old_object = std::move(old_object);
  ReviewOutcome outcome = engine->review(request, model);
  return {outcome.response.allowed, outcome.response.status_message, outcome.response.warnings,
          outcome.response.audit_annotations};
}

json pod_object(const std::string& ns, json spec, json annotations = json::object()) {
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}, {"namespace", ns}, {"annotations", annotations}}}, {"spec", spec}};
}

json deployment(const std::string& ns, int replicas, json requests) {
  return {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "d"}, {"namespace", ns}}},
          {"spec", {{"replicas", replicas}, {"template", {{"metadata", json::object()}, {"spec", pod_spec(requests)}}}}}};
}

std::unique_ptr<ClusterModel> small_cluster() {
  auto model = std::make_unique<ClusterModel>();
  for (int i = 0; i < 2; ++i)
    model->upsert_node(make_node("a80-" + std::to_string(i), "96", "1000Gi", 8, gpu_labels("NVIDIA-A100-SXM4-80GB", 8, 81920, 8, 0), gpu_taint()));
  for (int i = 0; i < 2; ++i)
    model->upsert_node(make_node("h100-" + std::to_string(i), "96", "1000Gi", 8, gpu_labels("NVIDIA-H100-80GB-HBM3", 8, 81559, 9, 0), gpu_taint()));
  model->upsert_pod(make_pod("team", "run-0", "a80-0", {{"nvidia.com/gpu", "6"}}));
  model->upsert_pod(make_pod("team", "run-1", "h100-0", {{"nvidia.com/gpu", "4"}}));
  return model;
}

const std::string kCapacity = "policies:\n  gpu-capacity: {}\n";

TEST(GpuCapacityPolicy, NothingToCheckWithoutACluster) {
  Reviewed r = review(kCapacity, nullptr, pod_object("team", pod_spec({{"nvidia.com/gpu", "64"}})));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(GpuCapacityPolicy, UnschedulableIsDeniedWithPerPoolReasons) {
  auto model = small_cluster();
  Reviewed r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "16"}})));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("no node can ever run this pod (the pod asks for 16 GPUs): pool NVIDIA-A100-SXM4-80GB×8 (2 nodes): "
                           "8 GPUs per node, 16 requested; pool NVIDIA-H100-80GB-HBM3×8 (2 nodes): 8 GPUs per node, 16 requested"),
            std::string::npos)
      << r.message;
  r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}}, {{"nodeSelector", {{"gpu-type", "h100"}}}})));
  EXPECT_NE(r.message.find("no node matches gpu-type=h100; pools: NVIDIA-A100-SXM4-80GB×8, NVIDIA-H100-80GB-HBM3×8"), std::string::npos)
      << r.message;
  r = review("policies:\n  gpu-capacity: {mode: warn}\n", model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "16"}})));
  EXPECT_TRUE(r.allowed);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_TRUE(r.warnings[0].starts_with("[gpu-capacity] spec: no node can ever run this pod")) << r.warnings[0];
  r = review("policies:\n  gpu-capacity: {mode: audit}\n", model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "16"}})));
  EXPECT_TRUE(r.allowed);
  EXPECT_NE(r.audit["gpu-capacity"].find("8 GPUs per node, 16 requested"), std::string::npos);
}

TEST(GpuCapacityPolicy, GpuMemoryAnnotation) {
  auto model = small_cluster();
  Reviewed r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}}), {{"gpu-admit.io/gpu-memory", "140Gi"}}));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("no eligible node has a GPU with 143360 MiB (gpu-admit.io/gpu-memory); the largest is "
                           "NVIDIA-A100-SXM4-80GB with 81920 MiB"),
            std::string::npos)
      << r.message;
  r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}}), {{"gpu-admit.io/gpu-memory", "lots"}}));
  EXPECT_NE(r.message.find("metadata.annotations: gpu-admit.io/gpu-memory: 'lots' is not a positive quantity"), std::string::npos) << r.message;
  r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}}), {{"gpu-admit.io/cuda-version", "13.0"}}));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("runs CUDA up to 12.4, 13.0 needed"), std::string::npos) << r.message;
}

TEST(GpuCapacityPolicy, StrandingDeniesOrWarns) {
  auto model = small_cluster();
  // 1 GPU with half a node's cpu: 3 of the 7 other GPUs lose their share everywhere.
  Reviewed r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}, {"cpu", "48"}})));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("strands 3 of the 8 GPUs"), std::string::npos) << r.message;
  r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}, {"cpu", "13"}})));
  EXPECT_TRUE(r.allowed);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.audit["gpu-capacity"].find("strands 1 of the 8 GPUs"), std::string::npos);
  r = review(kCapacity, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "1"}, {"cpu", "12"}})));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(GpuCapacityPolicy, AllowedGpuCountsSuggestTheNearest) {
  auto model = small_cluster();
  const std::string config = "policies:\n  gpu-capacity:\n    pools:\n      - {pool: '*', allowedGpuCounts: [1, 2, 4, 8]}\n";
  Reviewed r = review(config, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "3"}})));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("takes 1, 2, 4 or 8 GPUs per pod"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("Ask for 4 GPUs per pod"), std::string::npos) << r.message;
  EXPECT_TRUE(review(config, model.get(), pod_object("team", pod_spec({{"nvidia.com/gpu", "2"}}))).allowed);
}

TEST(GpuCapacityPolicy, CurrentCapacityWarnsOrDeniesForFixedPools) {
  auto model = small_cluster();
  // Free now: 2 on a80-0, 8 on a80-1, 4 on h100-0, 8 on h100-1: room for 2 of 3 eight-GPU replicas.
  Reviewed r = review(kCapacity, model.get(), deployment("team", 3, {{"nvidia.com/gpu", "8"}}));
  EXPECT_TRUE(r.allowed);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.audit["gpu-capacity"].find("room for 2 of 3 replicas right now; largest free block: 8 GPUs on a80-1"),
            std::string::npos)
      << r.audit["gpu-capacity"];
  r = review("policies:\n  gpu-capacity: {autoscaled: false}\n", model.get(), deployment("team", 3, {{"nvidia.com/gpu", "8"}}));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("none of its pools is autoscaled"), std::string::npos) << r.message;
  EXPECT_TRUE(review(kCapacity, model.get(), deployment("team", 2, {{"nvidia.com/gpu", "8"}})).warnings.empty());
}

const std::string kQuota =
    "policies:\n  gpu-quota:\n    budgets:\n      - {namespace: team, gpus: 16, products: {NVIDIA-H100-80GB-HBM3: 6}, migProfiles: {1g.10gb: 2}}\n";

TEST(GpuQuotaPolicy, Table) {
  auto model = small_cluster();  // team uses 6 A100 + 4 H100 = 10 GPUs
  struct Case {
    std::string name;
    std::string mode;
    json object;
    bool allowed;
    std::string expect;  // in the denial, the warning or the audit annotation
  };
  const std::vector<Case> cases = {
      {"within budget", "enforce", pod_object("team", pod_spec({{"nvidia.com/gpu", "6"}}, {{"nodeSelector", {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}}})), true, ""},
      {"over total", "enforce", pod_object("team", pod_spec({{"nvidia.com/gpu", "7"}})), false,
       "namespace team uses 10 of its 16 GPUs and this Pod adds 7 GPUs"},
      {"controller replicas", "enforce", deployment("team", 4, {{"nvidia.com/gpu", "2"}}), false,
       "this Deployment adds 8 GPUs (4 replicas × 2)"},
      {"warn mode", "warn", deployment("team", 4, {{"nvidia.com/gpu", "2"}}), true, "namespace team uses 10 of its 16 GPUs"},
      {"audit mode", "audit", deployment("team", 4, {{"nvidia.com/gpu", "2"}}), true, "namespace team uses 10 of its 16 GPUs"},
      {"product budget, pinned", "enforce",
       pod_object("team", pod_spec({{"nvidia.com/gpu", "4"}}, {{"nodeSelector", {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"}}}})), false,
       "would exceed its GPU budget for NVIDIA-H100-80GB-HBM3 (4 of 6 in use)"},
      {"product budget, other product possible", "enforce", pod_object("team", pod_spec({{"nvidia.com/gpu", "4"}})), true,
       "if scheduled on NVIDIA-H100-80GB-HBM3 (4 of 6 in use)"},
      {"other namespace has no budget", "enforce", pod_object("other", pod_spec({{"nvidia.com/gpu", "8"}})), true, ""},
      {"no GPUs", "enforce", pod_object("team", pod_spec({{"cpu", "1"}})), true, ""},
  };
  for (const Case& c : cases) {
    const std::string config = "policies:\n  gpu-quota:\n    mode: " + c.mode + kQuota.substr(kQuota.find("\n    budgets"));
    Reviewed r = review(config, model.get(), c.object);
    EXPECT_EQ(r.allowed, c.allowed) << c.name << ": " << r.message;
    std::string all = r.message + (r.warnings.empty() ? "" : r.warnings[0]) + r.audit["gpu-quota"];
    if (c.expect.empty())
      EXPECT_TRUE(r.warnings.empty() && r.audit["gpu-quota"].empty()) << c.name << ": " << all;
    else
      EXPECT_NE(all.find(c.expect), std::string::npos) << c.name << ": " << all;
  }
}

TEST(GpuQuotaPolicy, UpdatesCountOnlyTheIncrease) {
  auto model = small_cluster();
  json old_object = deployment("team", 3, {{"nvidia.com/gpu", "2"}});
  // 10 in use (including the 6 of the old Deployment's pods, say): 3 → 4 replicas adds 2.
  EXPECT_TRUE(review(kQuota, model.get(), deployment("team", 4, {{"nvidia.com/gpu", "2"}}), "UPDATE", old_object).allowed);
  EXPECT_FALSE(review(kQuota, model.get(), deployment("team", 7, {{"nvidia.com/gpu", "2"}}), "UPDATE", old_object).allowed);
}

TEST(GpuQuotaPolicy, MigProfileBudget) {
  auto model = small_cluster();
  model->upsert_pod(make_pod("team", "slice", "", {{"nvidia.com/mig-1g.10gb", "2"}}));  // pending pods count too
  Reviewed r = review(kQuota, model.get(), pod_object("team", pod_spec({{"nvidia.com/mig-1g.10gb", "1"}})));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("uses 2 of its 2 nvidia.com/mig-1g.10gb"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace gpuadmit

namespace gpuadmit {
namespace {

// Disruption budgets and priority classes reach the model through apply() (a snapshot's List)
// as well as through their own calls (the live watch); a bad one names itself and changes nothing.
TEST(ClusterModel, KeepsDisruptionBudgetsAndPriorityClasses) {
  capacity::ClusterModel model;
  model.apply(json::parse(R"({"kind":"List","items":[
      {"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"namespace":"serve","name":"vllm"},
       "spec":{"selector":{"matchLabels":{"app":"vllm"}},"maxUnavailable":1}},
      {"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"inference"},"value":1000}]})"));
  {
    auto view = model.read();
    ASSERT_EQ(view.disruption_budgets().selecting("serve", {{"app", "vllm"}}).size(), 1u);
    EXPECT_EQ(view.disruption_budgets().selecting("serve", {{"app", "vllm"}})[0]->max_unavailable, "1");
    ASSERT_TRUE(view.priority_classes().find("inference"));
    EXPECT_EQ(view.priority_classes().find("inference")->value, 1000);
  }
  try {
    model.apply(json::parse(R"({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"inference"},"value":"high"})"));
    FAIL() << "accepted a string value";
  } catch (const capacity::SnapshotError& error) {
    EXPECT_NE(std::string(error.what()).find("PriorityClass inference"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("value"), std::string::npos) << error.what();
  }
  EXPECT_EQ(model.read().priority_classes().find("inference")->value, 1000);
  EXPECT_TRUE(model.delete_disruption_budget("serve", "vllm"));
  EXPECT_EQ(model.remove_priority_classes_except({}), 1u);
  EXPECT_TRUE(model.read().disruption_budgets().selecting("serve", {{"app", "vllm"}}).empty());
}

}  // namespace
}  // namespace gpuadmit
