// Leader election over a coordination.k8s.io/v1 Lease, with the semantics of client-go's
// tools/leaderelection and its LeaseLock, so that one replica of several does a cluster-wide job
// (the background audit's report writer) while the others stand by.
//
// One thread per elector. Every retry_period it reads the Lease and:
//   - absent (404): creates it holding it (POST); 409 AlreadyExists: another replica was first.
//   - held by this identity: renews it (PUT with the resourceVersion read: optimistic concurrency).
//   - held by another: waits until the record (its spec and resourceVersion) has not changed for
//     the holder's leaseDurationSeconds, measured on this process's monotonic clock from when it
//     first saw that record (never from the record's own timestamps: the clocks of replicas may
//     disagree), then takes it over with a PUT of the resourceVersion it read; a 409 Conflict means
//     another replica won, and it stays a follower. An empty holderIdentity (a released lease) is
//     taken at once. A change of holder adds one to leaseTransitions.
// While leading it renews every retry_period, first with a PUT of the object its last write
// returned (one request), on a 409 reading the Lease again. A renewal that has not succeeded for
// renew_deadline ends leadership, and leading() says so from the timestamp alone: a writer that
// checks leading() right before each write stops within renew_deadline of the last renewal even
// while the elector's thread is stuck in a request. Seeing another holder's record, or the lease
// deleted, ends it at once.
//
// stop() (and the destructor) aborts the request in flight, and releases a lease it still leads
// (holderIdentity "", leaseDurationSeconds 1, as client-go's ReleaseOnCancel) so another replica
// takes over at its next retry instead of after leaseDuration.
//
// Whatever the API server answers is untrusted: a body that is not JSON, a Lease without
// metadata.resourceVersion, an answer other than 200/201/404/409 fail the attempt, which is retried
// next period. A spec of the wrong shape, a holderIdentity that is not a string, or a
// leaseDurationSeconds that is not an integer of 1 to 86400 makes a record held by "someone": it
// expires after this elector's own lease_duration without change, like any other.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "webhook/kube/config.h"

namespace gpuadmit::kube {

class KubeClient;

struct LeaderElectionOptions {
  std::string lease_namespace;  // where the Lease lives (the webhook's own namespace)
  std::string lease_name;       // e.g. "gpu-admit-audit"
  std::string identity;         // holderIdentity: unique per replica (the pod name)
  // How long a follower waits on an unchanged record before taking the lease (written, rounded up
  // to whole seconds, as leaseDurationSeconds); how long a leader goes on without a successful
  // renewal; how often either tries. Required: lease_duration ≥ 1 s > renew_deadline >
  // retry_period × max(1, retry_jitter) > 0, as client-go requires.
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
  // A follower waits retry_period × (1 + up to retry_jitter) between tries (client-go's
  // JitterFactor), so replicas that started together do not ask in step. A leader does not jitter.
  double retry_jitter = 1.2;
  // Bounds connecting and each wait for bytes of one request. 0: renew_deadline / 2, so one hung
  // request does not cost a leader its lease (controller-runtime's choice).
  std::chrono::milliseconds request_timeout{0};
  // Release the lease on stop() when leading (client-go's ReleaseOnCancel).
  bool release_on_stop = true;
  // The wall clock written into acquireTime and renewTime (null: the system clock). Expiry never
  // reads it.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  // Called on the elector's thread (on_stopped_leading also from stop(), after that thread has
  // ended), never two at once. on_new_leader gets each holder as it is first seen, this identity
  // included, "" for a released lease and "<unreadable>" for a record without a readable holder.
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string& holder)> on_new_leader;
  // Where acquisitions, losses, new leaders and failures are logged, as JSON lines
  // (webhook/log/json_log.h). Null: a logger of its own on stderr.
  std::shared_ptr<spdlog::logger> logger;
};

