// gpu-quota: a per-namespace GPU budget (all GPUs, per GPU product, per MIG profile) checked at
// apply time against what the namespace already uses in the capacity model. Kubernetes
// ResourceQuota stays the hard authority; this answers earlier, for whole controllers
// (replicas × GPUs per pod), and knows GPU products and MIG profiles.
#include <algorithm>
#include <set>

#include "engine/capacity/placement.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct Budget {
  std::string namespace_glob;
  std::optional<std::int64_t> gpus;                // GPU devices of every kind
  std::map<std::string, std::int64_t> products;    // nvidia.com/gpu.product -> GPUs
  std::map<std::string, std::int64_t> mig_profiles;  // "1g.10gb" -> devices of nvidia.com/mig-1g.10gb
};

std::string gpus_text(std::int64_t n) { return std::to_string(n) + (n == 1 ? " GPU" : " GPUs"); }

// GPU devices per resource that `object` asks for at once: the sum over its pod templates of
// replicas × per-pod requests. With one pod template, its GPUs per pod and replicas too.
std::map<std::string, std::int64_t> demand(const nlohmann::json& object, const Workload& workload,
                                           const GpuResources& gpu, std::int64_t* per_pod_out = nullptr,
                                           std::int64_t* replicas_out = nullptr) {
  std::map<std::string, std::int64_t> out;
  if (!object.is_object()) return out;
  std::int64_t per_pod = 0;
  for (const PodTarget& pod : workload.pods) {
    const json* spec = &object;
    try {
      spec = &object.at(pod.spec);
    } catch (const json::exception&) {
      continue;
    }
    capacity::PodShape shape = capacity::PodShape::from_pod_spec(*spec, gpu);
    for (const auto& [resource, amount] : shape.requests.extended)
      if (gpu.is_gpu(resource))
        out[resource] = capacity::saturating_add(out[resource], capacity::saturating_mul(amount, pod.replicas));
    per_pod = capacity::saturating_add(per_pod, shape.gpu_devices);
  }
  if (per_pod_out) *per_pod_out = per_pod;
  if (replicas_out) *replicas_out = workload.pods.size() == 1 ? workload.pods.front().replicas : 1;
  return out;
}

class GpuQuota final : public Policy {
 public:
  GpuQuota(std::vector<Budget> budgets, const WorkloadKinds& kinds) : budgets_(std::move(budgets)), kinds_(kinds) {}

  void run(PolicyContext& context) const override {
    if (!context.cluster) return;
    const std::string& ns = context.workload.namespace_;
    const Budget* budget = nullptr;
    for (const Budget& b : budgets_)
      if (namespace_matches(b.namespace_glob, ns)) {
        budget = &b;
        break;
      }
    if (!budget) return;
    std::int64_t per_pod = 0, replicas = 1;
    std::map<std::string, std::int64_t> wanted = demand(context.object, context.workload, context.gpu, &per_pod, &replicas);
    // An update only adds what it asks beyond the object it replaces (whose pods already count).
    if (context.request.operation == "UPDATE")
      for (const auto& [resource, amount] :
           demand(context.request.old_object, locate_workload(context.request.old_object, kinds_), context.gpu))
        wanted[resource] = capacity::saturating_add(wanted[resource], -std::max<std::int64_t>(amount, -INT64_MAX));
    std::int64_t total = 0;
    for (const auto& [resource, amount] : wanted) total = capacity::saturating_add(total, std::max<std::int64_t>(0, amount));
    if (total <= 0) return;

    const capacity::ClusterModel::View view = context.cluster->read();
    const capacity::NamespaceUsage usage = view.namespace_usage(ns);
    const std::string adds = "this " + context.workload.kind + " adds " + gpus_text(total) +
                             (replicas > 1 ? " (" + std::to_string(replicas) + " replicas × " + std::to_string(per_pod) + ")" : "");
    const std::string field = context.workload.pods.empty() ? "" : context.workload.pods.front().field;

    if (budget->gpus && capacity::saturating_add(usage.devices(), total) > *budget->gpus)
      context.violation(field, "namespace " + ns + " uses " + std::to_string(usage.devices()) + " of its " +
                                   gpus_text(*budget->gpus) + " and " + adds + "; free GPUs in " + ns +
                                   " or ask the platform team for a larger budget");

    for (const auto& [profile, limit] : budget->mig_profiles) {
      const std::string resource = "nvidia.com/mig-" + profile;
      auto it = wanted.find(resource);
      if (it == wanted.end() || it->second <= 0) continue;
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

  std::vector<Budget> budgets_;
  WorkloadKinds kinds_;  // a copy (shared declarations): the config it came from is moved
};

std::vector<Budget> parse_budgets(const ConfigNode& node) {
  std::vector<Budget> budgets;
  for (const ConfigNode& item : node.child("budgets").items()) {
    item.allow_only({"namespace", "gpus", "products", "migProfiles"});
    Budget budget;
    budget.namespace_glob = item.string("namespace", "");
    if (budget.namespace_glob.empty()) item.fail("namespace (a name or glob) is required");
    if (item.has("gpus")) {
      budget.gpus = item.child("gpus").as_integer();
      if (*budget.gpus < 0) item.child("gpus").fail("must be 0 or more");
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
          "checks a namespace's GPU budget (total, per product, per MIG profile) against its current usage",
          {
           {"budgets", "list of budgets", "",
            "list, first matching entry wins: `namespace` (name or glob), `gpus` (GPU devices of every kind), `products` (map `nvidia.com/gpu.product` → GPUs), `migProfiles` (map profile such as `1g.10gb` → devices of `nvidia.com/mig-<profile>`)"}},
          [](const ConfigNode& node, const PolicyBuildContext& build) -> std::unique_ptr<Policy> {
            return std::make_unique<GpuQuota>(parse_budgets(node), build.kinds);
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
