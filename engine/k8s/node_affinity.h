// Node selection as the scheduler does it: label requirements (k8s.io/apimachinery
// pkg/labels), node selector terms, preferred terms and RequiredNodeAffinity
// (k8s.io/component-helpers scheduling/corev1/nodeaffinity and helpers.go).
//
// Everything is compiled once from the pod's JSON (keys validated, values sorted, Gt/Lt
// bounds parsed) so that matching a node only looks labels up: the capacity model
// matches one pod against many nodes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

using Labels = std::map<std::string, std::string, std::less<>>;

// What node selection reads from a Node: metadata.name and metadata.labels.
struct Node {
  std::string name;
  Labels labels;
};
Node node_from_json(const nlohmann::json& node);  // a v1.Node object

// field.Error as the upstream constructors report it.
struct FieldError {
  enum class Type { Invalid, NotSupported };
  Type type;
  std::string field;  // e.g. nodeSelectorTerms[2].matchExpressions[0].key
  nlohmann::json bad_value;
  std::string detail;
};
std::string_view type_name(FieldError::Type t);  // "FieldValueInvalid", "FieldValueNotSupported"
std::string to_string(const FieldError& e);      // field.Error.Error()

enum class LabelOperator { In, NotIn, Exists, DoesNotExist, Gt, Lt };

// labels.Requirement.
class LabelRequirement {
 public:
  // labels.NewRequirement: checks the key, the value count (and for Gt/Lt that the value
  // is a base-10 int64) and every value; on failure appends the errors under `path`.
  static std::optional<LabelRequirement> create(std::string key, LabelOperator op,
                                                std::vector<std::string> values,
                                                const std::string& path,
                                                std::vector<FieldError>& errors);

  // In: present and listed. NotIn: absent or not listed. Gt/Lt: present and a base-10
  // int64 ("0206" is 206) compared with the bound; anything else never matches.
  bool matches(const Labels& labels) const;

  const std::string& key() const { return key_; }
  LabelOperator op() const { return op_; }
  const std::vector<std::string>& values() const { return values_; }  // sorted
  std::string to_string() const;  // Requirement.String: "k in (a,b)", "!k", "k>1"

 private:
  LabelRequirement() = default;
  std::string key_;
  LabelOperator op_ = LabelOperator::Exists;
  std::vector<std::string> values_;
  std::int64_t bound_ = 0;  // Gt/Lt
};

// Requirements ANDed, sorted by key as Selector.Add keeps them.
class LabelSelector {
 public:
  static LabelSelector nothing();  // labels.Nothing(): matches no label set
  explicit LabelSelector(std::vector<LabelRequirement> requirements);

  bool matches(const Labels& labels) const;
  bool matches_nothing() const { return nothing_; }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  std::string to_string() const;

 private:
  std::vector<LabelRequirement> requirements_;
  bool nothing_ = false;
};

// nodeSelectorRequirementsAsSelector: a matchExpressions array (null or empty gives
// nothing()), or nullopt with every requirement's errors under `path`.
std::optional<LabelSelector> label_selector_from_requirements(
    const nlohmann::json& match_expressions, const std::string& path,
    std::vector<FieldError>& errors);

// metav1.LabelSelectorAsSelector (a PodDisruptionBudget's or a Deployment's spec.selector):
// null selects nothing, `{}` everything; matchLabels are equality requirements, matchExpressions
// take In, NotIn, Exists and DoesNotExist only. nullopt with the errors under `path`. Throws
// JsonFieldError when a field has the wrong JSON type.
std::optional<LabelSelector> metav1_label_selector(const nlohmann::json& selector, const std::string& path,
                                                   std::vector<FieldError>& errors);
// labels_from for callers outside: a map of label values (null values are absent); throws
// JsonFieldError for a non-string value.
Labels labels_of(const nlohmann::json& labels, const std::string& path);

// A parsed NodeSelectorTerm: matchExpressions and matchFields, ANDed.
class NodeSelectorTerm {
 public:
  NodeSelectorTerm(const nlohmann::json& term, const std::string& path);
  // Neither matchExpressions nor matchFields: such a term selects nothing and is dropped.
  static bool is_empty(const nlohmann::json& term, const std::string& path);

  // False when the term had parse errors. matchFields (metadata.name only) are skipped for
  // a node without a name, as upstream does.
  bool matches(const Node& node) const;
  const std::vector<FieldError>& errors() const { return errors_; }

 private:
  struct FieldRequirement {
    std::string key, value;
    bool equal;  // In: field == value; NotIn: field != value
  };
  std::optional<LabelSelector> labels_;
  std::vector<FieldRequirement> fields_;
  std::vector<FieldError> errors_;
};

// A v1.NodeSelector: terms ORed; no terms match nothing.
class NodeSelector {
 public:
  // NewLazyErrorNodeSelector: a term with parse errors never matches.
  static NodeSelector lazy(const nlohmann::json& node_selector, const std::string& path = "");
  // NewNodeSelector: nullopt plus the parse errors of every term, or the selector.
  static std::optional<NodeSelector> strict(const nlohmann::json& node_selector,
                                            std::vector<FieldError>& errors,
                                            const std::string& path = "");

  bool matches(const Node& node) const;
  bool matches(const Node* node) const { return node && matches(*node); }  // nil node: false
  std::vector<FieldError> errors() const;  // the parse errors of every term

 private:
  std::vector<NodeSelectorTerm> terms_;
};

// MatchNodeSelectorTerms(node, nodeSelector): the lazy selector; nil node never matches.
bool match_node_selector_terms(const Node* node, const nlohmann::json& node_selector);

// pod.spec.nodeSelector: every key present with an equal value.
bool matches_node_selector_map(const Labels& selector, const Labels& node_labels);

// NewPreferredSchedulingTerms: terms with weight 0 or an empty preference are skipped
// before validation; the errors of the others are reported together.
class PreferredSchedulingTerms {
 public:
  static std::optional<PreferredSchedulingTerms> create(const nlohmann::json& terms,
                                                        std::vector<FieldError>& errors,
                                                        const std::string& path = "");
  std::int64_t score(const Node& node) const;  // sum of the weights of matching terms

 private:
  std::vector<std::pair<NodeSelectorTerm, std::int32_t>> terms_;
};

// GetRequiredNodeAffinity(pod): spec.nodeSelector AND
// spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution (lazy).
class RequiredNodeAffinity {
 public:
  explicit RequiredNodeAffinity(const nlohmann::json& pod_spec);
  bool matches(const Node& node) const;
  // Parse errors of the required terms (upstream surfaces them when no term matches).
  std::vector<FieldError> errors() const;

 private:
  Labels node_selector_;
  std::optional<NodeSelector> required_;
};

// One-shot RequiredNodeAffinity(pod_spec).matches(node); build the object to match many.
bool pod_matches_node_selector_and_affinity(const nlohmann::json& pod_spec, const Node& node);

}  // namespace gpuadmit::k8s
