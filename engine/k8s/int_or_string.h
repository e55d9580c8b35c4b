// IntOrString fields (k8s.io/apimachinery pkg/util/intstr) scaled against a total, as
// GetScaledValueFromIntOrPercent does for a Deployment's maxSurge and maxUnavailable and a
// PodDisruptionBudget's minAvailable and maxUnavailable.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

// "N%" (N decimal digits, as the API server's validation requires) as N percent of `total`,
// rounded up or down; the product saturates instead of overflowing. nullopt for any other text
// and for an N past int64, which strconv.Atoi refuses upstream.
std::optional<std::int64_t> scaled_percent(std::string_view text, std::int64_t total, bool round_up);

// An integer as is, a "N%" string as scaled_percent. nullopt for a negative integer, a string
// without '%' (upstream: "invalid type: string is not a percentage") and any other JSON.
std::optional<std::int64_t> scaled_int_or_percent(const nlohmann::json& value, std::int64_t total, bool round_up);

}  // namespace gpuadmit::k8s
