#include "webhook/kube/objects.h"

#include "engine/k8s/json_fields.h"

namespace gpuadmit::kube {

using nlohmann::json;

std::string_view kind_name(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::Node: return "Node";
    case ObjectKind::Pod: return "Pod";
    case ObjectKind::Namespace: return "Namespace";
    case ObjectKind::ResourceClaim: return "ResourceClaim";
    case ObjectKind::ResourceClaimTemplate: return "ResourceClaimTemplate";
    case ObjectKind::PodDisruptionBudget: return "PodDisruptionBudget";
    case ObjectKind::PriorityClass: return "PriorityClass";
  }
  return "";
}

std::string_view resource_name(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::Node: return "nodes";
    case ObjectKind::Pod: return "pods";
    case ObjectKind::Namespace: return "namespaces";
    case ObjectKind::ResourceClaim: return "resourceclaims";
    case ObjectKind::ResourceClaimTemplate: return "resourceclaimtemplates";
    case ObjectKind::PodDisruptionBudget: return "poddisruptionbudgets";
    case ObjectKind::PriorityClass: return "priorityclasses";
  }
  return "";
}

bool is_dra_kind(ObjectKind kind) {
  return kind == ObjectKind::ResourceClaim || kind == ObjectKind::ResourceClaimTemplate;
}

std::string_view api_group(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::Node:
    case ObjectKind::Pod:
    case ObjectKind::Namespace: return "";
    case ObjectKind::ResourceClaim:
    case ObjectKind::ResourceClaimTemplate: return "resource.k8s.io";
    case ObjectKind::PodDisruptionBudget: return "policy";
    case ObjectKind::PriorityClass: return "scheduling.k8s.io";
  }
  return "";
}

std::string api_version(ObjectKind kind, std::string_view version) {
  const std::string_view group = api_group(kind);
  return group.empty() ? "v1" : std::string(group) + "/" + std::string(version);
}

std::string collection_path(ObjectKind kind, std::string_view version) {
  return (api_group(kind).empty() ? "/api/" : "/apis/") + api_version(kind, version) + "/" +
         std::string(resource_name(kind));
}

std::optional<ObjectKind> kind_from_name(std::string_view name) {
  for (ObjectKind kind : kWatchedKinds)
    if (name == kind_name(kind) || name == resource_name(kind)) return kind;
  return std::nullopt;
}

namespace {

const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

void copy_if_present(const json& from, json& to, std::initializer_list<const char*> keys) {
  if (!from.is_object()) return;
  for (const char* key : keys)
    if (auto it = from.find(key); it != from.end() && !it->is_null()) to[key] = *it;
}

json trim_conditions(const json& conditions) {
  json out = json::array();
  if (!conditions.is_array()) return out;
  for (const auto& condition : conditions) {
    json kept = json::object();
    copy_if_present(condition, kept, {"type", "status"});
    out.push_back(std::move(kept));
  }
  return out;
}

json trim_containers(const json& containers) {
  json out = json::array();
  if (!containers.is_array()) return out;
  for (const auto& container : containers) {
    json kept = json::object();
    copy_if_present(container, kept, {"name", "resources", "restartPolicy"});
    out.push_back(std::move(kept));
  }
  return out;
}

json trim_metadata(const json& metadata, bool owners) {
  json out = json::object();
  copy_if_present(metadata, out, {"name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp"});
  const json& annotations = member(metadata, "annotations");
  if (annotations.is_object()) {
    json kept = annotations;
    kept.erase("kubectl.kubernetes.io/last-applied-configuration");
    if (!kept.empty()) out["annotations"] = std::move(kept);
  }
  if (owners && member(metadata, "ownerReferences").is_array()) {
    json refs = json::array();
    for (const auto& ref : metadata["ownerReferences"]) {
      json kept = json::object();
      copy_if_present(ref, kept, {"kind", "name", "controller"});
      refs.push_back(std::move(kept));
    }
    out["ownerReferences"] = std::move(refs);
  }
  return out;
}

}  // namespace

