// Leader election over a Lease against the fake API server: acquiring, standing by while another
// renews, release on stop, a leader cut off from the API server, conflicts, a lease taken by
// another, and hostile answers. Durations are short (lease 2 s, renew deadline 1 s, retry 0.2 s);
// the tests wait for conditions with generous deadlines and assert orderings, and bounds only
// with slack, so a loaded machine slows them without failing them.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <list>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/fake_apiserver.h"
#include "webhook/kube/client.h"
#include "webhook/kube/lease.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::FakeApiServer;
using Clock = std::chrono::steady_clock;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

LeaderElectionOptions fast_options(const std::string& identity, const std::string& lease = "audit") {
  LeaderElectionOptions options;
  options.lease_namespace = "gpu-admit";
  options.lease_name = lease;
  options.identity = identity;
  options.lease_duration = 2s;
  options.renew_deadline = 1s;
  options.retry_period = 200ms;
  options.retry_jitter = 0.5;
  options.request_timeout = 500ms;
  return options;
}

// What an elector's callbacks reported, and when.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> events;  // "started", "stopped", "leader X"
  std::vector<Clock::time_point> started_at;
  std::function<void()> on_start;  // run inside on_started_leading

  void hook(LeaderElectionOptions& options) {
    options.on_started_leading = [this] {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back("started");
      started_at.push_back(Clock::now());
      if (on_start) on_start();
    };
    options.on_stopped_leading = [this] {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back("stopped");
    };
    options.on_new_leader = [this](const std::string& holder) {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back("leader " + holder);
    };
  }
  int count(const std::string& event) {
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<int>(std::count(events.begin(), events.end(), event));
  }
  std::vector<std::string> all() {
    std::lock_guard<std::mutex> lock(mutex);
    return events;
  }
  Clock::time_point first_start() {
    std::lock_guard<std::mutex> lock(mutex);
    return started_at.empty() ? Clock::time_point{} : started_at.front();
  }
};

const std::regex kMicroTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

// An elector and what its callbacks saw; the fixture owns both, so callbacks that run while
// TearDown stops the electors find their recorder alive.
struct Replica {
  Recorder recorder;
  std::unique_ptr<LeaderElector> elector;
};

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    dir_ = fs::temp_directory_path() / ("lease_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    api_ = std::make_unique<FakeApiServer>(dir_);
    api_->set_token("a-token");
    api_->add_token("b-token");
  }
  void TearDown() override {
    // Newest first (a callback may look at an older elector), and before the server: they
    // release through it.
    for (auto it = replicas_.rbegin(); it != replicas_.rend(); ++it) it->elector.reset();
    replicas_.clear();
    api_.reset();
    spdlog::set_level(spdlog::level::info);
    fs::remove_all(dir_);
  }

  KubeConfig config(const std::string& token) {
    return load_kubeconfig(api_->write_kubeconfig(dir_ / ("kubeconfig-" + token), token));
  }

  // A started elector that logs to log_; `before_start` runs first (set the recorder's on_start).
  Replica& start(const std::string& token, LeaderElectionOptions options,
                 const std::function<void(Replica&)>& before_start = nullptr) {
    Replica& replica = replicas_.emplace_back();
    replica.recorder.hook(options);
    if (!options.logger) {
      options.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
      options.logger->set_level(spdlog::level::info);
    }
    replica.elector = std::make_unique<LeaderElector>(config(token), std::move(options));
    if (before_start) before_start(replica);
    replica.elector->start();
    return replica;
  }

  json lease(const std::string& name = "audit") { return api_->object("leases", "gpu-admit", name); }

  size_t lease_requests(const std::string& method, const std::string& authorization = "") {
    return api_->count_requests([&](const FakeApiServer::RecordedRequest& r) {
      return r.resource == "leases" && r.method == method && (authorization.empty() || r.authorization == authorization);
    });
  }

  fs::path dir_;
  std::unique_ptr<FakeApiServer> api_;
  std::ostringstream log_;  // every elector's log lines (outlives them)
  std::list<Replica> replicas_;
};

