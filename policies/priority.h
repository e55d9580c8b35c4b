// A pod's priority as the API server's Priority admission plugin sets it, from the PriorityClasses
// gpu-admit knows: those `check` read beside the object, else the cluster model's. The capacity
// check (what a pod may preempt) and the priority policies share it.
#pragma once

#include <cstdint>
#include <string>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/scheduling_objects.h"
#include "policies/policies.h"

namespace gpuadmit::policies {

// The class named `name`: the manifests' first, then the cluster's (or the two built-in system
// classes); null when neither has it.
const k8s::PriorityClass* find_priority_class(const PolicyContext& context, const capacity::ClusterModel::View* view,
                                              std::string_view name);
// Whether gpu-admit knows the cluster's classes at all (some class was read from the manifests or
// the cluster): only then is a class it cannot find one that does not exist.
bool knows_priority_classes(const PolicyContext& context, const capacity::ClusterModel::View* view);

struct PodPriority {
  std::int32_t value = 0;
  bool preempts = true;   // preemptionPolicy is not Never
  std::string class_name;  // as written, or the global default's; "" for none
  bool resolved = true;    // false: the named class is unknown, value is a guess (0)
};
// spec.priority when set (the plugin already ran: a Pod at admission), else the named class's
// value, else the global default class's, else 0; spec.preemptionPolicy over the class's.
PodPriority pod_priority(const PolicyContext& context, const capacity::ClusterModel::View* view,
                         const nlohmann::json& pod_spec);

}  // namespace gpuadmit::policies
