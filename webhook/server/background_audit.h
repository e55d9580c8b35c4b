// `serve`'s background audit: with a live cluster, one replica (the holder of a
// coordination.k8s.io Lease, webhook/kube/lease.h) reads every stored workload
// (kube/stored_objects.h), judges each as its creation would be judged today (engine/audit.h),
// and writes the results as wgpolicyk8s.io/v1alpha2 PolicyReports (one per namespace) and a
// ClusterPolicyReport, by server-side apply; reports of namespaces with nothing left to audit
// are deleted. Other replicas only keep the lease's state. An audit runs
//   - every `interval`,
//   - when the config changes (a new engine),
//   - when the watch has seen changes, at most once per `min_interval`,
//   - at once when this replica becomes the writer;
// never on cluster state the watch cannot vouch for. Its thread runs as SCHED_IDLE (nice 19
// where that is refused): it takes the CPU only when reviews leave it idle.
#pragma once

#include <prometheus/collectable.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/audit.h"
#include "engine/capacity/cluster_model.h"
#include "webhook/kube/client.h"
#include "webhook/kube/lease.h"

namespace gpuadmit::webhook {

struct BackgroundAuditOptions {
  std::chrono::seconds interval{300};
  std::chrono::seconds min_interval{60};
  kube::LeaderElectionOptions lease;  // namespace, name, identity, durations (its logger: the audit's)
  // SCHED_IDLE for the audit's thread (the default): it runs only on CPU no review wants, and
  // a replica whose CPU is saturated audits slowly or not at all. False: the process's own
  // policy (tests that share a loaded machine with others).
  bool idle_priority = true;
  std::size_t page_size = 250;
  std::chrono::milliseconds request_timeout{30'000};
};

// Where the audit reads from: the engine of the moment (it changes on a config reload), the
// cluster model, why the model cannot be trusted now ("" when it can), and a count that grows
// whenever the watch applies a change.
struct AuditInputs {
  std::function<std::shared_ptr<const Engine>()> engine;
  std::shared_ptr<const capacity::ClusterModel> cluster;
  std::function<std::string()> staleness;
  std::function<std::uint64_t()> changes;
};

class BackgroundAudit {
 public:
  BackgroundAudit(kube::KubeConfig config, BackgroundAuditOptions options, std::shared_ptr<spdlog::logger> logger);
  ~BackgroundAudit();
  BackgroundAudit(const BackgroundAudit&) = delete;
  BackgroundAudit& operator=(const BackgroundAudit&) = delete;

  void start(AuditInputs inputs);
  // Prompt: cancels a request in flight, and hands the lease back when it holds it.
  void stop();

  // gpuadmit_audit_*: at scrape time.
  std::shared_ptr<const prometheus::Collectable> metrics() const { return metrics_; }

 private:
  class Metrics;
  struct LastRun;
  void loop();
  // One audit, and the writing of its reports while this replica still leads. Throws on a
  // failure to read or write, naming what failed.
  void run_once(const std::shared_ptr<const Engine>& engine);
  void write_reports(const audit::AuditReport& report);

  BackgroundAuditOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  kube::KubeConfig config_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::LeaderElector> elector_;
  AuditInputs inputs_;
  std::shared_ptr<prometheus::Collectable> metrics_;  // a Metrics
  std::unique_ptr<LastRun> last_;                     // what Metrics reads, under mutex_

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gpuadmit::webhook
