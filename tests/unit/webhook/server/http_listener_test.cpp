// The listener's bound on request bodies under review at once (--max-inflight-body-bytes): a
// review's memory is a large multiple of its body, so large bodies wait for each other, small
// ones do not, and one body over the bound alone still runs. And where a review runs: a small
// request is answered by the event loop serving its connection (inline_body_bytes), and the
// connections are spread over the loops.
#include <gtest/gtest.h>

#include <httplib.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/server_process.h"
#include "webhook/server/http_listener.h"

namespace {

using namespace gpuadmit::webhook;
using gpuadmit::testing::e2e::eventually;
using gpuadmit::testing::e2e::RawConnection;
using namespace std::chrono_literals;

// Runs `clients` requests with `body_bytes` bodies at once against a listener with 4 workers and
// a 1 MiB in-flight bound; each review waits for the others (up to `hold`) so that those allowed
// to run together do. Returns the most reviews that ran at once; every answer must be 200.
// Inline answers are off here (each review waits for the others, which a review on an event loop
// would stop its other connections from being read); `stagger` starts each client once the
// previous one's review runs.
// `bodies`: each client's body size, in the order they start.
// `running_workers`: ListenerOptions::running_workers.
int most_at_once(const std::vector<std::size_t>& bodies, std::chrono::milliseconds hold, std::size_t inline_body_bytes,
                 bool stagger, std::size_t io_threads, std::size_t running_workers = 0) {
  const int clients = static_cast<int>(bodies.size());
  std::mutex mutex;
  std::condition_variable changed;
  int running = 0, most = 0, started = 0;
  ListenerOptions options;
  options.inline_body_bytes = inline_body_bytes;
  options.io_threads = io_threads;
  options.workers = 4;
  options.running_workers = running_workers;
  options.max_inflight_body_bytes = 1 << 20;
  options.max_body_bytes = 3 << 20;
  ListenerHooks hooks;
  hooks.handle = [&](const HttpRequest&, HttpResponse& response) {
    std::unique_lock lock(mutex);
    most = std::max(most, ++running);
    ++started;
    changed.notify_all();
    changed.wait_for(lock, hold, [&] { return most == clients; });
    --running;
    response.status = 200;
    response.body = "ok";
  };
  auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  HttpListener listener(options, nullptr, hooks, logger);
  const int port = listener.bind("127.0.0.1", 0);
  listener.start();
  std::vector<std::thread> threads;
  std::vector<int> statuses(static_cast<std::size_t>(clients), 0);
  for (int i = 0; i < clients; ++i) {
    if (stagger && i > 0) {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return started == i; });
    }
    threads.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(10, 0);
      auto result = client.Post("/validate", std::string(bodies[static_cast<std::size_t>(i)], 'a'), "application/json");
      statuses[static_cast<std::size_t>(i)] = result ? result->status : -1;
    });
  }
  for (std::thread& thread : threads) thread.join();
  listener.stop();
  for (int status : statuses) EXPECT_EQ(status, 200);
  return most;
}

int most_at_once(std::size_t body_bytes, int clients, std::chrono::milliseconds hold,
                 std::size_t inline_body_bytes = 0, bool stagger = false, std::size_t io_threads = 1) {
  return most_at_once(std::vector<std::size_t>(static_cast<std::size_t>(clients), body_bytes), hold, inline_body_bytes,
                      stagger, io_threads);
}

TEST(HttpListener, LargeBodiesAreReviewedOneAtATime) {
  EXPECT_EQ(most_at_once(600 << 10, 3, 300ms), 1);  // two 600 KiB bodies pass 1 MiB
}

TEST(HttpListener, SmallBodiesAreReviewedTogether) {
  EXPECT_EQ(most_at_once(1 << 10, 4, 5000ms), 4);
}

TEST(HttpListener, ABodyOverTheBoundAloneStillRuns) {
  EXPECT_EQ(most_at_once(2 << 20, 2, 300ms), 1);
}

// With one event loop, the first request is answered by the loop itself, so the second (sent while
// the first is under review) is only read once the first is answered: never two at once. With
// inline answers off, or a body over the inline size, the two run together on workers.
TEST(HttpListener, ASmallRequestIsAnsweredByItsEventLoop) {
  EXPECT_EQ(most_at_once(1 << 10, 2, 300ms, 64 << 10, true), 1);
  EXPECT_EQ(most_at_once(1 << 10, 2, 5000ms, 0, true), 2);
  EXPECT_EQ(most_at_once(1 << 10, 2, 5000ms, 512, true), 2);
}

// A small request whose loop has a request on a worker goes to a worker too: after a large body
// (on a worker), two small ones on the same loop run at once with it. Answered on the loop, the
// first small one would keep the second from being read.
TEST(HttpListener, ASmallRequestGoesToAWorkerWhileItsLoopHasOneThere) {
  EXPECT_EQ(most_at_once({100 << 10, 1 << 10, 1 << 10}, 5000ms, 64 << 10, true, 1), 3);
}

