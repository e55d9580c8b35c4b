#include "engine/k8s/taints.h"

#include <charconv>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::k8s {
namespace {

// content.IsDecimalInteger then strconv.ParseInt: no '+', no leading zeros, no "-0".
std::optional<std::int64_t> parse_canonical_int64(std::string_view s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i >= s.size()) return std::nullopt;
  if (s[i] == '0' && s.size() != 1) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

template <typename T, typename F>
std::vector<T> list_from_json(const nlohmann::json& j, std::string_view what, F from_json) {
  std::vector<T> out;
  if (j.is_null()) return out;
  if (!j.is_array()) json_fields::fail(what, "an array", j);
  out.reserve(j.size());
  for (const auto& item : j) out.push_back(from_json(item));
  return out;
}

}  // namespace

Taint taint_from_json(const nlohmann::json& j) {
  using json_fields::string_or_empty;
  return {string_or_empty(j, "taint", "key"), string_or_empty(j, "taint", "value"),
          string_or_empty(j, "taint", "effect")};
}

Toleration toleration_from_json(const nlohmann::json& j) {
  using json_fields::string_or_empty;
  Toleration t{string_or_empty(j, "toleration", "key"),
               string_or_empty(j, "toleration", "operator"),
               string_or_empty(j, "toleration", "value"),
               string_or_empty(j, "toleration", "effect"), std::nullopt};
  if (const auto* secs = json_fields::member(j, "toleration", "tolerationSeconds")) {
    t.toleration_seconds = json_fields::int64_at(*secs, "toleration.tolerationSeconds");
  }
  return t;
}

std::vector<Toleration> tolerations_from_json(const nlohmann::json& j) {
  return list_from_json<Toleration>(j, "tolerations", toleration_from_json);
}

std::vector<Taint> taints_from_json(const nlohmann::json& j) {
  return list_from_json<Taint>(j, "taints", taint_from_json);
}

nlohmann::json to_json(const Toleration& t) {
  nlohmann::json j = nlohmann::json::object();
  if (!t.key.empty()) j["key"] = t.key;
  if (!t.op.empty()) j["operator"] = t.op;
  if (!t.value.empty()) j["value"] = t.value;
  if (!t.effect.empty()) j["effect"] = t.effect;
  if (t.toleration_seconds) j["tolerationSeconds"] = *t.toleration_seconds;
  return j;
}

bool compare_numeric_values(std::string_view toleration_value, std::string_view taint_value,
                            std::string_view op) {
  auto tol = parse_canonical_int64(toleration_value);
  auto tnt = parse_canonical_int64(taint_value);
  if (!tol || !tnt) return false;
  if (op == "Lt") return *tnt < *tol;
  if (op == "Gt") return *tnt > *tol;
  return false;
}

bool tolerates(const Toleration& t, const Taint& taint, bool enable_comparison_operators) {
  if (!t.effect.empty() && t.effect != taint.effect) return false;
  if (!t.key.empty() && t.key != taint.key) return false;
  if (t.op.empty() || t.op == "Equal") return t.value == taint.value;
  if (t.op == "Exists") return true;
  if (t.op == "Lt" || t.op == "Gt") {
    return enable_comparison_operators && compare_numeric_values(t.value, taint.value, t.op);
  }
  return false;  // unknown operators tolerate nothing
}

bool tolerated_by_any(const std::vector<Toleration>& tolerations, const Taint& taint,
                      bool enable_comparison_operators) {
  for (const auto& t : tolerations) {
    if (tolerates(t, taint, enable_comparison_operators)) return true;
  }
  return false;
}

std::string to_string(const Taint& t) {
  std::string s = t.key;
  if (!t.value.empty()) s += "=" + t.value;
  if (!t.effect.empty() || !t.value.empty()) s += ":" + t.effect;
  return s;
}

bool match_taint(const Taint& a, const Taint& b) { return a.key == b.key && a.effect == b.effect; }

std::optional<Taint> find_matching_untolerated_taint(
    const std::vector<Taint>& taints, const std::vector<Toleration>& tolerations,
    const std::function<bool(const Taint&)>& filter, bool enable_comparison_operators) {
  for (const auto& taint : taints) {
    if (filter && !filter(taint)) continue;
    if (!tolerated_by_any(tolerations, taint, enable_comparison_operators)) return taint;
  }
  return std::nullopt;
}

}  // namespace gpuadmit::k8s
