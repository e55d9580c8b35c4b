#include "webhook/metrics.h"

#include <prometheus/text_serializer.h>

namespace gpuadmit::webhook {
namespace {

// Reviews take tens of microseconds; the fine low buckets make the 200 µs goal readable.
const prometheus::Histogram::BucketBoundaries kReviewBuckets = {
    25e-6, 50e-6, 75e-6, 100e-6, 150e-6, 200e-6, 300e-6, 500e-6, 1e-3,
    2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0};

std::string decision_of(const HttpAnswer& answer) {
  if (answer.status != 200) return "error";
  return answer.allowed ? "allowed" : "denied";
}

std::string mode_name(Mode mode) {
  switch (mode) {
    case Mode::Enforce: return "enforce";
    case Mode::Warn: return "warn";
    case Mode::Audit: return "audit";
    case Mode::Off: return "off";
  }
  return "unknown";
}

std::string result_of(const PolicyOutcome& policy) {
  if (policy.error) return "error";
  if (policy.denied) return "denied";
  if (policy.degraded) return "degraded";  // would have denied; the cluster state was stale
  if (policy.exempted) return "exempted";
  return policy.fired ? "fired" : "passed";
}

}  // namespace

WebhookMetrics::WebhookMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      review_seconds_(prometheus::BuildHistogram()
                          .Name("gpuadmit_review_duration_seconds")
                          .Help("Server-side review time, from the request body to the serialized answer")
                          .Register(*registry_)),
      policy_decisions_(prometheus::BuildCounter()
                            .Name("gpuadmit_policy_decisions_total")
                            .Help("Policy evaluations by policy, mode and result (passed, fired, denied, degraded, exempted, error)")
                            .Register(*registry_)),
      requests_(prometheus::BuildCounter()
                    .Name("gpuadmit_http_requests_total")
                    .Help("HTTP requests answered, by route and status code")
                    .Register(*registry_)),
      patches_applied_(prometheus::BuildCounter()
                           .Name("gpuadmit_patches_applied_total")
                           .Help("Reviews answered with a non-empty JSON Patch")
                           .Register(*registry_)
                           .Add({})),
      patch_operations_(prometheus::BuildCounter()
                            .Name("gpuadmit_patch_operations_total")
                            .Help("JSON Patch operations returned")
                            .Register(*registry_)
                            .Add({})),
      config_reloads_(prometheus::BuildCounter()
                          .Name("gpuadmit_config_reloads_total")
                          .Help("Configuration reloads after a file change, by result (ok, failed)")
                          .Register(*registry_)),
      cert_reloads_(prometheus::BuildCounter()
                        .Name("gpuadmit_cert_reloads_total")
                        .Help("Serving certificate reloads after a file change, by result (ok, failed)")
                        .Register(*registry_)),
      tls_handshake_failures_(prometheus::BuildCounter()
                                  .Name("gpuadmit_tls_handshake_failures_total")
                                  .Help("TLS connections closed before the handshake completed")
                                  .Register(*registry_)
                                  .Add({})),
      in_flight_(prometheus::BuildGauge()
                     .Name("gpuadmit_reviews_in_flight")
                     .Help("Admission reviews being answered now")
                     .Register(*registry_)
                     .Add({})) {
  // Present from the start, so that a dashboard sees zeros rather than no series.
  for (const char* result : {"ok", "failed"}) {
    config_reloads_.Add({{"result", result}});
    cert_reloads_.Add({{"result", result}});
  }
}

void WebhookMetrics::observe_review(const std::string& route, const HttpAnswer& answer,
                                    double seconds) {
  review_seconds_.Add({{"route", route}, {"decision", decision_of(answer)}}, kReviewBuckets)
      .Observe(seconds);
  if (!answer.outcome) return;
  for (const PolicyOutcome& policy : answer.outcome->policies)
    policy_decisions_
        .Add({{"policy", policy.policy}, {"mode", mode_name(policy.mode)}, {"result", result_of(policy)}})
        .Increment();
  const auto& patch = answer.outcome->response.patch;
  if (answer.allowed && patch.is_array() && !patch.empty()) {
    patches_applied_.Increment();
    patch_operations_.Increment(static_cast<double>(patch.size()));
  }
}

void WebhookMetrics::count_request(const std::string& route, int status) {
  requests_.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
}

void WebhookMetrics::config_reload(bool ok) {
  config_reloads_.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

void WebhookMetrics::cert_reload(bool ok) {
  cert_reloads_.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

std::string WebhookMetrics::serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (const auto& collectable : collectables_) {
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace gpuadmit::webhook
