// Structured JSON logs, one object per line, through spdlog: what an operator greps and what a
// log pipeline indexes. Review lines name the object and the decision, never its contents, so no
// secret or env value reaches the logs.
#pragma once

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "gpuadmit/engine.h"

namespace gpuadmit::webhook {

// A logger writing {"time":...,"level":...,<fields>} lines to stderr.
std::shared_ptr<spdlog::logger> make_json_logger(const std::string& name, spdlog::level::level_enum level);

// Writes `fields` (a JSON object) as the rest of one log line.
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, const std::string& message,
               nlohmann::json fields = nlohmann::json::object());

// The fields of one review's log line: uid, kind, namespace/name, operation, decision, the
// policies that fired, patch size, warning count and latency.
nlohmann::json review_log_fields(const std::string& route, const HttpAnswer& answer, double seconds);

}  // namespace gpuadmit::webhook
