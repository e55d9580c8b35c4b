// Pods this replica allowed that the watch has not shown yet. They count toward namespace GPU
// quotas for a short time, so a burst of creates cannot overshoot a quota in the gap between an
// admission and the watch event that puts the pod in the cache. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace gpuadmit {

class PendingAdmissions {
 public:
  using Clock = std::chrono::steady_clock;

  // `ttl`: how long an admitted pod counts while the watch has not shown it (the pod may never
  // appear: a later webhook denied it or the create failed).
  explicit PendingAdmissions(std::chrono::milliseconds ttl) : ttl_(ttl) {}

  // An allowed pod: `id` is its metadata.uid (set by the time validating webhooks run).
  // Recording the same pod again replaces the earlier record.
  void record(const std::string& ns, const std::string& id, int64_t gpus, Clock::time_point now = Clock::now());

  // The watch has shown the pod: the cache counts it from now on. False when not pending.
  bool confirm(const std::string& ns, const std::string& id);

  // GPUs allowed in `ns` whose pods the watch has not shown, unexpired at `now`.
  int64_t pending_gpus(const std::string& ns, Clock::time_point now = Clock::now()) const;

  // Drops expired records; returns how many.
  size_t expire(Clock::time_point now = Clock::now());

  size_t size() const;

 private:
  struct Entry {
    int64_t gpus = 0;
    Clock::time_point expires;
  };
  std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, Entry>> by_namespace_;  // ns → id → entry
};

}  // namespace gpuadmit
