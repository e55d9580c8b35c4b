// The declarations of where each kind keeps its pod templates, and the walk that finds them.
// The built-in table below is written in the same YAML a config's `workloadKinds` uses and read by
// the same parser, so the syntax users extend is the one the shipped kinds are proved with.
#include <algorithm>
#include <limits>

#include "engine/input_limits.h"
#include "engine/workload_kinds.h"
#include "gpuadmit/config.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using Pointer = json::json_pointer;
using Declaration = WorkloadKinds::Declaration;

// Kubernetes' own controllers: a config may not redeclare them.
constexpr std::string_view kBuiltinControllers = R"(
- {group: apps, kind: Deployment, plural: deployments, pods: [{template: spec.template, replicas: [spec.replicas]}]}
- {group: apps, kind: ReplicaSet, plural: replicasets, pods: [{template: spec.template, replicas: [spec.replicas]}]}
- {group: apps, kind: StatefulSet, plural: statefulsets, pods: [{template: spec.template, replicas: [spec.replicas]}]}
- {group: apps, kind: DaemonSet, plural: daemonsets, pods: [{template: spec.template}]}
- {group: "", kind: ReplicationController, plural: replicationcontrollers,
   pods: [{template: spec.template, replicas: [spec.replicas]}]}
- {group: batch, kind: Job, plural: jobs, batch: true, pods: [{template: spec.template, replicas: [spec.parallelism]}]}
- {group: batch, kind: CronJob, plural: cronjobs, batch: true,
   pods: [{template: spec.jobTemplate.spec.template, replicas: [spec.jobTemplate.spec.parallelism]}]}
- {group: "", kind: PodTemplate, plural: podtemplates, pods: [{template: template}]}
)";

// The operators' custom resources, from their published CRDs (tests/data/crds/ holds copies;
// tests validate every mutation against them). Counts follow each operator's own defaults.
constexpr std::string_view kBuiltinCustomResources = R"(
# KServe: each component is an inline PodSpec whose labels and annotations sit beside it; the
# `model` shorthand (and the older per-framework ones) is a container outside `containers`.
- group: serving.kserve.io
  kind: InferenceService
  plural: inferenceservices
  pods:
  - podSpec: spec.predictor
    containers: [model, sklearn, xgboost, tensorflow, pytorch, triton, onnx, huggingface, pmml, lightgbm, paddle]
    replicas: [{path: spec.predictor.minReplicas, default: 1}]
  - podSpec: spec.transformer
    replicas: [{path: spec.transformer.minReplicas, default: 1}]
  - podSpec: spec.explainer
    containers: [art]
    replicas: [{path: spec.explainer.minReplicas, default: 1}]
- group: serving.kserve.io
  kind: LLMInferenceService
  plural: llminferenceservices
  pods:
  - {podSpec: spec.template, replicas: [spec.replicas]}
  - {podSpec: spec.worker, replicas: [spec.replicas]}
  - {podSpec: spec.prefill.template, replicas: [spec.prefill.replicas]}
  - {podSpec: spec.prefill.worker, replicas: [spec.prefill.replicas]}
# KubeRay: the head and every worker group (replicas × numOfHosts pods); the gang is the head and
# each group's minReplicas. KubeRay adds its own probes to containers that have none.
- group: ray.io
  kind: RayCluster
  plural: rayclusters
  gang: true
  operatorProbes: true
  pods:
  - template: spec.headGroupSpec.template
  - template: "spec.workerGroupSpecs[*].template"
    replicas: [{path: "spec.workerGroupSpecs[*].replicas", default: 0}, "spec.workerGroupSpecs[*].numOfHosts"]
    gangReplicas: [{path: "spec.workerGroupSpecs[*].minReplicas", default: 0}, "spec.workerGroupSpecs[*].numOfHosts"]
