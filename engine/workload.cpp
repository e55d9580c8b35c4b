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

}  // namespace

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