TEST(LeaseFormat, MicroTimeIsUtcWithMicroseconds) {
  using namespace std::chrono;
  const auto time = sys_days{year{2026} / 3 / 4} + 5h + 6min + 7s + 123456us;
  EXPECT_EQ(format_micro_time(time), "2026-03-04T05:06:07.123456Z");
  EXPECT_EQ(format_micro_time(system_clock::time_point{}), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_micro_time(system_clock::time_point{} - 1us), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(lease_path("gpu-admit", "audit"), "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases/audit");
}

TEST(LeaseOptions, BadOptionsAreRefused) {
  KubeConfig config;
  config.host = "127.0.0.1";
  config.port = 1;
  auto refused = [&](const std::function<void(LeaderElectionOptions&)>& change) {
    LeaderElectionOptions options = fast_options("a");
    change(options);
    try {
      LeaderElector elector(config, options);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refused([](auto&) {}), "accepted");
  EXPECT_NE(refused([](auto& o) { o.identity = ""; }).find("identity"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lease_namespace = "Bad_NS"; }).find("namespace"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lease_name = "a/../b"; }).find("name"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lease_name = ""; }).find("name"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.renew_deadline = 2s; }).find("renew deadline"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lease_duration = 900ms; o.renew_deadline = 500ms; }).find("lease duration"),
            std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.retry_period = 1s; }).find("retry period"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.retry_jitter = 6; }).find("retry period"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.retry_period = 0ms; }).find("retry period"), std::string::npos);
}

TEST_F(LeaseTest, AcquiresOnAnEmptyServerAndRenews) {
  Replica& replica = start("a-token", fast_options("replica-a"));
  LeaderElector& a = *replica.elector;
  Recorder& recorder = replica.recorder;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  EXPECT_EQ(a.leading_term(), 1u);

  json created = lease();
  ASSERT_TRUE(created.is_object());
  EXPECT_EQ(created["spec"]["holderIdentity"], "replica-a");
  EXPECT_EQ(created["spec"]["leaseDurationSeconds"], 2);
  EXPECT_EQ(created["spec"]["leaseTransitions"], 0);
  const std::string acquired = created["spec"]["acquireTime"];
  EXPECT_TRUE(std::regex_match(acquired, kMicroTime)) << acquired;
  EXPECT_TRUE(std::regex_match(created["spec"]["renewTime"].get<std::string>(), kMicroTime));
  // It asked first (404), then created it.
  const auto requests = api_->requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].path, "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases");

  // Renewals: PUTs with the resourceVersion, the acquireTime kept, no new transition.
  const std::string first_rv = created["metadata"]["resourceVersion"];
  ASSERT_TRUE(eventually([&] { return lease_requests("PUT") >= 3; }));
  json renewed = lease();
  EXPECT_NE(renewed["metadata"]["resourceVersion"], first_rv);
  EXPECT_EQ(renewed["spec"]["acquireTime"], acquired);
  EXPECT_EQ(renewed["spec"]["leaseTransitions"], 0);
  EXPECT_TRUE(a.leading());
  // A leader renews from the object its last write returned: no GET per renewal.
  EXPECT_LE(lease_requests("GET"), 2u);

  LeaderStatus status = a.status();
  EXPECT_TRUE(status.leading);
  EXPECT_EQ(status.term, 1u);
  EXPECT_EQ(status.lost, 0u);
  EXPECT_EQ(status.holder, "replica-a");
  EXPECT_EQ(status.lease_transitions, 0);
  EXPECT_EQ(status.failures, 0u);
  EXPECT_EQ(recorder.all(), (std::vector<std::string>{"leader replica-a", "started"}));
  const std::string text = log_.str();
  EXPECT_NE(text.find("became leader"), std::string::npos) << text;
  EXPECT_NE(text.find("\"identity\":\"replica-a\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"leaseTransitions\":0"), std::string::npos) << text;

  a.stop();
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(a.leading_term(), 0u);
  EXPECT_EQ(recorder.count("stopped"), 1);
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "");  // released
  EXPECT_EQ(lease()["spec"]["leaseDurationSeconds"], 1);
  EXPECT_NE(log_.str().find("released the lease"), std::string::npos);
}

