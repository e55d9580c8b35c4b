// The webhook's Prometheus metrics, on one registry served as text by the server's /metrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "gpuadmit/engine.h"
#include "webhook/server/http_listener.h"

namespace gpuadmit::webhook {

class WebhookMetrics {
 public:
  // gpuadmit_policy_violations_total carries the request's namespace, which anyone who reaches
  // the port can make up: past this many distinct values, and for a string that is no namespace
  // name (a DNS label), the namespace label reads "other". A cluster's own are far fewer.
  static constexpr std::size_t kMaxNamespaceLabels = 1000;
  explicit WebhookMetrics(std::size_t max_namespace_labels = kMaxNamespaceLabels);

  // One answered review: latency from the parse of the body to the serialized answer.
  void observe_review(const std::string& route, const HttpAnswer& answer, double seconds);
  void count_request(const std::string& route, int status);
  void config_reload(bool ok);
  void cert_reload(bool ok);
  void tls_handshake_failed() { tls_handshake_failures_.Increment(); }
  prometheus::Gauge& in_flight() { return in_flight_; }
  // Connections: every accepted one is opened and closed once, with why it ended (those refused
  // at accept too, so the closed counter counts every connection).
  void connection_opened() { connections_open_.Increment(); }
  void connection_closed(CloseReason reason);

  // Metrics kept elsewhere (e.g. the live watch's status), collected when /metrics is read.
  void add_collectable(std::shared_ptr<const prometheus::Collectable> collectable) {
    collectables_.push_back(std::move(collectable));
  }

  // The Prometheus text exposition format of every metric.
  std::string serialize() const;

  // The namespace label value for `ns`: itself, "" for a cluster-scoped object, or "other".
  std::string namespace_label(std::string_view ns);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>& review_seconds_;
  prometheus::Family<prometheus::Counter>& policy_decisions_;
  prometheus::Family<prometheus::Counter>& violations_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& patches_applied_;
  prometheus::Counter& patch_operations_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Family<prometheus::Counter>& cert_reloads_;
  prometheus::Counter& tls_handshake_failures_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& connections_open_;
  prometheus::Family<prometheus::Counter>& connections_closed_;
  std::array<prometheus::Counter*, static_cast<std::size_t>(CloseReason::kCount)> closed_by_reason_{};
  std::vector<std::shared_ptr<const prometheus::Collectable>> collectables_;  // set before serving
  const std::size_t max_namespace_labels_;
  std::mutex namespaces_mutex_;
  std::unordered_set<std::string> namespaces_;  // the namespace label values given out so far

  // The series the request path touches, found once: Family::Add builds a label map, hashes it and
  // takes the family's lock on every call. A slot is filled on first use by Family::Add itself, so
  // /metrics lists exactly the series that were used, as before; labels outside these tables
  // (never produced by the server) go to Family::Add directly.
  static constexpr std::size_t kRoutes = 6;      // mutate, validate, healthz, readyz, metrics, other
  static constexpr std::size_t kDecisions = 3;   // allowed, denied, error
  static constexpr std::size_t kPolicies = 16;   // index in policy_registry()
  static constexpr std::size_t kModes = 4;
  static constexpr std::size_t kResults = 6;     // passed, fired, denied, exempted, error, degraded
  static constexpr int kMinCode = 100, kMaxCode = 599;
  std::array<std::atomic<prometheus::Histogram*>, kRoutes * kDecisions> review_series_{};
  std::array<std::atomic<prometheus::Counter*>, kPolicies * kModes * kResults> decision_series_{};
  std::array<std::atomic<prometheus::Counter*>, kRoutes * (kMaxCode - kMinCode + 1)> request_series_{};
};

}  // namespace gpuadmit::webhook
