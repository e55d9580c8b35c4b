#include "engine/k8s/scheduling_objects.h"

#include <algorithm>
#include <limits>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::k8s {

namespace jf = json_fields;
using nlohmann::json;

namespace {

struct Identity {
  std::string namespace_, name;
};

Identity identity_of(const json& object, std::string_view kind, bool namespaced) {
  const json* metadata = jf::member(object, "", "metadata");
  Identity id;
  id.name = metadata ? jf::string_or_empty(*metadata, "metadata", "name") : "";
  if (id.name.empty()) throw JsonFieldError("metadata.name: a " + std::string(kind) + " needs a name");
  if (namespaced) {
    id.namespace_ = metadata ? jf::string_or_empty(*metadata, "metadata", "namespace") : "";
    if (id.namespace_.empty()) id.namespace_ = "default";
  }
  return id;
}

// An IntOrString as written, for messages.
std::string int_or_string(const json& spec, std::string_view key) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return {};
  if (it->is_number_integer()) return std::to_string(it->get<std::int64_t>());
  if (it->is_string()) return it->get<std::string>();
  jf::fail(jf::join("spec", key), "an integer or a percentage", *it);
}

std::string first_error(const std::vector<FieldError>& errors) {
  return errors.empty() ? std::string("invalid") : to_string(errors.front());
}

}  // namespace

void DisruptionBudgetCatalog::upsert(const json& object) {
  Identity id = identity_of(object, "PodDisruptionBudget", true);
  DisruptionBudget budget;
  budget.namespace_ = id.namespace_;
  budget.name = id.name;
  if (const json* spec = jf::member(object, "", "spec")) {
    std::vector<FieldError> errors;
    const json selector = spec->contains("selector") ? spec->at("selector") : json();
    std::optional<LabelSelector> parsed = metav1_label_selector(selector, "spec.selector", errors);
    if (!parsed) throw JsonFieldError(first_error(errors));
    // policy/v1beta1 kept the old meaning of an empty selector: no pod.
    const bool v1beta1 = jf::string_or(object, "apiVersion") == "policy/v1beta1";
    budget.selector = v1beta1 && selector.is_object() && parsed->requirements().empty() ? LabelSelector::nothing()
                                                                                        : std::move(*parsed);
    budget.min_available = int_or_string(*spec, "minAvailable");
    budget.max_unavailable = int_or_string(*spec, "maxUnavailable");
  }
  budgets_.insert_or_assign(id.namespace_ + "/" + id.name, std::move(budget));
}

bool DisruptionBudgetCatalog::remove(std::string_view namespace_, std::string_view name) {
  return budgets_.erase(std::string(namespace_) + "/" + std::string(name)) > 0;
}

std::size_t DisruptionBudgetCatalog::remove_except(const std::unordered_set<std::string>& keys) {
  return std::erase_if(budgets_, [&](const auto& entry) { return !keys.count(entry.first); });
}

std::vector<const DisruptionBudget*> DisruptionBudgetCatalog::selecting(std::string_view namespace_,
                                                                       const Labels& labels) const {
  std::vector<const DisruptionBudget*> out;
  const std::string prefix = std::string(namespace_) + "/";
  for (auto it = budgets_.lower_bound(prefix); it != budgets_.end() && it->first.starts_with(prefix); ++it)
    if (it->second.selector.matches(labels)) out.push_back(&it->second);
  return out;
}

void PriorityClassCatalog::upsert(const json& object) {
  Identity id = identity_of(object, "PriorityClass", false);
  PriorityClass pc;
  pc.name = id.name;
  auto value = object.find("value");
  if (value == object.end() || !value->is_number_integer()) jf::fail("value", "an integer", value == object.end() ? json() : *value);
  const std::int64_t v = value->get<std::int64_t>();
  if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
    jf::fail("value", "a 32-bit integer", *value);
  pc.value = static_cast<std::int32_t>(v);
  if (auto it = object.find("globalDefault"); it != object.end() && !it->is_null()) {
    if (!it->is_boolean()) jf::fail("globalDefault", "a boolean", *it);
    pc.global_default = it->get<bool>();
  }
  pc.preempts = jf::string_or(object, "preemptionPolicy", "PreemptLowerPriority") != "Never";
  classes_.insert_or_assign(id.name, std::move(pc));
}

bool PriorityClassCatalog::remove(std::string_view name) { return classes_.erase(std::string(name)) > 0; }

std::size_t PriorityClassCatalog::remove_except(const std::unordered_set<std::string>& names) {
  return std::erase_if(classes_, [&](const auto& entry) { return !names.count(entry.first); });
}

const PriorityClass* PriorityClassCatalog::find(std::string_view name) const {
  if (auto it = classes_.find(name); it != classes_.end()) return &it->second;
  // scheduling.SystemPriorityClasses(): created by the API server in every cluster.
  static const PriorityClass kClusterCritical{"system-cluster-critical", 2000000000, false, true};
  static const PriorityClass kNodeCritical{"system-node-critical", 2000001000, false, true};
  if (name == kClusterCritical.name) return &kClusterCritical;
  if (name == kNodeCritical.name) return &kNodeCritical;
  return nullptr;
}

const PriorityClass* PriorityClassCatalog::global_default() const {
  const PriorityClass* found = nullptr;
  for (const auto& [name, pc] : classes_)
    if (pc.global_default && (!found || pc.value < found->value)) found = &pc;
  return found;
}

bool ObjectCatalog::holds(std::string_view kind) {
  return ClaimCatalog::kind_of(kind) || kind == "PodDisruptionBudget" || kind == "PriorityClass";
}

bool ObjectCatalog::upsert(const json& object) {
  const std::string kind = jf::string_or(object, "kind");
  if (ClaimCatalog::kind_of(kind))
    claims.upsert(object);
  else if (kind == "PodDisruptionBudget")
    disruption_budgets.upsert(object);
  else if (kind == "PriorityClass")
    priority_classes.upsert(object);
  else
    return false;
  return true;
}

}  // namespace gpuadmit::k8s
