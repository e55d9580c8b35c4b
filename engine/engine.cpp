#include "gpuadmit/engine.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "engine/input_limits.h"
#include "engine/json_patch.h"
#include "engine/mutation_replay.h"
#include "engine/review_wire.h"
#include "engine/shorthand_containers.h"
#include "engine/text.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

constexpr std::string_view kExemptAnnotation = "gpu-admit.io/exempt";
// Kubernetes shows warnings to kubectl users but truncates long ones; the full text goes to the
// audit annotations instead.
constexpr std::size_t kMaxWarningLength = 120;

// Policies named in `gpu-admit.io/exempt` on the object or its pod template.
std::set<std::string> exemptions_requested(const PolicyContext& context) {
  std::set<std::string> names;
  std::vector<std::string> values;
  for (const PodTarget& pod : context.workload.pods)
    values.push_back(context.annotation(pod, kExemptAnnotation));
  // An object without pod templates (an autoscaler) is exempted by its own annotation.
  if (context.workload.pods.empty()) {
    const json* annotations = context.object.is_object() && context.object.contains("metadata") &&
                                      context.object["metadata"].is_object() &&
                                      context.object["metadata"].contains("annotations")
                                  ? &context.object["metadata"]["annotations"]
                                  : nullptr;
    values.push_back(annotations && annotations->is_object() && annotations->contains(std::string(kExemptAnnotation)) &&
                             (*annotations)[std::string(kExemptAnnotation)].is_string()
                         ? (*annotations)[std::string(kExemptAnnotation)].get<std::string>()
                         : std::string());
  }
  for (const std::string& value : values) {
    std::stringstream list(value);
    std::string name;
    while (std::getline(list, name, ',')) {
      name = trim(name);
      if (!name.empty()) names.insert(name);
    }
  }
  return names;
}

// Collects findings into the answer according to each policy's mode.
class Verdict {
 public:
  void add(const std::string& policy, Mode mode, const Finding& finding) {
    std::string where = finding.field.empty() ? "" : finding.field + ": ";
    switch (finding.severity) {
      case Finding::Severity::Violation:
        if (mode == Mode::Enforce) {
          denials_.push_back({policy, finding.field, finding.message});
          return;
        }
        if (mode == Mode::Warn) return warn(policy, "[" + policy + "] " + where + finding.message);
        return annotate(policy, where + finding.message);
      case Finding::Severity::Advice:
        if (mode == Mode::Audit) return annotate(policy, where + finding.message);
        return warn(policy, "[" + policy + "] " + where + finding.message);
      case Finding::Severity::Change:
        if (mode == Mode::Enforce) {
          changes_.emplace_back(policy, "applied: " + where + finding.message);
          return;
        }
        if (mode == Mode::Warn)
          return warn(policy, "[" + policy + "] (warn mode, not applied) " + where + finding.message);
        return annotate(policy, "not applied (audit mode): " + where + finding.message);
    }
  }

  // A policy that would have denied on cluster state that cannot be trusted: one warning says
  // why for the whole answer, the policy's audit annotation says it for the policy.
  void stale_cluster(const std::string& policy, std::string_view reason) {
    annotate(policy, "not denied: the cluster state is stale (" + std::string(reason) + ")");
    if (stale_warned_) return;
    stale_warned_ = true;
    warnings_.insert(warnings_.begin(),
                     shorten("[gpu-admit] not denied, cluster state is stale: " + std::string(reason), kMaxWarningLength));
    warning_sources_.insert(warning_sources_.begin(), {policy, std::string()});
  }

  void annotate(const std::string& policy, const std::string& text) {
    std::string& value = annotations_[policy];
    value += (value.empty() ? "" : "; ") + text;
  }

  bool denied() const { return !denials_.empty(); }

  void finish(ReviewOutcome& outcome) {
    Response& response = outcome.response;
    const Workload& workload = outcome.workload;
    // A denied request is not patched, so what the mutations did is not recorded as applied.
    if (denials_.empty())
      for (const auto& [policy, text] : changes_) annotate(policy, text);
    cap_warnings();
    response.warnings = std::move(warnings_);
    response.audit_annotations = std::move(annotations_);
    if (denials_.empty()) return;
    response.allowed = false;
    response.status_code = 403;
    response.status_reason = "Forbidden";
    std::string message = "gpu-admit denied " + workload.kind + " " +
                          (workload.namespace_.empty() ? "" : workload.namespace_ + "/") +
                          workload.name + ": ";
    for (std::size_t i = 0; i < denials_.size(); ++i) message += (i ? "; " : "") + denials_[i].text();
    response.status_message = message;
    outcome.denials = std::move(denials_);
  }

