#include "webhook/kube/stored_objects.h"

#include <algorithm>

#include "engine/input_limits.h"
#include "webhook/kube/watch.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;

json parse_answer(const KubeResponse& response, const std::string& what) {
  try {
    json body = parse_json(response.body);
    if (!body.is_object()) throw ListError(what + ": the answer is not a JSON object");
    return body;
  } catch (const InputError& error) {
    throw ListError(what + ": the answer is not JSON: " + error.what());
  }
}

// The versions a group serves, its preferred one first ("v1" alone for the core API); none
// when the group is not served.
std::vector<std::string> served_versions(KubeClient& client, const std::string& group, std::chrono::milliseconds timeout) {
  if (group.empty()) return {"v1"};
  const std::string path = "/apis/" + group;
  const KubeResponse response = client.get(path, timeout);
  if (response.status == 404) return {};
  if (!response.ok()) throw ListError("GET " + path + ": " + answer_text(response));
  const json body = parse_answer(response, "GET " + path);
  std::vector<std::string> versions;
  auto add = [&](const json& entry) {
    if (!entry.is_object() || !entry.contains("version") || !entry["version"].is_string()) return;
    const std::string version = entry["version"].get<std::string>();
    if (is_api_version(version) && std::find(versions.begin(), versions.end(), version) == versions.end())
      versions.push_back(version);
  };
  if (body.contains("preferredVersion")) add(body["preferredVersion"]);
  if (body.contains("versions") && body["versions"].is_array())
    for (const json& entry : body["versions"]) add(entry);
  return versions;
}

}  // namespace

std::vector<StoredKind> audited_kinds(const WorkloadKinds& kinds) {
  std::vector<StoredKind> out;
  for (const WorkloadKinds::Name& custom : kinds.custom_resources()) out.push_back({custom.group, custom.plural, custom.kind});
  const std::vector<StoredKind> builtin = {
      {"batch", "cronjobs", "CronJob"},          {"apps", "deployments", "Deployment"},
      {"apps", "statefulsets", "StatefulSet"},   {"apps", "daemonsets", "DaemonSet"},
      {"batch", "jobs", "Job"},                  {"apps", "replicasets", "ReplicaSet"},
      {"", "replicationcontrollers", "ReplicationController"}};
  out.insert(out.end(), builtin.begin(), builtin.end());
  for (const AutoscalerKind& autoscaler : autoscaler_kinds())
    out.push_back({std::string(autoscaler.group), std::string(autoscaler.plural), std::string(autoscaler.kind)});
  out.push_back({"", "pods", "Pod"});
  return out;
}

ListedKind list_stored(KubeClient& client, const StoredKind& kind, std::size_t page_size,
                       std::chrono::milliseconds timeout, const std::function<void(json&&)>& visit) {
  ListedKind listed{kind, {}, 0};
  for (const std::string& version : served_versions(client, kind.group, timeout)) {
    const std::string group_version = kind.group.empty() ? version : kind.group + "/" + version;
    const std::string base = (kind.group.empty() ? "/api/" : "/apis/") + group_version + "/" + kind.plural;
    std::string next;
    bool first = true;
    while (first || !next.empty()) {
      std::map<std::string, std::string> query = {{"limit", std::to_string(page_size)}};
      if (!next.empty()) query["continue"] = next;
      const std::string path = with_query(base, query);
      const KubeResponse response = client.get(path, timeout);
      // Not at this version (batch/v1 CronJobs before 1.21): the group's next one.
      if (first && response.status == 404) break;
      if (!response.ok()) throw ListError("GET " + path + ": " + answer_text(response));
      json page = parse_answer(response, "GET " + path);
      first = false;
      listed.api_version = group_version;
      next.clear();
      if (page.contains("metadata") && page["metadata"].is_object() && page["metadata"].contains("continue") &&
          page["metadata"]["continue"].is_string())
        next = page["metadata"]["continue"].get<std::string>();
      auto items = page.find("items");
      if (items == page.end() || items->is_null()) continue;
      if (!items->is_array()) throw ListError("GET " + path + ": items is not an array");
      for (json& item : *items) {
        if (!item.is_object()) continue;
        item["apiVersion"] = group_version;
        item["kind"] = kind.kind;
        ++listed.objects;
        visit(std::move(item));
      }
    }
    if (!listed.api_version.empty()) return listed;
  }
  return listed;
}

}  // namespace gpuadmit::kube
