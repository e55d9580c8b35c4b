// Where the pod specs are inside an object: one policy serves Pods, every pod controller and the
// custom resources of serving and training operators (KServe, KubeRay, LeaderWorkerSet, ...).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gpuadmit {

class ConfigNode;

struct PodTarget {
  nlohmann::json::json_pointer spec;      // e.g. /spec/template/spec
  nlohmann::json::json_pointer metadata;  // e.g. /spec/template/metadata (may not exist)
  std::string field;                      // e.g. spec.template.spec, for messages
  std::string metadata_field;             // e.g. spec.template.metadata, for messages
  // Pods of this template the object asks for at once (Deployment replicas, Job parallelism,
  // a Ray worker group's replicas, an LWS's replicas × (size − 1) workers).
  std::int64_t replicas = 1;
  // Of those, the pods that must run at the same time for the workload to start at all (one
  // gang); 0 when the workload is not a gang.
  std::int64_t gang_replicas = 0;
  // Containers written outside `containers`, as keys of the pod spec (KServe's `model`,
  // `pytorch`, ...). The engine presents them to the policies as the first entries of
  // `containers` (engine/shorthand_containers.h).
  std::vector<std::string> shorthand_containers;
  // Per shorthand container, the key that holds its resources when it is not `resources`
  // (TrainJob's trainer: `resourcesPerNode`); shown to the policies as `resources`.
  std::vector<std::string> shorthand_resources;
};

struct Workload {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string namespace_;
  std::vector<PodTarget> pods;  // empty when the kind carries no pod spec
  bool batch = false;           // Job, CronJob or a run-to-completion Pod: probes make no sense
  bool gang = false;            // all of its pods must run at once (PodTarget::gang_replicas)
  bool operator_probes = false;  // its operator sets the pods' probes where none are written (KubeRay)
  // Its operator completes the pod spec from another object (a TrainJob's TrainingRuntime): what
  // is written is checked, but nothing is patched, and no check that needs the whole pod (taints,
  // placement, pod security) runs. The pods themselves are reviewed when they are created.
  bool partial_pod_spec = false;
  bool supported = false;       // a Pod, or a kind declared in WorkloadKinds, with a pod spec
  bool custom_resource = false;  // declared for a custom resource (not a built-in controller)
  // Why the object is not an object the API server could have decoded ("spec.template must be an
  // object", "kind must be a non-empty string"): it is answered as a malformed request (400),
  // never allowed unreviewed. Empty for a well-formed object.
  std::string malformed;
};

// The declarations of where pod templates live in each kind, in the spirit of Gatekeeper's
// ExpansionTemplate. The built-in controllers and the operators' custom resources are declared
// in engine/workload_kinds.cpp; a config's `workloadKinds` adds kinds or replaces a custom
// resource's declaration. Immutable once built.
class WorkloadKinds {
 public:
  struct Declaration;
  WorkloadKinds();  // the built-in declarations
  ~WorkloadKinds();
  WorkloadKinds(const WorkloadKinds&);
  WorkloadKinds& operator=(const WorkloadKinds&);

  // The built-in declarations, plus the config's `workloadKinds` list (throws ConfigError naming
  // the entry and key).
  static WorkloadKinds with_config(const ConfigNode& list);
  static const WorkloadKinds& builtin();

  const Declaration* find(std::string_view group, std::string_view version, std::string_view kind) const;
  // The custom resource kinds declared: what the webhook configurations' rules must list.
  struct Name {
    std::string group, kind, plural;
  };
  std::vector<Name> custom_resources() const;
  // The plural resource name declared for a kind, or "" (request_for_manifest guesses then).
  std::string plural(std::string_view group, std::string_view kind) const;

 private:
  std::vector<std::shared_ptr<const Declaration>> declarations_;
};

// Finds the pod specs of a Pod, or of any kind `kinds` declares (Deployment, ReplicaSet,
// StatefulSet, DaemonSet, Job, CronJob, ReplicationController, PodTemplate, and the built-in
// custom resources). At most kMaxPodTargets pod specs: more makes the object malformed.
Workload locate_workload(const nlohmann::json& object, const WorkloadKinds& kinds = WorkloadKinds::builtin());
constexpr std::size_t kMaxPodTargets = 256;

// A DNS-1123 label (lower-case letters, digits and '-', at most 63): what namespace and volume
// names must be.
bool is_dns_label(std::string_view name);

// "spec.template.spec" + "containers", 1 -> "spec.template.spec.containers[1]"
std::string field_path(const std::string& base, std::string_view key);
std::string field_path(const std::string& base, std::string_view key, std::size_t index);

}  // namespace gpuadmit
