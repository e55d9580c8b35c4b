// List then watch nodes, pods, namespaces, the DRA kinds (ResourceClaims and their templates),
// PodDisruptionBudgets and PriorityClasses, feeding a ClusterObjectSink: paginated lists, watches resumed from the last
// resourceVersion, bookmarks, relist on 410 Gone, jittered exponential backoff, bounded timeouts.
// One thread per kind; WatchStatus tells the server whether the cache is synced and fresh.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "webhook/kube/config.h"
#include "webhook/kube/sink.h"

namespace gpuadmit::kube {

using Clock = std::chrono::steady_clock;

struct WatchOptions {
  int page_size = 500;  // `limit` of each list page
  // `timeoutSeconds` of each watch is drawn from [watch_timeout, 2 × watch_timeout), as
  // client-go does, so replicas do not reconnect in step. The API server ends the watch then,
  // and a clean end is news: LiveCluster shortens this to a third of its staleness bound.
  std::chrono::seconds watch_timeout{300};
  // A watch that has delivered nothing for its timeoutSeconds plus this grace is dead. Nothing
  // shorter is safe: in a quiet cluster an API server before 1.27 sends no bookmark until 2 s
  // before the watch's end (the soak against v1.20 showed it; bench/README.md).
  std::chrono::milliseconds watch_end_grace{30'000};
  std::chrono::milliseconds list_read_timeout{60'000};  // per read while listing
  std::chrono::milliseconds connect_timeout{10'000};
  // Reconnect delays: initial × 2^n capped at max, each with up to `jitter` × delay added.
  // After a watch that ended normally or delivered events, the delay starts over.
  std::chrono::milliseconds backoff_initial{800};
  std::chrono::milliseconds backoff_max{30'000};
  double backoff_jitter = 1.0;
  // Pods that no longer hold resources are left out, as the scheduler's own informer does; a
  // pod that finishes arrives as DELETED.
  std::string pod_field_selector = "status.phase!=Succeeded,status.phase!=Failed";
  // The resource.k8s.io version the DRA kinds are listed at (is_api_version), or "off" to not
  // watch them. A cluster that does not serve them there (HTTP 404) is synced with none of them,
  // and asked again every backoff_max, so a version enabled later is picked up.
  std::string dra_api_version = "v1";
  // PodDisruptionBudgets are listed at policy/v1 and, where that answers 404 (Kubernetes before
  // 1.21), at policy/v1beta1; where neither is served they are synced with none and asked again
  // every backoff_max, as the DRA kinds. false: not watched (synced with none).
  bool watch_disruption_budgets = true;
  // PriorityClasses, at scheduling.k8s.io/v1 (served since 1.14). false: not watched.
  bool watch_priority_classes = true;
  // Where lists, relists and failures are logged, as JSON lines (webhook/log/json_log.h). Null: a
  // logger of its own on stderr, never stdout, which `gpu-admit watch` prints its events to.
  std::shared_ptr<spdlog::logger> logger;
};

// "v1", "v1beta2", "v1alpha3": a Kubernetes API version, as a path segment may hold it.
bool is_api_version(std::string_view text);

// What the server reads for /readyz, staleness and metrics. Thread-safe.
struct KindStatus {
  bool synced = false;           // a full list has completed at least once
  // A kind the API server answered 404 for at every version tried (the DRA kinds,
  // PodDisruptionBudget), or one not watched: synced with no objects, and never stale.
  bool not_served = false;
  std::string api_version;       // where the last full list was read: "policy/v1beta1" after a fallback
  Clock::time_point last_heard;  // last event, bookmark, completed list or watch opened/closed cleanly
  std::string resource_version;  // the last one applied
  uint64_t objects = 0;          // objects of this kind held now
  uint64_t lists = 0;            // full lists completed (the first sync included)
  uint64_t relists = 0;          // lists after the first (410 Gone)
  uint64_t watch_restarts = 0;   // watches opened after the first
  uint64_t failures = 0;         // requests that failed (transport, HTTP status, bad body)
  std::map<std::string, uint64_t> events;  // by type: ADDED MODIFIED DELETED BOOKMARK ERROR MALFORMED
  std::string last_error;        // "" until something fails
};

class WatchStatus {
 public:
  KindStatus kind(ObjectKind kind) const;
  bool synced() const;  // every kind listed at least once (or not served): /readyz
  // Not synced, or a served kind with nothing heard for longer than `bound`: decisions that
  // depend on the cache degrade to warnings.
  bool stale(std::chrono::milliseconds bound, Clock::time_point now = Clock::now()) const;
  // -1 before the first sync, and for a kind not served.
  double seconds_since_last_heard(ObjectKind kind, Clock::time_point now = Clock::now()) const;
  nlohmann::json to_json(Clock::time_point now = Clock::now()) const;

  // Written by the watch threads.
  void update(ObjectKind kind, const std::function<void(KindStatus&)>& change);

 private:
  mutable std::mutex mutex_;
  std::array<KindStatus, std::size(kWatchedKinds)> kinds_;
};

// Lists and watches every kind in kWatchedKinds (less those WatchOptions turns off) until stopped.
class ClusterWatch {
 public:
  ClusterWatch(KubeConfig config, ClusterObjectSink& sink, WatchOptions options = {});
  ~ClusterWatch();  // stops
  ClusterWatch(const ClusterWatch&) = delete;
  ClusterWatch& operator=(const ClusterWatch&) = delete;

  void start();
  // Aborts requests in flight and joins the threads; bounded by the connect timeout at worst.
  void stop();
  // Waits until every kind is synced; false on timeout.
  bool wait_synced(std::chrono::milliseconds timeout);

  const WatchStatus& status() const { return status_; }

 private:
  class KindWatcher;
  KubeConfig config_;
  ClusterObjectSink& sink_;
  WatchOptions options_;
  WatchStatus status_;
  std::mutex sink_mutex_;  // serializes sink calls across kinds
  std::vector<std::unique_ptr<KindWatcher>> watchers_;
};

}  // namespace gpuadmit::kube
