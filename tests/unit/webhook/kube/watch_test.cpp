// The list/watch client against the fake API server over TLS: sync, pagination, events,
// bookmarks, 410 relists, dropped connections, trickled chunks, token rotation, malformed lines,
// a server that never answers.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>

#include "tests/support/fake_apiserver.h"
#include "webhook/kube/client.h"
#include "webhook/kube/objects.h"
#include "webhook/kube/watch.h"
#include "webhook/cli/run.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::FakeApiServer;

// Holds what the watch fed it, like the capacity model would.
class RecordingSink : public ClusterObjectSink {
 public:
  void upsert(ObjectKind kind, const json& object) override {
    std::lock_guard<std::mutex> lock(mutex_);
    objects_[kind][object_key(object)] = object;
    ++upserts_[object_key(object)];
    calls_.push_back("upsert " + std::string(kind_name(kind)) + " " + object_key(object));
    changed_.notify_all();
  }
  void remove(ObjectKind kind, const json& object) override {
    std::lock_guard<std::mutex> lock(mutex_);
    objects_[kind].erase(object_key(object));
    calls_.push_back("remove " + std::string(kind_name(kind)) + " " + object_key(object));
    changed_.notify_all();
  }
  void list_complete(ObjectKind kind, const std::unordered_set<std::string>& keys) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& held = objects_[kind];
    for (auto it = held.begin(); it != held.end();) it = keys.count(it->first) ? std::next(it) : held.erase(it);
    ++lists_[kind];
    calls_.push_back("list_complete " + std::string(kind_name(kind)) + " " + std::to_string(held.size()));
    changed_.notify_all();
  }

  // Waits (bounded) until `condition` holds over the sink's state.
  bool wait(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, condition);
  }
  bool has(ObjectKind kind, const std::string& key) const { return objects_.count(kind) && objects_.at(kind).count(key); }
  json get(ObjectKind kind, const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return objects_[kind].at(key);
  }
  size_t size(ObjectKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    return objects_[kind].size();
  }
  int upserts(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return upserts_[key];
  }
  int lists(ObjectKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    return lists_[kind];
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<ObjectKind, std::map<std::string, json>> objects_;
  std::map<std::string, int> upserts_;
  std::map<ObjectKind, int> lists_;
  std::vector<std::string> calls_;
};

// Polls `condition` every few milliseconds, at most `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

WatchOptions fast_options() {
  WatchOptions options;
  options.page_size = 2;
  options.watch_timeout = 5s;
  options.watch_end_grace = 3s;
  options.list_read_timeout = 2s;
  options.connect_timeout = 2s;
  options.backoff_initial = 20ms;
  options.backoff_max = 200ms;
  options.backoff_jitter = 0.5;
  return options;
}

class KubeWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    dir_ = fs::temp_directory_path() / ("kube_watch_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    api_ = std::make_unique<FakeApiServer>(dir_);
    api_->set_token("good-token");
    for (int i = 0; i < 3; ++i) api_->apply("nodes", testing::fake_node("gpu-" + std::to_string(i), 8));
    for (int i = 0; i < 5; ++i) api_->apply("pods", testing::fake_pod("ml", "p" + std::to_string(i), "gpu-0", 1));
    api_->apply("namespaces", testing::fake_namespace("ml"));
    api_->apply("namespaces", testing::fake_namespace("default"));
  }
  void TearDown() override {
    watch_.reset();
    api_.reset();
    spdlog::set_level(spdlog::level::info);
    fs::remove_all(dir_);
  }

  KubeConfig kubeconfig(const std::string& token = "good-token", bool client_certificate = false) {
    return load_kubeconfig(api_->write_kubeconfig(dir_ / "kubeconfig", token, client_certificate));
  }

  void start(KubeConfig config, WatchOptions options = fast_options()) {
    watch_ = std::make_unique<ClusterWatch>(std::move(config), sink_, options);
    watch_->start();
  }

  size_t watches_of(const std::string& resource) {
    return api_->count_requests([&](const auto& r) { return r.resource == resource && r.watch(); });
  }

  fs::path dir_;
  std::unique_ptr<FakeApiServer> api_;
  RecordingSink sink_;
  // A test's log sink: declared before watch_, so it outlives the watch, which logs until
  // TearDown stops it (a stream local to the test body would be gone by then).
  std::ostringstream log_;
  std::unique_ptr<ClusterWatch> watch_;
};

TEST_F(KubeWatchTest, InitialSyncPaginatesAndTrims) {
  start(kubeconfig());
  EXPECT_FALSE(watch_->status().synced());
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  EXPECT_EQ(sink_.size(ObjectKind::Node), 3u);
  EXPECT_EQ(sink_.size(ObjectKind::Pod), 5u);
  EXPECT_EQ(sink_.size(ObjectKind::Namespace), 2u);
  json pod = sink_.get(ObjectKind::Pod, "ml/p3");
  EXPECT_EQ(pod["kind"], "Pod");  // list items come without kind; the sink gets it set
  EXPECT_FALSE(pod["metadata"].contains("managedFields"));
  EXPECT_FALSE(pod["status"].contains("containerStatuses"));
  EXPECT_EQ(pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "1");

  // 5 pods in pages of 2: three list requests, the later ones carrying the continue token.
  std::vector<FakeApiServer::RecordedRequest> lists;
  for (const auto& r : api_->requests())
    if (r.resource == "pods" && !r.watch()) lists.push_back(r);
  ASSERT_EQ(lists.size(), 3u);
  EXPECT_EQ(lists[0].params.count("continue"), 0u);
  EXPECT_FALSE(lists[1].params.at("continue").empty());
  EXPECT_NE(lists[1].params.at("continue"), lists[2].params.at("continue"));
  for (const auto& r : lists) {
    EXPECT_EQ(r.params.at("limit"), "2");
    EXPECT_EQ(r.params.at("fieldSelector"), "status.phase!=Succeeded,status.phase!=Failed");
    EXPECT_EQ(r.authorization, "Bearer good-token");
  }
  KindStatus pods = watch_->status().kind(ObjectKind::Pod);
  EXPECT_TRUE(pods.synced);
  EXPECT_EQ(pods.objects, 5u);
  EXPECT_EQ(pods.lists, 1u);
  EXPECT_EQ(pods.relists, 0u);
  EXPECT_EQ(sink_.lists(ObjectKind::Pod), 1);
}

