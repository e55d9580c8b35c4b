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

// What an autoscaler (a HorizontalPodAutoscaler, a KEDA ScaledObject) scales, and how far: it
// carries no pod template, so the policies resolve its target's pods elsewhere (the manifests
// `check` reads, or the cluster model). Each field as the API server defaults it.
struct ScaleTarget {
  // spec.scaleTargetRef; KEDA defaults apiVersion apps/v1 and kind Deployment, the HPA none.
  std::string api_version, kind, name;
  // HPA minReplicas default 1 (0 needs the HPAScaleToZero feature gate); KEDA minReplicaCount
  // default 0 and maxReplicaCount default 100.
  std::int64_t min_replicas = 1, max_replicas = 0;
  bool min_replicas_written = false;
  std::string min_field, max_field;  // spec.minReplicas / spec.minReplicaCount, for messages
  // KEDA's idleReplicaCount (only 0 is supported): the replicas while no trigger is active.
  std::optional<std::int64_t> idle_replicas;
  // The scale-down stabilization window in seconds: behavior.scaleDown.stabilizationWindowSeconds
  // (v2, v2beta2, KEDA's advanced.horizontalPodAutoscalerConfig), else the HPA's 300.
  std::int64_t scale_down_window = 300;
  bool scale_down_window_written = false;
  bool scale_down_disabled = false;  // behavior.scaleDown.selectPolicy: Disabled
  std::string window_field;          // where the window is (or would be) written
  bool keda = false;
  // An HPA that KEDA made for a ScaledObject (its controller owner): the ScaledObject was reviewed.
  bool managed_by_keda = false;
};

struct Workload {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string namespace_;
  std::vector<PodTarget> pods;  // empty when the kind carries no pod spec
  std::optional<ScaleTarget> scale_target;  // an autoscaler's; it has no pods
  bool batch = false;           // Job, CronJob or a run-to-completion Pod: probes make no sense
  bool gang = false;            // all of its pods must run at once (PodTarget::gang_replicas)
  bool operator_probes = false;  // its operator sets the pods' probes where none are written (KubeRay)
  // Its operator completes the pod spec from another object (a TrainJob's TrainingRuntime): what
  // is written is checked, but nothing is patched, and no check that needs the whole pod (taints,
  // placement, pod security) runs. The pods themselves are reviewed when they are created.
  bool partial_pod_spec = false;
  bool supported = false;       // a Pod, or a kind declared in WorkloadKinds, with a pod spec; or an autoscaler
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

// The autoscalers reviewed (HorizontalPodAutoscaler autoscaling/v1, v2beta1, v2beta2, v2; KEDA
// ScaledObject keda.sh/v1alpha1): what the validating webhook's rules must list for them.
struct AutoscalerKind {
  std::string_view group, kind, plural;
  std::vector<std::string_view> versions;
};
const std::vector<AutoscalerKind>& autoscaler_kinds();
// The key of a workload in the catalogs of scale targets: "namespace/Kind/name".
std::string workload_key(std::string_view namespace_, std::string_view kind, std::string_view name);

// A DNS-1123 label (lower-case letters, digits and '-', at most 63): what namespace and volume
// names must be.
bool is_dns_label(std::string_view name);

// "spec.template.spec" + "containers", 1 -> "spec.template.spec.containers[1]"
std::string field_path(const std::string& base, std::string_view key);
std::string field_path(const std::string& base, std::string_view key, std::size_t index);

}  // namespace gpuadmit
