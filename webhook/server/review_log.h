// What one review's log line says: it names the object and the decision, never its contents,
// so no secret or env value reaches the logs.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "gpuadmit/engine.h"

namespace gpuadmit::webhook {

// The fields of one review's log line: uid, kind, namespace/name, operation, decision, the
// policies that fired, patch size, warning count and latency.
nlohmann::json review_log_fields(const std::string& route, const HttpAnswer& answer, double seconds);

}  // namespace gpuadmit::webhook
