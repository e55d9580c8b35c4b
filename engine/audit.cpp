#include "engine/audit.h"

#include <algorithm>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::audit {
namespace {

using nlohmann::json;
using k8s::json_fields::string_or;

std::string group_of(std::string_view api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string() : std::string(api_version.substr(0, slash));
}

// PolicyReportResult.severity: how much a result matters to the team that owns the object.
std::string_view severity(const PolicyResult& result) {
  if (result.result == Result::Error) return "high";
  if (result.result != Result::Fail) return "info";
  switch (result.mode) {
    case Mode::Enforce: return "high";
    case Mode::Warn: return "medium";
    default: return "low";
  }
}

json summary_json(const Tally& tally) {
  return {{"pass", tally.pass}, {"fail", tally.fail}, {"warn", tally.warn}, {"error", tally.error}, {"skip", tally.skip}};
}

json result_json(const AuditedObject& object, const PolicyResult& result, const std::optional<json>& timestamp) {
  json resource = {{"apiVersion", object.ref.api_version}, {"kind", object.ref.kind}, {"name", object.ref.name}};
  if (!object.ref.namespace_.empty()) resource["namespace"] = object.ref.namespace_;
  if (!object.ref.uid.empty()) resource["uid"] = object.ref.uid;
  json entry = {{"policy", result.policy},
                {"message", result.message()},
                {"result", std::string(to_string(result.result))},
                {"severity", std::string(severity(result))},
                {"source", "gpu-admit"},
                {"scored", true},
                {"resources", json::array({resource})},
                {"properties",
                 {{"mode", std::string(to_string(result.mode))},
                  {"deniedToday", result.denied_today ? "true" : "false"},
                  {"deniedIfEnforced", result.denied_if_enforced ? "true" : "false"}}}};
  if (timestamp) entry["timestamp"] = *timestamp;
  return entry;
}

json report_metadata(std::string_view ns) {
  json metadata = {{"name", std::string(kReportName)},
                   {"labels", {{std::string(kManagedByLabel), std::string(kManagedByValue)}}}};
  if (!ns.empty()) metadata["namespace"] = std::string(ns);
  return metadata;
}

PolicyResult error_result(const std::string& policy, bool denied_today) {
  PolicyResult result;
  result.policy = policy;
  result.mode = Mode::Enforce;
  result.result = Result::Error;
  result.denied_today = denied_today;
  return result;
}

}  // namespace

std::string_view to_string(Result result) {
  switch (result) {
    case Result::Pass: return "pass";
    case Result::Fail: return "fail";
    case Result::Warn: return "warn";
    case Result::Error: return "error";
    case Result::Skip: return "skip";
  }
  return "error";
}

std::string ObjectRef::text() const { return kind + " " + (namespace_.empty() ? "" : namespace_ + "/") + name; }

std::string PolicyResult::message() const {
  std::string text;
  for (const Finding& finding : findings) {
    if (!text.empty()) text += "; ";
    if (finding.severity == Finding::Severity::Change) text += "not applied to the stored object: ";
    if (!finding.field.empty()) text += finding.field + ": ";
    text += finding.message;
    if (text.size() > kMaxMessage) break;
  }
  return shorten(text, kMaxMessage);
}

bool AuditedObject::flagged() const {
  return std::any_of(results.begin(), results.end(), [](const PolicyResult& r) { return r.result != Result::Pass; });
}

std::string kind_key(std::string_view group, std::string_view kind) { return std::string(group) + "/" + std::string(kind); }

std::string kind_key(const json& object) {
  if (!object.is_object()) return {};
  return kind_key(group_of(string_or(object, "apiVersion")), string_or(object, "kind"));
}

bool judged_through_owner(const json& object, const std::set<std::string>& kinds) {
  if (!object.is_object()) return false;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return false;
  auto owners = metadata->find("ownerReferences");
  if (owners == metadata->end() || !owners->is_array()) return false;
  for (const json& owner : *owners) {
    if (!owner.is_object()) continue;
    auto controller = owner.find("controller");
    if (controller == owner.end() || !controller->is_boolean() || !controller->get<bool>()) continue;
    return kinds.count(kind_key(owner)) != 0;  // an owner reference has apiVersion and kind too
  }
  return false;
}

