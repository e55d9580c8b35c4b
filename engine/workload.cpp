#include "gpuadmit/workload.h"

#include <algorithm>

#include "engine/k8s/json_fields.h"
#include "engine/workload_kinds.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using Pointer = json::json_pointer;

std::string string_at(const json& object, const char* a, const char* b = nullptr) {
  namespace jf = k8s::json_fields;
  if (!b) return jf::string_or(object, a);
  auto it = object.is_object() ? object.find(a) : object.end();
  return it == object.end() ? std::string() : jf::string_or(*it, b);
}

// One place a declared pod path matched: its pointer, its field for messages, and the items its
// wildcards took (for the counts).
struct Match {
  Pointer pointer;
  std::string field;
  std::vector<Pointer> bindings;
};

// Walks `path` from `at`. Every level on the way that is present must be of the type the path
// says (an object for a key, a list for [*]), as the API server's decoder requires; the first one
// that is not makes the object malformed. Stops past kMaxPodTargets matches.
void walk(const json& at, const FieldPath& path, std::size_t step, const Pointer& pointer, const std::string& field,
          std::vector<Pointer>& bindings, std::vector<Match>& out, Workload& workload) {
  if (!workload.malformed.empty() || out.size() > kMaxPodTargets) return;
  if (step == path.steps.size()) {
    if (!at.is_object()) {
      workload.malformed = field + " must be an object";
      return;
    }
    out.push_back({pointer, field, bindings});
    return;
  }
  const FieldPath::Step& next = path.steps[step];
  if (next.type == FieldPath::Step::EachItem) {
    if (!at.is_array()) {
      workload.malformed = field + " must be a list";
      return;
    }
    for (std::size_t i = 0; i < at.size() && out.size() <= kMaxPodTargets; ++i) {
      if (at[i].is_null()) continue;
      bindings.push_back(pointer / i);
      walk(at[i], path, step + 1, pointer / i, field + "[" + std::to_string(i) + "]", bindings, out, workload);
      bindings.pop_back();
    }
    return;
  }
  if (!at.is_object()) {
    workload.malformed = (field.empty() ? std::string("the object") : field) + " must be an object";
    return;
  }
  if (next.type == FieldPath::Step::EachValue) {
    for (auto it = at.begin(); it != at.end() && out.size() <= kMaxPodTargets; ++it) {
      if (it->is_null()) continue;
      bindings.push_back(pointer / it.key());
      walk(*it, path, step + 1, pointer / it.key(), field_path(field, it.key()), bindings, out, workload);
      bindings.pop_back();
    }
    return;
  }
  auto it = at.find(next.key);
  if (it == at.end() || it->is_null()) return;
  walk(*it, path, step + 1, pointer / next.key, field_path(field, next.key), bindings, out, workload);
}

