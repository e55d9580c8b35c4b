// The shapes the list/watch client reads: object keys, trimming to what the capacity model and
// quotas need, and splitting a watch stream into event lines.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "webhook/kube/sink.h"

namespace gpuadmit::kube {

// "namespace/name", or "name" for cluster-scoped objects.
std::string object_key(const nlohmann::json& object);

// metadata.<key> when it is a string ("name", "namespace", "uid"), "" otherwise.
std::string metadata_string(const nlohmann::json& object, const char* key);

// The object's metadata.resourceVersion, "" when absent.
std::string resource_version_of(const nlohmann::json& object);

// Keeps what admission decisions need and drops the rest (managedFields, images, container
// statuses, volumes, env, ...), so the cache grows with the GPU-relevant size of the cluster:
//   all kinds: kind, apiVersion, metadata.{name, namespace, uid, resourceVersion, labels,
//              deletionTimestamp}, and metadata.annotations except
//              kubectl.kubernetes.io/last-applied-configuration
//   Node:      spec.{unschedulable, taints}, status.{capacity, allocatable,
//              conditions[].{type, status}}
//   Pod:       metadata.ownerReferences[].{kind, name, controller}, spec.{nodeName,
//              schedulerName, priority, priorityClassName, nodeSelector, tolerations, overhead,
//              resources, affinity.nodeAffinity, containers[] and initContainers[] as {name,
//              resources, restartPolicy}}, status.{phase, conditions[].{type, status}}
//   Namespace: status.phase
// except the kinds of a named API group (api_group), whose few fields the capacity model reads
// whole and whose status it does not read: kind, apiVersion (the object's own; list items carry
// none and get api_version(kind, version), the version listed), metadata.{name, namespace, uid,
// resourceVersion}, and
//   ResourceClaim, ResourceClaimTemplate, PodDisruptionBudget: spec
//   PriorityClass: value, globalDefault, preemptionPolicy
// Watch events are trimmed here; list pages by ListPageReader (list_page.h), which must give the
// same result and is tested and fuzzed against this function.
nlohmann::json trim_object(ObjectKind kind, const nlohmann::json& object, std::string_view version = "v1");

// Splits a byte stream into newline-terminated lines as the bytes arrive in arbitrary pieces.
// A line longer than `max_line_bytes` is an error (the stream is unusable past it).
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line_bytes = 64 << 20) : max_line_bytes_(max_line_bytes) {}
  // Appends `data`; returns false when a line exceeds the limit.
  bool feed(std::string_view data, std::vector<std::string>& complete_lines);
  size_t pending_bytes() const { return pending_.size(); }  // an unfinished line
  void clear() { pending_.clear(); }

 private:
  size_t max_line_bytes_;
  std::string pending_;
};

}  // namespace gpuadmit::kube