// The next page of a list is asked for before this one is applied, so the API server builds it
// while the watch trims and applies this one: the sink, holding the first page of pods, sees the
// request for the second arrive. Read one page after the other, it never would.
TEST_F(KubeWatchTest, TheNextListPageIsRequestedWhileThisOneIsApplied) {
  struct WaitingSink : RecordingSink {
    FakeApiServer* api = nullptr;
    std::atomic<bool> saw_next_request{false};
    void upsert_page(ObjectKind kind, const std::vector<json>& objects) override {
      if (kind == ObjectKind::Pod && !objects.empty() && object_key(objects.front()) == "ml/p0")
        saw_next_request = eventually([&] {
          return api->count_requests([](const auto& r) { return r.resource == "pods" && !r.watch(); }) >= 2;
        }, 3s);
      RecordingSink::upsert_page(kind, objects);
    }
  };
  WaitingSink sink;
  sink.api = api_.get();
  ClusterWatch watch(kubeconfig(), sink, fast_options());
  watch.start();
  ASSERT_TRUE(watch.wait_synced(10s)) << watch.status().to_json().dump(2);
  EXPECT_TRUE(sink.saw_next_request);
  EXPECT_EQ(sink.size(ObjectKind::Pod), 5u);
  watch.stop();
}

TEST_F(KubeWatchTest, WatchStartsAtTheListVersionAndAppliesEvents) {
  const uint64_t list_rv = api_->resource_version();
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("pods") == 1 && api_->open_watches("nodes") == 1 &&
                                      api_->open_watches("namespaces") == 1; }));
  for (const auto& r : api_->requests()) {
    if (!r.watch()) continue;
    EXPECT_EQ(r.params.at("resourceVersion"), std::to_string(list_rv));
    EXPECT_EQ(r.params.at("allowWatchBookmarks"), "true");
    long timeout = std::stol(r.params.at("timeoutSeconds"));
    EXPECT_GE(timeout, 5);
    EXPECT_LT(timeout, 10);
  }
  api_->apply("nodes", testing::fake_node("gpu-new", 8));
  json moved = testing::fake_pod("ml", "p1", "gpu-2", 4);
  api_->apply("pods", moved);
  api_->remove("namespaces", "default");
  ASSERT_TRUE(sink_.wait([&] {
    return sink_.has(ObjectKind::Node, "gpu-new") && !sink_.has(ObjectKind::Namespace, "default") &&
           sink_.objects_[ObjectKind::Pod]["ml/p1"]["spec"]["nodeName"] == "gpu-2";
  }));
  // The status is updated right after the sink call.
  ASSERT_TRUE(eventually([&] {
    return watch_->status().kind(ObjectKind::Node).events["ADDED"] == 1 &&
           watch_->status().kind(ObjectKind::Pod).events["MODIFIED"] == 1 &&
           watch_->status().kind(ObjectKind::Namespace).events["DELETED"] == 1;
  }));
  KindStatus nodes = watch_->status().kind(ObjectKind::Node);
  EXPECT_EQ(nodes.events["ADDED"], 1u);
  EXPECT_EQ(nodes.objects, 4u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::Pod).events["MODIFIED"], 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::Namespace).events["DELETED"], 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::Namespace).objects, 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::Namespace).resource_version, std::to_string(api_->resource_version()));
}

TEST_F(KubeWatchTest, BookmarkMovesTheResumePoint) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("nodes") == 1; }));
  api_->apply("pods", testing::fake_pod("ml", "elsewhere", "gpu-1", 1));  // moves the global version on
  const std::string bookmark_rv = std::to_string(api_->resource_version());
  api_->bookmark("nodes");
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Node).events["BOOKMARK"] == 1; }));
  EXPECT_EQ(watch_->status().kind(ObjectKind::Node).resource_version, bookmark_rv);
  EXPECT_EQ(sink_.size(ObjectKind::Node), 3u);  // a bookmark is not an object
  api_->close_watches("nodes");  // as when timeoutSeconds runs out: the next watch resumes
  ASSERT_TRUE(eventually([&] { return watches_of("nodes") == 2; }));
  auto requests = api_->requests();
  auto last = std::find_if(requests.rbegin(), requests.rend(), [](const auto& r) { return r.resource == "nodes" && r.watch(); });
  EXPECT_EQ(last->params.at("resourceVersion"), bookmark_rv);
  KindStatus nodes = watch_->status().kind(ObjectKind::Node);
  EXPECT_EQ(nodes.watch_restarts, 1u);
  EXPECT_EQ(nodes.lists, 1u);  // resumed, not relisted
  EXPECT_EQ(nodes.failures, 0u);
}

TEST_F(KubeWatchTest, TooOldResourceVersionRelists) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("nodes") == 1; }));
  // Changes the watch never reports: only a relist can find them.
  api_->set_events_suppressed(true);
  api_->remove("nodes", "gpu-0");
  api_->apply("nodes", testing::fake_node("gpu-late", 8));
  api_->compact_and_expire_watches("nodes");
  api_->set_events_suppressed(false);
  ASSERT_TRUE(sink_.wait([&] { return sink_.lists_[ObjectKind::Node] == 2; }));
  EXPECT_FALSE(sink_.has(ObjectKind::Node, "gpu-0"));
  EXPECT_TRUE(sink_.has(ObjectKind::Node, "gpu-late"));
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Node).relists == 1; }));
  KindStatus nodes = watch_->status().kind(ObjectKind::Node);
  EXPECT_EQ(nodes.relists, 1u);
  EXPECT_EQ(nodes.events["ERROR"], 1u);
  EXPECT_EQ(nodes.objects, 3u);
  // And the watch goes on from the relist's version.
  api_->apply("nodes", testing::fake_node("gpu-after", 8));
  EXPECT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Node, "gpu-after"); }));
}

TEST_F(KubeWatchTest, ExpiredContinueTokenStartsTheListOver) {
  api_->expire_next_continue_token();
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  EXPECT_EQ(sink_.size(ObjectKind::Pod), 5u);
  EXPECT_EQ(sink_.size(ObjectKind::Node), 3u);
}

