// The pool-based placement agrees with a brute-force reference that checks every node one by
// one, straight from the JSON objects (Quantity comparisons, no pools, no Amounts), on
// thousands of random seeded clusters and pods. The second property builds large pools whose
// members differ in zone, rack and tier labels, so that selectors on those labels go through
// the pools' label partitions (one match per group of members) with every operator, and
// changes nodes between decisions so that the partitions are rebuilt.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "engine/capacity/placement.h"
#include "engine/k8s/pod_resources.h"
#include "engine/resources.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

struct Reference {
  std::size_t eligible = 0;
  std::size_t capable = 0;
  bool fits_now = false;
  // The most free nvidia.com/gpu (or cpu, in milli-units, for a pod without GPUs) on a capable
  // node; only for pods that ask for no GPU resource other than nvidia.com/gpu.
  std::optional<std::int64_t> largest_free;
};

// What the scheduler's filters say for each node, with nothing shared with the engine's code
// path except the ported Kubernetes semantics (node affinity, taints, pod requests).
Reference brute_force(const std::vector<json>& nodes, const std::vector<json>& pods, const json& spec) {
  Reference ref;
  const k8s::ResourceList want = k8s::pod_requests(spec);
  const auto tolerations = k8s::tolerations_from_json(spec.value("tolerations", json::array()));
  const k8s::RequiredNodeAffinity affinity(spec);
  for (const json& node : nodes) {
    const std::string name = node["metadata"]["name"];
    bool blocked = false;
    for (const k8s::Taint& taint : k8s::taints_from_json(node["spec"].value("taints", json::array())))
      if ((taint.effect == "NoSchedule" || taint.effect == "NoExecute") && !k8s::tolerated_by_any(tolerations, taint))
        blocked = true;
    if (node["spec"].value("unschedulable", false) &&
        !k8s::tolerated_by_any(tolerations, {"node.kubernetes.io/unschedulable", "", "NoSchedule"}))
      blocked = true;
    if (blocked || !affinity.matches(k8s::node_from_json(node))) continue;
    ++ref.eligible;
    const json& allocatable = node["status"]["allocatable"];
    auto have = [&](const std::string& resource) {
      return allocatable.contains(resource) ? quantity_from_json(allocatable[resource], resource) : k8s::Quantity();
    };
    bool fits_empty = have("pods").value() >= 1;
    for (const auto& [resource, quantity] : want)
      if (!quantity.is_zero() && quantity > have(resource)) fits_empty = false;
    if (!fits_empty) continue;
    ++ref.capable;
    // Free now: allocatable minus the requests of the pods bound here.
    k8s::ResourceList used;
    std::int64_t bound = 0;
    for (const json& pod : pods)
      if (pod["spec"].value("nodeName", "") == name) {
        ++bound;
        for (const auto& [resource, quantity] : k8s::pod_requests(pod["spec"])) used[resource] += quantity;
      }
    bool fits_now = have("pods").value() - bound >= 1;
    for (const auto& [resource, quantity] : want)
      if (!quantity.is_zero() && quantity + used[resource] > have(resource)) fits_now = false;
    ref.fits_now = ref.fits_now || fits_now;
    const bool gpu = want.count("nvidia.com/gpu") && !want.at("nvidia.com/gpu").is_zero();
    const std::int64_t block = gpu ? have("nvidia.com/gpu").value() - used["nvidia.com/gpu"].value()
                                   : have("cpu").milli_value() - used["cpu"].milli_value();
    ref.largest_free = std::max(ref.largest_free.value_or(block), block);
  }
  return ref;
}

class Generator {
 public:
  explicit Generator(unsigned seed) : rng_(seed) {}

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  template <typename T>
  const T& one_of(const std::vector<T>& items) { return items[pick(0, static_cast<int>(items.size()) - 1)]; }