 private:
  void warn(const std::string& policy, const std::string& text) {
    const std::string prefix = "[" + policy + "] ";
    const std::string full = text.starts_with(prefix) ? text.substr(prefix.size()) : text;
    const bool annotated = text.size() > kMaxWarningLength;
    if (annotated) annotate(policy, full);
    warnings_.push_back(shorten(text, kMaxWarningLength));
    warning_sources_.push_back({policy, annotated ? std::string() : full});
  }

  // Keeps the first kMaxWarnings - 1 warnings and replaces the rest by one that counts them; the
  // dropped ones not yet in an audit annotation are added there.
  void cap_warnings() {
    if (warnings_.size() <= kMaxWarnings) return;
    const std::size_t kept = kMaxWarnings - 1;
    for (std::size_t i = kept; i < warnings_.size(); ++i)
      if (!warning_sources_[i].second.empty())
        annotate(warning_sources_[i].first, warning_sources_[i].second);
    const std::size_t dropped = warnings_.size() - kept;
    warnings_.resize(kept);
    warnings_.push_back("[gpu-admit] " + std::to_string(dropped) +
                        " more warnings are in the audit annotations");
  }

  std::vector<Denial> denials_;
  std::vector<std::pair<std::string, std::string>> changes_;
  std::vector<std::string> warnings_;
  std::vector<std::pair<std::string, std::string>> warning_sources_;  // policy, text to annotate
  std::map<std::string, std::string> annotations_;
  bool stale_warned_ = false;
};

}  // namespace

std::shared_ptr<const Engine> Engine::from_yaml(std::string_view yaml_text, std::string source) {
  YAML::Node root;
  try {
    root = load_yaml(std::string(yaml_text));
  } catch (const InputError& error) {
    throw ConfigError(source + ":" + error.what());  // "line:column: ..."
  }
  ConfigNode top(root, source, "");
  if (top.present() && !root.IsMap()) top.fail("the configuration must be a map");
  top.allow_only({"excludedNamespaces", "gpuResources", "gpuDeviceClasses", "workloadKinds", "policies"});
  EngineConfig config;
  config.source = source;
  config.excluded_namespaces = top.strings("excludedNamespaces");
  config.gpu.extra = top.strings("gpuResources");
  if (top.has("gpuDeviceClasses")) config.gpu.device_classes = top.strings("gpuDeviceClasses");
  config.kinds = WorkloadKinds::with_config(top.child("workloadKinds"));
  // An empty file, one of only comments, or one caught half-written would otherwise load as
  // "every policy off": enforcement must never be switched off by a mistake. Turning every policy
  // off takes naming each with `mode: off`.
  const YAML::Node policies = top.has("policies") ? static_cast<const YAML::Node&>(root)["policies"] : YAML::Node();
  if (!policies.IsDefined() || policies.IsNull() || (policies.IsMap() && policies.size() == 0))
    top.fail("the configuration names no policy (is the file empty, only comments, or cut short?); "
             "list the policies under `policies:`, with `mode: off` for those to switch off");

  PolicyBuildContext build{config.gpu, config.kinds};
  for (auto& [name, node] : top.child("policies").entries()) {
    const PolicyInfo* info = find_policy(name);
    if (!info) {
      std::string known;
      for (const PolicyInfo& p : policy_registry()) known += (known.empty() ? "" : ", ") + std::string(p.name);
      node.fail("unknown policy '" + name + "' (built-in policies: " + known + ")");
    }
    if (node.present() && !node.yaml().IsMap()) node.fail("expected a map of the policy's settings");
    std::vector<std::string_view> keys;
    for (const PolicyKey& key : PolicySettings::keys()) keys.push_back(key.name);
    for (const PolicyKey& key : info->keys) keys.push_back(key.name);
    node.allow_only(keys);
    ConfiguredPolicy configured{PolicySettings::parse(name, node), info, info->make(node, build)};
    (info->kind == PolicyKind::Mutating ? config.mutating : config.validating)
        .push_back(std::move(configured));
  }
  return std::shared_ptr<const Engine>(new Engine(std::move(config)));
}

std::shared_ptr<const Engine> Engine::from_file(const std::string& path) {
  std::string text;
  try {
    text = read_input_file(path);
  } catch (const InputError& error) {
    throw ConfigError(std::string(error.what()) + " (the configuration file)");
  }
  return from_yaml(text, path);
}