TEST_F(KubeWatchTest, ConnectionDroppedMidEventResumesWithoutLoss) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("pods") == 1; }));
  api_->drop_next_event_midway("pods");
  api_->apply("pods", testing::fake_pod("ml", "half", "gpu-1", 2));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Pod, "ml/half"); }));
  EXPECT_EQ(sink_.upserts("ml/half"), 1);  // the cut copy was never applied
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Pod).objects == 6; }));
  KindStatus pods = watch_->status().kind(ObjectKind::Pod);
  EXPECT_EQ(pods.watch_restarts, 1u);
  EXPECT_EQ(pods.lists, 1u);
  EXPECT_EQ(pods.failures, 1u);
  EXPECT_NE(pods.last_error.find("unfinished event"), std::string::npos) << pods.last_error;
  EXPECT_EQ(pods.events["MALFORMED"], 0u);
}

TEST_F(KubeWatchTest, TrickledChunksAssembleIntoEvents) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("pods") == 1; }));
  api_->set_trickle(7);
  for (int i = 0; i < 3; ++i) api_->apply("pods", testing::fake_pod("ml", "slow" + std::to_string(i), "gpu-1", 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Pod, "ml/slow2"); }, 10s));
  // The status is updated right after the sink call.
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Pod).events["ADDED"] == 3; }));
  KindStatus pods = watch_->status().kind(ObjectKind::Pod);
  EXPECT_EQ(pods.events["ADDED"], 3u);
  EXPECT_EQ(pods.events["MALFORMED"], 0u);
  EXPECT_EQ(pods.watch_restarts, 0u);
}

TEST_F(KubeWatchTest, MalformedLinesAreSkippedAndTheWatchGoesOn) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("pods") == 1; }));
  api_->send_raw_line("pods", "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"");  // truncated JSON
  api_->send_raw_line("pods", "{\"type\":\"RENAMED\",\"object\":{}}");
  api_->send_raw_line("pods", "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{}}}");
  api_->apply("pods", testing::fake_pod("ml", "after-garbage", "gpu-1", 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Pod, "ml/after-garbage"); }));
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Pod).objects == 6; }));
  KindStatus pods = watch_->status().kind(ObjectKind::Pod);
  EXPECT_EQ(pods.events["MALFORMED"], 3u);
  EXPECT_EQ(pods.watch_restarts, 0u);
  EXPECT_NE(pods.last_error.find("without metadata.name"), std::string::npos) << pods.last_error;
  EXPECT_EQ(sink_.size(ObjectKind::Pod), 6u);
}

TEST_F(KubeWatchTest, RotatedServiceAccountTokenIsReadAgain) {
  fs::create_directories(dir_ / "sa");
  std::ofstream(dir_ / "sa/token") << "token-1";
  InClusterPaths paths{(dir_ / "sa/token").string(), api_->pki().ca_file().string()};
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", std::to_string(api_->port()).c_str(), 1);
  KubeConfig config = load_in_cluster_config(paths);
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  api_->set_token("token-1");
  start(config);
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("nodes") == 1; }));
  // The kubelet writes a new token; the old one stops working.
  std::ofstream(dir_ / "sa/token", std::ios::trunc) << "token-2";
  api_->set_token("token-2");
  api_->close_watches("nodes");
  api_->apply("nodes", testing::fake_node("after-rotation", 8));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Node, "after-rotation"); }));
  EXPECT_GE(api_->count_requests([](const auto& r) { return r.resource == "nodes" && r.authorization == "Bearer token-2"; }), 1u);
}

TEST_F(KubeWatchTest, ClientCertificateAuthenticates) {
  start(kubeconfig("", /*client_certificate=*/true));
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  auto requests = api_->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_TRUE(requests.front().client_certificate);
  EXPECT_EQ(requests.front().authorization, "");
}

TEST_F(KubeWatchTest, RejectedTokenIsReportedAndRetried) {
  start(kubeconfig("wrong-token"));
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Node).failures >= 2; }));
  EXPECT_FALSE(watch_->status().synced());
  EXPECT_NE(watch_->status().kind(ObjectKind::Node).last_error.find("HTTP 401: Unauthorized"), std::string::npos)
      << watch_->status().kind(ObjectKind::Node).last_error;
  api_->set_token("wrong-token");  // e.g. RBAC fixed: the next retry gets through
  EXPECT_TRUE(watch_->wait_synced(5s));
}

TEST_F(KubeWatchTest, UntrustedServerCertificateFails) {
  KubeConfig config = kubeconfig();
  config.ca_pem = testing::make_test_pki(dir_ / "other-ca").ca_pem;
  start(config);
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Node).failures >= 1; }));
  EXPECT_FALSE(watch_->status().synced());
  EXPECT_NE(watch_->status().kind(ObjectKind::Node).last_error.find("not trusted"), std::string::npos)
      << watch_->status().kind(ObjectKind::Node).last_error;
  EXPECT_EQ(api_->count_requests([](const auto&) { return true; }), 0u);
}

TEST_F(KubeWatchTest, ServerThatNeverAnswersTimesOutAndBacksOff) {
  api_->set_stalled("namespaces", true);
  WatchOptions options = fast_options();
  options.list_read_timeout = 150ms;
  options.backoff_initial = 50ms;
  options.backoff_max = 400ms;
  options.backoff_jitter = 0;
  start(kubeconfig(), options);
  auto namespace_lists = [&] {
    std::vector<Clock::time_point> at;
    for (const auto& r : api_->requests())
      if (r.resource == "namespaces") at.push_back(r.at);
    return at;
  };
  ASSERT_TRUE(eventually([&] { return namespace_lists().size() >= 4; }));
  EXPECT_FALSE(watch_->status().synced());
  EXPECT_TRUE(watch_->status().kind(ObjectKind::Node).synced);  // the other kinds are not held up
  KindStatus namespaces = watch_->status().kind(ObjectKind::Namespace);
  EXPECT_GE(namespaces.failures, 3u);
  EXPECT_NE(namespaces.last_error.find("list namespaces"), std::string::npos) << namespaces.last_error;
  // Each retry waits longer: read timeout + 50, 100, 200 ms.
  auto at = namespace_lists();
  auto gap = [&](size_t i) { return at[i + 1] - at[i]; };
  EXPECT_GE(gap(0), 190ms);
  EXPECT_GT(gap(2), gap(0) + 100ms);
  api_->set_stalled("namespaces", false);
  EXPECT_TRUE(watch_->wait_synced(5s));
}

