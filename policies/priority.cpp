#include "policies/priority.h"

#include "engine/k8s/json_fields.h"

namespace gpuadmit::policies {

const k8s::PriorityClass* find_priority_class(const PolicyContext& context, const capacity::ClusterModel::View* view,
                                              std::string_view name) {
  if (context.manifests)
    if (const k8s::PriorityClass* found = context.manifests->priority_classes.find(name)) return found;
  return view ? view->priority_classes().find(name) : nullptr;
}

bool knows_priority_classes(const PolicyContext& context, const capacity::ClusterModel::View* view) {
  return (context.manifests && context.manifests->priority_classes.size() > 0) ||
         (view && view->priority_classes().size() > 0);
}

PodPriority pod_priority(const PolicyContext& context, const capacity::ClusterModel::View* view,
                         const nlohmann::json& pod_spec) {
  PodPriority out;
  out.class_name = k8s::json_fields::string_or(pod_spec, "priorityClassName");
  const k8s::PriorityClass* pc = nullptr;
  if (!out.class_name.empty()) {
    pc = find_priority_class(context, view, out.class_name);
    out.resolved = pc != nullptr;
  } else {
    if (context.manifests) pc = context.manifests->priority_classes.global_default();
    if (!pc && view) pc = view->priority_classes().global_default();
    if (pc) out.class_name = pc->name;
  }
  if (pc) {
    out.value = pc->value;
    out.preempts = pc->preempts;
  }
  if (auto it = pod_spec.find("priority"); it != pod_spec.end() && it->is_number_integer()) {
    const std::int64_t value = it->get<std::int64_t>();
    if (value >= INT32_MIN && value <= INT32_MAX) {
      out.value = static_cast<std::int32_t>(value);
      out.resolved = true;
    }
  }
  if (auto it = pod_spec.find("preemptionPolicy"); it != pod_spec.end() && it->is_string())
    out.preempts = it->get<std::string>() != "Never";
  return out;
}

}  // namespace gpuadmit::policies
