#include "policies/availability.h"

#include <algorithm>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/json_fields.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

constexpr std::string_view kLwsGroup = "leaderworkerset.x-k8s.io";
constexpr std::string_view kLwsNameLabel = "leaderworkerset.sigs.k8s.io/name";
constexpr std::string_view kLwsExclusiveTopology = "leaderworkerset.sigs.k8s.io/exclusive-topology";

std::string_view group_of(std::string_view api_version) {
  const std::size_t slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
}

bool is_leader_worker_set(const Workload& workload) {
  return workload.kind == "LeaderWorkerSet" && group_of(workload.api_version) == kLwsGroup;
}

bool keeps_replicas(const Workload& workload) {
  const std::string_view group = group_of(workload.api_version);
  return (group == "apps" && (workload.kind == "Deployment" || workload.kind == "StatefulSet")) ||
         is_leader_worker_set(workload);
}

const json* member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// A selector over `labels`; false when it is absent, null or does not parse (it selects nothing).
bool selects(const json* selector, const k8s::Labels& labels) {
  if (!selector) return false;
  try {
    std::vector<k8s::FieldError> errors;
    std::optional<k8s::LabelSelector> parsed = k8s::metav1_label_selector(*selector, "labelSelector", errors);
    return parsed && parsed->matches(labels);
  } catch (const std::exception&) {
    return false;
  }
}

bool is_hostname(const json& term) {
  const json* key = member(term, "topologyKey");
  return key && key->is_string() && key->get_ref<const std::string&>() == kHostnameKey;
}

// The labels of namespace `ns` as the API server keeps them: the cluster's, else only the one
// it always sets (kubernetes.io/metadata.name).
k8s::Labels namespace_labels(const PolicyContext& context, const std::string& ns) {
  if (context.cluster) {
    const capacity::ClusterModel::View view = context.cluster->read();
    auto it = view.namespaces().find(ns);
    if (it != view.namespaces().end()) return it->second;
  }
  return {{"kubernetes.io/metadata.name", ns}};
}

// A PodAffinityTerm that matches the pod's own replicas on the same node: on the hostname, a
// labelSelector that matches them, no mismatchLabelKeys that the pod carries (each adds
// `key notin (own value)`), and the pod's own namespace among those it looks at (namespaces
// and namespaceSelector both empty: the pod's namespace; otherwise their union).
bool term_spreads(const PolicyContext& context, const json& term, const k8s::Labels& labels) {
  if (!term.is_object() || !is_hostname(term) || !selects(member(term, "labelSelector"), labels)) return false;
  if (const json* keys = member(term, "mismatchLabelKeys"); keys && keys->is_array())
    for (const json& key : *keys)
      if (key.is_string() && labels.contains(key.get_ref<const std::string&>())) return false;
  const std::string& ns = context.workload.namespace_;
  const json* namespaces = member(term, "namespaces");
  const json* namespace_selector = member(term, "namespaceSelector");
  const bool listed = namespaces && namespaces->is_array() && !namespaces->empty();
  if (!listed && !namespace_selector) return true;
  if (listed && std::any_of(namespaces->begin(), namespaces->end(), [&](const json& name) {
                  return name.is_string() && name.get_ref<const std::string&>() == ns;
                }))
    return true;
  return namespace_selector && selects(namespace_selector, namespace_labels(context, ns));
}

}  // namespace

std::optional<std::int64_t> long_running_gpu_replicas(const PolicyContext& context) {
  if (!keeps_replicas(context.workload)) return std::nullopt;
  const json* spec = member(context.object, "spec");
  const json* replicas = spec ? member(*spec, "replicas") : nullptr;
  std::int64_t count = 1;
  if (replicas) {
    if (!replicas->is_number_integer()) return std::nullopt;
    count = replicas->get<std::int64_t>();
    if (count < 0) return std::nullopt;
  }
  const bool gpu = std::any_of(context.workload.pods.begin(), context.workload.pods.end(),
                               [&](const PodTarget& pod) { return context.pod_uses_gpu(pod); });
  if (!gpu) return std::nullopt;
  return count;
}

std::optional<k8s::Labels> pod_labels(const PolicyContext& context, const PodTarget& pod) {
  k8s::Labels labels;
  if (context.object.contains(pod.metadata)) {
    const json* written = member(context.object.at(pod.metadata), "labels");
    try {
      if (written) labels = k8s::labels_of(*written, pod.metadata_field + ".labels");
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (is_leader_worker_set(context.workload) && !context.workload.name.empty())
    labels[std::string(kLwsNameLabel)] = context.workload.name;
  return labels;
}

bool spreads_across_nodes(const PolicyContext& context, const json& spec, const k8s::Labels& labels) {
  if (is_leader_worker_set(context.workload)) {
    const json* metadata = member(context.object, "metadata");
    const json* annotations = metadata ? member(*metadata, "annotations") : nullptr;
    const json* exclusive = annotations ? member(*annotations, kLwsExclusiveTopology) : nullptr;
    if (exclusive && exclusive->is_string() && !exclusive->get_ref<const std::string&>().empty()) return true;
  }
  // Spread constraints count the pod's own namespace only.
  if (const json* constraints = member(spec, "topologySpreadConstraints"); constraints && constraints->is_array())
    for (const json& constraint : *constraints)
      if (constraint.is_object() && is_hostname(constraint) && selects(member(constraint, "labelSelector"), labels))
        return true;
  const json* affinity = member(spec, "affinity");
  const json* anti = affinity ? member(*affinity, "podAntiAffinity") : nullptr;
  if (!anti) return false;
  if (const json* required = member(*anti, "requiredDuringSchedulingIgnoredDuringExecution"); required && required->is_array())
    for (const json& term : *required)
      if (term_spreads(context, term, labels)) return true;
  if (const json* preferred = member(*anti, "preferredDuringSchedulingIgnoredDuringExecution"); preferred && preferred->is_array())
    for (const json& weighted : *preferred)
      if (const json* term = member(weighted, "podAffinityTerm"); term && term_spreads(context, *term, labels)) return true;
  return false;
}

}  // namespace gpuadmit::policies