TEST_F(KubeWatchTest, AWatchSilentPastItsTimeoutIsAbandoned) {
  WatchOptions options = fast_options();
  options.watch_timeout = 1s;
  options.watch_end_grace = 200ms;
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s));
  // The API server hangs: no events, no bookmarks, and no watch ends at its timeoutSeconds.
  // Each is given up 200 ms after that and opened again.
  api_->set_events_suppressed(true);
  ASSERT_TRUE(eventually([&] {
    return watch_->status().kind(ObjectKind::Namespace).failures >= 2 && watches_of("namespaces") >= 3;
  }, 10s));
  KindStatus namespaces = watch_->status().kind(ObjectKind::Namespace);
  EXPECT_NE(namespaces.last_error.find("watch namespaces: the stream broke: the connection broke or timed out while reading"),
            std::string::npos) << namespaces.last_error;
  EXPECT_EQ(namespaces.lists, 1u);
  api_->set_events_suppressed(false);
  api_->apply("namespaces", testing::fake_namespace("late"));
  EXPECT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::Namespace, "late"); }));
}

TEST_F(KubeWatchTest, StalenessFollowsTheLastThingHeard) {
  start(kubeconfig());
  EXPECT_TRUE(watch_->status().stale(1h));  // nothing synced yet: nothing to trust
  ASSERT_TRUE(watch_->wait_synced(5s));
  const auto now = Clock::now();
  EXPECT_FALSE(watch_->status().stale(30s, now));
  EXPECT_TRUE(watch_->status().stale(30s, now + 31s));
  EXPECT_GE(watch_->status().seconds_since_last_heard(ObjectKind::Pod, now + 10s), 10.0);
  // A bookmark refreshes one kind.
  ASSERT_TRUE(eventually([&] { return api_->open_watches("pods") == 1; }));
  const auto before = watch_->status().kind(ObjectKind::Pod).last_heard;
  api_->bookmark("pods");
  EXPECT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Pod).last_heard > before; }));
  json report = watch_->status().to_json();
  EXPECT_EQ(report["Pod"]["events"]["BOOKMARK"], 1);
  EXPECT_EQ(report["Node"]["objects"], 3);
  EXPECT_EQ(report["Namespace"]["synced"], true);
}

// ---- the DRA kinds (resource.k8s.io) ----------------------------------------------------------

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
  return count;
}

TEST_F(KubeWatchTest, ClaimsAndTemplatesAreListedAndWatchedAtTheDraVersion) {
  api_->set_dra_api_version("v1beta2");  // a 1.33 cluster
  for (int i = 0; i < 3; ++i) api_->apply("resourceclaims", testing::fake_resource_claim("ml", "c" + std::to_string(i), "gpu.nvidia.com", 2));
  api_->apply("resourceclaimtemplates", testing::fake_resource_claim_template("ml", "t0", "gpu.nvidia.com", 1));
  WatchOptions options = fast_options();
  options.dra_api_version = "v1beta2";
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  EXPECT_EQ(sink_.size(ObjectKind::ResourceClaim), 3u);
  EXPECT_EQ(sink_.size(ObjectKind::ResourceClaimTemplate), 1u);
  // List items carry no apiVersion: they get the version listed.
  json listed = sink_.get(ObjectKind::ResourceClaim, "ml/c1");
  EXPECT_EQ(listed["kind"], "ResourceClaim");
  EXPECT_EQ(listed["apiVersion"], "resource.k8s.io/v1beta2");
  EXPECT_EQ(listed["spec"], testing::fake_claim_spec("gpu.nvidia.com", 2));
  EXPECT_FALSE(listed.contains("status"));
  EXPECT_EQ(sink_.get(ObjectKind::ResourceClaimTemplate, "ml/t0")["spec"]["spec"],
            testing::fake_claim_spec("gpu.nvidia.com", 1));
  for (const auto& r : api_->requests()) {
    if (r.resource == "resourceclaims" || r.resource == "resourceclaimtemplates") {
      EXPECT_EQ(r.path, "/apis/resource.k8s.io/v1beta2/" + r.resource);
    }
  }
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).objects, 3u);
  EXPECT_TRUE(watch_->status().to_json()["ResourceClaim"]["served"]);

  ASSERT_TRUE(eventually([&] { return api_->open_watches("resourceclaims") == 1 && api_->open_watches("resourceclaimtemplates") == 1; }));
  api_->apply("resourceclaims", testing::fake_resource_claim("ml", "c1", "gpu.nvidia.com", 4));
  api_->remove("resourceclaims", "ml/c0");
  api_->apply("resourceclaimtemplates", testing::fake_resource_claim_template("ml", "t1", "gpu.nvidia.com", 1));
  ASSERT_TRUE(sink_.wait([&] {
    return !sink_.has(ObjectKind::ResourceClaim, "ml/c0") && sink_.has(ObjectKind::ResourceClaimTemplate, "ml/t1") &&
           sink_.objects_[ObjectKind::ResourceClaim]["ml/c1"]["spec"] == testing::fake_claim_spec("gpu.nvidia.com", 4);
  }));
  EXPECT_EQ(sink_.get(ObjectKind::ResourceClaim, "ml/c1")["apiVersion"], "resource.k8s.io/v1beta2");  // the event's own
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::ResourceClaim).events["DELETED"] == 1; }));
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).objects, 2u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).failures, 0u);
}

