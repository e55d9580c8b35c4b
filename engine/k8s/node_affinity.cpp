#include "engine/k8s/node_affinity.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>

#include "engine/k8s/json_fields.h"
#include "engine/text.h"

namespace gpuadmit::k8s {
namespace {

namespace jf = json_fields;
using nlohmann::json;

// ---- content.IsLabelKey / IsLabelValue / IsDNS1123Subdomain, without regexes ----------

constexpr std::string_view kLabelKeyFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr std::string_view kLabelKeyMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character";
constexpr std::string_view kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr std::string_view kLabelValueMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character";
constexpr std::string_view kDnsSubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kDnsSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character";

std::string regex_error(std::string_view msg, std::string_view fmt,
                        std::initializer_list<std::string_view> examples) {
  std::string s(msg);
  s += " (e.g. ";
  bool first = true;
  for (auto e : examples) {
    if (!first) s += " or ";  // upstream's double space after each comma comes from here
    first = false;
    // Appended piecewise: GCC 12 at -O2 misreports `"lit" + std::string` (-Wstringop-overflow).
    s.append("'").append(e).append("', ");
  }
  return s + "regex used for validation is '" + std::string(fmt) + "')";
}

std::string max_len_error(std::size_t n) {
  return "must be no more than " + std::to_string(n) + " bytes";
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool is_label_name(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])? separated by single dots.
bool is_dns1123_subdomain(std::string_view s) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || !lower_alnum(label.front()) || !lower_alnum(label.back())) return false;
    for (char c : label) {
      if (!lower_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::vector<std::string> label_key_errors(std::string_view key) {
  std::vector<std::string> errs;
  auto slashes = std::count(key.begin(), key.end(), '/');
  if (slashes > 1) {
    errs.push_back("a valid label key " +
                   regex_error(kLabelKeyMsg, kLabelKeyFmt, {"MyName", "my.name", "123-abc"}) +
                   " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    return errs;
  }
  std::string_view name = key;
  if (slashes == 1) {
    std::string_view prefix = key.substr(0, key.find('/'));
    name = key.substr(key.find('/') + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      if (prefix.size() > 253) errs.push_back("prefix part " + max_len_error(253));
      if (!is_dns1123_subdomain(prefix)) {
        errs.push_back("prefix part " +
                       regex_error(kDnsSubdomainMsg, kDnsSubdomainFmt, {"example.com"}));
      }
    }
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errs.push_back("name part " + max_len_error(63));
  }
  if (!is_label_name(name)) {
    errs.push_back("name part " +
                   regex_error(kLabelKeyMsg, kLabelKeyFmt, {"MyName", "my.name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> label_value_errors(std::string_view v) {
  std::vector<std::string> errs;
  if (v.size() > 63) errs.push_back(max_len_error(63));
  if (!v.empty() && !is_label_name(v)) {
    errs.push_back(regex_error(kLabelValueMsg, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

// strconv.ParseInt(s, 10, 64): optional sign, decimal digits, leading zeros allowed.
std::optional<std::int64_t> parse_go_int64(std::string_view s) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return std::nullopt;
  }
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

FieldError invalid(std::string field, json bad, std::string detail) {
  return {FieldError::Type::Invalid, std::move(field), std::move(bad), std::move(detail)};
}

FieldError not_supported(std::string field, const std::string& bad,
                         std::initializer_list<std::string_view> supported) {
  std::string detail = "supported values: ";
  bool first = true;
  for (auto s : supported) {
    if (!first) detail += ", ";
    first = false;
    detail.append("\"").append(s).append("\"");
  }
  return {FieldError::Type::NotSupported, std::move(field), bad, std::move(detail)};
}

// A NodeSelectorRequirement as written in the object.
struct RawRequirement {
  std::string key, op;
  std::vector<std::string> values;
};

RawRequirement raw_requirement(const json& j, const std::string& path) {
  RawRequirement r{
      jf::string_or_empty(j, path, "key"), jf::string_or_empty(j, path, "operator"), {}};
  if (const json* vals = jf::array_or_null(j, path, "values")) {
    std::string vpath = jf::join(path, "values");
    for (std::size_t i = 0; i < vals->size(); ++i) {
      const json& v = (*vals)[i];
      if (!v.is_string()) jf::fail(jf::index(vpath, i), "a string", v);
      r.values.push_back(v.get<std::string>());
    }
  }
  return r;
}

// A map of label values (spec.nodeSelector, metadata.labels); null values are absent.
Labels labels_from(const json& j, const std::string& path) {
  Labels out;
  if (j.is_null()) return out;
  if (!j.is_object()) jf::fail(path, "an object", j);
  for (const auto& [k, v] : j.items()) {
    if (v.is_null()) continue;
    if (!v.is_string()) jf::fail(path + "[" + k + "]", "a string", v);
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

}  // namespace

// ---- Node, FieldError -----------------------------------------------------------------

Node node_from_json(const json& node) {
  Node n;
  if (const json* meta = jf::member(node, "node", "metadata")) {
    n.name = jf::string_or_empty(*meta, "node.metadata", "name");
    if (const json* labels = jf::member(*meta, "node.metadata", "labels")) {
      n.labels = labels_from(*labels, "node.metadata.labels");
    }
  }
  return n;
}

std::string_view type_name(FieldError::Type t) {
  return t == FieldError::Type::Invalid ? "FieldValueInvalid" : "FieldValueNotSupported";
}

std::string to_string(const FieldError& e) {
  std::string s = e.field + ": ";
  s += e.type == FieldError::Type::Invalid ? "Invalid value: " : "Unsupported value: ";
  if (e.bad_value.is_array()) {  // Go prints a []string as []string{"a", "b"}
    s += "[]string{";
    for (std::size_t i = 0; i < e.bad_value.size(); ++i) {
      s += (i ? ", " : "") + e.bad_value[i].dump();
    }
    s += "}";
  } else {
    s += e.bad_value.dump();
  }
  if (!e.detail.empty()) s += ": " + e.detail;
  return s;
}

// ---- LabelRequirement, LabelSelector --------------------------------------------------

std::optional<LabelRequirement> LabelRequirement::create(std::string key, LabelOperator op,
                                                         std::vector<std::string> values,
                                                         const std::string& path,
                                                         std::vector<FieldError>& errors) {
  const std::size_t before = errors.size();
  if (auto errs = label_key_errors(key); !errs.empty()) {
    errors.push_back(invalid(jf::join(path, "key"), key, join(errs, "; ")));
  }
  const std::string vpath = jf::join(path, "values");
  LabelRequirement r;
  switch (op) {
    case LabelOperator::In:
    case LabelOperator::NotIn:
      if (values.empty()) {
        errors.push_back(
            invalid(vpath, values, "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case LabelOperator::Exists:
    case LabelOperator::DoesNotExist:
      if (!values.empty()) {
        errors.push_back(
            invalid(vpath, values, "values set must be empty for exists and does not exist"));
      }
      break;
    case LabelOperator::Gt:
    case LabelOperator::Lt:
      if (values.size() != 1) {
        errors.push_back(
            invalid(vpath, values, "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (auto v = parse_go_int64(values[i])) {
          r.bound_ = *v;
        } else {
          errors.push_back(invalid(jf::index(vpath, i), values[i],
                                   "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      }
      break;
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (auto errs = label_value_errors(values[i]); !errs.empty()) {
      errors.push_back(invalid(jf::index(vpath, i) + "[" + key + "]", values[i], join(errs, "; ")));
    }
  }
  if (errors.size() != before) return std::nullopt;
  r.key_ = std::move(key);
  r.op_ = op;
  r.values_ = std::move(values);
  std::sort(r.values_.begin(), r.values_.end());  // membership by binary search
  return r;
}

bool LabelRequirement::matches(const Labels& labels) const {
  auto it = labels.find(key_);
  const bool present = it != labels.end();
  switch (op_) {
    case LabelOperator::In:
      return present && std::binary_search(values_.begin(), values_.end(), it->second);
    case LabelOperator::NotIn:
      return !present || !std::binary_search(values_.begin(), values_.end(), it->second);
    case LabelOperator::Exists:
      return present;
    case LabelOperator::DoesNotExist:
      return !present;
    case LabelOperator::Gt:
    case LabelOperator::Lt: {
      if (!present) return false;
      auto v = parse_go_int64(it->second);
      if (!v) return false;
      return op_ == LabelOperator::Gt ? *v > bound_ : *v < bound_;
    }
  }
  return false;
}

std::string LabelRequirement::to_string() const {
  std::string s = op_ == LabelOperator::DoesNotExist ? "!" + key_ : key_;
  switch (op_) {
    case LabelOperator::Exists:
    case LabelOperator::DoesNotExist:
      return s;
    case LabelOperator::In:
      return s + " in (" + join(values_, ",") + ")";
    case LabelOperator::NotIn:
      return s + " notin (" + join(values_, ",") + ")";
    case LabelOperator::Gt:
      return s + ">" + values_.front();
    case LabelOperator::Lt:
      return s + "<" + values_.front();
  }
  return s;
}

LabelSelector LabelSelector::nothing() {
  LabelSelector s(std::vector<LabelRequirement>{});
  s.nothing_ = true;
  return s;
}

LabelSelector::LabelSelector(std::vector<LabelRequirement> requirements)
    : requirements_(std::move(requirements)) {
  std::stable_sort(requirements_.begin(), requirements_.end(),
                   [](const auto& a, const auto& b) { return a.key() < b.key(); });
}

bool LabelSelector::matches(const Labels& labels) const {
  if (nothing_) return false;
  for (const auto& r : requirements_) {
    if (!r.matches(labels)) return false;
  }
  return true;
}

std::string LabelSelector::to_string() const {
  std::vector<std::string> parts;
  for (const auto& r : requirements_) parts.push_back(r.to_string());
  return join(parts, ",");
}

std::optional<LabelSelector> label_selector_from_requirements(const json& match_expressions,
                                                              const std::string& path,
                                                              std::vector<FieldError>& errors) {
  if (match_expressions.is_null() || match_expressions.empty()) return LabelSelector::nothing();
  if (!match_expressions.is_array()) jf::fail(path, "an array", match_expressions);
  static const std::pair<std::string_view, LabelOperator> kOps[] = {
      {"In", LabelOperator::In},         {"NotIn", LabelOperator::NotIn},
      {"Exists", LabelOperator::Exists}, {"DoesNotExist", LabelOperator::DoesNotExist},
      {"Gt", LabelOperator::Gt},         {"Lt", LabelOperator::Lt}};
  const std::size_t before = errors.size();
  std::vector<LabelRequirement> reqs;
  for (std::size_t i = 0; i < match_expressions.size(); ++i) {
    const std::string p = jf::index(path, i);
    RawRequirement raw = raw_requirement(match_expressions[i], p);
    auto op = std::find_if(std::begin(kOps), std::end(kOps),
                           [&](const auto& o) { return o.first == raw.op; });
    if (op == std::end(kOps)) {
      errors.push_back(not_supported(jf::join(p, "operator"), raw.op,
                                     {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}));
      continue;
    }
    auto r =
        LabelRequirement::create(std::move(raw.key), op->second, std::move(raw.values), p, errors);
    if (r) reqs.push_back(std::move(*r));
  }
  if (errors.size() != before) return std::nullopt;
  return LabelSelector(std::move(reqs));
}

std::optional<LabelSelector> metav1_label_selector(const json& selector, const std::string& path,
                                                   std::vector<FieldError>& errors) {
  if (selector.is_null()) return LabelSelector::nothing();
  if (!selector.is_object()) jf::fail(path, "an object", selector);
  const std::size_t before = errors.size();
  std::vector<LabelRequirement> reqs;
  const std::string lpath = jf::join(path, "matchLabels");
  if (auto it = selector.find("matchLabels"); it != selector.end())
    for (const auto& [key, value] : labels_from(*it, lpath))
      if (auto r = LabelRequirement::create(key, LabelOperator::In, {value}, lpath + "[" + key + "]", errors))
        reqs.push_back(std::move(*r));
  const std::string epath = jf::join(path, "matchExpressions");
  if (const json* exprs = jf::array_or_null(selector, path, "matchExpressions"))
    for (std::size_t i = 0; i < exprs->size(); ++i) {
      const std::string p = jf::index(epath, i);
      RawRequirement raw = raw_requirement((*exprs)[i], p);
      static const std::pair<std::string_view, LabelOperator> kOps[] = {
          {"In", LabelOperator::In}, {"NotIn", LabelOperator::NotIn},
          {"Exists", LabelOperator::Exists}, {"DoesNotExist", LabelOperator::DoesNotExist}};
      auto op = std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& o) { return o.first == raw.op; });
      if (op == std::end(kOps)) {
        errors.push_back(not_supported(jf::join(p, "operator"), raw.op, {"In", "NotIn", "Exists", "DoesNotExist"}));
        continue;
      }
      if (auto r = LabelRequirement::create(std::move(raw.key), op->second, std::move(raw.values), p, errors))
        reqs.push_back(std::move(*r));
    }
  if (errors.size() != before) return std::nullopt;
  return LabelSelector(std::move(reqs));  // no requirements: everything
}

Labels labels_of(const json& labels, const std::string& path) { return labels_from(labels, path); }

// ---- NodeSelectorTerm, NodeSelector -----------------------------------------------------

bool NodeSelectorTerm::is_empty(const json& term, const std::string& path) {
  const json* exprs = jf::array_or_null(term, path, "matchExpressions");
  const json* fields = jf::array_or_null(term, path, "matchFields");
  return (!exprs || exprs->empty()) && (!fields || fields->empty());
}

NodeSelectorTerm::NodeSelectorTerm(const json& term, const std::string& path) {
  if (const json* exprs = jf::array_or_null(term, path, "matchExpressions");
      exprs && !exprs->empty()) {
    labels_ = label_selector_from_requirements(*exprs, jf::join(path, "matchExpressions"), errors_);
  }
  const json* fields = jf::array_or_null(term, path, "matchFields");
  if (!fields) return;
  const std::string fpath = jf::join(path, "matchFields");
  for (std::size_t i = 0; i < fields->size(); ++i) {
    const std::string p = jf::index(fpath, i);
    RawRequirement raw = raw_requirement((*fields)[i], p);
    if (raw.op != "In" && raw.op != "NotIn") {
      errors_.push_back(not_supported(jf::join(p, "operator"), raw.op, {"In", "NotIn"}));
    } else if (raw.values.size() != 1) {
      errors_.push_back(invalid(jf::join(p, "values"), raw.values, "must have one element"));
    } else {
      fields_.push_back({std::move(raw.key), std::move(raw.values[0]), raw.op == "In"});
    }
  }
}

bool NodeSelectorTerm::matches(const Node& node) const {
  if (!errors_.empty()) return false;
  if (labels_ && !labels_->matches(node.labels)) return false;
  if (node.name.empty()) return true;  // no node fields: upstream skips matchFields
  for (const auto& f : fields_) {
    // metadata.name is the only node field; any other key reads as "".
    std::string_view value = f.key == "metadata.name" ? std::string_view(node.name) : "";
    if ((value == f.value) != f.equal) return false;
  }
  return true;
}

NodeSelector NodeSelector::lazy(const json& node_selector, const std::string& path) {
  NodeSelector s;
  const std::string tpath = jf::join(path, "nodeSelectorTerms");
  const json* terms = jf::array_or_null(node_selector, path, "nodeSelectorTerms");
  if (!terms) return s;
  for (std::size_t i = 0; i < terms->size(); ++i) {
    const std::string p = jf::index(tpath, i);
    if (NodeSelectorTerm::is_empty((*terms)[i], p)) continue;
    s.terms_.emplace_back((*terms)[i], p);
  }
  return s;
}

std::optional<NodeSelector> NodeSelector::strict(const json& node_selector,
                                                 std::vector<FieldError>& errors,
                                                 const std::string& path) {
  NodeSelector s = lazy(node_selector, path);
  auto errs = s.errors();
  if (errs.empty()) return s;
  errors.insert(errors.end(), errs.begin(), errs.end());
  return std::nullopt;
}

bool NodeSelector::matches(const Node& node) const {
  return std::any_of(terms_.begin(), terms_.end(),
                     [&](const NodeSelectorTerm& t) { return t.matches(node); });
}

std::vector<FieldError> NodeSelector::errors() const {
  std::vector<FieldError> errs;
  for (const auto& t : terms_) errs.insert(errs.end(), t.errors().begin(), t.errors().end());
  return errs;
}

bool match_node_selector_terms(const Node* node, const json& node_selector) {
  return node && NodeSelector::lazy(node_selector).matches(*node);
}

bool matches_node_selector_map(const Labels& selector, const Labels& node_labels) {
  for (const auto& [k, v] : selector) {
    auto it = node_labels.find(k);
    if (it == node_labels.end() || it->second != v) return false;
  }
  return true;
}

// ---- PreferredSchedulingTerms ------------------------------------------------------------

std::optional<PreferredSchedulingTerms> PreferredSchedulingTerms::create(
    const json& terms, std::vector<FieldError>& errors, const std::string& path) {
  PreferredSchedulingTerms out;
  if (terms.is_null()) return out;
  if (!terms.is_array()) jf::fail(path, "an array", terms);
  const std::size_t before = errors.size();
  for (std::size_t i = 0; i < terms.size(); ++i) {
    const std::string p = jf::index(path, i);
    const json* w = jf::member(terms[i], p, "weight");
    const std::int64_t weight = w ? jf::int64_at(*w, jf::join(p, "weight")) : 0;
    if (weight < INT32_MIN || weight > INT32_MAX) {
      jf::fail(jf::join(p, "weight"), "an int32 integer", *w);
    }
    static const json kNull;
    const json* pref = jf::member(terms[i], p, "preference");
    const json& preference = pref ? *pref : kNull;
    // Upstream paths name the term by index only, without ".preference".
    if (weight == 0 || NodeSelectorTerm::is_empty(preference, p)) continue;
    NodeSelectorTerm term(preference, p);
    if (!term.errors().empty()) {
      errors.insert(errors.end(), term.errors().begin(), term.errors().end());
    } else {
      out.terms_.emplace_back(std::move(term), static_cast<std::int32_t>(weight));
    }
  }
  if (errors.size() != before) return std::nullopt;
  return out;
}

std::int64_t PreferredSchedulingTerms::score(const Node& node) const {
  std::int64_t score = 0;
  for (const auto& [term, weight] : terms_) {
    if (term.matches(node)) score += weight;
  }
  return score;
}

// ---- RequiredNodeAffinity ----------------------------------------------------------------

RequiredNodeAffinity::RequiredNodeAffinity(const json& pod_spec) {
  if (const json* sel = jf::member(pod_spec, "spec", "nodeSelector")) {
    node_selector_ = labels_from(*sel, "spec.nodeSelector");
  }
  const json* affinity = jf::member(pod_spec, "spec", "affinity");
  const json* node_affinity =
      affinity ? jf::member(*affinity, "spec.affinity", "nodeAffinity") : nullptr;
  const json* required = node_affinity
                             ? jf::member(*node_affinity, "spec.affinity.nodeAffinity",
                                          "requiredDuringSchedulingIgnoredDuringExecution")
                             : nullptr;
  if (!required) return;
  try {
    // Field errors keep upstream's paths (relative to the selector); shape errors get the
    // full path so that a bad object is easy to find.
    required_ = NodeSelector::lazy(*required);
  } catch (const JsonFieldError& e) {
    const std::string what = e.what();
    throw JsonFieldError(
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution" +
        (what.starts_with(":") ? what : "." + what));
  }
}

bool RequiredNodeAffinity::matches(const Node& node) const {
  if (!matches_node_selector_map(node_selector_, node.labels)) return false;
  return !required_ || required_->matches(node);
}

std::vector<FieldError> RequiredNodeAffinity::errors() const {
  return required_ ? required_->errors() : std::vector<FieldError>{};
}

bool pod_matches_node_selector_and_affinity(const json& pod_spec, const Node& node) {
  return RequiredNodeAffinity(pod_spec).matches(node);
}

}  // namespace gpuadmit::k8s