- group: ray.io
  kind: RayJob
  plural: rayjobs
  batch: true
  gang: true
  operatorProbes: true
  pods:
  - template: spec.rayClusterSpec.headGroupSpec.template
  - template: "spec.rayClusterSpec.workerGroupSpecs[*].template"
    replicas: [{path: "spec.rayClusterSpec.workerGroupSpecs[*].replicas", default: 0}, "spec.rayClusterSpec.workerGroupSpecs[*].numOfHosts"]
    gangReplicas: [{path: "spec.rayClusterSpec.workerGroupSpecs[*].minReplicas", default: 0}, "spec.rayClusterSpec.workerGroupSpecs[*].numOfHosts"]
  - {template: spec.submitterPodTemplate, gangReplicas: [0]}
- group: ray.io
  kind: RayService
  plural: rayservices
  gang: true
  operatorProbes: true
  pods:
  - template: spec.rayClusterConfig.headGroupSpec.template
  - template: "spec.rayClusterConfig.workerGroupSpecs[*].template"
    replicas: [{path: "spec.rayClusterConfig.workerGroupSpecs[*].replicas", default: 0}, "spec.rayClusterConfig.workerGroupSpecs[*].numOfHosts"]
    gangReplicas: [{path: "spec.rayClusterConfig.workerGroupSpecs[*].minReplicas", default: 0}, "spec.rayClusterConfig.workerGroupSpecs[*].numOfHosts"]
# LeaderWorkerSet: `replicas` groups of `size` pods, one of them the leader; without a
# leaderTemplate the leader is made from the workerTemplate. The gang is one group.
- group: leaderworkerset.x-k8s.io
  kind: LeaderWorkerSet
  plural: leaderworkersets
  gang: true
  pods:
  - template: spec.leaderWorkerTemplate.leaderTemplate
    replicas: [spec.replicas]
    gangReplicas: [1]
  - template: spec.leaderWorkerTemplate.workerTemplate
    replicas: [spec.replicas, {path: spec.leaderWorkerTemplate.size, minus: 1, minusWhen: spec.leaderWorkerTemplate.leaderTemplate}]
    gangReplicas: [{path: spec.leaderWorkerTemplate.size, default: 1, minus: 1, minusWhen: spec.leaderWorkerTemplate.leaderTemplate}]
# JobSet: each replicated Job runs `replicas` Jobs of `parallelism` pods, all at once.
- group: jobset.x-k8s.io
  kind: JobSet
  plural: jobsets
  batch: true
  gang: true
  pods:
  - template: "spec.replicatedJobs[*].template.spec.template"
    replicas: ["spec.replicatedJobs[*].replicas", "spec.replicatedJobs[*].template.spec.parallelism"]
# Kubeflow training operators: a map of replica types (Master, Worker, Launcher, ...). XGBoostJob,
# PaddleJob and JAXJob have the same shape; a config declares them the same way if it needs them.
- {group: kubeflow.org, kind: PyTorchJob, plural: pytorchjobs, batch: true, gang: true,
   pods: [{template: "spec.pytorchReplicaSpecs.*.template", replicas: ["spec.pytorchReplicaSpecs.*.replicas"]}]}
- {group: kubeflow.org, kind: TFJob, plural: tfjobs, batch: true, gang: true,
   pods: [{template: "spec.tfReplicaSpecs.*.template", replicas: ["spec.tfReplicaSpecs.*.replicas"]}]}
- {group: kubeflow.org, kind: MPIJob, plural: mpijobs, batch: true, gang: true,
   pods: [{template: "spec.mpiReplicaSpecs.*.template", replicas: ["spec.mpiReplicaSpecs.*.replicas"]}]}
# Kubeflow Trainer: a TrainJob names a TrainingRuntime that holds the pod templates; the job
# writes the trainer container (its resources as resourcesPerNode) and numNodes, all at once.
- group: trainer.kubeflow.org
  kind: TrainJob
  plural: trainjobs
  batch: true
  gang: true
  partialPodSpec: true
  pods:
  - podSpec: spec
    containers: [{key: trainer, resources: resourcesPerNode}]
    replicas: [{path: spec.trainer.numNodes, default: 1}]
