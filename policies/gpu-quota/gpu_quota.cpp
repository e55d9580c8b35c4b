// gpu-quota: a per-namespace GPU budget (all GPUs, per GPU product, per MIG profile) checked at
// apply time against what the namespace already uses in the capacity model. Kubernetes
// ResourceQuota stays the hard authority; this answers earlier, for whole controllers
// (replicas × GPUs per pod), and knows GPU products and MIG profiles.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "engine/capacity/placement.h"
#include "policies/policies.h"
#include "policies/rollout.h"
#include "policies/scale_targets.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct Budget {
  std::string namespace_glob;
  std::optional<std::int64_t> gpus;                // GPU devices of every kind
  std::map<std::string, std::int64_t> products;    // nvidia.com/gpu.product -> GPUs
  std::map<std::string, std::int64_t> mig_profiles;  // "1g.10gb" -> devices of nvidia.com/mig-1g.10gb
  std::optional<std::int64_t> gpu_fractions_milli;   // KAI gpu-fraction × devices, in thousandths of a GPU
  std::optional<std::int64_t> gpu_memory_mib;        // KAI gpu-memory, HAMi nvidia.com/gpumem
  std::optional<std::int64_t> gpu_cores;             // HAMi nvidia.com/gpucores, percent of a GPU
};

std::string gpus_text(std::int64_t n) { return std::to_string(n) + (n == 1 ? " GPU" : " GPUs"); }

// What `object` asks for at once: GPU devices per resource (DRA claims made from templates under
// kDraDemand), the sum over its pod templates of replicas × per-pod amounts, and its GPU shares.
// With one pod template, its GPUs per pod and replicas too. `current`: the object under review,
// whose GPU use the engine worked out; else another (an UPDATE's old object).
constexpr const char* kDraDemand = "devices of DRA claims";

struct Demand {
  std::map<std::string, std::int64_t> devices;
  GpuShares shares;
  std::int64_t per_pod = 0, replicas = 1;
  std::vector<PodGpuUse::Problem> unresolved_claims;
};

Demand demand(const PolicyContext& context, const nlohmann::json& object, const Workload& workload, bool current) {
  Demand out;
  if (!object.is_object()) return out;
  for (const PodTarget& pod : workload.pods) {
    const json* spec = &object;
    try {
      spec = &object.at(pod.spec);
    } catch (const json::exception&) {
      continue;
    }
    capacity::PodShape shape = capacity::PodShape::from_pod_spec(*spec, context.gpu);
    for (const auto& [resource, amount] : shape.requests.extended)
      if (context.gpu.is_gpu(resource))
        out.devices[resource] = capacity::saturating_add(out.devices[resource], capacity::saturating_mul(amount, pod.replicas));
    const PodGpuUse use = current ? context.gpu_use(pod) : context.gpu_use_of(object, pod);
    // A claim made from a template is one per pod; a named ResourceClaim exists already and
    // counts in the namespace's usage.
    if (use.template_claim_devices)
      out.devices[kDraDemand] = capacity::saturating_add(out.devices[kDraDemand],
                                                         capacity::saturating_mul(use.template_claim_devices, pod.replicas));
    out.shares.add(use.shares, pod.replicas);
    out.unresolved_claims.insert(out.unresolved_claims.end(), use.unresolved_claims.begin(), use.unresolved_claims.end());
    out.per_pod = capacity::saturating_add(out.per_pod, capacity::saturating_add(shape.gpu_devices, use.template_claim_devices));
  }
  if (workload.pods.size() == 1) out.replicas = workload.pods.front().replicas;
  return out;
}

std::string milli_text(std::int64_t milli) {
  std::string text = std::to_string(milli / 1000);
  if (std::int64_t rest = milli % 1000) {
    std::string digits = std::to_string(1000 + rest).substr(1);
    while (digits.back() == '0') digits.pop_back();
    text += "." + digits;
  }
  return text;
}

