// Where the pod specs are inside an object: one policy serves Pods and every pod controller.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace gpuadmit {

struct PodTarget {
  nlohmann::json::json_pointer spec;      // e.g. /spec/template/spec
  nlohmann::json::json_pointer metadata;  // e.g. /spec/template/metadata (may not exist)
  std::string field;                      // e.g. spec.template.spec, for messages
};

struct Workload {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string namespace_;
  std::vector<PodTarget> pods;  // empty when the kind carries no pod spec
  std::int64_t replicas = 1;    // pods the object asks for at once (Deployment replicas, Job parallelism)
  bool batch = false;           // Job, CronJob or a run-to-completion Pod: probes make no sense
  bool supported = false;       // a Pod or a pod controller we know
  // Why the object is not an object the API server could have decoded ("spec.template must be an
  // object", "kind must be a non-empty string"): it is answered as a malformed request (400),
  // never allowed unreviewed. Empty for a well-formed object.
  std::string malformed;
};

// Finds the pod specs of Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
// ReplicationController and PodTemplate objects.
Workload locate_workload(const nlohmann::json& object);

// A DNS-1123 label (lower-case letters, digits and '-', at most 63): what namespace and volume
// names must be.
bool is_dns_label(std::string_view name);

// "spec.template.spec" + "containers", 1 -> "spec.template.spec.containers[1]"
std::string field_path(const std::string& base, std::string_view key);
std::string field_path(const std::string& base, std::string_view key, std::size_t index);

}  // namespace gpuadmit
