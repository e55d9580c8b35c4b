// Pods allowed but not yet seen by the watch count toward namespace quotas for a TTL.
#include <gtest/gtest.h>

#include "engine/capacity/pending_admissions.h"

namespace gpuadmit::capacity {
namespace {

using namespace std::chrono_literals;
using Clock = PendingAdmissions::Clock;

PendingAdmissions::Devices gpus(std::int64_t n) { return {{"nvidia.com/gpu", n}}; }

TEST(CapacityPendingAdmissions, SumsPerNamespaceUntilTheTtl) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", gpus(2), t0);
  pending.record("ml", "uid-2", gpus(4), t0 + 10s);
  pending.record("web", "uid-3", gpus(1), t0);
  EXPECT_EQ(pending.pending_devices("ml", t0 + 10s), 6);
  EXPECT_EQ(pending.pending_devices("web", t0 + 10s), 1);
  EXPECT_EQ(pending.pending_devices("empty", t0), 0);
  EXPECT_EQ(pending.pending_devices("ml", t0 + 30s), 4);  // uid-1 expired, uid-2 not yet
  EXPECT_EQ(pending.pending_devices("ml", t0 + 40s), 0);
}

TEST(CapacityPendingAdmissions, ConfirmedPodsStopCounting) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", gpus(2), t0);
  pending.record("ml", "uid-2", gpus(3), t0);
  EXPECT_TRUE(pending.confirm("ml", "uid-1"));  // the watch showed it: the cache counts it now
  EXPECT_FALSE(pending.confirm("ml", "uid-1"));
  EXPECT_FALSE(pending.confirm("other", "uid-2"));
  EXPECT_EQ(pending.pending_devices("ml", t0), 3);
  EXPECT_EQ(pending.size(), 1u);
}

TEST(CapacityPendingAdmissions, RecordingAgainReplaces) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", gpus(2), t0);
  pending.record("ml", "uid-1", gpus(5), t0 + 20s);  // a retried review of the same pod
  EXPECT_EQ(pending.pending_devices("ml", t0 + 40s), 5);
  EXPECT_EQ(pending.size(), 1u);
}

TEST(CapacityPendingAdmissions, ExpireDropsOldRecords) {
  PendingAdmissions pending(10s);
  const auto t0 = Clock::now();
  pending.record("ml", "a", gpus(1), t0);
  pending.record("ml", "b", gpus(1), t0 + 5s);
  pending.record("web", "c", gpus(1), t0);
  EXPECT_EQ(pending.expire(t0 + 10s), 2u);
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending.pending_devices("ml", t0 + 10s), 1);
  EXPECT_EQ(pending.expire(t0 + 20s), 1u);
  EXPECT_EQ(pending.size(), 0u);
}

}  // namespace
}  // namespace gpuadmit::capacity

namespace gpuadmit::capacity {
namespace {

TEST(CapacityPendingAdmissions, ZeroTtlRecordsNothing) {
  PendingAdmissions pending;  // no live watch: nothing to wait for
  pending.record("ml", "uid-1", {{"nvidia.com/gpu", 2}});
  EXPECT_EQ(pending.size(), 0u);
  EXPECT_EQ(pending.pending_devices("ml"), 0);
}

TEST(CapacityPendingAdmissions, KeepsEachDeviceResource) {
  PendingAdmissions pending(std::chrono::seconds(30));
  const auto t0 = PendingAdmissions::Clock::now();
  pending.record("ml", "uid-1", {{"nvidia.com/gpu", 1}, {"nvidia.com/mig-1g.10gb", 2}}, t0);
  std::map<std::string, std::int64_t> seen;
  pending.for_each("ml", t0, [&](const PendingAdmissions::Devices& devices) {
    for (const auto& [resource, count] : devices) seen[resource] += count;
  });
  EXPECT_EQ(seen, (std::map<std::string, std::int64_t>{{"nvidia.com/gpu", 1}, {"nvidia.com/mig-1g.10gb", 2}}));
  EXPECT_EQ(pending.pending_devices("ml", t0), 3);
}

}  // namespace
}  // namespace gpuadmit::capacity