enum class SurgeCheck { Off, Warn, Deny };

class GpuQuota final : public Policy {
 public:
  GpuQuota(std::vector<Budget> budgets, SurgeCheck surge, const WorkloadKinds& kinds)
      : budgets_(std::move(budgets)), surge_(surge), kinds_(kinds) {}

  std::optional<std::int64_t> namespace_gpu_budget(std::string_view ns) const override {
    const Budget* budget = budget_for(ns);
    return budget ? budget->gpus : std::nullopt;
  }

  void run(PolicyContext& context) const override {
    if (!context.cluster) return;
    const std::string& ns = context.workload.namespace_;
    const Budget* budget = budget_for(ns);
    if (!budget) return;
    if (context.workload.scale_target) return check_autoscaler(context, *budget, *context.workload.scale_target);
    // A stored object (an audit) already counts in the namespace's use: it asks for nothing more.
    if (context.request.stored) return;
    Demand wanted = demand(context, context.object, context.workload, true);
    // An update only adds what it asks beyond the object it replaces (whose pods already count),
    // and a rollout's surge pods that must start before old ones stop (policies/rollout.h).
    std::int64_t surge_devices = 0;
    std::string surge_text;
    if (context.request.operation == "UPDATE") {
      const Workload old_workload = locate_workload(context.request.old_object, kinds_);
      const Demand old = demand(context, context.request.old_object, old_workload, false);
      for (const PodTarget& pod : context.workload.pods) {
        auto same = std::find_if(old_workload.pods.begin(), old_workload.pods.end(),
                                 [&](const PodTarget& p) { return p.field == pod.field; });
        const RolloutDemand rollout = rollout_demand(context, pod, same == old_workload.pods.end() ? nullptr : &*same);
        if (!rollout.surge_must_fit) continue;
        const PodGpuUse& use = context.gpu_use(pod);
        const std::int64_t per_pod = capacity::saturating_add(
            capacity::PodShape::from_pod_spec(context.pod_spec(pod), context.gpu).gpu_devices, use.template_claim_devices);
        surge_devices = capacity::saturating_add(surge_devices, capacity::saturating_mul(per_pod, rollout.surge_pods));
        surge_text = rollout.surge_text;
      }
      for (const auto& [resource, amount] : old.devices)
        wanted.devices[resource] = capacity::saturating_add(wanted.devices[resource], -std::max<std::int64_t>(amount, -INT64_MAX));
      wanted.shares.add(old.shares, -1);
    }
    const std::string field = context.workload.pods.empty() ? "" : context.workload.pods.front().field;
    if (budget->gpus || budget->gpu_fractions_milli || budget->gpu_memory_mib || budget->gpu_cores)
      for (const PodGpuUse::Problem& unresolved : wanted.unresolved_claims)
        context.advise(unresolved.field, unresolved.message + "; its devices are not counted against the namespace's GPU budget");
    std::int64_t total = 0;
    for (const auto& [resource, amount] : wanted.devices) total = capacity::saturating_add(total, std::max<std::int64_t>(0, amount));
    if (total <= 0 && !wanted.shares.any() && surge_devices == 0) return;

    const capacity::ClusterModel::View view = context.cluster->read();
    const capacity::NamespaceUsage usage = view.namespace_usage(ns);
    check_shares(context, *budget, usage.shares, wanted.shares, field);
    if (surge_devices > 0 && surge_ != SurgeCheck::Off && budget->gpus &&
        capacity::saturating_add(usage.devices(), capacity::saturating_add(std::max<std::int64_t>(total, 0), surge_devices)) > *budget->gpus) {
      const std::string message = "namespace " + ns + " uses " + std::to_string(usage.devices()) + " of its " +
                                  gpus_text(*budget->gpus) + ", and this rollout (" + surge_text +
                                  ", maxUnavailable 0) needs " + gpus_text(surge_devices) +
                                  " more for its new pods before any old pod stops; the rollout stalls. "
                                  "Allow maxUnavailable 1, or free GPUs in " + ns + " first";
      if (surge_ == SurgeCheck::Deny)
        context.violation("spec.strategy", message);
      else
        context.advise("spec.strategy", message);
    }
    if (total <= 0) return;
    const std::string adds = "this " + context.workload.kind + " adds " + gpus_text(total) +
                             (wanted.replicas > 1 ? " (" + std::to_string(wanted.replicas) + " replicas × " + std::to_string(wanted.per_pod) + ")" : "");

    if (budget->gpus && capacity::saturating_add(usage.devices(), total) > *budget->gpus)
      context.violation(field, "namespace " + ns + " uses " + std::to_string(usage.devices()) + " of its " +
                                   gpus_text(*budget->gpus) + " and " + adds + "; free GPUs in " + ns +
                                   " or ask the platform team for a larger budget");

    for (const auto& [profile, limit] : budget->mig_profiles) {
      const std::string resource = "nvidia.com/mig-" + profile;
      auto it = wanted.devices.find(resource);
      if (it == wanted.devices.end() || it->second <= 0) continue;
      auto used = usage.by_resource.find(resource);
      std::int64_t in_use = used == usage.by_resource.end() ? 0 : used->second;
      if (capacity::saturating_add(in_use, it->second) > limit)
        context.violation(field, "namespace " + ns + " uses " + std::to_string(in_use) + " of its " +
                                     std::to_string(limit) + " " + resource + " and this " + context.workload.kind +
                                     " adds " + std::to_string(it->second));
    }
    if (!budget->products.empty()) check_products(context, view, usage, *budget, total, field);
  }