# Volcano: tasks of `replicas` pods; a task's gang is its minAvailable (default: all of them).
- group: batch.volcano.sh
  kind: Job
  plural: jobs
  batch: true
  gang: true
  pods:
  - template: "spec.tasks[*].template"
    replicas: ["spec.tasks[*].replicas"]
    gangReplicas: ["spec.tasks[*].minAvailable"]
)";

// At most this many wildcards in one path: bounds the walk's nesting (not its breadth, which
// kMaxPodTargets bounds).
constexpr int kMaxWildcards = 3;

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// "spec.workerGroupSpecs[*].template", "spec.pytorchReplicaSpecs.*.template"
FieldPath parse_path(const ConfigNode& node) {
  const std::string text = node.as_string();
  FieldPath path;
  path.text = text;
  int wildcards = 0;
  std::size_t i = 0;
  auto bad = [&](const std::string& why) {
    node.fail("'" + text + "' is not a field path (" + why +
              "); write keys joined by '.', with [*] for every item of a list and * for every value of a map");
  };
  while (i < text.size()) {
    if (text.compare(i, 3, "[*]") == 0) {
      if (path.steps.empty()) bad("[*] follows a key");
      path.steps.push_back({FieldPath::Step::EachItem, {}});
      i += 3;
      ++wildcards;
    } else {
      if (!path.steps.empty()) {
        if (text[i] != '.') bad("expected '.' at character " + std::to_string(i + 1));
        ++i;
      }
      if (i < text.size() && text[i] == '*') {
        path.steps.push_back({FieldPath::Step::EachValue, {}});
        ++i;
        ++wildcards;
        continue;
      }
      std::size_t start = i;
      while (i < text.size() && is_key_char(text[i])) ++i;
      if (i == start) bad("an empty key at character " + std::to_string(start + 1));
      path.steps.push_back({FieldPath::Step::Key, text.substr(start, i - start)});
    }
  }
  if (path.steps.empty()) bad("it is empty");
  if (wildcards > kMaxWildcards) bad("more than " + std::to_string(kMaxWildcards) + " wildcards");
  return path;
}

Count parse_count(const ConfigNode& node, const FieldPath& pods) {
  Count count;
  count.declared = node.present();
  int pods_wildcards = 0;
  for (const auto& step : pods.steps) pods_wildcards += step.type != FieldPath::Step::Key;
  for (const ConfigNode& item : node.items()) {
    Count::Factor factor;
    if (item.yaml().IsMap()) {
      item.allow_only({"path", "default", "minus", "minusWhen"});
      if (!item.has("path")) item.fail("a factor needs `path`");
      factor.path = parse_path(item.child("path"));
      if (item.has("default")) factor.fallback = item.child("default").as_integer();
      factor.minus = item.integer("minus", 0);
      if (item.has("minusWhen")) factor.minus_when = parse_path(item.child("minusWhen"));
    } else if (item.yaml().IsScalar() && !item.as_string().empty() &&
               (std::isdigit(static_cast<unsigned char>(item.as_string()[0])) != 0)) {
      factor.constant = item.as_integer();
    } else {
      factor.path = parse_path(item);
    }
    for (const FieldPath* path : {&factor.path, &factor.minus_when}) {
      int wildcards = 0;
      for (const auto& step : path->steps) wildcards += step.type != FieldPath::Step::Key;
      if (wildcards > pods_wildcards)
        item.fail("'" + path->text + "' has more wildcards than the pod path '" + pods.text +
                  "'; each wildcard takes the item the pod template was found in");
    }
    if (factor.constant && *factor.constant < 0) item.fail("a count cannot be negative");
    if (factor.fallback && *factor.fallback < 0) item.fail("a default cannot be negative");
    if (factor.minus < 0) item.fail("`minus` cannot be negative");
    count.factors.push_back(std::move(factor));
  }
  return count;
}