std::shared_ptr<const Engine> Engine::from_default() {
  return from_yaml(embedded_default_config(), "<embedded policies/default.yaml>");
}

std::optional<std::int64_t> Engine::namespace_gpu_budget(std::string_view ns) const {
  for (const std::string& pattern : config_.excluded_namespaces)
    if (namespace_matches(pattern, ns)) return std::nullopt;
  for (const ConfiguredPolicy& configured : config_.validating) {
    if (configured.settings.mode_for(ns) == Mode::Off || configured.settings.exempt_namespace(ns)) continue;
    if (auto budget = configured.policy->namespace_gpu_budget(ns)) return budget;
  }
  return std::nullopt;
}

std::string Denial::text() const {
  return "[" + policy + "] " + (field.empty() ? "" : field + ": ") + message;
}

namespace {

// Why a request is passed through without running any policy ("" when it is reviewed). Sets
// outcome.workload, and outcome.response for a malformed object.
std::string skip_reason(const Request& request, const EngineConfig& config, ReviewOutcome& outcome) {
  if (request.operation != "CREATE" && request.operation != "UPDATE") return request.operation + " is not reviewed";
  if (!request.sub_resource.empty()) return "subresource " + request.sub_resource + " is not reviewed";
  outcome.workload = locate_workload(request.object, config.kinds);
  Workload& workload = outcome.workload;
  if (!workload.malformed.empty()) {
    outcome.response = malformed_request_response(ReviewError("request.object." + workload.malformed, request.uid));
    return "malformed object: " + workload.malformed;
  }
  if (!request.namespace_.empty()) workload.namespace_ = request.namespace_;
  for (const std::string& pattern : config.excluded_namespaces)
    if (namespace_matches(pattern, workload.namespace_)) return "namespace " + workload.namespace_ + " is excluded";
  if (!workload.supported)
    return (workload.kind.empty() ? std::string("object") : workload.kind) + " has no pod spec to review";
  if (request.operation != "CREATE" && workload.kind == "Pod")
    return "Pod updates are not reviewed (a pod's spec is immutable)";
  return {};
}

// One review's run of its policies, in order, over one working copy of the object, or over the
// object itself (`in_place`) when no mutation runs: then nothing needs the object as it came.
class PolicyRun {
 public:
  PolicyRun(const Request& request, nlohmann::json* in_place, const EngineConfig& config,
            const capacity::ClusterModel* cluster, std::string_view cluster_stale, const k8s::ObjectCatalog* manifests,
            ReviewOutcome& outcome)
      : request_(request),
        config_(config),
        cluster_(cluster),
        cluster_stale_(cluster_stale),
        manifests_(manifests),
        outcome_(outcome),
        copy_(in_place ? std::nullopt : std::optional<json>(request.object)),
        working_(in_place ? *in_place : *copy_),
        shorthand_(outcome.workload, working_) {
    PolicyContext probe(request_, outcome_.workload, config_.gpu, working_);
    requested_exemptions_ = exemptions_requested(probe);
    // Once per review: no policy changes how a pod gets its GPUs.
    probe.cluster = cluster_;
    probe.manifests = manifests_;
    for (const PodTarget& pod : outcome_.workload.pods) gpu_uses_.push_back(probe.gpu_use_of(working_, pod));
  }

  void run(const ConfiguredPolicy& configured, bool mutating) {
    const PolicySettings& settings = configured.settings;
    const std::string& ns = outcome_.workload.namespace_;
    PolicyOutcome result;
    result.policy = settings.name;
    result.mode = settings.mode_for(ns);
    if (result.mode != Mode::Off && !exempted(settings, result)) execute(configured, mutating, result);
    mutations_ran_ = mutations_ran_ || mutating;
    outcome_.policies.push_back(std::move(result));
  }

  // The answer: the verdict, and for a CREATE the patch (none when denied) and the mutated object.
  void finish() {
    try {
      shorthand_.restore(working_);
    } catch (const std::exception& error) {
      // A mutation took a shorthand container away: what the mutations did cannot be put back
      // where the user wrote it, so nothing is patched and the request is denied.
      verdict_.add("gpu-admit", Mode::Enforce, {Finding::Severity::Violation, "", error.what()});
      working_ = request_.object;
    }
    verdict_.finish(outcome_);
    if (request_.operation != "CREATE") return;
    // Only a mutating policy changes the object (validating ones read it): with none run (the
    // /validate route), there is nothing to diff.
    outcome_.response.patch =
        outcome_.response.allowed && mutations_ran_ ? json_patch_diff(request_.object, working_) : json::array();
    outcome_.mutated = std::move(working_);
  }

