// "Fits after preemption" (capacity::fit_with_preemption) against a brute-force reference: on
// random clusters of GPU nodes whose pods run at random priorities, the copies of a pod that fit
// once every lower-priority pod of a capable node is gone, counted node by node from the pod
// list itself, equal what the model's per-priority levels give; and the victims counted are
// pods of lower priority on the nodes used, never more than there are.
#include <gtest/gtest.h>

#include <random>

#include "engine/capacity/placement.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

json node(const std::string& name, int gpus, int cpu) {
  return {{"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", json::object()},
          {"status",
           {{"allocatable", {{"cpu", std::to_string(cpu)}, {"memory", "512Gi"}, {"pods", "110"}, {"nvidia.com/gpu", std::to_string(gpus)}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json pod(const std::string& ns, const std::string& name, const std::string& node_name, int gpus, int cpu, int priority,
         bool daemon = false) {
  json p = {{"kind", "Pod"},
            {"metadata", {{"namespace", ns}, {"name", name}}},
            {"spec",
             {{"nodeName", node_name},
              {"priority", priority},
              {"containers",
               {{{"name", "c"},
                 {"resources", {{"limits", {{"cpu", std::to_string(cpu)}, {"memory", "1Gi"}, {"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}}},
            {"status", {{"phase", "Running"}}}};
  if (daemon)
    p["metadata"]["ownerReferences"] = {{{"kind", "DaemonSet"}, {"name", "ds"}, {"controller", true}, {"apiVersion", "apps/v1"}, {"uid", "1"}}};
  return p;
}

json gpu_pod_spec(int gpus, int cpu) {
  return {{"containers",
           {{{"name", "c"}, {"resources", {{"limits", {{"cpu", std::to_string(cpu)}, {"memory", "1Gi"}, {"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}};
}

TEST(Preemption, CountsWhatLowerPriorityPodsHoldAndNamesThem) {
  capacity::ClusterModel model;
  model.apply(node("n1", 8, 64));
  model.apply(pod("research", "a", "n1", 4, 8, 100));
  model.apply(pod("research", "b", "n1", 2, 8, 50));
  model.apply(pod("serving", "c", "n1", 2, 8, 1000));
  model.apply(pod("kube-system", "agent", "n1", 0, 1, 0, /*daemon=*/true));
  const auto view = model.read();
  const json spec = gpu_pod_spec(4, 8);
  const auto shape = capacity::PodShape::from_pod_spec(spec, view.gpu());
  const auto placement = capacity::place(view, spec, shape, {});
  ASSERT_EQ(placement.fit_now, 0);
  // Priority 500: b (50) frees 2 GPUs, too few alone; a (100) too: both are taken.
  auto fit = capacity::fit_with_preemption(placement, shape, 500);
  EXPECT_EQ(fit.fit, 1);
  EXPECT_EQ(fit.victims, 2);
  EXPECT_EQ(fit.highest_victim_priority, 100);
  EXPECT_EQ(fit.namespaces, std::vector<std::string>{"research"});
  // Priority 100 may preempt only b: 2 + 2 free GPUs are still short of 4 + the 2 held by c.
  EXPECT_EQ(capacity::fit_with_preemption(placement, shape, 100).fit, 0);
  // Nobody lower than priority 50.
  EXPECT_EQ(capacity::fit_with_preemption(placement, shape, 50).victims, 0);
}

TEST(Preemption, DeletedPodsLeaveTheirLevel) {
  capacity::ClusterModel model;
  model.apply(node("n1", 2, 64));
  model.apply(pod("research", "a", "n1", 2, 8, 10));
  ASSERT_TRUE(model.delete_pod("research", "a"));
  model.apply(pod("research", "b", "n1", 2, 8, 2000));
  const auto view = model.read();
  const json spec = gpu_pod_spec(2, 1);
  const auto shape = capacity::PodShape::from_pod_spec(spec, view.gpu());
  const auto placement = capacity::place(view, spec, shape, {});
  EXPECT_EQ(capacity::fit_with_preemption(placement, shape, 1000).fit, 0);  // a's level is gone
}

TEST(Preemption, AgreesWithEvictingEveryLowerPodNodeByNode) {
  std::mt19937 rng(20261206);
  for (int round = 0; round < 300; ++round) {
    capacity::ClusterModel model;
    std::vector<json> pods;
    const int nodes = 1 + static_cast<int>(rng() % 5);
    for (int n = 0; n < nodes; ++n) {
      const std::string name = "n" + std::to_string(n);
      const int gpus = 1 + static_cast<int>(rng() % 8);
      model.apply(node(name, gpus, 64));
      int left = gpus;
      for (int k = 0; left > 0 && k < 6; ++k) {
        const int take = 1 + static_cast<int>(rng() % left);
        left -= take;
        json p = pod("ns" + std::to_string(rng() % 3), name + "-p" + std::to_string(k), name, take,
                     1 + static_cast<int>(rng() % 16), static_cast<int>(rng() % 5) * 100 - 100);
        model.apply(p);
        pods.push_back(std::move(p));
      }
    }
    const int want_gpus = 1 + static_cast<int>(rng() % 4), want_cpu = 1 + static_cast<int>(rng() % 24);
    const int replicas = 1 + static_cast<int>(rng() % 4);
    const std::int32_t priority = static_cast<std::int32_t>(rng() % 6) * 100 - 100;
    const auto view = model.read();
    const json spec = gpu_pod_spec(want_gpus, want_cpu);
    const auto shape = capacity::PodShape::from_pod_spec(spec, view.gpu());
    const auto placement = capacity::place(view, spec, shape, {}, replicas);
    const auto fit = capacity::fit_with_preemption(placement, shape, priority);

    // The reference: each node with every pod of lower priority evicted.
    std::int64_t expected = 0, lower_pods = 0;
    for (int n = 0; n < nodes; ++n) {
      const std::string name = "n" + std::to_string(n);
      const capacity::NodeState* state = view.node(name);
      std::int64_t gpus = state->allocatable.get("nvidia.com/gpu"), cpu = 64;
      for (const json& p : pods) {
        if (p["spec"]["nodeName"] != name || p["spec"]["priority"].get<int>() < priority) {
          if (p["spec"]["nodeName"] == name) ++lower_pods;
          continue;
        }
        gpus -= std::stoi(p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].get<std::string>());
        cpu -= std::stoi(p["spec"]["containers"][0]["resources"]["limits"]["cpu"].get<std::string>());
      }
      if (state->allocatable.get("nvidia.com/gpu") < want_gpus || want_cpu > 64) continue;  // not capable
      expected += std::min(gpus / want_gpus, cpu / want_cpu);
    }
    SCOPED_TRACE("round " + std::to_string(round));
    EXPECT_EQ(fit.fit, std::min<std::int64_t>(expected, replicas));
    EXPECT_LE(fit.victims, lower_pods);
    if (fit.victims > 0) {
      EXPECT_LT(fit.highest_victim_priority, priority);
    }
  }
}

}  // namespace
}  // namespace gpuadmit
