#include "gpuadmit/workload.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using Pointer = json::json_pointer;

std::string string_at(const json& object, const char* a, const char* b = nullptr) {
  auto it = object.find(a);
  if (it == object.end()) return {};
  if (b) {
    if (!it->is_object()) return {};
    auto inner = it->find(b);
    return inner != it->end() && inner->is_string() ? inner->get<std::string>() : std::string();
  }
  return it->is_string() ? it->get<std::string>() : std::string();
}

// A pod template at `base` (e.g. /spec/template) whose spec is an object.
void add_template(const json& object, const std::string& base, const std::string& field,
                  Workload& workload) {
  Pointer spec(base + "/spec");
  if (!object.contains(spec) || !object.at(spec).is_object()) return;
  workload.pods.push_back({spec, Pointer(base + "/metadata"), field + ".spec"});
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

std::string field_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string field_path(const std::string& base, std::string_view key, std::size_t index) {
  return field_path(base, key) + "[" + std::to_string(index) + "]";
}

}  // namespace gpuadmit