  json node(int i) {
    static const std::vector<std::string> products = {"NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "NVIDIA-L4", ""};
    const std::string product = one_of(products);
    const int gpus = product.empty() ? 0 : one_of(std::vector<int>{1, 2, 4, 8});
    json labels = {{"kubernetes.io/hostname", "n" + std::to_string(i)}, {"rack", std::to_string(pick(0, 5))}};
    if (pick(0, 1)) labels["zone"] = one_of(std::vector<std::string>{"a", "b"});
    if (!product.empty()) labels["nvidia.com/gpu.product"] = product;
    json allocatable = {{"cpu", one_of(std::vector<std::string>{"8", "15500m", "32", "96"})},
                        {"memory", one_of(std::vector<std::string>{"32Gi", "64Gi", "500Gi", "1000Gi"})},
                        {"pods", one_of(std::vector<std::string>{"3", "110"})}};
    if (gpus) allocatable["nvidia.com/gpu"] = std::to_string(gpus);
    if (pick(0, 6) == 0) allocatable["nvidia.com/mig-1g.10gb"] = "7";
    json taints = json::array();
    if (gpus && pick(0, 2)) taints.push_back({{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}});
    if (pick(0, 9) == 0) taints.push_back({{"key", "maint"}, {"effect", one_of(std::vector<std::string>{"NoExecute", "PreferNoSchedule"})}});
    json spec = {{"taints", taints}};
    if (pick(0, 9) == 0) spec["unschedulable"] = true;
    return {{"kind", "Node"}, {"metadata", {{"name", "n" + std::to_string(i)}, {"labels", labels}}}, {"spec", spec},
            {"status", {{"allocatable", allocatable}}}};
  }

  json requests(bool allow_gpu) {
    json r = json::object();
    if (pick(0, 3)) r["cpu"] = one_of(std::vector<std::string>{"100m", "1", "7900m", "12", "33", "64"});
    if (pick(0, 3)) r["memory"] = one_of(std::vector<std::string>{"512Mi", "8Gi", "40Gi", "300Gi"});
    if (allow_gpu && pick(0, 2)) r["nvidia.com/gpu"] = std::to_string(one_of(std::vector<int>{1, 2, 3, 4, 8, 9}));
    if (allow_gpu && pick(0, 9) == 0) r["nvidia.com/mig-1g.10gb"] = "1";
    return r;
  }

  json pod_spec() {
    json spec = {{"containers", {{{"name", "c"}, {"resources", {{"requests", requests(true)}}}}}}};
    if (pick(0, 3) == 0)
      spec["initContainers"] = {{{"name", "i"}, {"resources", {{"requests", requests(false)}}}}};
    if (pick(0, 1)) spec["tolerations"] = {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}}};
    if (pick(0, 4) == 0) spec["tolerations"].push_back({{"operator", "Exists"}});
    switch (pick(0, 5)) {
      case 0: spec["nodeSelector"] = {{"nvidia.com/gpu.product", one_of(std::vector<std::string>{"NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"})}}; break;
      case 1: spec["nodeSelector"] = {{"zone", "a"}}; break;
      case 2:
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = {
            {{"matchExpressions", {{{"key", "rack"}, {"operator", one_of(std::vector<std::string>{"Gt", "Lt"})}, {"values", {std::to_string(pick(0, 5))}}}}}},
            {{"matchExpressions", {{{"key", "zone"}, {"operator", "DoesNotExist"}}}}}};
        break;
      case 3: spec["nodeSelector"] = {{"kubernetes.io/hostname", "n" + std::to_string(pick(0, 30))}}; break;
      default: break;
    }
    return spec;
  }

 private:
  std::mt19937 rng_;
};

TEST(CapacityProperty, PoolsAgreeWithCheckingEveryNode) {
  int clusters = 0, decisions = 0, schedulable = 0, fit_now = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    Generator gen(seed);
    capacity::ClusterModel model;
    std::vector<json> nodes, pods;
    const int node_count = gen.pick(1, 30);
    for (int i = 0; i < node_count; ++i) nodes.push_back(gen.node(i));
    if (seed % 2) {
      for (const json& node : nodes) model.upsert_node(node);
    } else {
      // As the live watch applies a list: pages at once (upsert_nodes), then a page of the same
      // nodes changed (new shapes move them between pools) applied over them.
      auto apply_pages = [&](const std::vector<json>& batch) {
        for (std::size_t at = 0; at < batch.size();) {
          const std::size_t size = std::min<std::size_t>(batch.size() - at, static_cast<std::size_t>(gen.pick(1, 7)));
          model.upsert_nodes(std::vector<json>(batch.begin() + static_cast<std::ptrdiff_t>(at),
                                               batch.begin() + static_cast<std::ptrdiff_t>(at + size)),
                             [](const json&, const std::exception& error) { FAIL() << error.what(); });
          at += size;
        }
      };
      apply_pages(nodes);
      std::vector<json> changed;
      for (int i = 0; i < node_count; ++i)
        if (gen.pick(0, 2) == 0) changed.push_back(nodes[static_cast<std::size_t>(i)] = gen.node(i));
      apply_pages(changed);
    }
    for (int i = 0, n = gen.pick(0, 40); i < n; ++i) {
      json spec = gen.pod_spec();
      spec["nodeName"] = "n" + std::to_string(gen.pick(0, node_count - 1));
      pods.push_back({{"kind", "Pod"}, {"metadata", {{"name", "p" + std::to_string(i)}, {"namespace", "t"}}}, {"spec", spec}});
      model.upsert_pod(pods.back());
    }
    ++clusters;
    for (int k = 0; k < 12; ++k) {
      const json spec = gen.pod_spec();
      const Reference expected = brute_force(nodes, pods, spec);
      const auto view = model.read();
      const capacity::Placement actual = capacity::place(view, spec, capacity::PodShape::from_pod_spec(spec, view.gpu()), {});
      ASSERT_EQ(actual.eligible_nodes, expected.eligible) << "seed " << seed << " pod " << k << ": " << spec.dump();
      ASSERT_EQ(actual.capable_nodes, expected.capable) << "seed " << seed << " pod " << k << ": " << spec.dump();
      ASSERT_EQ(actual.fits_now(), expected.fits_now) << "seed " << seed << " pod " << k << ": " << spec.dump();
      ++decisions;
      schedulable += expected.capable > 0;
      fit_now += expected.fits_now;
    }
  }
  EXPECT_EQ(decisions, 3600);
  // The generator exercises both answers of each question.
  EXPECT_GT(schedulable, 500);
  EXPECT_LT(schedulable, 3300);
  EXPECT_GT(fit_now, 300);
  EXPECT_LT(fit_now, schedulable);
  EXPECT_EQ(clusters, 300);
}