// A cluster without DRA at that version answers 404: the kinds count as synced with nothing, are
// never stale, are logged once, and are asked for again every backoff_max until served.
TEST_F(KubeWatchTest, ADraApiTheClusterDoesNotServeIsSyncedEmptyAndAskedForAgain) {
  api_->set_dra_api_version("v1beta1");  // a 1.32 cluster; the watch asks for v1
  WatchOptions options = fast_options();
  options.backoff_jitter = 0;
  std::ostringstream& log = log_;
  options.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  EXPECT_EQ(sink_.size(ObjectKind::Node), 3u);
  EXPECT_EQ(sink_.size(ObjectKind::Pod), 5u);
  EXPECT_EQ(sink_.size(ObjectKind::Namespace), 2u);
  for (ObjectKind kind : {ObjectKind::ResourceClaim, ObjectKind::ResourceClaimTemplate}) {
    KindStatus k = watch_->status().kind(kind);
    EXPECT_TRUE(k.synced);
    EXPECT_TRUE(k.not_served);
    EXPECT_EQ(k.objects, 0u);
    EXPECT_EQ(k.failures, 0u) << k.last_error;
    EXPECT_EQ(watch_->status().seconds_since_last_heard(kind), -1);
  }
  EXPECT_FALSE(watch_->status().stale(30s));
  EXPECT_FALSE(watch_->status().to_json()["ResourceClaimTemplate"]["served"]);

  // Asked again, no sooner than backoff_max (200 ms) apart, and never watched.
  auto claim_lists = [&] {
    std::vector<Clock::time_point> at;
    for (const auto& r : api_->requests())
      if (r.resource == "resourceclaims") at.push_back(r.at);
    return at;
  };
  ASSERT_TRUE(eventually([&] { return claim_lists().size() >= 4; }));
  auto at = claim_lists();
  for (size_t i = 0; i + 1 < at.size(); ++i) EXPECT_GE(at[i + 1] - at[i], 190ms) << i;
  EXPECT_EQ(watches_of("resourceclaims"), 0u);
  for (const auto& r : api_->requests()) {
    if (r.resource == "resourceclaims") {
      EXPECT_EQ(r.path, "/apis/resource.k8s.io/v1/resourceclaims");
    }
  }
  options.logger->flush();
  EXPECT_EQ(count_of(log.str(), "kube resource not served"), 2u) << log.str();  // once per kind
  EXPECT_NE(log.str().find(R"("path":"/apis/resource.k8s.io/v1/resourceclaims")"), std::string::npos) << log.str();

  // DRA enabled at v1 (an upgrade): the next try lists it, and its watch follows events.
  api_->set_dra_api_version("v1");
  api_->apply("resourceclaims", testing::fake_resource_claim("ml", "late", "gpu.nvidia.com", 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::ResourceClaim, "ml/late"); }));
  ASSERT_TRUE(eventually([&] { return !watch_->status().kind(ObjectKind::ResourceClaim).not_served; }));
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).lists, 1u);
  ASSERT_TRUE(eventually([&] { return api_->open_watches("resourceclaims") == 1; }));
  api_->apply("resourceclaims", testing::fake_resource_claim("ml", "later", "gpu.nvidia.com", 1));
  EXPECT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::ResourceClaim, "ml/later"); }));
}

// The API goes away under a running watch (DRA disabled, a downgrade): the watch's 404 sends it
// back to the list, which finds nothing served and drops what was held.
TEST_F(KubeWatchTest, ADraApiThatGoesAwayDropsItsObjects) {
  api_->apply("resourceclaims", testing::fake_resource_claim("ml", "c0", "gpu.nvidia.com", 1));
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::ResourceClaim, "ml/c0"); }));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("resourceclaims") == 1; }));
  api_->set_dra_api_version("");
  api_->close_watches("resourceclaims");
  ASSERT_TRUE(sink_.wait([&] { return sink_.objects_[ObjectKind::ResourceClaim].empty(); }));
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::ResourceClaim).not_served; }));
  EXPECT_TRUE(watch_->status().synced());
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).objects, 0u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::ResourceClaim).failures, 0u);
}

// Any other answer is a failure, as for the other kinds: with RBAC missing for the claims, the
// watch is not synced.
TEST_F(KubeWatchTest, OtherDraListFailuresKeepTheWatchUnsynced) {
  api_->set_stalled("resourceclaimtemplates", true);
  WatchOptions options = fast_options();
  options.list_read_timeout = 150ms;
  start(kubeconfig(), options);
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::ResourceClaimTemplate).failures >= 1; }));
  EXPECT_FALSE(watch_->status().synced());
  EXPECT_FALSE(watch_->status().kind(ObjectKind::ResourceClaimTemplate).not_served);
  api_->set_stalled("resourceclaimtemplates", false);
  EXPECT_TRUE(watch_->wait_synced(5s));
}

TEST_F(KubeWatchTest, DraOffWatchesNoDraPaths) {
  WatchOptions options = fast_options();
  options.dra_api_version = "off";
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  ASSERT_TRUE(eventually([&] { return api_->open_watches("namespaces") == 1; }));
  std::this_thread::sleep_for(300ms);  // more than backoff_max: a retry would have come
  EXPECT_EQ(api_->count_requests([](const auto& r) { return r.path.rfind("/apis/resource.k8s.io/", 0) == 0; }), 0u);
  EXPECT_TRUE(watch_->status().kind(ObjectKind::ResourceClaim).not_served);
  EXPECT_FALSE(watch_->status().stale(30s));
  EXPECT_EQ(sink_.lists(ObjectKind::ResourceClaim), 0);
}

TEST_F(KubeWatchTest, ADraApiVersionThatIsNoVersionIsRefused) {
  for (const char* version : {"", "v", "1", "v1beta", "v1gamma1", "V1", "v1/../../api", "v1beta2x"}) {
    WatchOptions options = fast_options();
    options.dra_api_version = version;
    EXPECT_THROW(ClusterWatch(kubeconfig(), sink_, options), KubeConfigError) << version;
  }
  for (const char* version : {"v1", "v1beta1", "v1beta2", "v1alpha3", "v2", "off"}) {
    WatchOptions options = fast_options();
    options.dra_api_version = version;
    EXPECT_NO_THROW(ClusterWatch(kubeconfig(), sink_, options)) << version;
  }
}

