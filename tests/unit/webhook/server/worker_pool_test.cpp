#include "webhook/server/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

namespace gpuadmit::webhook {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until every worker is idle again, so the next job finds the idle stack whole.
bool all_idle(const WorkerPool& pool, std::size_t workers) {
  for (int i = 0; i < 5000; ++i) {
    if (pool.idle_workers() == workers) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

TEST(WorkerPool, TheWorkerIdleLastTakesTheNextJob) {
  constexpr std::size_t kWorkers = 8;
  WorkerPool pool(kWorkers);
  ASSERT_TRUE(all_idle(pool, kWorkers));
  std::vector<std::thread::id> ran_on;
  for (int i = 0; i < 20; ++i) {
    std::promise<std::thread::id> done;
    std::future<std::thread::id> id = done.get_future();
    pool.submit([&done] { done.set_value(std::this_thread::get_id()); });
    ran_on.push_back(id.get());
    ASSERT_TRUE(all_idle(pool, kWorkers));
  }
  // Woken in turn, as by one shared condition variable, the jobs would visit every worker.
  EXPECT_EQ(std::set<std::thread::id>(ran_on.begin(), ran_on.end()).size(), 1u);
}

TEST(WorkerPool, JobsRunAtOnceUpToTheWorkerCount) {
  constexpr std::size_t kWorkers = 4;
  WorkerPool pool(kWorkers);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> running{0};
  for (std::size_t i = 0; i < kWorkers; ++i)
    pool.submit([&, released] {
      ++running;
      released.wait();
    });
  for (int i = 0; i < 5000 && running < static_cast<int>(kWorkers); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(running, static_cast<int>(kWorkers));
  EXPECT_EQ(pool.idle_workers(), 0u);
  release.set_value();
  EXPECT_TRUE(all_idle(pool, kWorkers));
}

TEST(WorkerPool, QueuedJobsRunInOrderAndStopRunsThemAll) {
  WorkerPool pool(1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<int> order;  // one worker: no two jobs at once
  pool.submit([released] { released.wait(); });
  for (int i = 0; i < 100; ++i) pool.submit([&order, i] { order.push_back(i); });
  release.set_value();
  pool.stop();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(pool.idle_workers(), 0u);  // stopped workers are not idle
}

TEST(WorkerPool, StopsWithEveryWorkerIdle) {
  WorkerPool pool(16);
  ASSERT_TRUE(all_idle(pool, 16));
  pool.stop();
  pool.stop();  // again, as the destructor does
  EXPECT_EQ(pool.idle_workers(), 0u);
}

}  // namespace
}  // namespace gpuadmit::webhook
