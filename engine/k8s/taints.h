// Taints and tolerations as k8s.io/api core/v1 (toleration.go, taint.go) and
// k8s.io/component-helpers scheduling/corev1 (FindMatchingUntoleratedTaint) define them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

struct Taint {
  std::string key, value, effect;  // effect: NoSchedule, PreferNoSchedule, NoExecute
};

struct Toleration {
  std::string key;
  std::string op;  // "operator": "" (means Equal), Equal, Exists, Lt, Gt
  std::string value;
  std::string effect;  // "" matches every effect
  std::optional<std::int64_t> toleration_seconds;
};

// Kubernetes JSON field names; a missing or null field is "". A field of the wrong JSON
// type throws JsonFieldError naming the field.
Taint taint_from_json(const nlohmann::json& j);
Toleration toleration_from_json(const nlohmann::json& j);
std::vector<Toleration> tolerations_from_json(const nlohmann::json& array_or_null);
std::vector<Taint> taints_from_json(const nlohmann::json& array_or_null);
nlohmann::json to_json(const Toleration& t);  // empty fields are omitted, as omitempty does

// Toleration.ToleratesTaint. Lt/Gt tolerations only ever match when
// enable_comparison_operators is set (the TaintTolerationComparisonOperators gate).
bool tolerates(const Toleration& toleration, const Taint& taint,
               bool enable_comparison_operators = false);
// TolerationsTolerateTaint: some toleration tolerates the taint.
bool tolerated_by_any(const std::vector<Toleration>& tolerations, const Taint& taint,
                      bool enable_comparison_operators = false);

// The Lt/Gt rule: Gt means taint > toleration, Lt means taint < toleration. Both values
// must be canonical decimal int64 strings ("0", or -?[1-9][0-9]*), otherwise false; any
// other operator is false.
bool compare_numeric_values(std::string_view toleration_value, std::string_view taint_value,
                            std::string_view op);

std::string to_string(const Taint& t);             // Taint.ToString: key[=value][:effect]
bool match_taint(const Taint& a, const Taint& b);  // MatchTaint: same key and effect

// FindMatchingUntoleratedTaint: the first taint kept by `filter` that no toleration
// tolerates. An empty filter keeps every taint (upstream's nil filter).
std::optional<Taint> find_matching_untolerated_taint(
    const std::vector<Taint>& taints, const std::vector<Toleration>& tolerations,
    const std::function<bool(const Taint&)>& filter, bool enable_comparison_operators = false);

}  // namespace gpuadmit::k8s