TEST_F(LeaseTest, AnotherIdentityStaysFollowerWhileTheLeaderRenews) {
  Replica& replica_a = start("a-token", fast_options("replica-a"));
  LeaderElector& a = *replica_a.elector;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  Replica& replica_b = start("b-token", fast_options("replica-b"));
  LeaderElector& b = *replica_b.elector;
  Recorder &ra = replica_a.recorder, &rb = replica_b.recorder;
  ASSERT_TRUE(eventually([&] { return b.status().holder == "replica-a"; }));
  // Longer than the lease duration plus a jittered retry: B would have taken an expired lease.
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(a.leading());
  EXPECT_FALSE(b.leading());
  EXPECT_EQ(rb.count("started"), 0);
  EXPECT_EQ(ra.count("stopped"), 0);
  EXPECT_EQ(a.status().lost, 0u);
  EXPECT_GE(b.status().attempts, 5u);
  EXPECT_EQ(b.status().failures, 0u);  // following is not failing
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-a");
  // B only reads while A holds the lease.
  EXPECT_EQ(lease_requests("PUT", "Bearer b-token"), 0u);
  EXPECT_EQ(lease_requests("POST", "Bearer b-token"), 0u);
}

TEST_F(LeaseTest, StoppingTheLeaderReleasesAndTheOtherLeadsAtOnce) {
  // A long lease: without the release, B would wait 5 s.
  LeaderElectionOptions long_a = fast_options("replica-a"), long_b = fast_options("replica-b");
  for (auto* o : {&long_a, &long_b}) {
    o->lease_duration = 5s;
    o->renew_deadline = 3s;
  }
  LeaderElector& a = *start("a-token", long_a).elector;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  Replica& replica_b = start("b-token", long_b);
  LeaderElector& b = *replica_b.elector;
  Recorder& rb = replica_b.recorder;
  ASSERT_TRUE(eventually([&] { return b.status().holder == "replica-a"; }));

  const auto stopped = Clock::now();
  a.stop();
  EXPECT_LT(Clock::now() - stopped, 3s);
  EXPECT_FALSE(a.leading());
  EXPECT_NE(lease()["spec"]["holderIdentity"], "replica-a");
  ASSERT_TRUE(eventually([&] { return b.leading() && rb.count("started") == 1; }));
  // Well inside the 5 s B would otherwise have waited on an unchanged record.
  EXPECT_LT(rb.first_start() - stopped, 4s);
  json taken = lease();
  EXPECT_EQ(taken["spec"]["holderIdentity"], "replica-b");
  EXPECT_EQ(taken["spec"]["leaseTransitions"], 1);  // the release keeps a's 0; b's takeover adds one
}

TEST_F(LeaseTest, ALeaderCutOffFromTheApiServerStopsLeadingAndTheOtherTakesOver) {
  LeaderElectionOptions options_a = fast_options("replica-a");
  options_a.request_timeout = 2s;  // its thread hangs in a request well past the renew deadline
  Replica& replica_a = start("a-token", options_a);
  LeaderElector& a = *replica_a.elector;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  // Whether A still led when B started to (B's first on_started_leading).
  auto a_leading_when_b_started = std::make_shared<std::atomic<int>>(-1);
  Replica& replica_b = start("b-token", fast_options("replica-b"), [&a, a_leading_when_b_started](Replica& b) {
    b.recorder.on_start = [&a, a_leading_when_b_started] {
      int unset = -1;
      a_leading_when_b_started->compare_exchange_strong(unset, a.leading() ? 1 : 0);
    };
  });
  LeaderElector& b = *replica_b.elector;
  Recorder &ra = replica_a.recorder, &rb = replica_b.recorder;
  ASSERT_TRUE(eventually([&] { return b.status().holder == "replica-a"; }));

  // Every lease request of A's is held unanswered from now on; B's are served.
  const auto cut = Clock::now();
  api_->add_fault("leases", {"", "Bearer a-token", true, 0, ""});
  // A's last successful renewal began before the cut, so by the renew deadline after it A knows
  // it is no leader, from the timestamp alone: its thread is still waiting on a request.
  std::this_thread::sleep_until(cut + 1s + 20ms);
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(a.leading_term(), 0u);
  // Its thread cannot have reported the loss before its first hung request timed out (read first,
  // so a late wake-up on a loaded machine cannot fail this).
  const int stopped_seen = ra.count("stopped");
  if (Clock::now() < cut + options_a.request_timeout - 100ms) {
    EXPECT_EQ(stopped_seen, 0) << "the thread was expected to be stuck in its request";
  }

  ASSERT_TRUE(eventually([&] { return b.leading() && rb.count("started") == 1; }));
  EXPECT_EQ(a_leading_when_b_started->load(), 0);  // never two leaders
  // About leaseDuration + a jittered retry after A's last renewal, with slack for a loaded machine.
  EXPECT_LT(rb.first_start() - cut, 2s + 300ms + 3s);
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-b");
  EXPECT_EQ(lease()["spec"]["leaseTransitions"], 1);

  // Once its request times out, A's thread reports the loss; it then follows.
  ASSERT_TRUE(eventually([&] { return ra.count("stopped") == 1; }));
  EXPECT_EQ(a.status().lost, 1u);
  EXPECT_GE(a.status().failures, 1u);
  // Stopping is prompt even while a request hangs: it is aborted.
  const auto stopping = Clock::now();
  a.stop();
  EXPECT_LT(Clock::now() - stopping, 2s);
  EXPECT_TRUE(b.leading());
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-b");  // A released nothing: it was not leading
}

