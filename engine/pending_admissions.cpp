#include "engine/pending_admissions.h"

namespace gpuadmit {

void PendingAdmissions::record(const std::string& ns, const std::string& id, int64_t gpus, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  by_namespace_[ns][id] = Entry{gpus, now + ttl_};
}

bool PendingAdmissions::confirm(const std::string& ns, const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_namespace_.find(ns);
  if (it == by_namespace_.end() || it->second.erase(id) == 0) return false;
  if (it->second.empty()) by_namespace_.erase(it);
  return true;
}

int64_t PendingAdmissions::pending_gpus(const std::string& ns, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_namespace_.find(ns);
  if (it == by_namespace_.end()) return 0;
  int64_t total = 0;
  for (const auto& [id, entry] : it->second)
    if (now < entry.expires) total += entry.gpus;
  return total;
}

size_t PendingAdmissions::expire(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t dropped = 0;
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

size_t PendingAdmissions::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t count = 0;
  for (const auto& [ns, entries] : by_namespace_) count += entries.size();
  return count;
}

}  // namespace gpuadmit