// What a metric or a status page reads. A copy, taken at once.
struct LeaderStatus {
  bool leading = false;           // as leading()
  uint64_t term = 0;              // times this elector became leader (the current term while leading)
  uint64_t lost = 0;              // times it stopped leading: deadline passed, taken over, stop()
  std::string holder;             // holderIdentity last seen ("" none, "<unreadable>")
  int64_t lease_transitions = 0;  // leaseTransitions last seen (-1 before any record was read)
  uint64_t attempts = 0;          // tries to acquire or renew
  uint64_t failures = 0;          // of them, failed: transport, HTTP status, unreadable body
  std::string last_error;         // "" until something fails
};

class LeaderElector {
 public:
  // Throws std::invalid_argument for options that break the rules above (or a namespace, name or
  // identity that is empty or not a DNS name where one is needed), KubeConfigError as KubeClient.
  LeaderElector(KubeConfig config, LeaderElectionOptions options);
  ~LeaderElector();  // stop()
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  void start();
  // Aborts the request in flight, joins the thread, releases the lease when leading (at most two
  // reads and two PUTs, each bounded by request_timeout). Idempotent; thread-safe.
  void stop();

  // True while this elector holds the lease and its last successful renewal began less than
  // renew_deadline ago. Cheap (a mutex, no I/O); check it right before each write.
  bool leading() const;
  // The term number while leading (≥ 1), 0 otherwise. A writer that keeps the term it started with
  // and finds another (or 0) before a write knows leadership was lost in between, even if regained.
  uint64_t leading_term() const;
  LeaderStatus status() const;

  const LeaderElectionOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Attempt { Leader, Follower, Failed };

  void run();
  Attempt try_acquire_or_renew(std::string& why);
  Attempt write_lease(const std::string& method, const std::string& path, nlohmann::json object, bool mine,
                      std::string& why);
  void observe(const nlohmann::json& spec, const std::string& resource_version, Clock::time_point seen);
  void adopt_written(const std::string& body);
  void became_leader(Clock::time_point attempt_start);
  void step_down(const std::string& reason);
  void release();
  bool leading_at(Clock::time_point now) const;
  void record_failure(const std::string& why);
  void log(spdlog::level::level_enum level, const std::string& message, nlohmann::json fields = {}) const;
  std::string now_text() const;
  nlohmann::json spec_for(const std::string& holder, int64_t duration_seconds, const std::string& acquire_time,
                          int64_t transitions) const;

  KubeConfig config_;
  LeaderElectionOptions options_;
  std::unique_ptr<KubeClient> client_;
  std::string path_;             // the Lease's URL path
  std::string collection_path_;  // its namespace's leases, for the create

  // The elector thread's own state (and stop()'s once that thread has ended).
  std::optional<nlohmann::json> written_;  // the Lease as this elector's last write returned it
  std::string observed_rv_, observed_spec_;
  std::string observed_holder_ = "\x01";  // none yet: the first record seen is news
  Clock::time_point observed_at_{};
  int64_t observed_duration_s_ = 0;       // the holder's leaseDurationSeconds, or ours when unreadable
  bool observed_holder_known_ = false;
  int64_t observed_transitions_ = 0;
  std::string observed_acquire_time_;
  std::string last_logged_error_;
  Clock::time_point last_error_log_{};

  // What leading() and status() read.
  mutable std::mutex state_mutex_;
  bool leader_ = false;
  Clock::time_point renewed_at_{};  // start of the last successful acquire or renew
  LeaderStatus status_;

  std::mutex stop_mutex_;  // one stop() at a time
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool finished_ = false;  // the thread has left run()
  std::thread thread_;
};

// A metav1.MicroTime as the API server writes it: "2006-01-02T15:04:05.000000Z" (UTC).
std::string format_micro_time(std::chrono::system_clock::time_point time);

// "/apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME".
std::string lease_path(const std::string& lease_namespace, const std::string& name);

}  // namespace gpuadmit::kube
