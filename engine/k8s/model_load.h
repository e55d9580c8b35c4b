// How long a pod's model takes to load, as gpu-admit can tell from the pod alone: what the
// autoscaling checks weigh a cold start (a scale from zero) by.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

inline constexpr std::string_view kModelLoadAnnotation = "gpu-admit.io/model-load-seconds";
inline constexpr std::int64_t kMaxModelLoadSeconds = 86400;

// The annotation's value when it is a whole number of seconds from 1 to 86400 (what probe-defaults
// accepts), else nullopt.
std::optional<std::int64_t> parse_model_load_seconds(std::string_view text);

// gpu-admit.io/model-load-seconds on the pod (`annotations`, then `fallback_annotations`: a pod
// template's, then its object's), else the longest startupProbe budget of the pod's containers
// (initialDelaySeconds + failureThreshold × periodSeconds, with Kubernetes' defaults 0, 3 and 10),
// else nullopt. Fields of the wrong type count as absent; arithmetic saturates.
std::optional<std::int64_t> model_load_seconds(const nlohmann::json& spec, const nlohmann::json* annotations,
                                               const nlohmann::json* fallback_annotations = nullptr);

}  // namespace gpuadmit::k8s
