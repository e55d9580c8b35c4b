#pragma once

#include <pthread.h>

#include <future>
#include <thread>
#include <utility>

namespace gpuadmit::webhook {

// Starts a thread and returns once it runs. A server announces its port only when every thread
// it serves with is running, so nothing is left to start when a flood has taken every descriptor:
// a sanitizer build checks a thread's type the first time it runs, and that check needs a pipe.
// `name` (at most 15 characters) is what `top -H`, `ps -L` and perf show for the thread.
template <class Body>
std::thread start_running_thread(const char* name, Body body) {
  std::promise<void> running;  // not a latch: the promise's state outlives this frame
  std::future<void> started = running.get_future();
  std::thread thread([name, running = std::move(running), body = std::move(body)]() mutable {
    pthread_setname_np(pthread_self(), name);
    running.set_value();
    body();
  });
  started.wait();
  return thread;
}

}  // namespace gpuadmit::webhook
