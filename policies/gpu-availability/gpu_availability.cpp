// gpu-availability: a long-running GPU workload (Deployment, StatefulSet, LeaderWorkerSet) with
// one replica, no PodDisruptionBudget or all its replicas on one node goes down at the next node
// drain, GPU fault or driver upgrade; a budget that allows no eviction, or two budgets on one
// pod, stops every drain of its nodes instead. None of this shows until a node goes.
#include <algorithm>
#include <charconv>

#include "engine/capacity/cluster_model.h"
#include "engine/capacity/placement.h"
#include "engine/k8s/int_or_string.h"
#include "engine/k8s/scheduling_objects.h"
#include "engine/text.h"
#include "policies/availability.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct AvailabilityConfig {
  std::int64_t min_replicas = 2;
  bool disruption_budget = true;
  bool node_spread = true;
};

// The pods a budget's IntOrString asks for out of `pods`, as the disruption controller scales it
// (GetScaledValueFromIntOrPercent, rounding up); nullopt when it does not parse. The catalog
// keeps an integer as its decimal text.
std::optional<std::int64_t> scaled(const std::string& value, std::int64_t pods) {
  if (value.ends_with('%')) return k8s::scaled_percent(value, pods, true);
  std::int64_t number = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (error != std::errc() || end != value.data() + value.size() || number < 0) return std::nullopt;
  return number;
}

// "maxUnavailable 0" or "minAvailable 2 of 2 pods" when the budget lets none of `pods` be
// evicted; empty otherwise, and when it cannot tell.
std::string blocks_every_eviction(const k8s::DisruptionBudget& budget, std::int64_t pods) {
  if (!budget.max_unavailable.empty()) {
    std::optional<std::int64_t> allowed = scaled(budget.max_unavailable, pods);
    return allowed && *allowed == 0 ? "maxUnavailable " + shorten(budget.max_unavailable, 12) : "";
  }
  if (!budget.min_available.empty()) {
    std::optional<std::int64_t> kept = scaled(budget.min_available, pods);
    if (kept && *kept >= pods)
      return "minAvailable " + shorten(budget.min_available, 12) + " of " + std::to_string(pods) +
             (pods == 1 ? " pod" : " pods");
  }
  return "";
}

class GpuAvailability final : public Policy {
 public:
  explicit GpuAvailability(AvailabilityConfig config) : config_(config) {}

  void run(PolicyContext& context) const override {
    const std::optional<std::int64_t> replicas = long_running_gpu_replicas(context);
    if (!replicas || *replicas == 0) return;  // scaled to zero: nothing runs to keep up
    const Workload& workload = context.workload;
    const bool groups = workload.kind == "LeaderWorkerSet";
    if (*replicas < config_.min_replicas)
      context.violation("spec.replicas", "only " + std::to_string(*replicas) + (groups ? " group" : " replica") +
                                             (*replicas == 1 ? "" : "s") + ": run at least " +
                                             std::to_string(config_.min_replicas) + " (with an autoscaler, its "
                                             "minReplicas); one node drain, GPU fault or rollout stops this " +
                                             workload.kind);
    // Each rule reports once per workload, at the first GPU template it finds wanting (an LWS's
    // leader and worker templates are one service).
    bool budget_reported = !config_.disruption_budget, spread_reported = !config_.node_spread || *replicas < 2;
    for (const PodTarget& pod : workload.pods) {
      if (!context.pod_uses_gpu(pod) || !context.pod_spec(pod).is_object()) continue;
      const std::optional<k8s::Labels> labels = pod_labels(context, pod);
      if (!labels) continue;  // not a map of strings: the API server refuses the object
      if (!budget_reported) budget_reported = check_budgets(context, pod, *labels);
      if (!spread_reported && !too_large_to_share_a_node(context, pod) &&
          !spreads_across_nodes(context, context.pod_spec(pod), *labels)) {
        spread_reported = true;
        context.violation(field_path(pod.field, "affinity"),
                          "the " + std::to_string(*replicas) + (groups ? " groups" : " replicas") +
                              " may all land on one node: add a preferred podAntiAffinity (or a "
                              "topologySpreadConstraint) on kubernetes.io/hostname whose labelSelector matches " +
                              pod.metadata_field + ".labels; one node failure or drain would take them all");
      }
    }
  }

 private:
  // The budgets of the namespace that select the pods: `check`'s manifests first (what is about
  // to be applied), then the cluster's, a budget of the same name counted once.
  static std::optional<std::vector<k8s::DisruptionBudget>> budgets_selecting(const PolicyContext& context,
                                                                           const k8s::Labels& labels) {
    if (!context.manifests && !context.cluster) return std::nullopt;  // no view of the budgets at all
    const std::string& ns = context.workload.namespace_;
    std::vector<k8s::DisruptionBudget> found;
    if (context.manifests)
      for (const k8s::DisruptionBudget* budget : context.manifests->disruption_budgets.selecting(ns, labels))
        found.push_back(*budget);
    const std::size_t from_manifests = found.size();
    if (context.cluster) {
      const capacity::ClusterModel::View view = context.cluster->read();
      for (const k8s::DisruptionBudget* budget : view.disruption_budgets().selecting(ns, labels))
        if (std::none_of(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(from_manifests),
                         [&](const k8s::DisruptionBudget& seen) { return seen.name == budget->name; }))
          found.push_back(*budget);
    }
    return found;
  }