// Few pool signatures (so pools hold many nodes) whose members differ in labels that selectors
// use: zone (a, b, c or absent), rack (an integer or absent, for Gt and Lt), tier (a word or
// absent), and now and then a member with less allocatable than the rest.
class LargePools {
 public:
  explicit LargePools(unsigned seed) : gen_(seed) {}

  json node(int i) {
    static const std::vector<std::string> products = {"NVIDIA-A100-SXM4-80GB", "NVIDIA-L4", ""};
    const std::string product = gen_.one_of(products);
    const int gpus = product.empty() ? 0 : product == "NVIDIA-L4" ? 1 : 8;
    const std::string name = "n" + std::to_string(i);
    json labels = {{"kubernetes.io/hostname", name}};
    if (gen_.pick(0, 5)) labels["zone"] = gen_.one_of(std::vector<std::string>{"a", "b", "c"});
    if (gen_.pick(0, 4)) labels["rack"] = std::to_string(gen_.pick(0, 9));
    if (gen_.pick(0, 2)) labels["tier"] = gen_.one_of(std::vector<std::string>{"gold", "silver", "07"});
    if (!product.empty()) labels["nvidia.com/gpu.product"] = product;
    const bool small = gen_.pick(0, 9) == 0;  // same pool, less room
    json allocatable = {{"cpu", small ? "8" : gpus == 1 ? "16" : "96"},
                        {"memory", small ? "32Gi" : gpus == 1 ? "64Gi" : "1000Gi"},
                        {"pods", small ? "4" : "110"}};
    if (gpus) allocatable["nvidia.com/gpu"] = std::to_string(gpus);
    json taints = json::array();
    if (gpus) taints.push_back({{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}});
    return {{"kind", "Node"}, {"metadata", {{"name", name}, {"labels", labels}}}, {"spec", {{"taints", taints}}},
            {"status", {{"allocatable", allocatable}}}};
  }

  json expression() {
    const std::string key = gen_.one_of(std::vector<std::string>{"zone", "zone", "rack", "tier", "nvidia.com/gpu.product"});
    const std::string op = gen_.one_of(std::vector<std::string>{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"});
    json e = {{"key", key}, {"operator", op}};
    if (op == "Gt" || op == "Lt") {
      e["values"] = {std::to_string(gen_.pick(-1, 10))};  // zone and tier values are no integers ("07" is 7)
    } else if (op == "In" || op == "NotIn") {
      static const std::vector<std::string> values = {"a", "b", "c", "3", "7", "gold", "07", "NVIDIA-L4"};
      json list = json::array();
      for (int n = gen_.pick(1, 3); n > 0; --n) list.push_back(gen_.one_of(values));
      e["values"] = list;
    }
    return e;
  }

  json pod_spec() {
    json requests = {{"cpu", gen_.one_of(std::vector<std::string>{"1", "4", "12", "64"})},
                     {"memory", gen_.one_of(std::vector<std::string>{"1Gi", "16Gi", "200Gi"})}};
    if (gen_.pick(0, 2)) requests["nvidia.com/gpu"] = std::to_string(gen_.one_of(std::vector<int>{1, 2, 4, 8}));
    json spec = {{"containers", {{{"name", "c"}, {"resources", {{"requests", requests}}}}}}};
    if (gen_.pick(0, 3)) spec["tolerations"] = {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}}};
    if (gen_.pick(0, 2) == 0)
      spec["nodeSelector"] = {{gen_.one_of(std::vector<std::string>{"zone", "tier", "rack"}),
                               gen_.one_of(std::vector<std::string>{"a", "b", "gold", "3"})}};
    if (gen_.pick(0, 3)) {
      json terms = json::array();
      for (int t = gen_.pick(1, 3); t > 0; --t) {
        json expressions = json::array();
        for (int e = gen_.pick(1, 3); e > 0; --e) expressions.push_back(expression());
        terms.push_back({{"matchExpressions", expressions}});
      }
      spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = terms;
    }
    return spec;
  }