// A kind not served is never stale, however long ago it was last asked for; a served one is.
TEST(KubeWatchStatus, AKindNotServedIsNeverStale) {
  WatchStatus status;
  const auto now = Clock::now();
  for (ObjectKind kind : kWatchedKinds)
    status.update(kind, [&](KindStatus& k) {
      k.synced = true;
      k.last_heard = now;
    });
  status.update(ObjectKind::ResourceClaim, [&](KindStatus& k) {
    k.not_served = true;
    k.last_heard = now - 1h;
  });
  EXPECT_FALSE(status.stale(30s, now));
  EXPECT_EQ(status.seconds_since_last_heard(ObjectKind::ResourceClaim, now), -1);
  EXPECT_TRUE(status.synced());
  status.update(ObjectKind::ResourceClaim, [](KindStatus& k) { k.not_served = false; });
  EXPECT_TRUE(status.stale(30s, now));
  // Every kind has its own status, the DRA kinds included.
  status.update(ObjectKind::ResourceClaimTemplate, [](KindStatus& k) { k.objects = 7; });
  EXPECT_EQ(status.kind(ObjectKind::ResourceClaimTemplate).objects, 7u);
  EXPECT_EQ(status.to_json().size(), std::size(kWatchedKinds));
}

// ---- PodDisruptionBudgets (policy) and PriorityClasses (scheduling.k8s.io) --------------------

TEST_F(KubeWatchTest, DisruptionBudgetsAndPriorityClassesAreListedAndWatched) {
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "b0", {{"matchLabels", {{"app", "a"}}}}, 1));
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "b1", json::object(), 2));
  api_->apply("priorityclasses", testing::fake_priority_class("gpu-high", 100000));
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  EXPECT_EQ(sink_.size(ObjectKind::PodDisruptionBudget), 2u);
  EXPECT_EQ(sink_.size(ObjectKind::PriorityClass), 1u);
  // List items carry no apiVersion: they get the version listed. Status, labels and the
  // description are dropped.
  const json budget = testing::fake_disruption_budget("ml", "b1", json::object(), 2);
  json listed = sink_.get(ObjectKind::PodDisruptionBudget, "ml/b1");
  EXPECT_EQ(listed["kind"], "PodDisruptionBudget");
  EXPECT_EQ(listed["apiVersion"], "policy/v1");
  EXPECT_EQ(listed["spec"], budget["spec"]);
  EXPECT_FALSE(listed.contains("status"));
  EXPECT_FALSE(listed["metadata"].contains("labels"));
  json priority_class = sink_.get(ObjectKind::PriorityClass, "gpu-high");
  EXPECT_EQ(priority_class, (json{{"kind", "PriorityClass"},
                                  {"apiVersion", "scheduling.k8s.io/v1"},
                                  {"metadata", {{"name", "gpu-high"},
                                                {"uid", testing::fake_priority_class("gpu-high", 1)["metadata"]["uid"]},
                                                {"resourceVersion", priority_class["metadata"]["resourceVersion"]}}},
                                  {"value", 100000},
                                  {"globalDefault", false},
                                  {"preemptionPolicy", "PreemptLowerPriority"}}));
  for (const auto& r : api_->requests()) {
    if (r.resource == "poddisruptionbudgets") {
      EXPECT_EQ(r.path, "/apis/policy/v1/poddisruptionbudgets");
    }
    if (r.resource == "priorityclasses") {
      EXPECT_EQ(r.path, "/apis/scheduling.k8s.io/v1/priorityclasses");
    }
  }
  EXPECT_EQ(watch_->status().to_json()["PodDisruptionBudget"]["apiVersion"], "policy/v1");
  EXPECT_EQ(watch_->status().to_json()["PriorityClass"]["apiVersion"], "scheduling.k8s.io/v1");

  ASSERT_TRUE(eventually([&] {
    return api_->open_watches("poddisruptionbudgets") == 1 && api_->open_watches("priorityclasses") == 1;
  }));
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "b0", {{"matchLabels", {{"app", "b"}}}}, 1));
  api_->remove("poddisruptionbudgets", "ml/b1");
  api_->apply("priorityclasses", testing::fake_priority_class("gpu-low", -5));
  api_->remove("priorityclasses", "gpu-high");
  ASSERT_TRUE(sink_.wait([&] {
    return !sink_.has(ObjectKind::PodDisruptionBudget, "ml/b1") && !sink_.has(ObjectKind::PriorityClass, "gpu-high") &&
           sink_.has(ObjectKind::PriorityClass, "gpu-low") &&
           sink_.objects_[ObjectKind::PodDisruptionBudget]["ml/b0"]["spec"]["selector"]["matchLabels"]["app"] == "b";
  }));
  EXPECT_EQ(sink_.get(ObjectKind::PriorityClass, "gpu-low")["value"], -5);
  // The status follows each event just after the sink has it.
  ASSERT_TRUE(eventually([&] {
    return watch_->status().kind(ObjectKind::PriorityClass).events["DELETED"] == 1 &&
           watch_->status().kind(ObjectKind::PodDisruptionBudget).events["DELETED"] == 1;
  }));
  EXPECT_EQ(watch_->status().kind(ObjectKind::PodDisruptionBudget).objects, 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::PriorityClass).objects, 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::PodDisruptionBudget).failures, 0u);
}

