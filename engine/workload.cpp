#include "gpuadmit/workload.h"

#include <algorithm>

#include "engine/k8s/json_fields.h"

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

// A pod template at `base` (e.g. /spec/template) whose spec is an object. Every level on the way
// that is present must be an object, as the API server's decoder requires.
void add_template(const json& object, const std::string& base, const std::string& field,
                  Workload& workload) {
  const json* at = &object;
  std::string path;
  std::vector<std::string> tokens;  // of `base`: spec, template, ...
  for (std::size_t start = 1; start <= base.size();) {
    std::size_t slash = base.find('/', start);
    if (slash == std::string::npos) slash = base.size();
    tokens.push_back(base.substr(start, slash - start));
    start = slash + 1;
  }
  for (const std::string& token : tokens) {
    path = path.empty() ? token : path + "." + token;
    auto it = at->find(token);
    if (it == at->end() || it->is_null()) return;
    if (!it->is_object()) {
      workload.malformed = path + " must be an object";
      return;
    }
    at = &*it;
  }
  for (const char* part : {"metadata", "spec"}) {
    auto it = at->find(part);
    if (it != at->end() && !it->is_null() && !it->is_object()) {
      workload.malformed = field + "." + part + " must be an object";
      return;
    }
  }
  Pointer spec(base + "/spec");
  if (!object.contains(spec) || !object.at(spec).is_object()) return;
  workload.pods.push_back({spec, Pointer(base + "/metadata"), field + ".spec"});
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

std::int64_t integer_at(const json& object, const Pointer& pointer, std::int64_t fallback) {
  if (!object.contains(pointer)) return fallback;
  const json& value = object.at(pointer);
  return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
}

}  // namespace

Workload locate_workload(const json& object) {
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
  const std::string group = workload.api_version.find('/') == std::string::npos
                                ? ""
                                : workload.api_version.substr(0, workload.api_version.find('/'));
  if (kind == "Pod" && group.empty()) {
    if (auto spec = object.find("spec"); spec != object.end() && !spec->is_null() && !spec->is_object())
      workload.malformed = "spec must be an object";
    if (object.contains("spec") && object["spec"].is_object())
      workload.pods.push_back({Pointer("/spec"), Pointer("/metadata"), "spec"});
    const std::string restart = object.contains("spec") && object["spec"].is_object()
                                    ? string_at(object["spec"], "restartPolicy")
                                    : std::string();
    workload.batch = !restart.empty() && restart != "Always";
  } else if ((group == "apps" && (kind == "Deployment" || kind == "ReplicaSet" ||
                                  kind == "StatefulSet" || kind == "DaemonSet")) ||
             (group.empty() && kind == "ReplicationController")) {
    add_template(object, "/spec/template", "spec.template", workload);
    workload.replicas = kind == "DaemonSet" ? 1 : integer_at(object, Pointer("/spec/replicas"), 1);
  } else if (group == "batch" && kind == "Job") {
    add_template(object, "/spec/template", "spec.template", workload);
    workload.replicas = integer_at(object, Pointer("/spec/parallelism"), 1);
    workload.batch = true;
  } else if (group == "batch" && kind == "CronJob") {
    add_template(object, "/spec/jobTemplate/spec/template", "spec.jobTemplate.spec.template",
                 workload);
    workload.replicas = integer_at(object, Pointer("/spec/jobTemplate/spec/parallelism"), 1);
    workload.batch = true;
  } else if (group.empty() && kind == "PodTemplate") {
    add_template(object, "/template", "template", workload);
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
