// Effective pod requests and limits as the scheduler computes them
// (k8s.io/component-helpers/resource PodRequests / PodLimits), on Kubernetes-JSON pod specs.
#pragma once

#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/k8s/quantity.h"

namespace gpuadmit::k8s {

using ResourceList = std::map<std::string, Quantity>;

// PodResourcesOptions, with the Go field names in snake case.
struct PodResourcesOptions {
  bool exclude_overhead = false;          // leave spec.overhead out
  bool skip_pod_level_resources = false;  // ignore spec.resources even where it is set
  // In-place resize: weigh in what the pod status reports as allocated and actuated.
  bool use_status_resources = false;
  bool in_place_pod_level_resources_vertical_scaling_enabled = false;
  // The pod's status object, read only with use_status_resources (a webhook sees just the spec).
  const nlohmann::json* status = nullptr;
};

// Every function below reads only the fields its computation needs and throws QuantityError
// naming the field (e.g. `spec.containers[0].resources.requests.memory: "12Q" is not a valid
// quantity: ...`) for a bad quantity or a field of the wrong JSON type. Quantities are read as
// Kubernetes decodes JSON: strings (whitespace trimmed), numbers, and null as zero.

// resources.requests / resources.limits of one container; path names the container in errors.
ResourceList container_requests(const nlohmann::json& container,
                                std::string_view path = "container");
ResourceList container_limits(const nlohmann::json& container, std::string_view path = "container");

// Sum of app containers and sidecars (init containers with restartPolicy Always); each other
// init container needs its own request plus the sidecars declared before it; per-resource max.
ResourceList aggregate_container_requests(const nlohmann::json& pod_spec,
                                          const PodResourcesOptions& options = {});
ResourceList aggregate_container_limits(const nlohmann::json& pod_spec,
                                        const PodResourcesOptions& options = {});

// The aggregate, replaced by pod-level spec.resources (cpu, memory, hugepages-*) where set, plus
// spec.overhead: added to requests, and to limits only where a non-zero limit exists.
ResourceList pod_requests(const nlohmann::json& pod_spec, const PodResourcesOptions& options = {});
ResourceList pod_limits(const nlohmann::json& pod_spec, const PodResourcesOptions& options = {});

// The API server's defaulting (core/v1 SetDefaults_Pod) before any webhook sees a pod: a container
// resource with a limit but no request gets the limit as its request. Objects read from files
// have not been through it, so capacity decisions apply it first. Returns null when nothing
// changes (the common case for objects from the API server), else the defaulted copy.
std::optional<nlohmann::json> with_requests_defaulted_from_limits(const nlohmann::json& pod_spec);

bool is_supported_pod_level_resource(std::string_view name);
bool is_pod_level_resources_set(const nlohmann::json& pod_spec);  // requests or limits
bool is_pod_level_requests_set(const nlohmann::json& pod_spec);
bool is_pod_level_limits_set(const nlohmann::json& pod_spec);

}  // namespace gpuadmit::k8s
