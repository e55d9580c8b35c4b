// The capacity model's figures on /metrics (webhook/server/capacity_metrics.h), from the example
// snapshot whose pools and usage `gpu-admit inventory` prints (tests/inventory_example.txt), and
// the namespaces' budgets from gpu-quota's config (Engine::namespace_gpu_budget).
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"
#include "webhook/server/capacity_metrics.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;

const std::string kSnapshot = (fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string();

// The sample lines of `family` (exactly that name), sorted.
std::vector<std::string> samples(const std::string& text, const std::string& family) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(family + "{", 0) == 0 || line.rfind(family + " ", 0) == 0) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

std::string scrape(const std::shared_ptr<const Engine>& engine) {
  std::shared_ptr<const capacity::ClusterModel> model = capacity::ClusterModel::load({kSnapshot}, engine->config().gpu);
  webhook::CapacityMetrics metrics(model, [engine] { return engine; });
  return prometheus::TextSerializer().Serialize(metrics.Collect());
}

TEST(CapacityMetrics, PoolFiguresAreInventorys) {
  const std::string text = scrape(Engine::from_default());
  // tests/inventory_example.txt: NODES GPUS ALLOC FREE STRANDED LARGEST, pool by pool.
  EXPECT_EQ(samples(text, "gpuadmit_pool_gpus"),
            (std::vector<std::string>{
                R"(gpuadmit_pool_gpus{pool="NVIDIA-A100-SXM4-40GB×8"} 16)",
                R"(gpuadmit_pool_gpus{pool="NVIDIA-A100-SXM4-80GB×8 MIG mixed"} 64)",
                R"(gpuadmit_pool_gpus{pool="NVIDIA-A100-SXM4-80GB×8"} 32)",
                R"x(gpuadmit_pool_gpus{pool="NVIDIA-H100-80GB-HBM3×8 (cordoned)"} 8)x",
                R"(gpuadmit_pool_gpus{pool="NVIDIA-H100-80GB-HBM3×8"} 16)",
                R"(gpuadmit_pool_gpus{pool="NVIDIA-L4×1"} 3)",
                R"(gpuadmit_pool_gpus{pool="Tesla-T4-SHARED×1 time-slicing×4"} 8)",
                R"(gpuadmit_pool_gpus{pool="cpu-only"} 0)"}))
      << text;
  const std::string a100 = R"({pool="NVIDIA-A100-SXM4-80GB×8"} )";
  EXPECT_NE(text.find("gpuadmit_pool_nodes" + a100 + "4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_gpus_allocated" + a100 + "21\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_gpus_free" + a100 + "11\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_gpus_stranded" + a100 + "6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_largest_free_block_gpus" + a100 + "7\n"), std::string::npos) << text;
  const std::string mig = R"({pool="NVIDIA-A100-SXM4-80GB×8 MIG mixed"} )";
  EXPECT_NE(text.find("gpuadmit_pool_gpus_free" + mig + "60\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_largest_free_block_gpus" + mig + "32\n"), std::string::npos) << text;
  const std::string h100 = R"({pool="NVIDIA-H100-80GB-HBM3×8"} )";
  EXPECT_NE(text.find("gpuadmit_pool_gpus_allocated" + h100 + "12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuadmit_pool_largest_free_block_gpus" + h100 + "4\n"), std::string::npos) << text;
  EXPECT_EQ(samples(text, "gpuadmit_pool_gpus_stranded").size(), 8u) << text;
}

// policies/default.yaml's gpu-quota budgets: ml-training 32, ml-serving 12, research 16.
TEST(CapacityMetrics, NamespaceUseAgainstTheShippedBudgets) {
  const std::string text = scrape(Engine::from_default());
  EXPECT_EQ(samples(text, "gpuadmit_namespace_gpus_used"),
            (std::vector<std::string>{R"(gpuadmit_namespace_gpus_used{namespace="ml-serving"} 11)",
                                      R"(gpuadmit_namespace_gpus_used{namespace="ml-training"} 24)",
                                      R"(gpuadmit_namespace_gpus_used{namespace="research"} 8)"}))
      << text;
  EXPECT_EQ(samples(text, "gpuadmit_namespace_gpu_budget"),
            (std::vector<std::string>{R"(gpuadmit_namespace_gpu_budget{namespace="ml-serving"} 12)",
                                      R"(gpuadmit_namespace_gpu_budget{namespace="ml-training"} 32)",
                                      R"(gpuadmit_namespace_gpu_budget{namespace="research"} 16)"}))
      << text;
}

// A budget for a namespace the cluster has and that runs nothing yet shows as 0 used of it; a
// namespace whose budget has no `gpus`, or where gpu-quota is off or exempt, has no budget series.
TEST(CapacityMetrics, BudgetsFollowTheConfig) {
  const std::string text = scrape(Engine::from_yaml(R"(excludedNamespaces: [kube-system, gpu-admit]
policies:
  gpu-quota:
    mode: warn
    namespaceModes: {ml-serving: "off"}
    exemptNamespaces: [research]
    budgets:
      - {namespace: ml-training, products: {NVIDIA-H100-80GB-HBM3: 8}}
      - {namespace: ml-*, gpus: 40}
      - {namespace: "*", gpus: 2}
)", "cfg.yaml"));
  EXPECT_EQ(samples(text, "gpuadmit_namespace_gpu_budget"),
            (std::vector<std::string>{R"(gpuadmit_namespace_gpu_budget{namespace="default"} 2)"}))
      << text;
  EXPECT_EQ(samples(text, "gpuadmit_namespace_gpus_used"),
            (std::vector<std::string>{R"(gpuadmit_namespace_gpus_used{namespace="default"} 0)",
                                      R"(gpuadmit_namespace_gpus_used{namespace="ml-serving"} 11)",
                                      R"(gpuadmit_namespace_gpus_used{namespace="ml-training"} 24)",
                                      R"(gpuadmit_namespace_gpus_used{namespace="research"} 8)"}))
      << text;
}

TEST(Engine, NamespaceGpuBudgetIsTheFirstMatchingBudgetsGpus) {
  const auto engine = Engine::from_yaml(R"(excludedNamespaces: [kube-*]
policies:
  gpu-quota:
    namespaceModes: {sandbox: "off"}
    exemptNamespaces: [exempt]
    budgets:
      - {namespace: team-a, gpus: 8}
      - {namespace: team-b, gpuCores: 100}
      - {namespace: "team-*", gpus: 4}
      - {namespace: "*", gpus: 1}
)", "cfg.yaml");
  EXPECT_EQ(engine->namespace_gpu_budget("team-a"), 8);
  EXPECT_EQ(engine->namespace_gpu_budget("team-b"), std::nullopt);  // first match wins, and it sets no `gpus`
  EXPECT_EQ(engine->namespace_gpu_budget("team-c"), 4);
  EXPECT_EQ(engine->namespace_gpu_budget("other"), 1);
  EXPECT_EQ(engine->namespace_gpu_budget("sandbox"), std::nullopt);
  EXPECT_EQ(engine->namespace_gpu_budget("exempt"), std::nullopt);
  EXPECT_EQ(engine->namespace_gpu_budget("kube-system"), std::nullopt);
  EXPECT_EQ(Engine::from_yaml("policies:\n  dev-shm: {}\n", "cfg.yaml")->namespace_gpu_budget("team-a"), std::nullopt);
}

}  // namespace
}  // namespace gpuadmit