 private:
  // An autoscaler may grow its target to maxReplicas: the namespace's GPU budget must hold that,
  // beside everything else the namespace uses now (the target's own pods are counted once).
  // Products, MIG profiles and shares are not checked here: the GPUs of every kind are.
  void check_autoscaler(PolicyContext& context, const Budget& budget, const ScaleTarget& target) const {
    if (!budget.gpus || target.managed_by_keda) return;
    const ResolvedScaleTarget resolved = resolve_scale_target(context, target);
    if (!resolved.found) {
      context.advise("spec.scaleTargetRef", unresolved_text(context, target) + "; its maxReplicas is not checked against the namespace's GPU budget");
      return;
    }
    if (resolved.gpus_unresolved)
      context.advise("spec.scaleTargetRef", target_text(target) + "'s pods take devices through DRA claims gpu-admit could not count; "
                                            "they are not in its GPUs per pod against the namespace's GPU budget");
    if (resolved.gpus_per_pod <= 0) return;
    const std::string& ns = context.workload.namespace_;
    const capacity::NamespaceUsage usage = context.cluster->read().namespace_usage(ns);
    const std::int64_t in_use = usage.devices();
    const std::int64_t others = std::max<std::int64_t>(0, capacity::saturating_add(in_use, -resolved.gpus_now));
    const std::int64_t at_max = capacity::saturating_mul(target.max_replicas, resolved.gpus_per_pod);
    const std::int64_t would_use = capacity::saturating_add(others, at_max);
    if (would_use <= *budget.gpus) return;
    const std::int64_t room = std::max<std::int64_t>(0, *budget.gpus - others) / resolved.gpus_per_pod;
    context.violation(target.max_field,
                      "namespace " + ns + " uses " + std::to_string(in_use) + " of its " + gpus_text(*budget.gpus) +
                          (resolved.gpus_now > 0 ? " (" + std::to_string(resolved.gpus_now) + " of them " + target_text(target) + "'s)" : "") +
                          "; at " + std::to_string(target.max_replicas) + " replicas × " + gpus_text(resolved.gpus_per_pod) +
                          " per pod " + target_text(target) + " would take it to " + std::to_string(would_use) +
                          "; lower " + target.max_field.substr(target.max_field.rfind('.') + 1) + " to " +
                          std::to_string(room) + " or ask the platform team for a larger budget");
  }

