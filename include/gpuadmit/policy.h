// The policy interface. Like an Envoy filter: a small unit with a typed config, built once when
// the config loads, and one entry point; the pipeline does not know what a policy does.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuadmit/config.h"
#include "gpuadmit/gpu_resources.h"
#include "gpuadmit/gpu_use.h"
#include "gpuadmit/review.h"
#include "gpuadmit/workload.h"

namespace gpuadmit {

namespace capacity {
class ClusterModel;  // engine/capacity/cluster_model.h
}
namespace k8s {
struct ObjectCatalog;  // engine/k8s/scheduling_objects.h
}

enum class PolicyKind { Mutating, Validating };

struct Finding {
  enum class Severity {
    Violation,  // the policy's mode decides: deny, warn or audit
    Advice,     // never denies: a warning in enforce/warn, an audit annotation in audit
    Change,     // what a mutation did (enforce) or would do (warn/audit)
  };
  Severity severity = Severity::Violation;
  std::string field;  // e.g. spec.template.spec.containers[1].image; empty for the object
  std::string message;
};

// What a policy sees. Mutating policies change `object` in place; validating ones only report.
class PolicyContext {
 public:
  PolicyContext(const Request& request, const Workload& workload, const GpuResources& gpu,
                nlohmann::json& object)
      : request(request), workload(workload), gpu(gpu), object(object) {}

  const Request& request;
  const Workload& workload;
  const GpuResources& gpu;
  nlohmann::json& object;
  // The cluster the request is reviewed against (nodes, pools, bound pods); null when none is
  // configured, and then the capacity and quota policies have nothing to check.
  const capacity::ClusterModel* cluster = nullptr;

  // The objects `check` read beside the object (ResourceClaims and templates,
  // PodDisruptionBudgets, PriorityClasses); null at admission, where the cluster model holds them.
  const k8s::ObjectCatalog* manifests = nullptr;
  // Each pod template's GPU use besides GPU resources, in workload.pods order: worked out once
  // per review by the engine; when null, on first use.
  const std::vector<PodGpuUse>* gpu_uses = nullptr;

  const PodGpuUse& gpu_use(const PodTarget& pod) const;
  // A GPU resource in the container's requests or limits, a DRA claim for a GPU device class,
  // or KAI's fraction annotations aimed at it: the one test every policy uses.
  bool uses_gpu(const PodTarget& pod, const nlohmann::json& container) const;
  bool pod_uses_gpu(const PodTarget& pod) const;
  // The GPU use of a pod template of another object (an UPDATE's old object), worked out now.
  PodGpuUse gpu_use_of(const nlohmann::json& other, const PodTarget& pod) const;

  nlohmann::json& pod_spec(const PodTarget& pod) { return object.at(pod.spec); }
  const nlohmann::json& pod_spec(const PodTarget& pod) const { return object.at(pod.spec); }
  // An annotation on the pod template, else on the object itself; empty when absent.
  std::string annotation(const PodTarget& pod, std::string_view key) const;

  void violation(std::string field, std::string message);
  void advise(std::string field, std::string message);
  void changed(std::string field, std::string message);
  const std::vector<Finding>& findings() const { return findings_; }
  std::vector<Finding> take_findings() { return std::move(findings_); }

 private:
  std::vector<Finding> findings_;
  mutable std::vector<PodGpuUse> own_gpu_uses_;  // when gpu_uses is null
  mutable bool own_gpu_uses_done_ = false;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual void run(PolicyContext& context) const = 0;
  // The GPU devices this policy allows namespace `ns` in total, if it sets such a budget: how the
  // server reports use against budget without knowing any policy's config.
  virtual std::optional<std::int64_t> namespace_gpu_budget(std::string_view /*ns*/) const { return std::nullopt; }
};

// Everything a policy factory may need from the top-level config.
struct PolicyBuildContext {
  const GpuResources& gpu;
  const WorkloadKinds& kinds;
};

struct PolicyInfo {
  std::string_view name;
  PolicyKind kind;
  std::string_view summary;
  std::vector<PolicyKey> keys;  // the policy's own config keys, besides PolicySettings'
  // Parses and checks the policy's own keys (PolicySettings keys are allowed too); throws
  // ConfigError naming the key.
  std::function<std::unique_ptr<Policy>(const ConfigNode& node, const PolicyBuildContext& build)>
      make;
  // It decides from the cluster model: when the model is stale (a live watch that stopped
  // hearing from the API server), its denials degrade to warnings.
  bool reads_cluster = false;
};

// Every built-in policy, in the default order (mutating first). policies/registry.cpp.
const std::vector<PolicyInfo>& policy_registry();
const PolicyInfo* find_policy(std::string_view name);

}  // namespace gpuadmit
