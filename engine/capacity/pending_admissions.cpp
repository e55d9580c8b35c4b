#include "engine/capacity/pending_admissions.h"

namespace gpuadmit::capacity {

void PendingAdmissions::set_ttl(std::chrono::milliseconds ttl) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttl_ = ttl;
  enabled_ = ttl.count() > 0;
}

std::chrono::milliseconds PendingAdmissions::ttl() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ttl_;
}

void PendingAdmissions::record(const std::string& ns, const std::string& id, Devices devices, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ttl_.count() <= 0) return;
  // A burst is small and short-lived: sweeping on each record keeps the map at the burst's size.
  expire_locked(now);
  by_namespace_[ns][id] = Entry{std::move(devices), now + ttl_};
}

bool PendingAdmissions::confirm(std::string_view ns, std::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_namespace_.find(ns);
  if (it == by_namespace_.end()) return false;
  auto entry = it->second.find(id);
  if (entry == it->second.end()) return false;
  it->second.erase(entry);
  if (it->second.empty()) by_namespace_.erase(it);
  return true;
}

void PendingAdmissions::for_each(std::string_view ns, Clock::time_point now,
                                 const std::function<void(const Devices&)>& visit) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_namespace_.find(ns);
  if (it == by_namespace_.end()) return;
  for (const auto& [id, entry] : it->second)
    if (now < entry.expires) visit(entry.devices);
}

std::int64_t PendingAdmissions::pending_devices(std::string_view ns, Clock::time_point now) const {
  std::int64_t total = 0;
  for_each(ns, now, [&](const Devices& devices) {
    for (const auto& [resource, count] : devices) total += count;
  });
  return total;
}

std::size_t PendingAdmissions::expire(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  return expire_locked(now);
}

std::size_t PendingAdmissions::expire_locked(Clock::time_point now) {
  std::size_t dropped = 0;
  for (auto ns = by_namespace_.begin(); ns != by_namespace_.end();) {
    for (auto entry = ns->second.begin(); entry != ns->second.end();) {
      if (now >= entry->second.expires) {
        entry = ns->second.erase(entry);
        ++dropped;
      } else {
        ++entry;
      }
    }
    ns = ns->second.empty() ? by_namespace_.erase(ns) : std::next(ns);
  }
  return dropped;
}

std::size_t PendingAdmissions::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t count = 0;
  for (const auto& [ns, entries] : by_namespace_) count += entries.size();
  return count;
}

}  // namespace gpuadmit::capacity
