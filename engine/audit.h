// Auditing what already runs: each stored object judged as the webhook would judge its creation
// today (the same review `check` runs, with Request::stored so that the room and quota its own
// pods hold are not asked for twice), its results per policy, the tallies, and the
// wgpolicyk8s.io/v1alpha2 PolicyReports that carry them. `gpu-admit audit` and serve's background
// audit both build on this; neither judges anything itself.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gpuadmit/engine.h"

namespace gpuadmit::audit {

// The PolicyReport words (wgpolicyk8s.io/v1alpha2 PolicyReportResult.result).
enum class Result { Pass, Fail, Warn, Error, Skip };
std::string_view to_string(Result result);

struct ObjectRef {
  std::string api_version, kind, namespace_, name, uid;
  std::string text() const;  // "Deployment ml-team/llama"
};

// One policy's word on one object.
struct PolicyResult {
  std::string policy;
  Mode mode = Mode::Off;
  Result result = Result::Pass;
  bool denied_today = false;        // a violation in enforce mode: creating the object today is denied
  bool denied_if_enforced = false;  // a violation in warn or audit mode: denied once the policy is enforce
  std::vector<Finding> findings;    // what it said (Change: a mutation the stored object lacks)
  std::string message() const;      // the findings joined, "field: message; ...", at most kMaxMessage bytes
};

struct AuditedObject {
  ObjectRef ref;
  std::vector<PolicyResult> results;  // every policy that is not off for its namespace, in policy order
  bool denied_today = false;          // the review as a whole denies it
  bool flagged() const;               // any result other than pass
};

constexpr std::size_t kMaxMessage = 1024;
// A PolicyReport is one etcd object (1.5 MiB at most): past this many results, the rest are
// counted in its summary and an annotation, not listed.
constexpr std::size_t kMaxReportResults = 500;

// Whether `object` is judged through the object that controls it: its controller ownerReference
// names a kind the audit reads too (`kinds`: "group/Kind", group "" for the core API), whose pod
// template made it, so the template is judged once rather than in every pod.
bool judged_through_owner(const nlohmann::json& object, const std::set<std::string>& kinds);
// "group/Kind" of an object, or of a group and kind, as judged_through_owner's `kinds` hold them.
std::string kind_key(const nlohmann::json& object);
std::string kind_key(std::string_view group, std::string_view kind);

// Judges one stored object. nullopt when the engine reviews no such object (no pod spec, an
// excluded namespace, a kind it does not know, a pod that has finished). `cluster` may be null
// (no capacity policy then); `manifests`: the objects read beside it (`audit`'s snapshot files:
// Engine::review).
std::optional<AuditedObject> audit_object(const Engine& engine, const nlohmann::json& object,
                                          const capacity::ClusterModel* cluster,
                                          const k8s::ObjectCatalog* manifests = nullptr);

struct Tally {
  std::size_t pass = 0, fail = 0, warn = 0, error = 0, skip = 0;
  void add(Result result);
  std::size_t total() const { return pass + fail + warn + error + skip; }
};

struct PolicyTally {
  Mode mode = Mode::Off;  // the mode of its last result (a namespace override may differ)
  Tally results;
  std::size_t denied_today = 0, denied_if_enforced = 0;  // objects
};

// A whole audit, bounded in memory: tallies for everything, the objects with a result other than
// pass up to `max_flagged` (the rest counted in left_out).
class AuditReport {
 public:
  explicit AuditReport(std::size_t max_flagged = 100000) : max_flagged_(max_flagged) {}
  void add(AuditedObject object);
  void skip() { ++skipped; }

  std::map<std::string, PolicyTally> policies;  // by policy
  std::map<std::string, Tally> namespaces;      // every namespace with an audited object
  std::vector<AuditedObject> flagged;           // in the order added
  std::size_t objects = 0;                      // audited
  std::size_t skipped = 0;                      // not reviewed, or judged through their owner
  std::size_t denied_today = 0, denied_if_enforced = 0;  // objects; the second excludes the first
  std::size_t left_out = 0;                     // flagged objects past max_flagged

 private:
  std::size_t max_flagged_;
};

// The audit as wgpolicyk8s.io/v1alpha2 objects: a PolicyReport named "gpu-admit" in every
// namespace with an audited object (its summary, and a result per flagged object and policy),
// and the ClusterPolicyReport "gpu-admit" with the cluster's totals. `at` stamps the results
// (PolicyReportResult.timestamp); none when not given (stable output for tests).
std::vector<nlohmann::json> policy_reports(const AuditReport& report,
                                           std::optional<std::chrono::system_clock::time_point> at = std::nullopt);

// The labels every report carries: how a writer finds its own reports again.
constexpr std::string_view kReportName = "gpu-admit";
constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
constexpr std::string_view kManagedByValue = "gpu-admit";

}  // namespace gpuadmit::audit
