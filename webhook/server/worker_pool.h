#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "webhook/server/running_thread.h"

namespace gpuadmit::webhook {

// Plain threads taking jobs in order. Its queue is unbounded: HttpListener bounds it, handing out
// at most ListenerOptions::max_queued_requests + workers jobs at once.
// A job wakes the worker that went idle last, whose stack and caches are the warmest. A condition
// variable shared by all wakes them in turn, so under load every job started on the coldest of
// the 64 threads (bench/README.md, 2026-12-07 session 18: 6-9 % less CPU per review at c16,
// 10-19 % more throughput there and 3-10 % at c64, p99 as before).
// A short job wakes no worker while `running` others are awake: one of them takes it when done.
// Jobs are CPU-bound, so more threads than CPUs only take turns, and each wake is two context
// switches (bench/README.md, 2026-12-08 session 20). A long job wakes one more, so that long
// jobs never hold up the short ones: at least `running` awake workers are not on a long job.
class WorkerPool {
 public:
  // `running`: 0 wakes a worker for every job, as long as one is idle.
  explicit WorkerPool(std::size_t workers, std::size_t running = 0) : workers_(workers), running_(running) {
    for (Worker& worker : workers_)
      worker.thread = start_running_thread("gpuadmit-worker", [this, &worker] { work(worker); });
  }
  ~WorkerPool() { stop(); }
  void submit(std::function<void()> job, bool long_job = false) {
    std::unique_lock lock(mutex_);
    jobs_.push_back(Job{std::move(job), long_job});
    if (long_job) ++long_jobs_;
    // A wake-up per job, as notify_one of a shared condition variable would: fewer left jobs
    // waiting behind busy workers and doubled the p99 (bench/README.md, session 18). A worker
    // woken after another took the job goes back on the stack.
    if (idle_.empty()) return;
    if (running_ > 0 && workers_.size() - idle_.size() >= running_ + long_jobs_) return;
    Worker& worker = *idle_.back();
    idle_.pop_back();
    worker.woken = true;
    lock.unlock();
    worker.wake.notify_one();
  }
  std::size_t idle_workers() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }
  // Runs every job given so far, then joins the workers.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    for (Worker& worker : workers_) worker.wake.notify_one();
    for (Worker& worker : workers_)
      if (worker.thread.joinable()) worker.thread.join();
  }

 private:
  struct Worker {
    std::condition_variable wake;
    bool woken = false;  // taken off the idle stack by submit()
    std::thread thread;
  };
  // Jobs in order, by whichever worker is free; idle on the top of the stack until woken or
  // stopped. A stopping pool still runs every job it was given.
  void work(Worker& self) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!jobs_.empty()) {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job.run();
        job.run = nullptr;  // what it holds is freed before the next wait
        lock.lock();
        if (job.long_job) --long_jobs_;
        continue;
      }
      if (stopping_) return;
      idle_.push_back(&self);
      self.wake.wait(lock, [&] { return self.woken || stopping_; });
      if (self.woken)
        self.woken = false;
      else  // stopping
        idle_.erase(std::find(idle_.begin(), idle_.end(), &self));
    }
  }
  struct Job {
    std::function<void()> run;
    bool long_job;
  };
  mutable std::mutex mutex_;
  std::deque<Worker> workers_;  // never resized: the threads hold references
  const std::size_t running_;
  std::vector<Worker*> idle_;   // a stack: the last to go idle is woken first
  std::deque<Job> jobs_;
  std::size_t long_jobs_ = 0;   // queued or running
  bool stopping_ = false;
};

}  // namespace gpuadmit::webhook