TEST_F(LeaseTest, AConflictOnTakeoverKeepsAFollower) {
  // A released lease: free to take, but every PUT loses a race (409 Conflict).
  api_->put_object("leases", {{"metadata", {{"name", "audit"}, {"namespace", "gpu-admit"}}},
                              {"spec", {{"holderIdentity", ""}, {"leaseDurationSeconds", 1}, {"leaseTransitions", 3}}}});
  api_->add_fault("leases", {"PUT", "", false, 409,
                             R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409})"});
  Replica& replica = start("a-token", fast_options("replica-a"));
  LeaderElector& a = *replica.elector;
  Recorder& ra = replica.recorder;
  ASSERT_TRUE(eventually([&] { return lease_requests("PUT") >= 3; }));
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(ra.count("started"), 0);
  EXPECT_EQ(a.status().failures, 0u);  // lost races are not failures

  api_->clear_faults("leases");
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-a");
  EXPECT_EQ(lease()["spec"]["leaseTransitions"], 4);
}

TEST_F(LeaseTest, ALeaseTakenByAnotherEndsLeadershipAtOnce) {
  Replica& replica = start("a-token", fast_options("replica-a"));
  LeaderElector& a = *replica.elector;
  Recorder& ra = replica.recorder;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  // Another replica writes the lease (as after a partition): A's next renewal meets a 409, reads
  // the lease and finds it held.
  json taken = lease();
  taken["spec"]["holderIdentity"] = "intruder";
  taken["spec"]["leaseTransitions"] = 5;
  const auto intruded = Clock::now();
  api_->put_object("leases", taken);
  ASSERT_TRUE(eventually([&] { return ra.count("stopped") == 1; }, 3s));
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(a.status().holder, "intruder");
  // The intruder does not renew: A takes the lease back, but only after the record stayed
  // unchanged for its lease duration.
  ASSERT_TRUE(eventually([&] { return a.leading_term() == 2; }));
  {
    std::lock_guard<std::mutex> lock(ra.mutex);
    ASSERT_EQ(ra.started_at.size(), 2u);
    EXPECT_GE(ra.started_at[1] - intruded, 2s);
  }
  EXPECT_EQ(lease()["spec"]["leaseTransitions"], 6);
  EXPECT_EQ(ra.all(), (std::vector<std::string>{"leader replica-a", "started", "leader intruder", "stopped",
                                                "leader replica-a", "started"}));
}

// A deleted lease ends the term at once (another replica may create it); the elector creates it
// again and leads in a new term.
TEST_F(LeaseTest, ALeaseDeletedUnderTheLeaderEndsItsTerm) {
  Replica& replica = start("a-token", fast_options("replica-a"));
  LeaderElector& a = *replica.elector;
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  ASSERT_TRUE(api_->delete_object("leases", "gpu-admit", "audit"));
  ASSERT_TRUE(eventually([&] { return a.leading_term() == 2; }));
  EXPECT_EQ(replica.recorder.count("stopped"), 1);
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-a");
  EXPECT_EQ(lease_requests("POST"), 2u);
}