std::string object_key(const json& object) {
  const json& metadata = member(object, "metadata");
  const json& name = member(metadata, "name");
  const json& ns = member(metadata, "namespace");
  std::string key = ns.is_string() ? ns.get<std::string>() + "/" : "";
  if (name.is_string()) key += name.get<std::string>();
  return key;
}

std::string metadata_string(const json& object, const char* key) {
  return k8s::json_fields::string_or(member(object, "metadata"), key);
}

std::string resource_version_of(const json& object) { return metadata_string(object, "resourceVersion"); }

json trim_object(ObjectKind kind, const json& object, std::string_view version) {
  json out = json::object();
  out["kind"] = std::string(kind_name(kind));
  if (!api_group(kind).empty()) {
    // The object's own apiVersion decides how it reads (a policy/v1beta1 budget's empty selector
    // selects nothing); list items carry none, so they get the version listed.
    const json& own = member(object, "apiVersion");
    const bool has_own = own.is_string() && !own.get_ref<const std::string&>().empty();
    out["apiVersion"] = has_own ? own : json(api_version(kind, version));
    json kept_metadata = json::object();
    copy_if_present(member(object, "metadata"), kept_metadata, {"name", "namespace", "uid", "resourceVersion"});
    out["metadata"] = std::move(kept_metadata);
    if (kind == ObjectKind::PriorityClass)
      copy_if_present(object, out, {"value", "globalDefault", "preemptionPolicy"});
    else
      copy_if_present(object, out, {"spec"});
    return out;
  }
  out["apiVersion"] = "v1";
  out["metadata"] = trim_metadata(member(object, "metadata"), kind == ObjectKind::Pod);
  const json& spec = member(object, "spec");
  const json& status = member(object, "status");
  switch (kind) {
    case ObjectKind::Node: {
      json kept_spec = json::object();
      copy_if_present(spec, kept_spec, {"unschedulable", "taints"});
      out["spec"] = std::move(kept_spec);
      json kept_status = json::object();
      copy_if_present(status, kept_status, {"capacity", "allocatable"});
      if (member(status, "conditions").is_array()) kept_status["conditions"] = trim_conditions(status["conditions"]);
      out["status"] = std::move(kept_status);
      break;
    }
    case ObjectKind::Pod: {
      json kept_spec = json::object();
      copy_if_present(spec, kept_spec,
                      {"nodeName", "schedulerName", "priority", "priorityClassName", "nodeSelector", "tolerations",
                       "overhead", "resources"});
      if (const json& node_affinity = member(member(spec, "affinity"), "nodeAffinity"); !node_affinity.is_null())
        kept_spec["affinity"] = {{"nodeAffinity", node_affinity}};
      kept_spec["containers"] = trim_containers(member(spec, "containers"));
      if (member(spec, "initContainers").is_array()) kept_spec["initContainers"] = trim_containers(spec["initContainers"]);
      out["spec"] = std::move(kept_spec);
      json kept_status = json::object();
      copy_if_present(status, kept_status, {"phase"});
      if (member(status, "conditions").is_array()) kept_status["conditions"] = trim_conditions(status["conditions"]);
      out["status"] = std::move(kept_status);
      break;
    }
    case ObjectKind::Namespace: {
      json kept_status = json::object();
      copy_if_present(status, kept_status, {"phase"});
      out["status"] = std::move(kept_status);
      break;
    }
    case ObjectKind::ResourceClaim:
    case ObjectKind::ResourceClaimTemplate:
    case ObjectKind::PodDisruptionBudget:
    case ObjectKind::PriorityClass:
      break;  // trimmed above
  }
  return out;
}

bool LineSplitter::feed(std::string_view data, std::vector<std::string>& complete_lines) {
  while (!data.empty()) {
    auto newline = data.find('\n');
    if (newline == std::string_view::npos) {
      pending_.append(data);
      break;
    }
    pending_.append(data.substr(0, newline));
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    if (!pending_.empty()) complete_lines.push_back(std::move(pending_));
    pending_.clear();
    data.remove_prefix(newline + 1);
  }
  return pending_.size() <= max_line_bytes_;
}

}  // namespace gpuadmit::kube
