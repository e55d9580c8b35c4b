// The engine: one immutable, checked configuration and the review pipeline that runs it.
// The webhook server and the CLI are thin front doors over Engine::review().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuadmit/config.h"
#include "gpuadmit/policy.h"
#include "gpuadmit/review.h"
#include "gpuadmit/workload.h"

namespace gpuadmit {

// The YAML of policies/default.yaml, compiled into the binary.
std::string_view embedded_default_config();

struct ConfiguredPolicy {
  PolicySettings settings;
  const PolicyInfo* info = nullptr;
  std::unique_ptr<Policy> policy;
};

struct EngineConfig {
  std::string source;  // file name, or "<embedded default>"
  std::vector<std::string> excluded_namespaces;
  GpuResources gpu;
  WorkloadKinds kinds;  // where each kind keeps its pod templates (built in, plus `workloadKinds`)
  std::vector<ConfiguredPolicy> mutating;    // in configured order
  std::vector<ConfiguredPolicy> validating;  // in configured order
};

// What one policy did in one review, for logs and metrics.
struct PolicyOutcome {
  std::string policy;
  Mode mode = Mode::Off;
  bool fired = false;   // it reported or changed something
  bool denied = false;  // it caused the denial
  bool exempted = false;
  bool error = false;   // it threw; reported in the answer
  bool degraded = false;  // it would have denied, but the cluster state is stale: it warned
  std::size_t violations = 0;  // its findings of severity Violation, whatever its mode made of them
  std::vector<Finding> findings;  // what it reported, fields named where the user wrote them
};

// One reason a review was denied, kept apart from the others: `check` prints one a line, and
// the AdmissionReview's status message joins them (Verdict::finish, engine.cpp).
struct Denial {
  std::string policy;
  std::string field;  // empty for the object as a whole
  std::string message;
  std::string text() const;  // "[policy] field: message"
};

struct ReviewOutcome {
  Response response;
  std::vector<Denial> denials;  // in policy order; empty when allowed
  std::string operation;  // of the request, for logs
  GroupVersionKind kind;  // of the request, for logs (the workload's is empty for a DELETE)
  bool dry_run = false;
  Workload workload;
  std::vector<PolicyOutcome> policies;
  nlohmann::json mutated;  // the object after the mutations (null when there is none)
  std::string skipped;     // why the object was passed through untouched, if it was
};

// Which policies a review runs. The mutating webhook (/mutate) runs only the mutations and the
// validating webhook (/validate) only the validations, on the object the API server has already
// mutated, so the two webhook configurations never do each other's work. `check` and `review`
// run both in one call, the validations seeing the mutated copy.
enum class ReviewPhases { All, MutateOnly, ValidateOnly };

// Kubernetes drops warnings past about 4 KiB in total; each is at most 120 characters, so this
// many leave room for other webhooks. The rest are summed up in one last warning and given in
// full in the audit annotations.
constexpr std::size_t kMaxWarnings = 16;

class Engine {
 public:
  // Throws ConfigError naming file, line and key.
  static std::shared_ptr<const Engine> from_yaml(std::string_view yaml_text, std::string source);
  static std::shared_ptr<const Engine> from_file(const std::string& path);
  static std::shared_ptr<const Engine> from_default();

  // `cluster`, when given, is what the capacity and quota policies consult; it may be updated
  // concurrently (it locks itself). `phases` lets /mutate and /validate each run only theirs.
  // `cluster_stale`, when not empty, says why the cluster state cannot be trusted now (a live
  // watch that stopped hearing from the API server): the policies that read it warn instead of
  // denying, and say why. The webhook never denies on data it cannot trust.
  // `manifests`: the objects `check` read beside the object (ResourceClaims and templates,
  // PodDisruptionBudgets, PriorityClasses), consulted before the cluster's (a pod's
  // spec.resourceClaims resolve against them first: engine/gpu_use.h).
  ReviewOutcome review(const Request& request, const capacity::ClusterModel* cluster = nullptr,
                       ReviewPhases phases = ReviewPhases::All, std::string_view cluster_stale = {},
                       const k8s::ObjectCatalog* manifests = nullptr) const;
  // The same, consuming the request: where no mutation can run (the /validate route, an UPDATE),
  // the policies read request.object in place instead of a copy, and outcome.mutated takes it.
  ReviewOutcome review(Request&& request, const capacity::ClusterModel* cluster = nullptr,
                       ReviewPhases phases = ReviewPhases::All, std::string_view cluster_stale = {}) const;
  const EngineConfig& config() const { return config_; }
  // The GPU devices a policy of this config holds namespace `ns` to (gpu-quota's `gpus`), for
  // metrics; nullopt when none does (no budget matches, or the policy is off or exempt there).
  std::optional<std::int64_t> namespace_gpu_budget(std::string_view ns) const;

 private:
  explicit Engine(EngineConfig config) : config_(std::move(config)) {}
  // `own_object`: request.object, which the review may change and take; null to review a copy.
  ReviewOutcome run_review(const Request& request, nlohmann::json* own_object, const capacity::ClusterModel* cluster,
                           ReviewPhases phases, std::string_view cluster_stale,
                           const k8s::ObjectCatalog* manifests) const;
  EngineConfig config_;
};

// The webhook contract in one call, shared by the server and `gpu-admit review`: bytes of an
// AdmissionReview in, the HTTP status and body out. Never throws.
struct HttpAnswer {
  int status = 200;
  std::string body;  // an AdmissionReview (200), or a plain-text error (400)
  bool allowed = true;
  std::optional<ReviewOutcome> outcome;
};
HttpAnswer answer_admission_review(const Engine& engine, std::string_view body,
                                   const capacity::ClusterModel* cluster = nullptr,
                                   ReviewPhases phases = ReviewPhases::All, std::string_view cluster_stale = {});

// A manifest reviewed as if it were being created, as `gpu-admit check` does.
Request request_for_manifest(const nlohmann::json& object, const std::string& default_namespace,
                             const WorkloadKinds& kinds = WorkloadKinds::builtin());

}  // namespace gpuadmit