// Kubernetes 1.20 serves policy/v1beta1 only: policy/v1 answers 404, and the list falls back at
// once, without a failure; its items and its watch are at v1beta1.
TEST_F(KubeWatchTest, DisruptionBudgetsFallBackToPolicyV1beta1) {
  api_->set_policy_api_version("v1beta1");
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "b0", json::object(), 1));
  std::ostringstream& log = log_;
  WatchOptions options = fast_options();
  options.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  EXPECT_EQ(sink_.get(ObjectKind::PodDisruptionBudget, "ml/b0")["apiVersion"], "policy/v1beta1");
  KindStatus k = watch_->status().kind(ObjectKind::PodDisruptionBudget);
  EXPECT_FALSE(k.not_served);
  EXPECT_EQ(k.failures, 0u) << k.last_error;
  EXPECT_EQ(k.api_version, "policy/v1beta1");
  ASSERT_TRUE(eventually([&] { return api_->open_watches("poddisruptionbudgets") == 1; }));
  std::vector<std::string> paths;
  for (const auto& r : api_->requests())
    if (r.resource == "poddisruptionbudgets") paths.push_back(r.path + (r.watch() ? " watch" : ""));
  EXPECT_EQ(paths, (std::vector<std::string>{"/apis/policy/v1/poddisruptionbudgets", "/apis/policy/v1beta1/poddisruptionbudgets",
                                             "/apis/policy/v1beta1/poddisruptionbudgets watch"}));
  options.logger->flush();
  EXPECT_EQ(count_of(log.str(), "kube resource not served at this version, trying the next"), 1u) << log.str();
  EXPECT_EQ(count_of(log.str(), "kube resource not served\""), 0u) << log.str();

  // Events on the v1beta1 watch carry their own apiVersion.
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "b1", json::object(), 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::PodDisruptionBudget, "ml/b1"); }));
  EXPECT_EQ(sink_.get(ObjectKind::PodDisruptionBudget, "ml/b1")["apiVersion"], "policy/v1beta1");

  // A 410 relists, starting again at policy/v1 (an upgraded cluster would serve it).
  api_->compact_and_expire_watches("poddisruptionbudgets");
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::PodDisruptionBudget).relists == 1; }));
  EXPECT_EQ(api_->count_requests([](const auto& r) { return r.path == "/apis/policy/v1/poddisruptionbudgets"; }), 2u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::PodDisruptionBudget).objects, 2u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::PodDisruptionBudget).api_version, "policy/v1beta1");

  // The upgrade: policy/v1 served (and v1beta1 gone, as in 1.25). The watch's 404 relists at v1.
  ASSERT_TRUE(eventually([&] { return api_->open_watches("poddisruptionbudgets") == 1; }));
  api_->set_policy_api_version("v1");
  api_->close_watches("poddisruptionbudgets");
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::PodDisruptionBudget).api_version == "policy/v1"; }));
  EXPECT_EQ(sink_.get(ObjectKind::PodDisruptionBudget, "ml/b1")["apiVersion"], "policy/v1");
  EXPECT_FALSE(watch_->status().kind(ObjectKind::PodDisruptionBudget).not_served);
}

// Neither policy version served: synced with none, never stale, logged once, and both versions
// asked again every backoff_max until one is served.
TEST_F(KubeWatchTest, DisruptionBudgetsServedAtNoVersionAreSyncedEmptyAndAskedForAgain) {
  api_->set_policy_api_version("");
  WatchOptions options = fast_options();
  options.backoff_jitter = 0;
  std::ostringstream& log = log_;
  options.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  KindStatus k = watch_->status().kind(ObjectKind::PodDisruptionBudget);
  EXPECT_TRUE(k.synced);
  EXPECT_TRUE(k.not_served);
  EXPECT_EQ(k.failures, 0u) << k.last_error;
  EXPECT_EQ(k.api_version, "");
  EXPECT_EQ(watch_->status().seconds_since_last_heard(ObjectKind::PodDisruptionBudget), -1);
  EXPECT_FALSE(watch_->status().stale(30s));
  EXPECT_FALSE(watch_->status().to_json()["PodDisruptionBudget"]["served"]);

  auto lists_at = [&](const std::string& version) {
    return api_->count_requests(
        [&](const auto& r) { return r.path == "/apis/policy/" + version + "/poddisruptionbudgets" && !r.watch(); });
  };
  ASSERT_TRUE(eventually([&] { return lists_at("v1beta1") >= 3; }));
  EXPECT_GE(lists_at("v1"), lists_at("v1beta1"));
  EXPECT_EQ(watches_of("poddisruptionbudgets"), 0u);
  options.logger->flush();
  EXPECT_EQ(count_of(log.str(), "kube resource not served\""), 1u) << log.str();
  EXPECT_NE(log.str().find("policy/v1, policy/v1beta1"), std::string::npos) << log.str();

  api_->set_policy_api_version("v1beta1");
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "late", json::object(), 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::PodDisruptionBudget, "ml/late"); }));
  ASSERT_TRUE(eventually([&] { return !watch_->status().kind(ObjectKind::PodDisruptionBudget).not_served; }));
}

// PriorityClasses (scheduling.k8s.io/v1 since 1.14) are never optional: until listed, the watch
// is not synced, as for the core kinds.
TEST_F(KubeWatchTest, APriorityClassFailureKeepsTheWatchUnsynced) {
  api_->set_stalled("priorityclasses", true);
  WatchOptions options = fast_options();
  options.list_read_timeout = 150ms;
  start(kubeconfig(), options);
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::PriorityClass).failures >= 1; }));
  EXPECT_FALSE(watch_->status().synced());
  api_->set_stalled("priorityclasses", false);
  EXPECT_TRUE(watch_->wait_synced(5s));
}

TEST_F(KubeWatchTest, DisruptionBudgetsAndPriorityClassesCanBeTurnedOff) {
  WatchOptions options = fast_options();
  options.watch_disruption_budgets = false;
  options.watch_priority_classes = false;
  start(kubeconfig(), options);
  ASSERT_TRUE(watch_->wait_synced(5s)) << watch_->status().to_json().dump(2);
  ASSERT_TRUE(eventually([&] { return api_->open_watches("resourceclaims") == 1; }));
  std::this_thread::sleep_for(300ms);  // more than backoff_max: a retry would have come
  EXPECT_EQ(api_->count_requests([](const auto& r) {
              return r.resource == "poddisruptionbudgets" || r.resource == "priorityclasses";
            }),
            0u);
  for (ObjectKind kind : {ObjectKind::PodDisruptionBudget, ObjectKind::PriorityClass}) {
    EXPECT_TRUE(watch_->status().kind(kind).not_served);
    EXPECT_TRUE(watch_->status().kind(kind).synced);
    EXPECT_EQ(sink_.lists(kind), 0);
  }
  EXPECT_FALSE(watch_->status().stale(30s));
}

// Malformed events on the budgets' watch are counted and skipped, and the watch goes on.
TEST_F(KubeWatchTest, MalformedDisruptionBudgetEventsAreSkipped) {
  start(kubeconfig());
  ASSERT_TRUE(watch_->wait_synced(5s));
  ASSERT_TRUE(eventually([&] { return api_->open_watches("poddisruptionbudgets") == 1; }));
  api_->send_raw_line("poddisruptionbudgets",
                      R"({"type":"ADDED","object":{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"resourceVersion":"1"}}})");
  api_->send_raw_line("poddisruptionbudgets",
                      R"({"type":"ADDED","object":{"kind":"PriorityClass","apiVersion":"policy/v1","metadata":{"name":"x","namespace":"ml","resourceVersion":"1"}}})");
  api_->apply("poddisruptionbudgets", testing::fake_disruption_budget("ml", "after", json::object(), 1));
  ASSERT_TRUE(sink_.wait([&] { return sink_.has(ObjectKind::PodDisruptionBudget, "ml/after"); }));
  EXPECT_EQ(sink_.size(ObjectKind::PodDisruptionBudget), 1u);
  EXPECT_EQ(watch_->status().kind(ObjectKind::PodDisruptionBudget).events["MALFORMED"], 2u);
}