std::shared_ptr<const Declaration> parse_declaration(const ConfigNode& node, bool builtin_controller) {
  if (!node.yaml().IsMap()) node.fail("each workload kind is a map with group, kind and pods");
  node.allow_only({"group", "kind", "plural", "versions", "batch", "gang", "operatorProbes", "partialPodSpec", "pods"});
  auto declaration = std::make_shared<Declaration>();
  if (!node.has("group") || !node.has("kind")) node.fail("a workload kind needs `group` and `kind`");
  declaration->group = node.child("group").as_string();
  declaration->kind = node.child("kind").as_string();
  if (declaration->kind.empty()) node.child("kind").fail("`kind` cannot be empty");
  declaration->plural = node.string("plural", "");
  declaration->versions = node.strings("versions");
  declaration->batch = node.boolean("batch", false);
  declaration->gang = node.boolean("gang", false);
  declaration->operator_probes = node.boolean("operatorProbes", false);
  declaration->partial_pod_spec = node.boolean("partialPodSpec", false);
  declaration->builtin_controller = builtin_controller;
  const ConfigNode pods = node.child("pods");
  if (pods.items().empty()) node.fail("`pods` must list at least one pod template or pod spec");
  for (const ConfigNode& entry : pods.items()) {
    if (!entry.yaml().IsMap()) entry.fail("each pod entry is a map with `template` or `podSpec`");
    entry.allow_only({"template", "podSpec", "containers", "replicas", "gangReplicas"});
    Declaration::Pods pod;
    if (entry.has("template") == entry.has("podSpec"))
      entry.fail("give exactly one of `template` (a PodTemplateSpec: metadata and spec) or `podSpec` (a PodSpec "
                 "written inline, with its labels and annotations beside it)");
    pod.inline_spec = entry.has("podSpec");
    pod.path = parse_path(entry.child(pod.inline_spec ? "podSpec" : "template"));
    // A key, or {key, resources} for a container whose resources go by another name.
    for (const ConfigNode& item : entry.child("containers").items()) {
      const bool renamed = item.yaml().IsMap();
      if (renamed) item.allow_only({"key", "resources"});
      const ConfigNode key = renamed ? item.child("key") : item;
      const std::string name = key.present() ? key.as_string() : "";
      const std::string resources = renamed ? item.string("resources", "") : "";
      for (const std::string* text : {&name, &resources})
        if ((text == &name || !text->empty()) &&
            (text->empty() || !std::all_of(text->begin(), text->end(), is_key_char)))
          item.fail("a shorthand container is one key of the pod spec, and its resources one key of it");
      pod.shorthand.push_back(name);
      pod.shorthand_resources.push_back(resources == "resources" ? "" : resources);
    }
    if (!pod.shorthand.empty() && !pod.inline_spec)
      entry.child("containers").fail("shorthand containers are keys of an inline `podSpec`");
    pod.replicas = parse_count(entry.child("replicas"), pod.path);
    pod.gang = parse_count(entry.child("gangReplicas"), pod.path);
    declaration->pods.push_back(std::move(pod));
  }
  return declaration;
}

std::vector<std::shared_ptr<const Declaration>> parse_list(std::string_view yaml, const std::string& source,
                                                           bool builtin_controller) {
  ConfigNode list(load_yaml(std::string(yaml)), source, "workloadKinds");
  std::vector<std::shared_ptr<const Declaration>> out;
  for (const ConfigNode& item : list.items()) out.push_back(parse_declaration(item, builtin_controller));
  return out;
}

bool is_core_group(std::string_view group) { return group.empty() || group == "apps" || group == "batch"; }

}  // namespace

WorkloadKinds::WorkloadKinds() {
  declarations_ = parse_list(kBuiltinControllers, "<built-in controllers>", true);
  for (auto& declaration : parse_list(kBuiltinCustomResources, "<built-in custom resources>", false))
    declarations_.push_back(std::move(declaration));
}
WorkloadKinds::~WorkloadKinds() = default;
WorkloadKinds::WorkloadKinds(const WorkloadKinds&) = default;
WorkloadKinds& WorkloadKinds::operator=(const WorkloadKinds&) = default;

const WorkloadKinds& WorkloadKinds::builtin() {
  static const WorkloadKinds kinds;
  return kinds;
}