  Generator& gen() { return gen_; }

 private:
  Generator gen_;
};

TEST(CapacityProperty, LabelPartitionsAgreeWithCheckingEveryNode) {
  int decisions = 0, selective = 0, schedulable = 0, fit_now = 0, partitioned = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    LargePools gen(seed);
    capacity::ClusterModel model;
    std::vector<json> nodes, pods;
    const int node_count = gen.gen().pick(40, 160);
    for (int i = 0; i < node_count; ++i) {
      nodes.push_back(gen.node(i));
      model.upsert_node(nodes.back());
    }
    for (int i = 0, n = gen.gen().pick(0, 3 * node_count); i < n; ++i) {
      json spec = gen.pod_spec();
      spec.erase("affinity");
      spec.erase("nodeSelector");
      spec["nodeName"] = "n" + std::to_string(gen.gen().pick(0, node_count - 1));
      pods.push_back({{"kind", "Pod"}, {"metadata", {{"name", "p" + std::to_string(i)}, {"namespace", "t"}}}, {"spec", spec}});
      model.upsert_pod(pods.back());
    }
    for (int round = 0; round < 4; ++round) {
      for (int k = 0; k < 25; ++k) {
        const json spec = gen.pod_spec();
        const Reference expected = brute_force(nodes, pods, spec);
        const auto view = model.read();
        const capacity::Placement actual = capacity::place(view, spec, capacity::PodShape::from_pod_spec(spec, view.gpu()), {});
        const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round) + " pod " +
                                  std::to_string(k) + ": " + spec.dump();
        ASSERT_EQ(actual.eligible_nodes, expected.eligible) << where;
        ASSERT_EQ(actual.capable_nodes, expected.capable) << where;
        ASSERT_EQ(actual.fits_now(), expected.fits_now) << where;
        if (!actual.fits_now() && expected.largest_free) {
          ASSERT_NE(actual.largest_free_node, nullptr) << where;
          ASSERT_EQ(actual.largest_free_gpus, *expected.largest_free) << where;
        }
        for (const capacity::PoolVerdict& v : actual.pools) partitioned += !v.capable_groups.empty();
        ++decisions;
        selective += expected.eligible > 0 && expected.eligible < nodes.size();
        schedulable += expected.capable > 0;
        fit_now += expected.fits_now;
      }
      // Between rounds the membership changes, so cached partitions must be rebuilt: a node
      // moves to another zone (same pool, new group), one leaves, one joins.
      json& moved = nodes[gen.gen().pick(0, static_cast<int>(nodes.size()) - 1)];
      moved["metadata"]["labels"]["zone"] = gen.gen().one_of(std::vector<std::string>{"a", "b", "c", "d"});
      model.upsert_node(moved);
      const std::size_t gone = gen.gen().pick(0, static_cast<int>(nodes.size()) - 1);
      ASSERT_TRUE(model.delete_node(nodes[gone]["metadata"]["name"].get<std::string>()));
      // Its pods stay (the watch deletes them later) but count on no node of the reference.
      nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(gone));
      nodes.push_back(gen.node(node_count + round));
      model.upsert_node(nodes.back());
    }
  }
  EXPECT_EQ(decisions, 6000);
  // Selectors pick some members of a pool, not all or none, and the partitions answer for them.
  EXPECT_GT(selective, 1500);
  EXPECT_GT(partitioned, 300);
  EXPECT_GT(schedulable, 2000);
  EXPECT_GT(fit_now, 1000);
  EXPECT_LT(fit_now, schedulable);
}

}  // namespace
}  // namespace gpuadmit