TEST_F(LeaseTest, HostileAnswersNeverCrashAndAreRetried) {
  LeaderElectionOptions options = fast_options("replica-a");
  options.retry_period = 100ms;  // many answers to go through
  options.retry_jitter = 0.2;
  Replica& replica = start("a-token", options);
  LeaderElector& a = *replica.elector;
  Recorder& ra = replica.recorder;
  std::string deep(100000, '[');
  const std::vector<std::pair<int, std::string>> answers = {
      {200, "not json {"},
      {200, "[1,2]"},
      {200, "{\"metadata\":{}}"},
      {200, "{\"metadata\":{\"resourceVersion\":5}}"},
      {200, "{\"metadata\":\"x\",\"spec\":{\"holderIdentity\":\"replica-a\"}}"},
      {200, deep},
      {200, ""},
      {500, "{\"message\":" + json(std::string(100000, 'm')).dump() + "}"},
      {403, "{}"},
      {418, "<html>"},
      {301, ""},
  };
  for (const auto& [status, body] : answers) {
    api_->clear_faults("leases");
    api_->add_fault("leases", {"GET", "", false, status, body});
    const size_t before = lease_requests("GET");
    ASSERT_TRUE(eventually([&] { return lease_requests("GET") >= before + 2; })) << status << " " << body.substr(0, 40);
    EXPECT_FALSE(a.leading()) << body.substr(0, 40);
  }
  EXPECT_GE(a.status().failures, answers.size());
  EXPECT_LE(a.status().last_error.size(), 500u);  // a huge message is cut in the status and logs
  EXPECT_EQ(ra.count("started"), 0);
  EXPECT_EQ(lease_requests("POST") + lease_requests("PUT"), 0u);
  api_->clear_faults("leases");
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "replica-a");
}

// Records held by someone that this elector cannot read whole expire, like any other, after its
// own lease duration without change; then it takes them over and writes a clean record.
TEST_F(LeaseTest, HostileLeaseRecordsExpireAndAreReplaced) {
  const std::vector<json> specs = {
      "a string",
      json::array({1, 2}),
      {{"holderIdentity", 42}, {"leaseDurationSeconds", 2}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", -5}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", 1e30}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", 18446744073709551615ull}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", "15"}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", 2}, {"renewTime", "yesterday"},
       {"acquireTime", {{"x", 1}}}, {"leaseTransitions", "many"}},
      {{"holderIdentity", "other"}, {"leaseDurationSeconds", 2}, {"leaseTransitions", -7}},
  };
  std::vector<Replica*> replicas;
  const auto begun = Clock::now();
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string name = "hostile-" + std::to_string(i);
    api_->put_object("leases", {{"metadata", {{"name", name}, {"namespace", "gpu-admit"}}}, {"spec", specs[i]}});
    replicas.push_back(&start("a-token", fast_options("replica-a", name)));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    LeaderElector& elector = *replicas[i]->elector;
    // leading() turns true before the started callback has run on the elector's thread.
    ASSERT_TRUE(eventually([&] { return elector.leading() && replicas[i]->recorder.count("started") == 1; }))
        << specs[i].dump();
    // Not before the record had stayed unchanged for a lease duration (its own, or 2 s).
    EXPECT_GE(replicas[i]->recorder.first_start() - begun, 2s) << specs[i].dump();
    json replaced = lease("hostile-" + std::to_string(i));
    EXPECT_EQ(replaced["spec"]["holderIdentity"], "replica-a");
    EXPECT_EQ(replaced["spec"]["leaseDurationSeconds"], 2);
    EXPECT_EQ(replaced["spec"]["leaseTransitions"], 1) << specs[i].dump();  // unreadable counts as 0
    EXPECT_TRUE(std::regex_match(replaced["spec"]["acquireTime"].get<std::string>(), kMicroTime));
    EXPECT_EQ(elector.status().failures, 0u) << specs[i].dump();
  }
}

}  // namespace
}  // namespace gpuadmit::kube