WorkloadKinds WorkloadKinds::with_config(const ConfigNode& list) {
  WorkloadKinds kinds = builtin();
  for (const ConfigNode& item : list.items()) {
    auto declaration = parse_declaration(item, false);
    auto same = [&](const std::shared_ptr<const Declaration>& other) {
      return other->group == declaration->group && other->kind == declaration->kind;
    };
    auto it = std::find_if(kinds.declarations_.begin(), kinds.declarations_.end(), same);
    if (is_core_group(declaration->group) || (it != kinds.declarations_.end() && (*it)->builtin_controller))
      item.fail("group '" + declaration->group + "' is Kubernetes' own; its kinds are built in and cannot be declared");
    if (it != kinds.declarations_.end())
      *it = std::move(declaration);  // replaces the built-in declaration of this custom resource
    else
      kinds.declarations_.push_back(std::move(declaration));
  }
  return kinds;
}

const Declaration* WorkloadKinds::find(std::string_view group, std::string_view version, std::string_view kind) const {
  for (const auto& declaration : declarations_) {
    if (declaration->group != group || declaration->kind != kind) continue;
    if (!declaration->versions.empty() &&
        std::find(declaration->versions.begin(), declaration->versions.end(), version) == declaration->versions.end())
      continue;
    return declaration.get();
  }
  return nullptr;
}

std::vector<WorkloadKinds::Name> WorkloadKinds::custom_resources() const {
  std::vector<Name> out;
  for (const auto& declaration : declarations_)
    if (!declaration->builtin_controller) out.push_back({declaration->group, declaration->kind, declaration->plural});
  return out;
}

std::string WorkloadKinds::plural(std::string_view group, std::string_view kind) const {
  for (const auto& declaration : declarations_)
    if (declaration->group == group && declaration->kind == kind) return declaration->plural;
  return {};
}

// ---- the walk ----

namespace {

// Reads an integer count at `path`, each wildcard taking the item in `bindings`.
const json* value_at(const json& object, const FieldPath& path, const std::vector<json::json_pointer>& bindings) {
  const json* at = &object;
  std::size_t wildcard = 0;
  for (std::size_t i = 0; i < path.steps.size(); ++i) {
    const FieldPath::Step& step = path.steps[i];
    if (step.type == FieldPath::Step::Key) {
      if (!at->is_object()) return nullptr;
      auto it = at->find(step.key);
      if (it == at->end() || it->is_null()) return nullptr;
      at = &*it;
      continue;
    }
    // A wildcard: jump to the item the template was found in (its pointer from the root).
    if (wildcard >= bindings.size()) return nullptr;
    const json::json_pointer& bound = bindings[wildcard++];
    if (!object.contains(bound)) return nullptr;
    at = &object.at(bound);
  }
  return at;
}

}  // namespace

std::int64_t Count::evaluate(const json& object, const std::vector<json::json_pointer>& bindings,
                             std::int64_t fallback, bool* complete) const {
  if (complete) *complete = true;
  std::int64_t product = 1;
  for (const Factor& factor : factors) {
    std::int64_t value = 1;
    if (factor.constant) {
      value = *factor.constant;
    } else {
      const json* at = value_at(object, factor.path, bindings);
      if (at && at->is_number_integer()) {
        // Positive integers decode as unsigned; one past int64 saturates rather than wrapping.
        value = at->is_number_unsigned() && at->get<std::uint64_t>() > std::numeric_limits<std::int64_t>::max()
                    ? std::numeric_limits<std::int64_t>::max()
                    : at->get<std::int64_t>();
      } else if (factor.fallback) {
        value = *factor.fallback;
      } else {
        if (complete) *complete = false;
        value = fallback;
      }
      const bool minus_applies = factor.minus_when.steps.empty() || value_at(object, factor.minus_when, bindings);
      if (minus_applies) value -= std::min(value, factor.minus);
    }
    value = std::max<std::int64_t>(0, value);
    if (value != 0 && product > std::numeric_limits<std::int64_t>::max() / value)
      product = std::numeric_limits<std::int64_t>::max();
    else
      product *= value;
  }
  return product;
}

}  // namespace gpuadmit