 private:
  // Exempt by namespace, or by the annotation where the policy allows it.
  bool exempted(const PolicySettings& settings, PolicyOutcome& result) {
    const std::string& ns = outcome_.workload.namespace_;
    if (settings.exempt_namespace(ns)) {
      result.exempted = true;
      verdict_.annotate(settings.name, "exempt: namespace " + ns);
      return true;
    }
    if (!requested_exemptions_.count(settings.name)) return false;
    if (settings.exemptible_by_annotation) {
      result.exempted = true;
      verdict_.annotate(settings.name, "exempt: annotation " + std::string(kExemptAnnotation));
      return true;
    }
    verdict_.add(settings.name, Mode::Enforce,
                 {Finding::Severity::Advice, "metadata.annotations",
                  std::string(kExemptAnnotation) + " names this policy, but the configuration "
                  "does not allow exempting it; it still applies"});
    return false;
  }

  void execute(const ConfiguredPolicy& configured, bool mutating, PolicyOutcome& result) {
    const PolicySettings& settings = configured.settings;
    // Stale cluster state: what would deny only warns (the mode reported stays enforce).
    const bool untrusted = cluster_ && !cluster_stale_.empty() && configured.info && configured.info->reads_cluster &&
                           result.mode == Mode::Enforce;
    const Mode verdict_mode = untrusted ? Mode::Warn : result.mode;
    // Warn and audit modes must not change the object: mutations in those modes run on a scratch
    // copy. Validating policies only read (const access), so they see the object itself.
    const bool applies = mutating && result.mode == Mode::Enforce;
    json scratch;
    json& target = mutating && !applies ? (scratch = working_) : working_;
    PolicyContext context(request_, outcome_.workload, config_.gpu, target);
    context.cluster = cluster_;
    context.manifests = manifests_;
    context.gpu_uses = &gpu_uses_;
    try {
      configured.policy->run(context);
      if (applies) applied_.push_back({settings.name, configured.policy.get()});
    } catch (const std::exception& error) {
      context.violation("", std::string("the policy could not evaluate this object: ") + error.what());
      result.error = true;
      if (applies) roll_back(context);
    }
    result.findings = context.take_findings();
    for (Finding& finding : result.findings) {
      // A finding about a shorthand container is named where the user wrote it.
      if (!shorthand_.empty()) finding.field = shorthand_.field(finding.field);
      verdict_.add(settings.name, verdict_mode, finding);
      if (finding.severity == Finding::Severity::Violation) ++result.violations;
      if (finding.severity == Finding::Severity::Violation && verdict_mode == Mode::Enforce) result.denied = true;
      if (finding.severity == Finding::Severity::Violation && untrusted) result.degraded = true;
    }
    if (result.degraded) verdict_.stale_cluster(settings.name, cluster_stale_);
    result.fired = !result.findings.empty();
  }

  // A policy that fails half-way changes nothing: the object is rebuilt from the mutations that
  // completed (engine/mutation_replay.h), so the common path never copies it to keep a "before".
  void roll_back(PolicyContext& context) {
    ReplayedObject replayed = replay_mutations(request_, outcome_.workload, config_.gpu, cluster_, &gpu_uses_, applied_);
    working_ = std::move(replayed.object);
    if (!replayed.error.empty()) {
      context.violation("", replayed.error);
      applied_.clear();
    }
  }

  const Request& request_;
  const EngineConfig& config_;
  const capacity::ClusterModel* cluster_;
  std::string_view cluster_stale_;
  const k8s::ObjectCatalog* manifests_;
  std::vector<PodGpuUse> gpu_uses_;  // workload.pods order
  ReviewOutcome& outcome_;
  std::optional<json> copy_;  // the object the policies change, unless they read it in place
  json& working_;             // *copy_, or the request's own object
  ShorthandContainers shorthand_;  // moved into working_ for the policies; back at finish()
  std::vector<AppliedMutation> applied_;  // the enforce-mode mutations that completed, in order
  bool mutations_ran_ = false;  // a mutating policy ran, in any mode
  Verdict verdict_;
  std::set<std::string> requested_exemptions_;
};

}  // namespace

ReviewOutcome Engine::review(const Request& request, const capacity::ClusterModel* cluster,
                              ReviewPhases phases, std::string_view cluster_stale,
                              const k8s::ObjectCatalog* manifests) const {
  return run_review(request, nullptr, cluster, phases, cluster_stale, manifests);
}