  // Two pods that each take more than half of the largest GPU node's GPUs never share a node: the
  // scheduler spreads them already (an LWS group of 8-GPU pods). The largest node is the cluster
  // model's; without one, 8 GPUs, the size of the usual GPU servers.
  static bool too_large_to_share_a_node(const PolicyContext& context, const PodTarget& pod) {
    std::int64_t gpus = 0;
    try {
      gpus = capacity::PodShape::from_pod_spec(context.pod_spec(pod), context.gpu).gpu_devices;
    } catch (const std::exception&) {
      return false;  // quantities the API server refuses: judged as written
    }
    std::int64_t largest = 0;
    if (context.cluster) {
      const capacity::ClusterModel::View view = context.cluster->read();
      for (const capacity::Pool* pool : view.pools()) largest = std::max(largest, pool->gpu_devices_per_node());
    }
    if (largest == 0) largest = 8;
    return gpus > 0 && gpus > largest / 2;  // gpus * 2 > largest, without overflowing for a huge count
  }

  // Whether it reported something.
  bool check_budgets(PolicyContext& context, const PodTarget& pod, const k8s::Labels& labels) const {
    const std::optional<std::vector<k8s::DisruptionBudget>> budgets = budgets_selecting(context, labels);
    if (!budgets) return false;
    const std::string field = pod.metadata_field + ".labels";
    const std::string& ns = context.workload.namespace_;
    if (budgets->empty()) {
      context.violation(field, "no PodDisruptionBudget selects these pods: add one with maxUnavailable: 1 whose "
                               "selector matches these labels in namespace " + ns + "; without one, a node drain "
                               "may evict every replica at once");
      return true;
    }
    if (budgets->size() > 1) {
      std::vector<std::string> names;
      for (const k8s::DisruptionBudget& budget : *budgets) names.push_back(shorten(budget.name, 63));
      if (names.size() > 3) {
        names.resize(3);
        names.push_back("...");
      }
      context.violation(field, std::to_string(budgets->size()) + " PodDisruptionBudgets select these pods (" +
                                   join(names) + "): the eviction API refuses to evict a pod that several budgets "
                                   "select, so every node drain stalls on them; keep one");
      return true;
    }
    // The pods the budget counts: those of every template of the workload it selects.
    const k8s::DisruptionBudget& budget = budgets->front();
    std::int64_t pods = 0;
    for (const PodTarget& other : context.workload.pods)
      if (std::optional<k8s::Labels> its = pod_labels(context, other); its && budget.selector.matches(*its))
        pods = capacity::saturating_add(pods, std::max<std::int64_t>(other.replicas, 0));
    const std::string why = pods < 1 ? "" : blocks_every_eviction(budget, pods);
    if (why.empty()) return false;
    context.violation(field, "PodDisruptionBudget " + shorten(budget.name, 63) + " allows no eviction (" + why +
                                 "): every drain of these pods' nodes (upgrades, repairs, autoscaler scale-down) "
                                 "stalls until someone deletes a pod by hand; allow one, e.g. maxUnavailable: 1");
    return true;
  }

  AvailabilityConfig config_;
};

}  // namespace

PolicyInfo gpu_availability_info() {
  return {"gpu-availability", PolicyKind::Validating,
          "keeps long-running GPU workloads up through node drains: replicas, a PodDisruptionBudget that allows "
          "evictions, replicas spread across nodes",
          {
           {"minReplicas", "integer", "2",
            "a Deployment, StatefulSet or LeaderWorkerSet (its groups) with GPUs and fewer `spec.replicas` is reported; "
            "0 turns the check off. Scaled to 0 is never reported"},
           {"requireDisruptionBudget", "bool", "true",
            "exactly one PodDisruptionBudget of the namespace selects the GPU pods, and it allows at least one "
            "eviction. Read from `check`'s manifests and the cluster (`--cluster`, the live watch); with neither, not "
            "checked"},
           {"requireNodeSpread", "bool", "true",
            "with more than one replica, a topologySpreadConstraint or a podAntiAffinity term (required or preferred) "
            "on `kubernetes.io/hostname` selects the pods' own labels"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            AvailabilityConfig config;
            config.min_replicas = node.integer("minReplicas", 2);
            if (config.min_replicas < 0) node.child("minReplicas").fail("minReplicas must be 0 (off) or more");
            config.disruption_budget = node.boolean("requireDisruptionBudget", true);
            config.node_spread = node.boolean("requireNodeSpread", true);
            return std::make_unique<GpuAvailability>(config);
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