// The pod targets of one declared pod path.
void add_pods(const json& object, const WorkloadKinds::Declaration& kind, const WorkloadKinds::Declaration::Pods& pods,
              Workload& workload) {
  std::vector<Match> matches;
  std::vector<Pointer> bindings;
  walk(object, pods.path, 0, Pointer(), "", bindings, matches, workload);
  for (const Match& match : matches) {
    if (!workload.malformed.empty()) return;
    if (workload.pods.size() >= kMaxPodTargets) {
      workload.malformed = "spec holds more than " + std::to_string(kMaxPodTargets) +
                           " pod templates; gpu-admit reviews at most that many in one object";
      return;
    }
    const json& at = object.at(match.pointer);
    PodTarget pod;
    if (pods.inline_spec) {
      pod = {match.pointer, match.pointer, match.field, match.field, 1, 0, {}, {}};
      for (std::size_t i = 0; i < pods.shorthand.size(); ++i) {
        const std::string& key = pods.shorthand[i];
        auto it = at.find(key);
        if (it == at.end() || it->is_null()) continue;
        if (!it->is_object()) {
          workload.malformed = field_path(match.field, key) + " must be an object";
          return;
        }
        const std::string& resources = pods.shorthand_resources[i];
        if (!resources.empty() && it->contains("resources")) {
          workload.malformed = field_path(match.field, key) + " has both resources and " + resources;
          return;
        }
        pod.shorthand_containers.push_back(key);
        pod.shorthand_resources.push_back(resources);
      }
      auto containers = at.find("containers");
      if (!pod.shorthand_containers.empty() && containers != at.end() && !containers->is_null() &&
          !containers->is_array()) {
        workload.malformed = field_path(match.field, "containers") + " must be a list";
        return;
      }
    } else {
      for (const char* part : {"metadata", "spec"}) {
        auto it = at.find(part);
        if (it != at.end() && !it->is_null() && !it->is_object()) {
          workload.malformed = field_path(match.field, part) + " must be an object";
          return;
        }
      }
      auto spec = at.find("spec");
      if (spec == at.end() || !spec->is_object()) continue;
      pod = {match.pointer / "spec", match.pointer / "metadata", field_path(match.field, "spec"),
             field_path(match.field, "metadata"), 1, 0, {}, {}};
    }
    pod.replicas = pods.replicas.evaluate(object, match.bindings, 1);
    if (kind.gang) {
      bool complete = pods.gang.declared;
      pod.gang_replicas = pods.gang.declared ? pods.gang.evaluate(object, match.bindings, 0, &complete) : 0;
      if (!complete) pod.gang_replicas = pod.replicas;
    }
    workload.pods.push_back(std::move(pod));
  }
}

// The top-level shape every Kubernetes object has: string apiVersion and kind, an object as
// metadata with string name and namespace.
std::string shape_error(const json& object) {
  for (const char* key : {"apiVersion", "kind"}) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      return std::string(key) + " must be a non-empty string";
  }
  auto metadata = object.find("metadata");
  if (metadata == object.end() || metadata->is_null()) return {};
  if (!metadata->is_object()) return "metadata must be an object";
  for (const char* key : {"name", "generateName", "namespace"}) {
    auto it = metadata->find(key);
    if (it != metadata->end() && !it->is_null() && !it->is_string())
      return std::string("metadata.") + key + " must be a string";
  }
  auto ns = metadata->find("namespace");
  if (ns != metadata->end() && ns->is_string() && !ns->get_ref<const std::string&>().empty() &&
      !is_dns_label(ns->get_ref<const std::string&>()))
    return "metadata.namespace must be a DNS label (lower-case letters, digits and '-', at most 63)";
  return {};
}

// ---- autoscalers ----

// A field read as the API server's decoder reads it: absent or null is unset; any other type than
// the one declared makes the object malformed (the reason names the field).
struct Reader {
  Workload& workload;
  bool ok() const { return workload.malformed.empty(); }
  const json* object(const json& at, const char* key, const std::string& field) {
    if (!ok() || !at.is_object()) return nullptr;
    auto it = at.find(key);
    if (it == at.end() || it->is_null()) return nullptr;
    if (!it->is_object()) {
      workload.malformed = field + " must be an object";
      return nullptr;
    }
    return &*it;
  }
  std::optional<std::string> string(const json& at, const char* key, const std::string& field) {
    if (!ok() || !at.is_object()) return std::nullopt;
    auto it = at.find(key);
    if (it == at.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) {
      workload.malformed = field + " must be a string";
      return std::nullopt;
    }
    return it->get<std::string>();
  }
  // int32 fields: a value past int64 saturates; the API server's validation bounds them before a
  // validating webhook sees them, `check` reads them as written.
  std::optional<std::int64_t> integer(const json& at, const char* key, const std::string& field) {
    if (!ok() || !at.is_object()) return std::nullopt;
    auto it = at.find(key);
    if (it == at.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) {
      workload.malformed = field + " must be an integer";
      return std::nullopt;
    }
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return INT64_MAX;
    return it->get<std::int64_t>();
  }
};

