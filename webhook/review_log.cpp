#include "webhook/review_log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace gpuadmit::webhook {

using nlohmann::json;

std::shared_ptr<spdlog::logger> make_json_logger(const std::string& name,
                                                 spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(
      name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // The message is the rest of a JSON object that log_event has already escaped.
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                      spdlog::pattern_time_type::utc);
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, const std::string& message,
               json fields) {
  if (!logger.should_log(level)) return;
  json line = {{"msg", message}};
  if (fields.is_object()) line.update(fields);
  std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
  // Drop the braces: the logger's pattern supplies them around time and level.
  logger.log(level, "{}", std::string_view(text).substr(1, text.size() - 2));
}

json review_log_fields(const std::string& route, const HttpAnswer& answer, double seconds) {
  json fields = {{"route", route}, {"status", answer.status},
                 {"latency_us", static_cast<std::int64_t>(seconds * 1e6)}};
  if (!answer.outcome) {
    fields["decision"] = answer.status == 200 ? "denied" : "error";
    if (answer.status != 200) fields["error"] = answer.body.substr(0, 200);
    return fields;
  }
  const ReviewOutcome& outcome = *answer.outcome;
  const Response& response = outcome.response;
  fields["uid"] = response.uid;
  fields["kind"] = outcome.kind.kind;
  fields["namespace"] = outcome.workload.namespace_;
  fields["name"] = outcome.workload.name;
  fields["operation"] = outcome.operation;
  if (outcome.dry_run) fields["dry_run"] = true;
  fields["decision"] = response.allowed ? "allowed" : "denied";
  json fired = json::array();
  for (const PolicyOutcome& policy : outcome.policies)
    if (policy.fired || policy.denied || policy.error) fired.push_back(policy.policy);
  fields["policies"] = fired;
  // Denials that stale cluster state turned into warnings: the log says which, and why is in the
  // answer's first warning.
  json degraded = json::array();
  for (const PolicyOutcome& policy : outcome.policies)
    if (policy.degraded) degraded.push_back(policy.policy);
  if (!degraded.empty()) fields["degraded"] = degraded;
  fields["patch_ops"] = response.patch.is_array() ? response.patch.size() : 0;
  fields["warnings"] = response.warnings.size();
  if (!outcome.skipped.empty()) fields["skipped"] = outcome.skipped;
  return fields;
}

}  // namespace gpuadmit::webhook