ReviewOutcome Engine::review(Request&& request, const capacity::ClusterModel* cluster, ReviewPhases phases,
                             std::string_view cluster_stale) const {
  return run_review(request, &request.object, cluster, phases, cluster_stale, nullptr);
}

ReviewOutcome Engine::run_review(const Request& request, json* own_object, const capacity::ClusterModel* cluster,
                                 ReviewPhases phases, std::string_view cluster_stale,
                                 const k8s::ObjectCatalog* manifests) const {
  ReviewOutcome outcome;
  outcome.response.uid = request.uid;
  outcome.operation = request.operation;
  outcome.kind = request.kind;
  outcome.dry_run = request.dry_run;
  outcome.skipped = skip_reason(request, config_, outcome);
  if (!outcome.skipped.empty()) return outcome;
  // An UPDATE is compared with the object it replaces: its shorthand containers are moved into
  // `containers` too, so the policies read both the same way. Only then is the request copied.
  std::optional<Request> with_old_moved;
  if (request.operation == "UPDATE") {
    const Workload old = locate_workload(request.old_object, config_.kinds);
    if (std::any_of(old.pods.begin(), old.pods.end(), [](const PodTarget& pod) { return !pod.shorthand_containers.empty(); })) {
      with_old_moved = request;
      const ShorthandContainers moved(old, with_old_moved->old_object);
    }
  }
  // A partial pod spec (a TrainJob's) is completed by its operator: a patch could add fields its
  // schema does not have, so nothing is mutated.
  const bool mutates =
      request.operation == "CREATE" && phases != ReviewPhases::ValidateOnly && !outcome.workload.partial_pod_spec;
  // With no mutation, the "before" of a diff or a roll-back is never needed: the policies may
  // read the request's own object, where the caller gave it up.
  json* in_place = mutates || with_old_moved ? nullptr : own_object;
  PolicyRun run(with_old_moved ? *with_old_moved : request, in_place, config_, cluster, cluster_stale, manifests,
                outcome);
  if (mutates)
    for (const ConfiguredPolicy& policy : config_.mutating) run.run(policy, true);
  if (phases != ReviewPhases::MutateOnly)
    for (const ConfiguredPolicy& policy : config_.validating) run.run(policy, false);
  run.finish();
  return outcome;
}

HttpAnswer answer_admission_review(const Engine& engine, std::string_view body,
                                   const capacity::ClusterModel* cluster, ReviewPhases phases,
                                   std::string_view cluster_stale) {
  HttpAnswer answer;
  json review;
  try {
    review = parse_json(body);
  } catch (const InputError& error) {
    answer.status = 400;
    answer.body = std::string("request body is not valid JSON: ") + error.what();
    return answer;
  }
  Request request;
  try {
    request = decode_admission_review(std::move(review));
  } catch (const ReviewError& error) {
    if (error.uid().empty()) {
      answer.status = 400;
      answer.body = std::string("malformed AdmissionReview: ") + error.what();
      return answer;
    }
    answer.body = serialize_admission_review(malformed_request_response(error));
    answer.allowed = false;
    return answer;
  }
  answer.outcome = engine.review(std::move(request), cluster, phases, cluster_stale);
  answer.body = serialize_admission_review(answer.outcome->response);
  answer.allowed = answer.outcome->response.allowed;
  return answer;
}

std::string shorten(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t cut = limit - 3;  // room for "..."
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

Request request_for_manifest(const json& object, const std::string& default_namespace, const WorkloadKinds& kinds) {
  Request request;
  Workload workload = locate_workload(object, kinds);
  request.operation = "CREATE";
  request.object = object;
  request.name = workload.name;
  request.namespace_ = workload.namespace_.empty() ? default_namespace : workload.namespace_;
  auto slash = workload.api_version.find('/');
  request.kind.group = slash == std::string::npos ? "" : workload.api_version.substr(0, slash);
  request.kind.version = slash == std::string::npos ? workload.api_version : workload.api_version.substr(slash + 1);
  request.kind.kind = workload.kind;
  std::string plural = kinds.plural(request.kind.group, workload.kind);
  if (plural.empty()) {  // a guess, as kubectl's would be without discovery
    plural = workload.kind;
    for (char& c : plural) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    plural += "s";
  }
  request.resource = {request.kind.group, request.kind.version, plural};
  request.uid = "gpu-admit-check/" + request.namespace_ + "/" + plural + "/" + workload.name;
  return request;
}

}  // namespace gpuadmit