// behavior.scaleDown of an HPA (v2, v2beta2) or of KEDA's horizontalPodAutoscalerConfig.
void read_behavior(Reader& read, const json* behavior, const std::string& field, ScaleTarget& target) {
  target.window_field = field + ".scaleDown.stabilizationWindowSeconds";
  if (!behavior) return;
  const json* down = read.object(*behavior, "scaleDown", field + ".scaleDown");
  if (!down) return;
  if (auto window = read.integer(*down, "stabilizationWindowSeconds", target.window_field)) {
    target.scale_down_window = *window;
    target.scale_down_window_written = true;
  }
  if (auto policy = read.string(*down, "selectPolicy", field + ".scaleDown.selectPolicy"))
    target.scale_down_disabled = *policy == "Disabled";
  if (read.ok() && down->contains("policies") && !(*down)["policies"].is_null() && !(*down)["policies"].is_array())
    read.workload.malformed = field + ".scaleDown.policies must be a list";
}

void locate_autoscaler(const json& object, std::string_view version, bool keda, Workload& workload) {
  Reader read{workload};
  ScaleTarget target;
  target.keda = keda;
  const json empty = json::object();
  const json* spec = read.object(object, "spec", "spec");
  if (!spec) spec = &empty;
  const json* ref = read.object(*spec, "scaleTargetRef", "spec.scaleTargetRef");
  if (!ref) ref = &empty;
  target.api_version = read.string(*ref, "apiVersion", "spec.scaleTargetRef.apiVersion").value_or(keda ? "apps/v1" : "");
  target.kind = read.string(*ref, "kind", "spec.scaleTargetRef.kind").value_or(keda ? "Deployment" : "");
  target.name = read.string(*ref, "name", "spec.scaleTargetRef.name").value_or("");
  if (keda) {
    // KEDA's documented defaults: minReplicaCount 0, maxReplicaCount 100.
    target.min_field = "spec.minReplicaCount";
    target.max_field = "spec.maxReplicaCount";
    const auto min = read.integer(*spec, "minReplicaCount", target.min_field);
    target.min_replicas_written = min.has_value();
    target.min_replicas = min.value_or(0);
    target.max_replicas = read.integer(*spec, "maxReplicaCount", target.max_field).value_or(100);
    target.idle_replicas = read.integer(*spec, "idleReplicaCount", "spec.idleReplicaCount");
    const json* advanced = read.object(*spec, "advanced", "spec.advanced");
    const json* config =
        advanced ? read.object(*advanced, "horizontalPodAutoscalerConfig", "spec.advanced.horizontalPodAutoscalerConfig")
                 : nullptr;
    const std::string field = "spec.advanced.horizontalPodAutoscalerConfig.behavior";
    read_behavior(read, config ? read.object(*config, "behavior", field) : nullptr, field, target);
  } else {
    target.min_field = "spec.minReplicas";
    target.max_field = "spec.maxReplicas";
    const auto min = read.integer(*spec, "minReplicas", target.min_field);
    target.min_replicas_written = min.has_value();
    target.min_replicas = min.value_or(1);
    target.max_replicas = read.integer(*spec, "maxReplicas", target.max_field).value_or(0);
    // autoscaling/v1 and v2beta1 have no behavior: the window is always the default.
    if (version == "v2" || version == "v2beta2")
      read_behavior(read, read.object(*spec, "behavior", "spec.behavior"), "spec.behavior", target);
    else
      target.window_field = "spec.behavior.scaleDown.stabilizationWindowSeconds";
    // KEDA makes an HPA for each ScaledObject and owns it (its controller reference).
    if (const json* metadata = read.object(object, "metadata", "metadata"); metadata && metadata->contains("ownerReferences")) {
      const json& owners = (*metadata)["ownerReferences"];
      if (owners.is_array()) {
        for (const json& owner : owners)
          // json::value() would throw on a field of another type: each is tested instead.
          if (owner.is_object() && owner.contains("controller") && owner["controller"] == true &&
              k8s::json_fields::string_or(owner, "kind") == "ScaledObject" &&
              k8s::json_fields::string_or(owner, "apiVersion").starts_with("keda.sh/"))
            target.managed_by_keda = true;
      } else if (!owners.is_null()) {
        workload.malformed = "metadata.ownerReferences must be a list";
      }
    }
  }
  target.min_replicas = std::max<std::int64_t>(0, target.min_replicas);
  target.max_replicas = std::max<std::int64_t>(0, target.max_replicas);
  if (!read.ok()) return;
  workload.scale_target = std::move(target);
  workload.supported = true;
}

}  // namespace

