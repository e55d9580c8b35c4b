#include "policies/gpu_nodes.h"

#include <algorithm>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::policies {

using nlohmann::json;

namespace {

std::string label_value_text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

std::vector<NodeChoice> node_choices(const json& spec, const std::string& spec_field) {
  std::vector<NodeChoice> choices;
  auto selector = spec.find("nodeSelector");
  if (selector != spec.end() && selector->is_object())
    for (auto it = selector->begin(); it != selector->end(); ++it)
      choices.push_back({field_path(spec_field, "nodeSelector") + "." + it.key(), it.key(), {label_value_text(*it)}});
  const json::json_pointer terms_pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
  if (!spec.contains(terms_pointer) || !spec.at(terms_pointer).is_array()) return choices;
  const json& terms = spec.at(terms_pointer);
  const std::string terms_field = field_path(spec_field, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
  for (std::size_t t = 0; t < terms.size(); ++t) {
    if (!terms[t].is_object() || !terms[t].contains("matchExpressions") || !terms[t]["matchExpressions"].is_array()) continue;
    const json& expressions = terms[t]["matchExpressions"];
    for (std::size_t e = 0; e < expressions.size(); ++e) {
      const json& expression = expressions[e];
      if (!expression.is_object() || !expression.contains("key") || !expression["key"].is_string()) continue;
      const std::string op = k8s::json_fields::string_or(expression, "operator");
      if (op != "In" && op != "Exists" && op != "Gt" && op != "Lt") continue;
      NodeChoice choice{field_path(terms_field + "[" + std::to_string(t) + "]", "matchExpressions", e),
                        expression["key"].get<std::string>(), {}};
      if (op == "In" && expression.contains("values") && expression["values"].is_array())
        for (const json& value : expression["values"]) choice.values.push_back(label_value_text(value));
      choices.push_back(std::move(choice));
    }
  }
  return choices;
}

GpuNodes GpuNodes::parse(const ConfigNode& node) {
  GpuNodes nodes;
  nodes.taint_keys = node.has("gpuTaintKeys") ? node.strings("gpuTaintKeys") : std::vector<std::string>{"nvidia.com/gpu"};
  nodes.node_labels = node.has("gpuNodeLabels")
                          ? node.strings("gpuNodeLabels")
                          : std::vector<std::string>{"nvidia.com/gpu.present", "nvidia.com/gpu.product",
                                                     "nvidia.com/gpu.count", "nvidia.com/gpu.family",
                                                     "nvidia.com/gpu.sharing-strategy", "cloud.google.com/gke-accelerator",
                                                     "k8s.amazonaws.com/accelerator"};
  return nodes;
}

std::optional<GpuNodes::Aim> GpuNodes::aim(const json& spec, const std::string& spec_field, bool keyless) const {
  auto tolerations = spec.find("tolerations");
  if (tolerations != spec.end() && tolerations->is_array())
    for (std::size_t i = 0; i < tolerations->size(); ++i) {
      const json& toleration = (*tolerations)[i];
      if (!toleration.is_object()) continue;
      const std::string key = k8s::json_fields::string_or(toleration, "key");
      if (key.empty() && keyless && k8s::json_fields::string_or(toleration, "operator") == "Exists")
        return Aim{field_path(spec_field, "tolerations", i), "tolerates every taint, GPU nodes' too"};
      if (!key.empty() && contains(taint_keys, key))
        return Aim{field_path(spec_field, "tolerations", i), "tolerates the GPU node taint " + key};
    }
  for (const NodeChoice& choice : node_choices(spec, spec_field))
    if (contains(node_labels, choice.key)) return Aim{choice.field, "selects GPU nodes by " + choice.key};
  return std::nullopt;
}

}  // namespace gpuadmit::policies
