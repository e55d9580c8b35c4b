// The capacity model fed by a live list/watch of the API server (`serve --in-cluster` or
// `--kubeconfig F`): the watch into the model (kube/model_sink.h), readiness, staleness, burst
// admission records and the watch's metrics. The model itself never learns where objects come
// from; the server only sees the hooks in ServerOptions.
#pragma once

#include <prometheus/collectable.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"
#include "webhook/kube/model_sink.h"
#include "webhook/kube/watch.h"
#include "webhook/server/server.h"

namespace gpuadmit::webhook {

struct LiveClusterOptions {
  // Nothing heard (an event, a bookmark, a list, a watch ended by the API server) for longer
  // than this on any kind: capacity and quota decisions warn instead of denying. Each watch asks
  // to be ended within two thirds of this bound, so a healthy API server is heard from inside
  // it even when nothing in the cluster changes.
  std::chrono::milliseconds stale_after{180'000};
  // How long a pod this replica allowed counts toward its namespace's GPUs before the watch
  // shows it (0: not at all).
  std::chrono::milliseconds admission_ttl{30'000};
  kube::WatchOptions watch;
  GpuResources gpu;  // the config's gpuResources: which resources the model counts as GPUs
};

class LiveCluster {
 public:
  LiveCluster(kube::KubeConfig config, LiveClusterOptions options, std::shared_ptr<spdlog::logger> logger);
  ~LiveCluster();
  LiveCluster(const LiveCluster&) = delete;
  LiveCluster& operator=(const LiveCluster&) = delete;

  void start();
  void stop();

  std::shared_ptr<const capacity::ClusterModel> model() const { return model_; }
  const kube::WatchStatus& status() const { return watch_->status(); }

  // /readyz: ready once every kind has been listed in full.
  ReadinessResult readiness() const;
  // Why decisions on the model cannot be trusted now, or "" when they can.
  std::string staleness(kube::Clock::time_point now = kube::Clock::now()) const;
  // After each answered review: an allowed Pod CREATE from /validate (the last word of this
  // webhook) counts toward its namespace until the watch shows the pod.
  void after_review(const ReviewOutcome& outcome, ReviewPhases phases);
  // Grows with every change the watch applies (events other than bookmarks, and full lists):
  // how the background audit knows the cluster changed since it last looked.
  std::uint64_t changes() const;
  // The watch's state at scrape time, for /metrics.
  std::shared_ptr<const prometheus::Collectable> metrics() const { return metrics_; }

  // Wires the hooks into a server's options: model, readiness check, staleness, review hook and
  // metrics.
  void attach(ServerOptions& options);

 private:
  class Metrics;
  LiveClusterOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<capacity::ClusterModel> model_;
  ClusterModelSink sink_;
  std::unique_ptr<kube::ClusterWatch> watch_;
  std::shared_ptr<prometheus::Collectable> metrics_;  // a Metrics
  std::atomic<std::uint64_t> degraded_reviews_{0};
};

}  // namespace gpuadmit::webhook
