#include "webhook/server/worker_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <string>
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

// Counts the jobs running and holds each until released.
struct Held {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> running{0};
  std::function<void()> job() {
    return [this, released = released] {
      ++running;
      released.wait();
      --running;
    };
  }
  bool reaches(int count) const {
    for (int i = 0; i < 5000; ++i) {
      if (running == count) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
};

// With two workers kept running, a third short job waits for one of them although six are idle;
// a wrong pool would start it at once, well within the pause.
TEST(WorkerPool, AShortJobWaitsForTheRunningWorkers) {
  WorkerPool pool(8, 2);
  ASSERT_TRUE(all_idle(pool, 8));
  Held held;
  pool.submit(held.job());
  pool.submit(held.job());
  ASSERT_TRUE(held.reaches(2));
  std::atomic<bool> third{false};
  pool.submit([&third] { third = true; });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(third);
  EXPECT_EQ(pool.idle_workers(), 6u);
  held.release.set_value();
  EXPECT_TRUE(all_idle(pool, 8));
  EXPECT_TRUE(third);
}

// A long job wakes a worker of its own: with one worker kept running, a short job still starts
// beside a long one, and the next short job waits for the short one, not for the long one.
TEST(WorkerPool, ALongJobWakesAWorkerOfItsOwn) {
  WorkerPool pool(8, 1);
  ASSERT_TRUE(all_idle(pool, 8));
  Held long_one, short_one;
  pool.submit(long_one.job(), true);
  ASSERT_TRUE(long_one.reaches(1));
  pool.submit(short_one.job());
  EXPECT_TRUE(short_one.reaches(1));
  std::atomic<bool> next{false};
  pool.submit([&next] { next = true; });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(next);
  short_one.release.set_value();
  for (int i = 0; i < 5000 && !next; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(next);
  EXPECT_EQ(long_one.running, 1);
  long_one.release.set_value();
  EXPECT_TRUE(all_idle(pool, 8));
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

// `top -H` and perf tell the workers by their name.
TEST(WorkerPool, WorkersAreNamed) {
  WorkerPool pool(1);
  std::promise<std::string> name;
  pool.submit([&name] {
    char buffer[16] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    name.set_value(buffer);
  });
  EXPECT_EQ(name.get_future().get(), "gpuadmit-worker");
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
