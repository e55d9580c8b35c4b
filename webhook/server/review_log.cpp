#include "webhook/server/review_log.h"

namespace gpuadmit::webhook {

using nlohmann::json;

namespace {

// What a client controls (a name, a kind) is logged at most this long: a 3 MiB name must not
// become a 3 MiB log line.
constexpr std::size_t kMaxLoggedString = 256;

std::string clip(const std::string& text) { return shorten(text, kMaxLoggedString + 3); }

}  // namespace

json review_log_fields(const std::string& route, const HttpAnswer& answer, double seconds) {
  json fields = {{"route", route}, {"status", answer.status},
                 {"latency_us", static_cast<std::int64_t>(seconds * 1e6)}};
  if (!answer.outcome) {
    fields["decision"] = answer.status == 200 ? "denied" : "error";
    if (answer.status != 200) fields["error"] = clip(answer.body);
    return fields;
  }
  const ReviewOutcome& outcome = *answer.outcome;
  const Response& response = outcome.response;
  fields["uid"] = clip(response.uid);
  fields["kind"] = clip(outcome.kind.kind);
  fields["namespace"] = clip(outcome.workload.namespace_);
  fields["name"] = clip(outcome.workload.name);
  fields["operation"] = outcome.operation;
  if (outcome.dry_run) fields["dry_run"] = true;
  fields["decision"] = response.allowed ? "allowed" : "denied";
  // `degraded`: denials that stale cluster state turned into warnings (why is in the answer's
  // first warning).
  json fired = json::array(), degraded = json::array();
  for (const PolicyOutcome& policy : outcome.policies) {
    if (policy.fired || policy.denied || policy.error) fired.push_back(policy.policy);
    if (policy.degraded) degraded.push_back(policy.policy);
  }
  fields["policies"] = std::move(fired);
  if (!degraded.empty()) fields["degraded"] = std::move(degraded);
  fields["patch_ops"] = response.patch.is_array() ? response.patch.size() : 0;
  fields["warnings"] = response.warnings.size();
  if (!outcome.skipped.empty()) fields["skipped"] = clip(outcome.skipped);
  return fields;
}

}  // namespace gpuadmit::webhook
