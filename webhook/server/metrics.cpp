#include "webhook/server/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace gpuadmit::webhook {
namespace {

// Reviews take tens of microseconds; the fine low buckets make the 200 µs goal readable.
const prometheus::Histogram::BucketBoundaries kReviewBuckets = {
    25e-6, 50e-6, 75e-6, 100e-6, 150e-6, 200e-6, 300e-6, 500e-6, 1e-3,
    2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0};

constexpr std::array<const char*, 3> kDecisionNames = {"allowed", "denied", "error"};
constexpr std::array<const char*, 6> kResultNames = {"passed", "fired", "denied", "exempted", "error", "degraded"};
constexpr std::array<std::string_view, 6> kRouteNames = {"mutate", "validate", "healthz",
                                                         "readyz", "metrics", "other"};

std::size_t decision_of(const HttpAnswer& answer) {
  if (answer.status != 200) return 2;
  return answer.allowed ? 0 : 1;
}

// Index in kRouteNames, or kRouteNames.size() for a route outside it.
std::size_t route_index(const std::string& route) {
  std::size_t i = 0;
  while (i < kRouteNames.size() && kRouteNames[i] != route) ++i;
  return i;
}

// The series in `slot`, added to `family` with `labels` the first time. Family::Add is
// thread-safe and returns the same series for the same labels, so a race costs one extra call.
template <typename T, typename MakeLabels, typename... Extra>
T& cached(std::atomic<T*>& slot, prometheus::Family<T>& family, MakeLabels make_labels, Extra&&... extra) {
  if (T* series = slot.load(std::memory_order_acquire)) return *series;
  T& series = family.Add(make_labels(), std::forward<Extra>(extra)...);
  slot.store(&series, std::memory_order_release);
  return series;
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

// A Kubernetes namespace name: a DNS label (RFC 1123), 63 characters at most.
bool is_namespace_name(std::string_view ns) {
  if (ns.empty() || ns.size() > 63 || ns.front() == '-' || ns.back() == '-') return false;
  return std::all_of(ns.begin(), ns.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::size_t result_of(const PolicyOutcome& policy) {
  if (policy.error) return 4;
  if (policy.denied) return 2;
  if (policy.degraded) return 5;  // would have denied; the cluster state was stale
  if (policy.exempted) return 3;
  return policy.fired ? 1 : 0;
}

}  // namespace

WebhookMetrics::WebhookMetrics(std::size_t max_namespace_labels)
    : registry_(std::make_shared<prometheus::Registry>()),
      review_seconds_(prometheus::BuildHistogram()
                          .Name("gpuadmit_review_duration_seconds")
                          .Help("Server-side review time, from the request body to the serialized answer")
                          .Register(*registry_)),
      policy_decisions_(prometheus::BuildCounter()
                            .Name("gpuadmit_policy_decisions_total")
                            .Help("Policy evaluations by policy, mode and result (passed, fired, denied, degraded, exempted, error)")
                            .Register(*registry_)),
      violations_(prometheus::BuildCounter()
                      .Name("gpuadmit_policy_violations_total")
                      .Help("Violation findings by policy, namespace (at most 1,000 values a replica, then \"other\") and the "
                            "mode the policy ran in: denied in enforce, warned in warn, annotated in audit")
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
                     .Add({})),
      connections_open_(prometheus::BuildGauge()
                            .Name("gpuadmit_connections_open")
                            .Help("Client connections open now, on all ports")
                            .Register(*registry_)
                            .Add({})),
      connections_closed_(prometheus::BuildCounter()
                              .Name("gpuadmit_connections_closed_total")
                              .Help("Client connections closed, by reason (limits, deadlines, bad input, or a normal end)")
                              .Register(*registry_)),
      max_namespace_labels_(max_namespace_labels) {
  for (std::size_t i = 0; i < closed_by_reason_.size(); ++i)
    closed_by_reason_[i] = &connections_closed_.Add({{"reason", close_reason_name(static_cast<CloseReason>(i))}});
  // Present from the start, so that a dashboard sees zeros rather than no series.
  for (const char* result : {"ok", "failed"}) {
    config_reloads_.Add({{"result", result}});
    cert_reloads_.Add({{"result", result}});
  }
}

void WebhookMetrics::observe_review(const std::string& route, const HttpAnswer& answer,
                                    double seconds) {
  const std::size_t decision = decision_of(answer);
  auto review_labels = [&]() -> prometheus::Labels {
    return {{"route", route}, {"decision", kDecisionNames[decision]}};
  };
  const std::size_t r = route_index(route);
  if (r < kRoutes)
    cached(review_series_[r * kDecisions + decision], review_seconds_, review_labels, kReviewBuckets).Observe(seconds);
  else
    review_seconds_.Add(review_labels(), kReviewBuckets).Observe(seconds);
  if (!answer.outcome) return;
  const PolicyInfo* registry = policy_registry().data();
  for (const PolicyOutcome& policy : answer.outcome->policies) {
    const std::size_t result = result_of(policy), mode = static_cast<std::size_t>(policy.mode);
    auto labels = [&]() -> prometheus::Labels {
      return {{"policy", policy.policy}, {"mode", mode_name(policy.mode)}, {"result", kResultNames[result]}};
    };
    const PolicyInfo* info = find_policy(policy.policy);
    const std::size_t p = info ? static_cast<std::size_t>(info - registry) : kPolicies;
    if (p < kPolicies && mode < kModes)
      cached(decision_series_[(p * kModes + mode) * kResults + result], policy_decisions_, labels).Increment();
    else
      policy_decisions_.Add(labels()).Increment();
    // Only reviews with violations pay for the label lookup.
    if (policy.violations > 0)
      violations_
          .Add({{"policy", policy.policy},
                {"namespace", namespace_label(answer.outcome->workload.namespace_)},
                {"mode", mode_name(policy.mode)}})
          .Increment(static_cast<double>(policy.violations));
  }
  const auto& patch = answer.outcome->response.patch;
  if (answer.allowed && patch.is_array() && !patch.empty()) {
    patches_applied_.Increment();
    patch_operations_.Increment(static_cast<double>(patch.size()));
  }
}

std::string WebhookMetrics::namespace_label(std::string_view ns) {
  if (ns.empty()) return {};
  if (!is_namespace_name(ns)) return "other";
  std::string name(ns);
  std::lock_guard lock(namespaces_mutex_);
  if (namespaces_.count(name)) return name;
  if (namespaces_.size() >= max_namespace_labels_) return "other";
  namespaces_.insert(name);
  return name;
}

void WebhookMetrics::count_request(const std::string& route, int status) {
  auto labels = [&]() -> prometheus::Labels { return {{"route", route}, {"code", std::to_string(status)}}; };
  const std::size_t r = route_index(route);
  if (r < kRoutes && status >= kMinCode && status <= kMaxCode)
    cached(request_series_[r * (kMaxCode - kMinCode + 1) + static_cast<std::size_t>(status - kMinCode)],
           requests_, labels)
        .Increment();
  else
    requests_.Add(labels()).Increment();
}

void WebhookMetrics::connection_closed(CloseReason reason) {
  connections_open_.Decrement();
  const auto index = static_cast<std::size_t>(reason);
  if (index < closed_by_reason_.size()) closed_by_reason_[index]->Increment();
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