// With one worker kept running for small requests, a second small one waits for it although
// three workers are idle; a body over 64 KiB wakes a worker of its own, so it runs beside a small
// one, and a small one beside it.
TEST(HttpListener, SmallRequestsWaitForTheRunningWorkersAndLargeOnesDoNot) {
  EXPECT_EQ(most_at_once({1 << 10, 1 << 10}, 300ms, 0, true, 1, 1), 1);
  EXPECT_EQ(most_at_once({100 << 10, 1 << 10}, 5000ms, 0, true, 1, 1), 2);
  EXPECT_EQ(most_at_once({1 << 10, 100 << 10}, 5000ms, 0, true, 1, 1), 2);
  EXPECT_EQ(most_at_once({100 << 10, 1 << 10, 1 << 10}, 300ms, 0, true, 1, 1), 2);
}

// The second connection goes to the loop that serves none, so with two loops the two small
// requests are answered at once, each by its own loop; four on four loops likewise.
TEST(HttpListener, ConnectionsAreSpreadOverTheEventLoops) {
  EXPECT_EQ(most_at_once(1 << 10, 2, 5000ms, 64 << 10, true, 2), 2);
  EXPECT_EQ(most_at_once(1 << 10, 4, 5000ms, 64 << 10, true, 4), 4);
  EXPECT_EQ(most_at_once(1 << 10, 3, 300ms, 64 << 10, true, 2), 2);  // the third shares a loop
}

// CPU seconds the listener's event loops (threads named gpuadmit-loop) have used.
double event_loop_cpu_seconds() {
  double ticks = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (!std::getline(comm, name) || name != "gpuadmit-loop") continue;
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    for (int i = 3; i <= 15 && fields >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Input that comes while a request is with a worker is not read until it is answered: a
// pipelined request waits (and is answered after, in order), and its arrival neither spins the
// loop, which would keep reporting the unread input, nor loses it.
TEST(HttpListener, InputWhileARequestIsWithAWorkerWaitsWithoutSpinning) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first_started{false};
  ListenerOptions options;
  options.inline_body_bytes = 0;  // every request on a worker
  ListenerHooks hooks;
  hooks.handle = [&](const HttpRequest& request, HttpResponse& response) {
    if (request.path == "/first") {
      first_started = true;
      released.wait();
    }
    response.body = request.path;
  };
  auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  HttpListener listener(options, nullptr, hooks, logger);
  const int port = listener.bind("127.0.0.1", 0);
  listener.start();
  RawConnection connection(port, RawConnection::Mode::tcp);
  // One request answered first, so the connection waits for the next one in the epoll set.
  ASSERT_TRUE(connection.send("GET /zero HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(connection.readable(5000ms));
  char answer[512];
  ASSERT_GT(::recv(connection.fd(), answer, sizeof answer, 0), 0);
  ASSERT_TRUE(connection.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return first_started.load(); }));
  const double cpu_before = event_loop_cpu_seconds();
  ASSERT_TRUE(connection.send("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::this_thread::sleep_for(500ms);
  // A loop spinning on the unread request would have used most of the half second.
  EXPECT_LT(event_loop_cpu_seconds() - cpu_before, 0.2);
  EXPECT_FALSE(connection.readable(0ms));  // the first is not answered yet
  release.set_value();
  const std::string answers = connection.read_all();
  const auto first = answers.find("/first"), second = answers.find("/second");
  ASSERT_NE(first, std::string::npos) << answers;
  ASSERT_NE(second, std::string::npos) << answers;
  EXPECT_LT(first, second);
  listener.stop();
}

// The connection limits are the listener's, whichever loops serve the connections: with three
// loops and a per-client limit of 4, the fifth is refused, and once one closes a new one is
// taken. A shutdown then closes the idle ones on every loop.
TEST(HttpListener, ConnectionLimitsAndDrainingSpanTheEventLoops) {
  std::atomic<int> open{0}, refused{0}, closed{0};
  ListenerOptions options;
  options.io_threads = 3;
  options.max_connections_per_client = 4;
  ListenerHooks hooks;
  hooks.handle = [](const HttpRequest&, HttpResponse& response) { response.body = "ok"; };
  hooks.on_open = [&] { ++open; };
  hooks.on_close = [&](CloseReason reason) {
    if (reason == CloseReason::limit_per_client) ++refused;
    else ++closed;
  };
  auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  HttpListener listener(options, nullptr, hooks, logger);
  const int port = listener.bind("127.0.0.1", 0);
  listener.start();
  std::vector<std::unique_ptr<RawConnection>> connections;  // idle: they send nothing
  for (int i = 0; i < 4; ++i) connections.push_back(std::make_unique<RawConnection>(port, RawConnection::Mode::tcp));
  ASSERT_TRUE(eventually([&] { return open == 4; }));
  connections.push_back(std::make_unique<RawConnection>(port, RawConnection::Mode::tcp));
  ASSERT_TRUE(eventually([&] { return refused == 1; }));
  connections.erase(connections.begin());
  ASSERT_TRUE(eventually([&] { return closed == 1; }));
  connections.push_back(std::make_unique<RawConnection>(port, RawConnection::Mode::tcp));
  ASSERT_TRUE(eventually([&] { return open == 6; }));  // five taken, one refused
  EXPECT_EQ(refused.load(), 1);
  connections.erase(connections.begin());
  ASSERT_TRUE(eventually([&] { return closed == 2; }));
  {
    httplib::Client client("127.0.0.1", port);  // answered on its loop
    auto result = client.Get("/");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->body, "ok");
  }
  listener.begin_shutdown();
  EXPECT_TRUE(listener.wait_drained(std::chrono::steady_clock::now() + 5s));  // idle ones are closed
  EXPECT_EQ(closed.load(), 6);
  listener.stop();
}

}  // namespace
