// Pods allowed but not yet seen by the watch count toward namespace quotas for a TTL.
#include <gtest/gtest.h>

#include "engine/pending_admissions.h"

namespace gpuadmit {
namespace {

using namespace std::chrono_literals;
using Clock = PendingAdmissions::Clock;

TEST(KubePendingAdmissions, SumsPerNamespaceUntilTheTtl) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", 2, t0);
  pending.record("ml", "uid-2", 4, t0 + 10s);
  pending.record("web", "uid-3", 1, t0);
  EXPECT_EQ(pending.pending_gpus("ml", t0 + 10s), 6);
  EXPECT_EQ(pending.pending_gpus("web", t0 + 10s), 1);
  EXPECT_EQ(pending.pending_gpus("empty", t0), 0);
  EXPECT_EQ(pending.pending_gpus("ml", t0 + 30s), 4);  // uid-1 expired, uid-2 not yet
  EXPECT_EQ(pending.pending_gpus("ml", t0 + 40s), 0);
}

TEST(KubePendingAdmissions, ConfirmedPodsStopCounting) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", 2, t0);
  pending.record("ml", "uid-2", 3, t0);
  EXPECT_TRUE(pending.confirm("ml", "uid-1"));  // the watch showed it: the cache counts it now
  EXPECT_FALSE(pending.confirm("ml", "uid-1"));
  EXPECT_FALSE(pending.confirm("other", "uid-2"));
  EXPECT_EQ(pending.pending_gpus("ml", t0), 3);
  EXPECT_EQ(pending.size(), 1u);
}

TEST(KubePendingAdmissions, RecordingAgainReplaces) {
  PendingAdmissions pending(30s);
  const auto t0 = Clock::now();
  pending.record("ml", "uid-1", 2, t0);
  pending.record("ml", "uid-1", 5, t0 + 20s);  // a retried review of the same pod
  EXPECT_EQ(pending.pending_gpus("ml", t0 + 40s), 5);
  EXPECT_EQ(pending.size(), 1u);
}

TEST(KubePendingAdmissions, ExpireDropsOldRecords) {
  PendingAdmissions pending(10s);
  const auto t0 = Clock::now();
  pending.record("ml", "a", 1, t0);
  pending.record("ml", "b", 1, t0 + 5s);
  pending.record("web", "c", 1, t0);
  EXPECT_EQ(pending.expire(t0 + 10s), 2u);
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending.pending_gpus("ml", t0 + 10s), 1);
  EXPECT_EQ(pending.expire(t0 + 20s), 1u);
  EXPECT_EQ(pending.size(), 0u);
}

}  // namespace
}  // namespace gpuadmit