TEST_F(KubeWatchTest, StopReturnsPromptly) {
  api_->set_stalled("pods", true);
  WatchOptions options = fast_options();
  options.list_read_timeout = 30s;  // stop must not wait for it
  start(kubeconfig(), options);
  ASSERT_TRUE(eventually([&] { return api_->count_requests([](const auto& r) { return r.resource == "pods"; }) >= 1; }));
  const auto begin = Clock::now();
  watch_->stop();
  EXPECT_LT(Clock::now() - begin, 2s);
}

int run_cli(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  return cli::run_main(static_cast<int>(argv.size()), argv.data());
}

TEST_F(KubeWatchTest, WatchCommandPrintsListsEventsAndStatus) {
  const std::string path = api_->write_kubeconfig(dir_ / "kubeconfig", "good-token");
  std::thread change([&] {
    if (eventually([&] { return api_->open_watches("pods") == 1; }))
      api_->apply("pods", testing::fake_pod("ml", "from-cli-test", "gpu-1", 1));
  });
  spdlog::set_level(spdlog::level::info);  // the watch's log lines must go to stderr, not here
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int status = run_cli({"gpu-admit", "watch", "--kubeconfig", path, "--duration", "1.5"});
  std::string err = ::testing::internal::GetCapturedStderr();
  std::string out = ::testing::internal::GetCapturedStdout();
  change.join();
  EXPECT_NE(err.find(R"("msg":"kube list complete","objects":5,"resource":"pods")"), std::string::npos) << err;
  EXPECT_EQ(status, 0) << out;
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  auto has = [&](const json& wanted) {
    return std::any_of(lines.begin(), lines.end(), [&](const json& line) {
      return std::all_of(wanted.items().begin(), wanted.items().end(),
                         [&](const auto& item) { return line.value(item.key(), json()) == item.value(); });
    });
  };
  EXPECT_TRUE(has({{"event", "LIST"}, {"kind", "Pod"}, {"objects", 5}})) << out;
  EXPECT_TRUE(has({{"event", "LIST"}, {"kind", "Node"}, {"objects", 3}})) << out;
  EXPECT_TRUE(has({{"event", "SYNCED"}})) << out;
  EXPECT_TRUE(has({{"event", "UPSERT"}, {"kind", "Pod"}, {"key", "ml/from-cli-test"}})) << out;
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["event"], "STATUS");
  EXPECT_EQ(lines.back()["status"]["Pod"]["objects"], 6);
}

TEST_F(KubeWatchTest, WatchCommandFailsWhenItCannotSync) {
  const std::string path = api_->write_kubeconfig(dir_ / "kubeconfig", "wrong-token");
  ::testing::internal::CaptureStdout();
  // Long enough for the first list to be refused even on a loaded sanitizer build: 0.3 s was not.
  int status = run_cli({"gpu-admit", "watch", "--kubeconfig", path, "--duration", "3", "--quiet"});
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("HTTP 401"), std::string::npos) << out;
}

TEST_F(KubeWatchTest, TransportFailuresSayWhatHappened) {
  KubeConfig config = kubeconfig();
  api_.reset();  // nothing listens on its port any more
  start(std::move(config));
  ASSERT_TRUE(eventually([&] { return watch_->status().kind(ObjectKind::Node).failures >= 1; }));
  const std::string error = watch_->status().kind(ObjectKind::Node).last_error;
  EXPECT_NE(error.find("list nodes: cannot connect to 127.0.0.1 (Connection)"), std::string::npos) << error;
}

// The fake API server closes a connection idle for 1 s, as real ones do after longer: the next
// request on the kept-alive connection fails before any answer, and goes again on a new one.
TEST_F(KubeWatchTest, AConnectionTheServerClosedWhileIdleIsReplaced) {
  KubeClient client(kubeconfig(), std::chrono::seconds(5));
  KubeResponse first = client.get("/api/v1/nodes", std::chrono::seconds(5));
  ASSERT_EQ(first.status, 200) << first.error;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  KubeResponse second = client.get("/api/v1/nodes", std::chrono::seconds(5));
  EXPECT_EQ(second.status, 200) << second.error;
  EXPECT_TRUE(second.error.empty()) << second.error;
}

TEST(KubeWatchCommand, BadInvocationsExitTwo) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_cli({"gpu-admit", "watch"}), 2);
  EXPECT_EQ(run_cli({"gpu-admit", "watch", "--in-cluster", "--kubeconfig", "x"}), 2);
  EXPECT_EQ(run_cli({"gpu-admit", "watch", "--kubeconfig", "/nonexistent/kubeconfig"}), 2);
  EXPECT_EQ(run_cli({"gpu-admit", "watch", "--kubeconfig", "x", "--duration", "soon"}), 2);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("exactly one of --in-cluster and --kubeconfig"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/kubeconfig: cannot read the file"), std::string::npos) << err;
}

TEST(KubeClient, QueryParametersAreEncoded) {
  EXPECT_EQ(with_query("/api/v1/pods", {{"continue", "eyJ2Ijo=/+"}, {"fieldSelector", "status.phase!=Failed"}, {"limit", "500"}}),
            "/api/v1/pods?continue=eyJ2Ijo%3D%2F%2B&fieldSelector=status.phase%21%3DFailed&limit=500");
}

}  // namespace
}  // namespace gpuadmit::kube

namespace gpuadmit::kube {
namespace {

// OpenSSL writes to sockets with write(2); a connection the API server closed must not kill
// the webhook with SIGPIPE.
TEST(KubeWatchSignals, SigpipeIsIgnoredUnlessHandled) {
  std::signal(SIGPIPE, SIG_DFL);
  RecordingSink sink;
  KubeConfig config;
  config.host = "127.0.0.1";
  config.port = 1;
  { ClusterWatch watch(config, sink); }
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);
}

}  // namespace
}  // namespace gpuadmit::kube