const std::vector<AutoscalerKind>& autoscaler_kinds() {
  static const std::vector<AutoscalerKind> kinds = {
      {"autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", {"v1", "v2beta1", "v2beta2", "v2"}},
      {"keda.sh", "ScaledObject", "scaledobjects", {"v1alpha1"}},
  };
  return kinds;
}

std::string workload_key(std::string_view namespace_, std::string_view kind, std::string_view name) {
  std::string key;
  key.reserve(namespace_.size() + kind.size() + name.size() + 2);
  key.append(namespace_).append("/").append(kind).append("/").append(name);
  return key;
}

Workload locate_workload(const json& object, const WorkloadKinds& kinds) {
  Workload workload;
  if (!object.is_object()) return workload;
  workload.malformed = shape_error(object);
  if (!workload.malformed.empty()) return workload;
  workload.api_version = string_at(object, "apiVersion");
  workload.kind = string_at(object, "kind");
  workload.name = string_at(object, "metadata", "name");
  if (workload.name.empty()) workload.name = string_at(object, "metadata", "generateName");
  workload.namespace_ = string_at(object, "metadata", "namespace");

  const std::string& kind = workload.kind;
  const std::size_t slash = workload.api_version.find('/');
  const std::string group = slash == std::string::npos ? "" : workload.api_version.substr(0, slash);
  const std::string version = slash == std::string::npos ? workload.api_version : workload.api_version.substr(slash + 1);
  if (kind == "Pod" && group.empty()) {
    if (auto spec = object.find("spec"); spec != object.end() && !spec->is_null() && !spec->is_object())
      workload.malformed = "spec must be an object";
    if (object.contains("spec") && object["spec"].is_object())
      workload.pods.push_back({Pointer("/spec"), Pointer("/metadata"), "spec", "metadata", 1, 0, {}, {}});
    const std::string restart = object.contains("spec") && object["spec"].is_object()
                                    ? string_at(object["spec"], "restartPolicy")
                                    : std::string();
    workload.batch = !restart.empty() && restart != "Always";
  } else if (const WorkloadKinds::Declaration* declaration = kinds.find(group, version, kind)) {
    workload.batch = declaration->batch;
    workload.gang = declaration->gang;
    workload.operator_probes = declaration->operator_probes;
    workload.partial_pod_spec = declaration->partial_pod_spec;
    workload.custom_resource = !declaration->builtin_controller;
    for (const auto& pods : declaration->pods) add_pods(object, *declaration, pods, workload);
    if (!workload.malformed.empty()) workload.pods.clear();
  } else {
    for (const AutoscalerKind& autoscaler : autoscaler_kinds())
      if (group == autoscaler.group && kind == autoscaler.kind &&
          std::find(autoscaler.versions.begin(), autoscaler.versions.end(), version) != autoscaler.versions.end())
        locate_autoscaler(object, version, autoscaler.group == "keda.sh", workload);
    return workload;
  }
  workload.supported = !workload.pods.empty();
  return workload;
}

bool is_dns_label(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::string field_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string field_path(const std::string& base, std::string_view key, std::size_t index) {
  return field_path(base, key) + "[" + std::to_string(index) + "]";
}

}  // namespace gpuadmit
