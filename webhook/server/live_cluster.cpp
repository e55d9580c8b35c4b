#include "webhook/server/live_cluster.h"

#include <prometheus/metric_family.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "webhook/kube/objects.h"
#include "webhook/log/json_log.h"

namespace gpuadmit::webhook {
namespace {

using nlohmann::json;
using kube::metadata_string;

std::string kind_label(kube::ObjectKind kind) {
  std::string name(kube::kind_name(kind));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string whole_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f s", std::floor(seconds));
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// Reads the watch's status at scrape time: the status holds cumulative counts already, so
// mirroring them into prometheus-cpp counters would only add a second copy to keep in step.
class LiveCluster::Metrics final : public prometheus::Collectable {
 public:
  explicit Metrics(const LiveCluster& cluster) : cluster_(cluster) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    const auto now = kube::Clock::now();
    const kube::WatchStatus& status = cluster_.status();
    prometheus::MetricFamily events{"gpuadmit_watch_events_total",
                                    "Watch events received, by kind and type (MALFORMED: skipped lines)",
                                    MetricType::Counter, {}};
    prometheus::MetricFamily relists{"gpuadmit_watch_relists_total",
                                     "Full lists after the first, by kind (410 Gone)", MetricType::Counter, {}};
    prometheus::MetricFamily restarts{"gpuadmit_watch_restarts_total", "Watches opened after the first, by kind",
                                      MetricType::Counter, {}};
    prometheus::MetricFamily failures{"gpuadmit_watch_failures_total",
                                      "List and watch requests that failed, by kind", MetricType::Counter, {}};
    prometheus::MetricFamily objects{"gpuadmit_watch_objects", "Objects cached, by kind", MetricType::Gauge, {}};
    prometheus::MetricFamily synced{"gpuadmit_watch_synced", "1 once the kind has been listed in full",
                                    MetricType::Gauge, {}};
    prometheus::MetricFamily silence{"gpuadmit_watch_seconds_since_last_event",
                                     "Seconds since the last event or bookmark, by kind (-1 before the first sync, and for a kind "
                                     "the API server does not serve)",
                                     MetricType::Gauge, {}};
    for (kube::ObjectKind kind : kube::kWatchedKinds) {
      const kube::KindStatus k = status.kind(kind);
      const std::vector<prometheus::ClientMetric::Label> label = {{"kind", kind_label(kind)}};
      auto counter = [&](prometheus::MetricFamily& family, double value,
                         std::vector<prometheus::ClientMetric::Label> labels) {
        prometheus::ClientMetric metric;
        metric.label = std::move(labels);
        metric.counter.value = value;
        family.metric.push_back(std::move(metric));
      };
      auto gauge = [&](prometheus::MetricFamily& family, double value) {
        prometheus::ClientMetric metric;
        metric.label = label;
        metric.gauge.value = value;
        family.metric.push_back(std::move(metric));
      };
      for (const char* type : {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", "MALFORMED"}) {
        auto it = k.events.find(type);
        counter(events, it == k.events.end() ? 0.0 : static_cast<double>(it->second),
                {{"kind", kind_label(kind)}, {"type", type}});
      }
      counter(relists, static_cast<double>(k.relists), label);
      counter(restarts, static_cast<double>(k.watch_restarts), label);
      counter(failures, static_cast<double>(k.failures), label);
      gauge(objects, static_cast<double>(k.objects));
      gauge(synced, k.synced ? 1 : 0);
      gauge(silence, status.seconds_since_last_heard(kind, now));
    }
    auto single = [](std::string name, std::string help, MetricType type, double value) {
      prometheus::ClientMetric metric;
      if (type == MetricType::Counter)
        metric.counter.value = value;
      else
        metric.gauge.value = value;
      return prometheus::MetricFamily{std::move(name), std::move(help), type, {metric}};
    };
    std::vector<prometheus::MetricFamily> out = {events, relists, restarts, failures, objects, synced, silence};
    out.push_back(single("gpuadmit_cluster_stale",
                         "1 while the cluster state is older than the staleness bound: capacity and quota only warn",
                         MetricType::Gauge, cluster_.staleness(now).empty() ? 0 : 1));
    out.push_back(single("gpuadmit_cluster_degraded_reviews_total",
                         "Reviews in which a capacity or quota denial became a warning because the cluster state was stale",
                         MetricType::Counter, static_cast<double>(cluster_.degraded_reviews_.load())));
    out.push_back(single("gpuadmit_cluster_rejected_objects_total",
                         "Watched objects the capacity model could not read (logged and skipped)", MetricType::Counter,
                         static_cast<double>(cluster_.sink_.rejected_objects())));
    out.push_back(single("gpuadmit_pending_admissions",
                         "Pods this replica allowed that the watch has not shown yet (they count toward quotas)",
                         MetricType::Gauge, static_cast<double>(cluster_.model_->pending_admissions())));
    return out;
  }

 private:
  const LiveCluster& cluster_;
};

// ---------------------------------------------------------------------------------------------

namespace {

// The watch logs through the server's logger: one stream of JSON lines. Each watch ends (at its
// timeoutSeconds, drawn from [t, 2t)) within two thirds of the staleness bound: an API server
// ending a watch cleanly is heard from, so a quiet cluster is never mistaken for a silent server.
kube::WatchOptions watch_options(const LiveClusterOptions& live, std::shared_ptr<spdlog::logger> logger) {
  kube::WatchOptions options = live.watch;
  if (!options.logger) options.logger = std::move(logger);
  const auto third = std::chrono::duration_cast<std::chrono::seconds>(live.stale_after / 3);
  options.watch_timeout = std::max(std::chrono::seconds(1), std::min(third, options.watch_timeout));
  return options;
}

}  // namespace

LiveCluster::LiveCluster(kube::KubeConfig config, LiveClusterOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      model_(std::make_shared<capacity::ClusterModel>(options_.gpu)),
      sink_(*model_, logger_),
      watch_(std::make_unique<kube::ClusterWatch>(std::move(config), sink_, watch_options(options_, logger_))),
      metrics_(std::make_shared<Metrics>(*this)) {
  model_->track_admissions(options_.admission_ttl);
}

LiveCluster::~LiveCluster() { stop(); }

void LiveCluster::start() { watch_->start(); }

void LiveCluster::stop() { watch_->stop(); }

std::uint64_t LiveCluster::changes() const {
  std::uint64_t total = 0;
  for (kube::ObjectKind kind : kube::kWatchedKinds) {
    const kube::KindStatus status = watch_->status().kind(kind);
    total += status.lists;
    for (const char* type : {"ADDED", "MODIFIED", "DELETED"})
      if (auto it = status.events.find(type); it != status.events.end()) total += it->second;
  }
  return total;
}

ReadinessResult LiveCluster::readiness() const {
  std::string waiting;
  for (kube::ObjectKind kind : kube::kWatchedKinds)
    if (!status().kind(kind).synced) waiting += (waiting.empty() ? "" : ", ") + std::string(kube::resource_name(kind));
  if (!waiting.empty()) {
    std::string detail = "waiting for the first full list of " + waiting;
    for (kube::ObjectKind kind : kube::kWatchedKinds)
      if (std::string error = status().kind(kind).last_error; !error.empty()) {
        detail += "; last error: " + error;
        break;
      }
    return {false, detail};
  }
  const capacity::ClusterModel::View view = model_->read();
  return {true, "synced: " + std::to_string(view.node_count()) + " nodes, " + std::to_string(view.pod_count()) +
                    " pods, " + std::to_string(view.namespaces().size()) + " namespaces"};
}

std::string LiveCluster::staleness(kube::Clock::time_point now) const {
  // The common answer, fresh, in one look at the status; the reason is spelled out only when stale.
  if (!status().stale(options_.stale_after, now)) return "";
  if (!status().synced()) return "the first full list from the API server has not completed";
  const double bound = std::chrono::duration<double>(options_.stale_after).count();
  std::string silent;
  for (kube::ObjectKind kind : kube::kWatchedKinds) {
    const double seconds = status().seconds_since_last_heard(kind, now);
    if (seconds > bound)
      silent += (silent.empty() ? "" : ", ") + std::string(kube::resource_name(kind)) + " " + whole_seconds(seconds);
  }
  if (silent.empty()) return "";  // an event arrived since stale() looked
  return "nothing heard from the API server for " + silent + " (bound " + whole_seconds(bound) + ")";
}

void LiveCluster::after_review(const ReviewOutcome& outcome, ReviewPhases phases) {
  for (const PolicyOutcome& policy : outcome.policies)
    if (policy.degraded) {
      ++degraded_reviews_;
      break;
    }
  if (phases == ReviewPhases::MutateOnly || !outcome.response.allowed || outcome.dry_run) return;
  if (outcome.operation != "CREATE" || outcome.kind.kind != "Pod" || !outcome.mutated.is_object()) return;
  try {
    if (metadata_string(outcome.mutated, "namespace").empty() && !outcome.workload.namespace_.empty()) {
      json pod = outcome.mutated;  // the request's namespace, when the object leaves it out
      pod["metadata"]["namespace"] = outcome.workload.namespace_;
      return model_->record_admission(pod);
    }
    model_->record_admission(outcome.mutated);
  } catch (const std::exception& error) {
    log_event(*logger_, spdlog::level::warn, "admitted pod not recorded", {{"error", error.what()}});
  }
}

void LiveCluster::attach(ServerOptions& options) {
  options.cluster = model_;
  options.readiness_checks.push_back({"cluster", [this] { return readiness(); }});
  options.cluster_staleness = [this] { return staleness(); };
  options.after_review = [this](const ReviewOutcome& outcome, ReviewPhases phases) { after_review(outcome, phases); };
  options.extra_metrics.push_back(metrics_);
}

}  // namespace gpuadmit::webhook
