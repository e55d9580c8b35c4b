// Reading resource quantities out of Kubernetes JSON objects.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "engine/k8s/quantity.h"

namespace gpuadmit {

// A quantity as it appears in JSON: a string ("16Gi") or, from YAML manifests, a number (1).
// Throws k8s::QuantityError naming `field`.
k8s::Quantity quantity_from_json(const nlohmann::json& value, const std::string& field);

// containers[i].resources.<section>[name], absent -> nullopt. `section` is requests or limits.
std::optional<k8s::Quantity> container_resource(const nlohmann::json& container,
                                                const char* section, const std::string& name,
                                                const std::string& container_field);

}  // namespace gpuadmit
