// Label selectors and node affinity as the scheduler reads them from a pod spec and a node.
// The input is JSON {"spec": pod spec, "node": v1.Node}; the node's fields are read with
// JsonFieldError for wrong types (documented); the selectors report parse errors as values
// and throw nothing. Whatever the strict selector accepts, the lazy one must match alike.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/k8s/json_fields.h"
#include "engine/k8s/node_affinity.h"
#include "tests/fuzz/fuzz_common.h"

namespace k8s = gpuadmit::k8s;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(text)) return -1;
  const json input = json::parse(text, nullptr, false);
  if (input.is_discarded() || !input.is_object()) return 0;
  const json spec = input.value("spec", json::object());
  k8s::Node node;
  try {
    node = k8s::node_from_json(input.value("node", json::object()));
  } catch (const k8s::JsonFieldError&) {
    return 0;
  }
  if (!spec.is_object()) return 0;
  try {
    k8s::pod_matches_node_selector_and_affinity(spec, node);
    const k8s::RequiredNodeAffinity required(spec);
    required.matches(node);
    for (const k8s::FieldError& error : required.errors()) k8s::to_string(error);

    const json affinity = spec.value("affinity", json::object());
    if (!affinity.is_object()) return 0;
    const json node_affinity = affinity.value("nodeAffinity", json::object());
    if (!node_affinity.is_object()) return 0;
    const json terms = node_affinity.value("requiredDuringSchedulingIgnoredDuringExecution", json());
    std::vector<k8s::FieldError> errors;
    if (const auto strict = k8s::NodeSelector::strict(terms, errors)) {
      if (strict->matches(node) != k8s::NodeSelector::lazy(terms).matches(node)) std::abort();
    }
    k8s::match_node_selector_terms(&node, terms);
    errors.clear();
    if (const auto preferred = k8s::PreferredSchedulingTerms::create(
            node_affinity.value("preferredDuringSchedulingIgnoredDuringExecution", json()), errors))
      preferred->score(node);
    // The first term's matchExpressions on their own, as a label selector.
    if (terms.is_object() && terms.contains("nodeSelectorTerms") && terms["nodeSelectorTerms"].is_array() &&
        !terms["nodeSelectorTerms"].empty() && terms["nodeSelectorTerms"][0].is_object()) {
      errors.clear();
      if (const auto selector = k8s::label_selector_from_requirements(
              terms["nodeSelectorTerms"][0].value("matchExpressions", json()), "fuzz", errors)) {
        selector->matches(node.labels);
        selector->to_string();
      }
    }
  } catch (const k8s::JsonFieldError&) {  // a field of the wrong JSON type, named
  }
  return 0;
}
