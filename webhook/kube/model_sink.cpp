#include "webhook/kube/model_sink.h"

#include "webhook/kube/objects.h"
#include "webhook/log/json_log.h"

namespace gpuadmit::webhook {

using nlohmann::json;
using kube::metadata_string;

namespace {

// A namespaced object's namespace, "default" when it leaves it out (as the model reads it).
std::string namespace_of(const json& object) {
  std::string ns = metadata_string(object, "namespace");
  return ns.empty() ? "default" : ns;
}

k8s::ClaimCatalog::Kind claim_kind(kube::ObjectKind kind) {
  return kind == kube::ObjectKind::ResourceClaimTemplate ? k8s::ClaimCatalog::Kind::Template
                                                         : k8s::ClaimCatalog::Kind::Claim;
}

}  // namespace

void ClusterModelSink::reject(kube::ObjectKind kind, const std::string& error) {
  ++rejected_;
  log_event(*logger_, spdlog::level::warn, "cluster object skipped",
            {{"kind", std::string(kube::kind_name(kind))}, {"error", error}});
}

void ClusterModelSink::upsert(kube::ObjectKind kind, const json& object) {
  try {
    switch (kind) {
      case kube::ObjectKind::Node: return model_.upsert_node(object);
      case kube::ObjectKind::Pod: return model_.upsert_pod(object);
      case kube::ObjectKind::Namespace: return model_.upsert_namespace(object);
      case kube::ObjectKind::ResourceClaim:
      case kube::ObjectKind::ResourceClaimTemplate: return model_.upsert_claim(object);
      case kube::ObjectKind::PodDisruptionBudget: return model_.upsert_disruption_budget(object);
      case kube::ObjectKind::PriorityClass: return model_.upsert_priority_class(object);
    }
  } catch (const std::exception& error) {
    reject(kind, error.what());
  }
}

void ClusterModelSink::upsert_page(kube::ObjectKind kind, const std::vector<json>& objects) {
  if (kind != kube::ObjectKind::Node) return ClusterObjectSink::upsert_page(kind, objects);
  model_.upsert_nodes(objects, [&](const json&, const std::exception& error) { reject(kind, error.what()); });
}

void ClusterModelSink::remove(kube::ObjectKind kind, const json& object) {
  const std::string name = metadata_string(object, "name");
  switch (kind) {
    case kube::ObjectKind::Node:
      model_.delete_node(name);
      return;
    case kube::ObjectKind::Pod: {
      const std::string ns = namespace_of(object);
      model_.delete_pod(ns, name);
      // A pod deleted before this replica saw it created no longer counts as admitted.
      if (std::string uid = metadata_string(object, "uid"); !uid.empty()) model_.confirm_admission(ns, uid);
      return;
    }
    case kube::ObjectKind::Namespace:
      model_.delete_namespace(name);
      return;
    case kube::ObjectKind::ResourceClaim:
    case kube::ObjectKind::ResourceClaimTemplate:
      model_.delete_claim(claim_kind(kind), namespace_of(object), name);
      return;
    case kube::ObjectKind::PodDisruptionBudget:
      model_.delete_disruption_budget(namespace_of(object), name);
      return;
    case kube::ObjectKind::PriorityClass:
      model_.delete_priority_class(name);
      return;
  }
}

void ClusterModelSink::list_complete(kube::ObjectKind kind, const std::unordered_set<std::string>& listed_keys) {
  std::size_t removed = 0;
  switch (kind) {
    case kube::ObjectKind::Node: removed = model_.remove_nodes_except(listed_keys); break;
    case kube::ObjectKind::Pod: removed = model_.remove_pods_except(listed_keys); break;
    case kube::ObjectKind::Namespace: removed = model_.remove_namespaces_except(listed_keys); break;
    case kube::ObjectKind::ResourceClaim:
    case kube::ObjectKind::ResourceClaimTemplate:
      removed = model_.remove_claims_except(claim_kind(kind), listed_keys);
      break;
    case kube::ObjectKind::PodDisruptionBudget: removed = model_.remove_disruption_budgets_except(listed_keys); break;
    case kube::ObjectKind::PriorityClass: removed = model_.remove_priority_classes_except(listed_keys); break;
  }
  if (removed)
    log_event(*logger_, spdlog::level::info, "cluster objects gone after a full list",
              {{"kind", std::string(kube::kind_name(kind))}, {"removed", removed}});
}

}  // namespace gpuadmit::webhook
