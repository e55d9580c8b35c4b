// Pods this replica allowed that the live watch has not shown yet. They count toward namespace
// GPU usage for a short time, so a burst of creates cannot overshoot a quota in the gap between
// an admission and the watch event that puts the pod in the cache. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace gpuadmit::capacity {

class PendingAdmissions {
 public:
  using Clock = std::chrono::steady_clock;
  using Devices = std::map<std::string, std::int64_t>;  // GPU device resource -> count

  // `ttl`: how long an admitted pod counts while the watch has not shown it (the pod may never
  // appear: a later webhook denied it or the create failed). Zero: nothing is recorded.
  explicit PendingAdmissions(std::chrono::milliseconds ttl = {}) : ttl_(ttl), enabled_(ttl.count() > 0) {}
  void set_ttl(std::chrono::milliseconds ttl);
  std::chrono::milliseconds ttl() const;
  // Whether records are kept (a TTL is set): a lock-free check for the model's hot paths.
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  // An allowed pod: `id` is its metadata.uid (set by the time validating webhooks run).
  // Recording the same pod again replaces the earlier record. Expired records are dropped.
  void record(const std::string& ns, const std::string& id, Devices devices, Clock::time_point now = Clock::now());

  // The watch has shown the pod (or its deletion): the cache counts it from now on. False when
  // it was not pending.
  bool confirm(std::string_view ns, std::string_view id);

  // Calls `visit` with the devices of each unexpired pending pod of `ns`.
  void for_each(std::string_view ns, Clock::time_point now,
                const std::function<void(const Devices&)>& visit) const;

  // GPU devices of every kind pending in `ns` at `now`.
  std::int64_t pending_devices(std::string_view ns, Clock::time_point now = Clock::now()) const;

  // Drops expired records; returns how many.
  std::size_t expire(Clock::time_point now = Clock::now());

  std::size_t size() const;

 private:
  struct Entry {
    Devices devices;
    Clock::time_point expires;
  };
  std::size_t expire_locked(Clock::time_point now);

  mutable std::mutex mutex_;
  std::chrono::milliseconds ttl_;
  std::atomic<bool> enabled_{false};
  std::map<std::string, std::map<std::string, Entry, std::less<>>, std::less<>> by_namespace_;  // ns -> id -> entry
};

}  // namespace gpuadmit::capacity
