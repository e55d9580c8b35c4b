// What the list/watch client feeds: the capacity model (through an adapter) or a test.
// The model never learns where objects come from: a snapshot file, a live watch or a test.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace gpuadmit::kube {

// Statuses are indexed by the kind's value: kWatchedKinds lists every kind, in this order.
enum class ObjectKind {
  Node,
  Pod,
  Namespace,
  ResourceClaim,
  ResourceClaimTemplate,
  PodDisruptionBudget,
  PriorityClass
};

inline constexpr ObjectKind kWatchedKinds[] = {ObjectKind::Node,
                                               ObjectKind::Pod,
                                               ObjectKind::Namespace,
                                               ObjectKind::ResourceClaim,
                                               ObjectKind::ResourceClaimTemplate,
                                               ObjectKind::PodDisruptionBudget,
                                               ObjectKind::PriorityClass};

std::string_view kind_name(ObjectKind kind);      // "Node", "Pod", "Namespace", "ResourceClaim", ...
std::string_view resource_name(ObjectKind kind);  // "nodes", "pods", "namespaces", "resourceclaims", ...
std::optional<ObjectKind> kind_from_name(std::string_view kind_or_resource);

// Dynamic Resource Allocation kinds, in API group resource.k8s.io, whose version differs by
// cluster (v1 from 1.34, v1beta2 in 1.33, v1beta1 in 1.32) and which a cluster may not serve.
bool is_dra_kind(ObjectKind kind);
// The kind's API group: "" (the core group: nodes, pods, namespaces), "resource.k8s.io",
// "policy" (PodDisruptionBudget) or "scheduling.k8s.io" (PriorityClass).
std::string_view api_group(ObjectKind kind);
// The kind's apiVersion when listed at `version`: "v1" for a core kind whatever `version` says,
// "<group>/<version>" for the others ("resource.k8s.io/v1beta2", "policy/v1beta1").
std::string api_version(ObjectKind kind, std::string_view version);
// Where the kind is listed and watched across all namespaces at `version`: /api/v1/pods,
// /apis/resource.k8s.io/v1/resourceclaims, /apis/policy/v1beta1/poddisruptionbudgets.
std::string collection_path(ObjectKind kind, std::string_view version);

// Objects arrive trimmed (see trim_object in objects.h) with kind and apiVersion set.
// The watch serializes its calls: no two calls overlap, whatever the kind. Calls come from the
// watch's threads, so an implementation that is also read elsewhere guards its own state.
struct ClusterObjectSink {
  virtual ~ClusterObjectSink() = default;
  // ADDED and MODIFIED events: the object as it is now (insert or replace by namespace/name).
  virtual void upsert(ObjectKind kind, const nlohmann::json& trimmed_object) = 0;
  // DELETED events: the last state of the object.
  virtual void remove(ObjectKind kind, const nlohmann::json& trimmed_object) = 0;
  // A full list (the first sync, and each relist after 410 Gone) arrives page by page as upsert()
  // calls, then list_complete() with the key (object_key) of every object listed: anything else
  // held for the kind is gone. Page by page, so memory holds one page, not a 150,000-pod list.
  // A list that fails half-way ends without list_complete (what it upserted was current).
  virtual void list_complete(ObjectKind kind, const std::unordered_set<std::string>& listed_keys) = 0;
  // One page of a list: upsert() of each object, in order, unless the sink applies a page at once.
  virtual void upsert_page(ObjectKind kind, const std::vector<nlohmann::json>& trimmed_objects) {
    for (const nlohmann::json& object : trimmed_objects) upsert(kind, object);
  }
};

}  // namespace gpuadmit::kube