  // The share dimensions: KAI fractions and memory, HAMi memory and cores, each its own budget.
  void check_shares(PolicyContext& context, const Budget& budget, const GpuShares& used, const GpuShares& adds,
                    const std::string& field) const {
    const std::string& ns = context.workload.namespace_;
    // "uses 0.5 of its 1 GPU in KAI fractions (gpuFractions) and this Deployment adds 0.75"
    auto check = [&](const std::optional<std::int64_t>& limit, std::int64_t in_use, std::int64_t more, const char* key,
                     const char* unit, const std::function<std::string(std::int64_t)>& number) {
      if (!limit || more <= 0 || capacity::saturating_add(in_use, more) <= *limit) return;
      context.violation(field, "namespace " + ns + " uses " + number(in_use) + " of its " + number(*limit) + " " + unit +
                                   " (" + key + ") and this " + context.workload.kind + " adds " + number(more) +
                                   "; free shared GPUs in " + ns + " or ask the platform team for a larger budget");
    };
    const auto whole = [](std::int64_t n) { return std::to_string(n); };
    check(budget.gpu_fractions_milli, used.fraction_milli, adds.fraction_milli, "gpuFractions", "GPUs in KAI fractions",
          milli_text);
    check(budget.gpu_memory_mib, used.memory_mib, adds.memory_mib, "gpuMemoryMiB", "MiB of shared GPU memory", whole);
    check(budget.gpu_cores, used.cores, adds.cores, "gpuCores", "% of GPU cores (100 a GPU)", whole);
  }

  // The products the pod could land on come from the capacity model; the budget is exceeded
  // for certain only when every one of them is over its budget.
  void check_products(PolicyContext& context, const capacity::ClusterModel::View& view,
                      const capacity::NamespaceUsage& usage, const Budget& budget, std::int64_t total,
                      const std::string& field) const {
    std::map<std::string, std::int64_t> used_by_product;
    for (const auto& [node_name, devices] : usage.devices_by_node)
      if (const capacity::NodeState* node = view.node(node_name))
        used_by_product[node->gpu.product] = capacity::saturating_add(used_by_product[node->gpu.product], devices);
    std::set<std::string> products;
    for (const PodTarget& pod : context.workload.pods) {
      const json& spec = context.pod_spec(pod);
      capacity::PodShape shape = capacity::PodShape::from_pod_spec(spec, context.gpu);
      capacity::Placement placement = capacity::place(view, spec, shape, {});
      for (const capacity::PoolVerdict& v : placement.pools)
        if (v.outcome == capacity::PoolVerdict::Outcome::Capable && v.pool->representative().gpu_devices > 0)
          products.insert(v.pool->representative().gpu.product);
    }
    std::vector<std::string> over, within;
    for (const std::string& product : products) {
      auto limit = budget.products.find(product);
      if (limit != budget.products.end() && capacity::saturating_add(used_by_product[product], total) > limit->second)
        over.push_back(product + " (" + std::to_string(used_by_product[product]) + " of " +
                       std::to_string(limit->second) + " in use)");
      else
        within.push_back(product);
    }
    if (over.empty()) return;
    std::string list;
    for (const std::string& o : over) list += (list.empty() ? "" : ", ") + o;
    const std::string ns = context.workload.namespace_;
    if (within.empty()) {
      context.violation(field, "namespace " + ns + " would exceed its GPU budget for " + list + " with " +
                                   gpus_text(total) + " more");
    } else {
      context.advise(field, "if scheduled on " + list + ", namespace " + ns + " would exceed its budget there; pin "
                            "nvidia.com/gpu.product with a nodeSelector");
    }
  }

  // The first budget whose glob matches: the one run() and the metrics both use.
  const Budget* budget_for(std::string_view ns) const {
    for (const Budget& b : budgets_)
      if (namespace_matches(b.namespace_glob, ns)) return &b;
    return nullptr;
  }

