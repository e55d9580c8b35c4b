// The cluster objects beside workloads that decide how pods are kept and preempted:
// PodDisruptionBudgets (policy/v1, v1beta1) and PriorityClasses (scheduling.k8s.io/v1), each in
// a catalog keyed as the API server keys them. The cluster model keeps the cluster's; `check`
// builds one from the manifests it reads (ObjectCatalog).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/k8s/node_affinity.h"
#include "engine/k8s/resource_claims.h"

namespace gpuadmit::k8s {

struct DisruptionBudget {
  std::string namespace_, name;
  LabelSelector selector = LabelSelector::nothing();
  // spec.minAvailable / spec.maxUnavailable as written (an int or a percentage); "" when unset.
  std::string min_available, max_unavailable;
};

class DisruptionBudgetCatalog {
 public:
  // A policy/v1 or v1beta1 PodDisruptionBudget. policy/v1beta1's empty selector selects no pod,
  // policy/v1's every pod of the namespace. Throws JsonFieldError naming the field.
  void upsert(const nlohmann::json& object);
  bool remove(std::string_view namespace_, std::string_view name);
  // After a full list: what `keys` ("namespace/name") does not hold is gone.
  std::size_t remove_except(const std::unordered_set<std::string>& keys);
  // The budgets of `namespace_` whose selector matches a pod with `labels`.
  std::vector<const DisruptionBudget*> selecting(std::string_view namespace_, const Labels& labels) const;
  std::size_t size() const { return budgets_.size(); }

 private:
  std::map<std::string, DisruptionBudget, std::less<>> budgets_;  // "namespace/name"
};

struct PriorityClass {
  std::string name;
  std::int32_t value = 0;
  bool global_default = false;
  bool preempts = true;  // preemptionPolicy PreemptLowerPriority (the default), not Never
};

class PriorityClassCatalog {
 public:
  // A scheduling.k8s.io PriorityClass (v1, v1beta1, v1alpha1). Throws JsonFieldError naming the field.
  void upsert(const nlohmann::json& object);
  bool remove(std::string_view name);
  std::size_t remove_except(const std::unordered_set<std::string>& names);
  // The class, or the two the API server always creates (system-cluster-critical,
  // system-node-critical); null when unknown.
  const PriorityClass* find(std::string_view name) const;
  // The class with globalDefault (the lowest-valued one when several claim it, as the Priority
  // admission plugin picks); null when none.
  const PriorityClass* global_default() const;
  std::size_t size() const { return classes_.size(); }

 private:
  std::map<std::string, PriorityClass, std::less<>> classes_;
};

// What an autoscaler's checks need of the workload it scales. From a manifest
// (engine/workload_summary.h): the pods it asks for. From the cluster model: the pods of that
// workload running now and what they hold.
struct WorkloadSummary {
  // GPU devices per pod: GPU resources plus the devices of DRA claims made from templates (the
  // cluster model: GPU resources only). The largest among the running pods (a rollout may run two
  // pod templates at once).
  std::int64_t gpus_per_pod = 0;
  bool gpus_unresolved = false;  // a DRA claim gpu-admit could not read: its devices count as none
  std::int64_t pods = 0;
  std::int64_t gpus_in_use = 0;  // the cluster model: the GPU devices its pods hold now
  // gpu-admit.io/model-load-seconds, else the longest startupProbe budget (k8s/model_load.h).
  std::optional<std::int64_t> model_load_seconds;
};

// What a review may consult beside its object: DRA claims and templates, disruption budgets and
// priority classes; and for autoscalers, the workloads of the manifests. `check` fills one from
// every manifest it reads; the cluster model holds the cluster's.
struct ObjectCatalog {
  ClaimCatalog claims;
  DisruptionBudgetCatalog disruption_budgets;
  PriorityClassCatalog priority_classes;
  // "namespace/Kind/name" (workload_key) -> its summary; filled by `check` only when the input
  // holds an autoscaler.
  std::map<std::string, WorkloadSummary, std::less<>> workloads;

  // The kinds it keeps: ResourceClaim, ResourceClaimTemplate, PodDisruptionBudget, PriorityClass.
  static bool holds(std::string_view kind);
  // Adds or replaces one object of those kinds (a namespaced one without a namespace is in
  // "default"); false for any other kind. Throws JsonFieldError naming the field.
  bool upsert(const nlohmann::json& object);
};

}  // namespace gpuadmit::k8s