std::optional<AuditedObject> audit_object(const Engine& engine, const json& object, const capacity::ClusterModel* cluster,
                                          const k8s::ObjectCatalog* manifests) {
  if (!object.is_object()) return std::nullopt;
  // A pod that has finished runs nothing and will never be created again as it is.
  if (string_or(object, "kind") == "Pod" && object.contains("status") && object["status"].is_object()) {
    const std::string phase = string_or(object["status"], "phase");
    if (phase == "Succeeded" || phase == "Failed") return std::nullopt;
  }
  // A snapshot object without a namespace was applied to "default", as kubectl would.
  Request request = request_for_manifest(object, "default", engine.config().kinds);
  request.stored = true;
  request.uid = "gpu-admit-audit/" + request.namespace_ + "/" + request.resource.resource + "/" + request.name;
  ReviewOutcome outcome = engine.review(request, cluster, ReviewPhases::All, {}, manifests);
  AuditedObject audited;
  audited.ref = {outcome.workload.api_version.empty() ? string_or(object, "apiVersion") : outcome.workload.api_version,
                 outcome.workload.kind.empty() ? string_or(object, "kind") : outcome.workload.kind,
                 request.namespace_, request.name, {}};
  if (auto metadata = object.find("metadata"); metadata != object.end() && metadata->is_object())
    audited.ref.uid = string_or(*metadata, "uid");
  if (!outcome.skipped.empty()) {
    // A stored object gpu-admit cannot read (over its input limits, a malformed field) is an
    // error to report, never a silent pass; one it has no business with is not audited.
    if (outcome.response.allowed) return std::nullopt;
    PolicyResult unreadable = error_result("gpu-admit", true);
    unreadable.findings.push_back({Finding::Severity::Violation, "", outcome.response.status_message});
    audited.results.push_back(std::move(unreadable));
    audited.denied_today = true;
    return audited;
  }
  audited.denied_today = !outcome.response.allowed;
  for (PolicyOutcome& policy : outcome.policies) {
    if (policy.mode == Mode::Off) continue;
    PolicyResult result;
    result.policy = policy.policy;
    result.mode = policy.mode;
    if (policy.exempted) {
      result.result = Result::Skip;
    } else if (policy.error) {
      result.result = Result::Error;
    } else if (policy.violations > 0) {
      result.result = Result::Fail;
      result.denied_today = policy.denied || (policy.mode == Mode::Enforce && policy.degraded);
      result.denied_if_enforced = policy.mode != Mode::Enforce;
    } else if (!policy.findings.empty()) {
      result.result = Result::Warn;  // advice, or a mutation the stored object lacks
    }
    result.findings = std::move(policy.findings);
    audited.results.push_back(std::move(result));
  }
  // The engine's own refusals (a mutation it could not put back) have no policy outcome.
  for (const Denial& denial : outcome.denials)
    if (std::none_of(audited.results.begin(), audited.results.end(), [&](const PolicyResult& r) { return r.policy == denial.policy; })) {
      PolicyResult refused = error_result(denial.policy, true);
      refused.findings.push_back({Finding::Severity::Violation, denial.field, denial.message});
      audited.results.push_back(std::move(refused));
    }
  return audited;
}

void Tally::add(Result result) {
  switch (result) {
    case Result::Pass: ++pass; break;
    case Result::Fail: ++fail; break;
    case Result::Warn: ++warn; break;
    case Result::Error: ++error; break;
    case Result::Skip: ++skip; break;
  }
}

void AuditReport::add(AuditedObject object) {
  ++objects;
  Tally& in_namespace = namespaces[object.ref.namespace_];
  bool if_enforced = false;
  for (const PolicyResult& result : object.results) {
    PolicyTally& tally = policies[result.policy];
    tally.mode = result.mode;
    tally.results.add(result.result);
    tally.denied_today += result.denied_today;
    tally.denied_if_enforced += result.denied_if_enforced;
    in_namespace.add(result.result);
    if_enforced = if_enforced || result.denied_if_enforced;
  }
  if (object.denied_today)
    ++denied_today;
  else if (if_enforced)
    ++denied_if_enforced;
  if (!object.flagged()) return;
  if (flagged.size() >= max_flagged_) {
    ++left_out;
    return;
  }
  flagged.push_back(std::move(object));
}

std::vector<json> policy_reports(const AuditReport& report, std::optional<std::chrono::system_clock::time_point> at) {
  std::optional<json> timestamp;
  if (at) {
    const auto since_epoch = at->time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    timestamp = json{{"seconds", seconds.count()},
                     {"nanos", std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count()}};
  }
  std::vector<json> out;
  std::map<std::string, std::size_t> index;  // namespace → its report in `out`
  Tally cluster;
  for (const auto& [ns, tally] : report.namespaces) {
    index[ns] = out.size();
    out.push_back({{"apiVersion", "wgpolicyk8s.io/v1alpha2"},
                   {"kind", "PolicyReport"},
                   {"metadata", report_metadata(ns)},
                   {"summary", summary_json(tally)},
                   {"results", json::array()}});
    cluster.pass += tally.pass;
    cluster.fail += tally.fail;
    cluster.warn += tally.warn;
    cluster.error += tally.error;
    cluster.skip += tally.skip;
  }
  std::map<std::string, std::size_t> left_out;
  for (const AuditedObject& object : report.flagged) {
    auto it = index.find(object.ref.namespace_);
    if (it == index.end()) continue;
    json& results = out[it->second]["results"];
    for (const PolicyResult& result : object.results) {
      if (result.result == Result::Pass) continue;
      if (results.size() >= kMaxReportResults) {
        ++left_out[object.ref.namespace_];
        continue;
      }
      results.push_back(result_json(object, result, timestamp));
    }
  }
  for (const auto& [ns, count] : left_out)
    out[index[ns]]["metadata"]["annotations"] = {{"gpu-admit.io/results-left-out", std::to_string(count)}};
  json cluster_report = {{"apiVersion", "wgpolicyk8s.io/v1alpha2"},
                         {"kind", "ClusterPolicyReport"},
                         {"metadata", report_metadata("")},
                         {"summary", summary_json(cluster)},
                         {"results", json::array()}};
  if (report.left_out)
    cluster_report["metadata"]["annotations"] = {{"gpu-admit.io/objects-left-out", std::to_string(report.left_out)}};
  out.push_back(std::move(cluster_report));
  return out;
}

}  // namespace gpuadmit::audit