  std::vector<Budget> budgets_;
  SurgeCheck surge_;
  WorkloadKinds kinds_;  // a copy (shared declarations): the config it came from is moved
};

std::vector<Budget> parse_budgets(const ConfigNode& node) {
  std::vector<Budget> budgets;
  for (const ConfigNode& item : node.child("budgets").items()) {
    item.allow_only({"namespace", "gpus", "products", "migProfiles", "gpuFractions", "gpuMemoryMiB", "gpuCores"});
    Budget budget;
    budget.namespace_glob = item.string("namespace", "");
    if (budget.namespace_glob.empty()) item.fail("namespace (a name or glob) is required");
    if (item.has("gpus")) {
      budget.gpus = item.child("gpus").as_integer();
      if (*budget.gpus < 0) item.child("gpus").fail("must be 0 or more");
    }
    if (item.has("gpuFractions")) {
      const double fractions = item.child("gpuFractions").as_number();
      if (!(fractions >= 0) || fractions > 1e12) item.child("gpuFractions").fail("must be a number of GPUs, 0 or more");
      budget.gpu_fractions_milli = static_cast<std::int64_t>(std::llround(fractions * 1000));
    }
    for (const char* key : {"gpuMemoryMiB", "gpuCores"})
      if (item.has(key)) {
        std::int64_t value = item.child(key).as_integer();
        if (value < 0) item.child(key).fail("must be 0 or more");
        (std::string_view(key) == "gpuMemoryMiB" ? budget.gpu_memory_mib : budget.gpu_cores) = value;
      }
    for (auto& [product, value] : item.child("products").entries()) {
      budget.products[product] = value.as_integer();
      if (budget.products[product] < 0) value.fail("must be 0 or more");
    }
    for (auto& [profile, value] : item.child("migProfiles").entries()) {
      std::string name = profile.starts_with("nvidia.com/mig-") ? profile.substr(15) : profile;
      budget.mig_profiles[name] = value.as_integer();
      if (budget.mig_profiles[name] < 0) value.fail("must be 0 or more");
    }
    budgets.push_back(std::move(budget));
  }
  return budgets;
}

}  // namespace

PolicyInfo gpu_quota_info() {
  return {"gpu-quota", PolicyKind::Validating,
          "checks a namespace's GPU budget (total, per product, per MIG profile, and the shares of KAI and HAMi) against its current usage",
          {
           {"budgets", "list of budgets", "",
            "list, first matching entry wins: `namespace` (name or glob), `gpus` (GPU devices of every kind, DRA claims' included), `products` (map `nvidia.com/gpu.product` → GPUs), `migProfiles` (map profile such as `1g.10gb` → devices of `nvidia.com/mig-<profile>`), `gpuFractions` (GPUs in KAI `gpu-fraction` shares, e.g. 2.5), `gpuMemoryMiB` (KAI `gpu-memory` and HAMi `nvidia.com/gpumem`), `gpuCores` (HAMi `nvidia.com/gpucores`, percent of a GPU)"},
           {"rolloutSurge", "off, warn or deny", "`warn`",
            "on UPDATE of a Deployment's pod template with maxUnavailable 0: what to do when its maxSurge pods' GPUs would exceed the namespace's `gpus` budget (the rollout would stall)"}},
          [](const ConfigNode& node, const PolicyBuildContext& build) -> std::unique_ptr<Policy> {
            const std::string surge = node.string("rolloutSurge", "warn");
            if (surge != "off" && surge != "warn" && surge != "deny") node.child("rolloutSurge").fail("must be off, warn or deny");
            return std::make_unique<GpuQuota>(parse_budgets(node),
                                              surge == "off" ? SurgeCheck::Off : surge == "deny" ? SurgeCheck::Deny : SurgeCheck::Warn,
                                              build.kinds);
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
