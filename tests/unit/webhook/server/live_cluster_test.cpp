// The capacity model fed by a live watch: full-list replacement, pods this replica admitted that
// the watch has not shown yet, stale cluster state degrading denials to warnings, and
// LiveCluster against the fake API server (readiness, staleness, metrics, burst admission).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"
#include "tests/support/fake_apiserver.h"
#include "tests/support/server_process.h"
#include "webhook/server/live_cluster.h"
#include "webhook/server/metrics.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using capacity::ClusterModel;
using testing::fake_namespace;
using testing::fake_node;
using testing::fake_pod;
using testing::fake_resource_claim;
using testing::fake_resource_claim_template;
using testing::fake_disruption_budget;
using testing::fake_priority_class;
using Claims = k8s::ClaimCatalog;
using testing::e2e::eventually;
using testing::e2e::TempDir;

std::int64_t gpus_used(const ClusterModel& model, const std::string& ns) {
  return model.read().namespace_usage(ns).devices();
}

// ---- full lists ----------------------------------------------------------------------------

TEST(CapacityLiveUpdates, AFullListRemovesWhatItDidNotName) {
  ClusterModel model;
  for (const char* name : {"a", "b", "c"}) model.upsert_node(fake_node(name, 8));
  model.upsert_pod(fake_pod("ml", "p1", "a", 2));
  model.upsert_pod(fake_pod("ml", "p2", "b", 3));
  model.upsert_pod(fake_pod("web", "w1", "b", 1));
  model.upsert_namespace(fake_namespace("old"));
  model.upsert_namespace(fake_namespace("ml"));

  EXPECT_EQ(model.remove_nodes_except({"b", "c"}), 1u);
  EXPECT_EQ(model.remove_pods_except({"ml/p2", "ml/p3"}), 2u);
  EXPECT_EQ(model.remove_namespaces_except({"ml"}), 1u);
  auto view = model.read();
  EXPECT_EQ(view.node_count(), 2u);
  EXPECT_EQ(view.node("a"), nullptr);
  EXPECT_EQ(view.pod_count(), 1u);
  EXPECT_EQ(view.namespace_usage("ml").devices(), 3);
  EXPECT_EQ(view.namespace_usage("web").devices(), 0);
  EXPECT_EQ(view.node("b")->used.get("nvidia.com/gpu"), 3);
  EXPECT_EQ(view.namespaces().size(), 1u);
}

// ---- burst admission ------------------------------------------------------------------------

TEST(CapacityLiveUpdates, AdmittedPodsCountUntilTheWatchShowsThem) {
  ClusterModel model;
  model.track_admissions(30s);
  model.upsert_node(fake_node("a", 8));
  model.upsert_pod(fake_pod("ml", "running", "a", 2));
  json admitted = fake_pod("ml", "burst-1", "", 4);
  model.record_admission(admitted);
  EXPECT_EQ(gpus_used(model, "ml"), 6);
  EXPECT_EQ(model.read().namespace_usage("ml").devices_by_node.at(""), 4);
  EXPECT_EQ(model.pending_admissions(), 1u);
  // The watch shows it (same uid): counted once, by the cache.
  model.upsert_pod(admitted);
  EXPECT_EQ(gpus_used(model, "ml"), 6);
  EXPECT_EQ(model.pending_admissions(), 0u);
}

TEST(CapacityLiveUpdates, AdmissionsExpireAndIgnorePodsWithoutGpus) {
  ClusterModel model;
  model.track_admissions(50ms);
  model.record_admission(fake_pod("ml", "cpu-only", "", 0));
  EXPECT_EQ(model.pending_admissions(), 0u);
  model.record_admission(fake_pod("ml", "burst", "", 2));
  EXPECT_EQ(gpus_used(model, "ml"), 2);
  std::this_thread::sleep_for(120ms);  // the pod never appeared: a later webhook denied it
  EXPECT_EQ(gpus_used(model, "ml"), 0);
}

TEST(CapacityLiveUpdates, AdmissionsAreNotTrackedWithoutATtl) {
  ClusterModel model;  // a snapshot: no watch will ever confirm a pod
  model.record_admission(fake_pod("ml", "burst", "", 2));
  EXPECT_EQ(gpus_used(model, "ml"), 0);
  EXPECT_EQ(model.pending_admissions(), 0u);
}

TEST(CapacityLiveUpdates, AFullListConfirmsAdmissions) {
  ClusterModel model;
  model.track_admissions(30s);
  json admitted = fake_pod("ml", "burst", "", 2);
  model.record_admission(admitted);
  model.upsert_pod(admitted);  // a relist's page
  model.remove_pods_except({"ml/burst"});
  EXPECT_EQ(model.pending_admissions(), 0u);
  EXPECT_EQ(gpus_used(model, "ml"), 2);
}

// ---- stale cluster state --------------------------------------------------------------------

struct StaleReview {
  ReviewOutcome outcome;
  const PolicyOutcome* policy(const std::string& name) const {
    for (const PolicyOutcome& p : outcome.policies)
      if (p.policy == name) return &p;
    return nullptr;
  }
};

StaleReview review_pod(const ClusterModel& model, int gpus, const std::string& image, std::string_view stale) {
  auto engine = Engine::from_yaml(
      "policies:\n  image-tags: {}\n  gpu-capacity: {}\n"
      "  gpu-quota:\n    budgets: [{namespace: ml, gpus: 4}]\n",
      "test.yaml");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}, {"namespace", "ml"}}},
              {"spec",
               {{"containers",
                 {{{"name", "c"},
                   {"image", image},
                   {"resources", {{"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}}}}}},
                {"tolerations", {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}}}}}}};
  return {engine->review(request_for_manifest(pod, "ml"), &model, ReviewPhases::All, stale)};
}

TEST(EngineStaleCluster, CapacityAndQuotaDenialsBecomeWarningsThatSayWhy) {
  ClusterModel model;
  model.upsert_node(fake_node("a", 8));
  const std::string why = "nothing heard from the API server for pods 200 s (bound 180 s)";
  StaleReview fresh = review_pod(model, 16, "vllm/vllm-openai:v0.4.2", "");
  EXPECT_FALSE(fresh.outcome.response.allowed);
  EXPECT_TRUE(fresh.policy("gpu-capacity")->denied);
  EXPECT_TRUE(fresh.policy("gpu-quota")->denied);

  StaleReview stale = review_pod(model, 16, "vllm/vllm-openai:v0.4.2", why);
  const Response& response = stale.outcome.response;
  EXPECT_TRUE(response.allowed) << response.status_message;
  ASSERT_FALSE(response.warnings.empty());
  EXPECT_EQ(response.warnings[0].rfind("[gpu-admit] not denied, cluster state is stale: nothing heard", 0), 0u)
      << response.warnings[0];
  for (const std::string& warning : response.warnings) EXPECT_LE(warning.size(), 120u) << warning;
  // The policies' own findings follow as warnings, once each.
  std::size_t stale_warnings = 0, capacity_warnings = 0;
  for (const std::string& warning : response.warnings) {
    stale_warnings += warning.find("cluster state is stale") != std::string::npos;
    capacity_warnings += warning.rfind("[gpu-capacity]", 0) == 0;
  }
  EXPECT_EQ(stale_warnings, 1u);
  EXPECT_GE(capacity_warnings, 1u);
  for (const char* name : {"gpu-capacity", "gpu-quota"}) {
    const PolicyOutcome* policy = stale.policy(name);
    ASSERT_NE(policy, nullptr) << name;
    EXPECT_TRUE(policy->degraded) << name;
    EXPECT_FALSE(policy->denied) << name;
    EXPECT_EQ(policy->mode, Mode::Enforce) << name;  // the configured mode, as metrics report it
    EXPECT_NE(response.audit_annotations.at(name).find("not denied: the cluster state is stale (" + why + ")"),
              std::string::npos)
        << response.audit_annotations.at(name);
  }
}

TEST(EngineStaleCluster, PoliciesThatDoNotReadTheClusterStillDeny) {
  ClusterModel model;
  model.upsert_node(fake_node("a", 8));
  StaleReview stale = review_pod(model, 16, "vllm/vllm-openai", "the first full list has not completed");
  EXPECT_FALSE(stale.outcome.response.allowed);
  EXPECT_NE(stale.outcome.response.status_message.find("[image-tags]"), std::string::npos);
  EXPECT_EQ(stale.outcome.response.status_message.find("[gpu-capacity]"), std::string::npos)
      << stale.outcome.response.status_message;
  EXPECT_TRUE(stale.policy("image-tags")->denied);
  EXPECT_FALSE(stale.policy("image-tags")->degraded);
}

TEST(EngineStaleCluster, NothingToSayWhenNothingWouldBeDenied) {
  ClusterModel model;
  model.upsert_node(fake_node("a", 8));
  StaleReview stale = review_pod(model, 2, "vllm/vllm-openai:v0.4.2", "stale for the test");
  EXPECT_TRUE(stale.outcome.response.allowed);
  EXPECT_TRUE(stale.outcome.response.warnings.empty());
  EXPECT_FALSE(stale.policy("gpu-capacity")->degraded);
}

// ---- LiveCluster against the fake API server ------------------------------------------------

class LiveClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<testing::FakeApiServer>(dir_.path());
    api_->set_token("t");
    api_->apply("nodes", fake_node("gpu-0", 8));
    api_->apply("pods", fake_pod("ml", "running", "gpu-0", 2));
    api_->apply("namespaces", fake_namespace("ml"));
    logger_ = std::make_shared<spdlog::logger>("live-cluster-test");  // no sinks: quiet
  }
  void TearDown() override {
    live_.reset();
    api_.reset();
  }

  void start(webhook::LiveClusterOptions options) {
    options.watch.backoff_initial = 20ms;
    options.watch.backoff_max = 200ms;
    options.watch.connect_timeout = 2s;
    options.watch.list_read_timeout = 2s;
    live_ = std::make_unique<webhook::LiveCluster>(
        kube::load_kubeconfig(api_->write_kubeconfig(dir_.path() / "kubeconfig", "t")), options, logger_);
    live_->start();
  }

  TempDir dir_;  // declared first: removed after the fake and the watch are gone
  std::unique_ptr<testing::FakeApiServer> api_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<webhook::LiveCluster> live_;
};

TEST_F(LiveClusterTest, ReadyOnceSyncedAndFollowsEvents) {
  api_->set_stalled("namespaces", true);
  start({});
  ASSERT_TRUE(eventually([&] {
    return live_->status().kind(kube::ObjectKind::Node).synced && live_->status().kind(kube::ObjectKind::Pod).synced;
  }));
  webhook::ReadinessResult waiting = live_->readiness();
  EXPECT_FALSE(waiting.ready);
  EXPECT_NE(waiting.detail.find("waiting for the first full list of namespaces"), std::string::npos) << waiting.detail;
  EXPECT_EQ(live_->staleness(), "the first full list from the API server has not completed");

  api_->set_stalled("namespaces", false);
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }, 10s)) << live_->readiness().detail;
  EXPECT_EQ(live_->readiness().detail, "synced: 1 nodes, 1 pods, 1 namespaces");
  EXPECT_EQ(live_->staleness(), "");
  EXPECT_EQ(live_->model()->read().namespace_usage("ml").devices(), 2);

  api_->apply("nodes", fake_node("gpu-1", 4));
  api_->remove("pods", "ml/running");
  ASSERT_TRUE(eventually([&] {
    auto view = live_->model()->read();
    return view.node("gpu-1") != nullptr && view.pod_count() == 0;
  }));
  EXPECT_EQ(live_->model()->read().namespace_usage("ml").devices(), 0);
}

TEST_F(LiveClusterTest, SilenceBeyondTheBoundIsStale) {
  webhook::LiveClusterOptions options;
  options.stale_after = 1s;
  start(options);
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }));
  // Fresh once the lists are in; on a loaded machine a kind's first news may come after the 1 s
  // bound, so this waits for it rather than reading it once.
  EXPECT_TRUE(eventually([&] { return live_->staleness().empty(); }));
  api_->set_events_suppressed(true);  // the API server stops sending: no events, no bookmarks
  ASSERT_TRUE(eventually([&] { return !live_->staleness().empty(); }, 5s));
  const std::string why = live_->staleness();
  EXPECT_EQ(why.rfind("nothing heard from the API server for ", 0), 0u) << why;  // then the silent kinds
  EXPECT_NE(why.find("(bound 1 s)"), std::string::npos) << why;
  // A bookmark on every kind is news again.
  api_->set_events_suppressed(false);
  for (const char* resource : {"nodes", "pods", "namespaces", "resourceclaims", "resourceclaimtemplates",
                               "poddisruptionbudgets", "priorityclasses"})
    api_->bookmark(resource);
  EXPECT_TRUE(eventually([&] { return live_->staleness().empty(); }));
}

// In a quiet cluster a v1.20 API server sends nothing on a watch until its end; every watch asks
// to end within two thirds of the bound, and its clean end is news.
TEST_F(LiveClusterTest, AQuietClusterIsNeverStale) {
  webhook::LiveClusterOptions options;
  options.stale_after = 3s;
  start(options);
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }));
  const auto until = std::chrono::steady_clock::now() + 7s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(live_->staleness(), "");
    std::this_thread::sleep_for(100ms);
  }
  size_t watches = 0;
  for (const auto& request : api_->requests())
    if (request.watch()) {
      ++watches;
      EXPECT_EQ(request.params.at("timeoutSeconds"), "1");  // a third of 3 s
    }
  EXPECT_GE(watches, 3u * 4u);  // each kind's watch ended and was opened again, about every second
}

TEST_F(LiveClusterTest, AllowedPodCreatesCountUntilTheWatchShowsThem) {
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }));
  ReviewOutcome outcome;
  outcome.operation = "CREATE";
  outcome.kind = {"", "v1", "Pod"};
  outcome.response.allowed = true;
  outcome.mutated = fake_pod("ml", "burst", "", 4);
  outcome.mutated["metadata"].erase("namespace");  // the request's namespace stands in
  outcome.workload.namespace_ = "ml";

  live_->after_review(outcome, ReviewPhases::MutateOnly);  // not the last word: not recorded
  outcome.dry_run = true;
  live_->after_review(outcome, ReviewPhases::ValidateOnly);  // never created
  EXPECT_EQ(live_->model()->pending_admissions(), 0u);
  outcome.dry_run = false;
  live_->after_review(outcome, ReviewPhases::ValidateOnly);
  EXPECT_EQ(live_->model()->pending_admissions(), 1u);
  EXPECT_EQ(live_->model()->read().namespace_usage("ml").devices(), 6);

  api_->apply("pods", fake_pod("ml", "burst", "", 4));  // same uid, seen by the watch
  ASSERT_TRUE(eventually([&] { return live_->model()->pending_admissions() == 0; }));
  EXPECT_EQ(live_->model()->read().namespace_usage("ml").devices(), 6);
}

TEST_F(LiveClusterTest, MetricsDescribeTheWatch) {
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }));
  api_->apply("pods", fake_pod("ml", "second", "gpu-0", 1));
  ASSERT_TRUE(eventually([&] { return live_->model()->read().pod_count() == 2; }));
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  const std::string text = metrics.serialize();
  for (const char* line : {"gpuadmit_watch_objects{kind=\"node\"} 1", "gpuadmit_watch_objects{kind=\"pod\"} 2",
                           "gpuadmit_watch_synced{kind=\"namespace\"} 1",
                           "gpuadmit_watch_events_total{kind=\"pod\",type=\"ADDED\"} 1",
                           "gpuadmit_watch_relists_total{kind=\"pod\"} 0", "gpuadmit_cluster_stale 0",
                           "gpuadmit_pending_admissions 0", "gpuadmit_cluster_rejected_objects_total 0",
                           "# TYPE gpuadmit_watch_seconds_since_last_event gauge"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

TEST_F(LiveClusterTest, ObjectsTheModelCannotReadAreCountedAndSkipped) {
  json bad = fake_node("bad", 8);
  bad["status"]["allocatable"]["memory"] = "a lot";
  api_->apply("nodes", bad);
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; }));
  EXPECT_EQ(live_->model()->read().node_count(), 1u);
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  EXPECT_NE(metrics.serialize().find("gpuadmit_cluster_rejected_objects_total 1"), std::string::npos);
}

// ---- DRA claims ----------------------------------------------------------------------------

TEST_F(LiveClusterTest, ClaimsAndTemplatesReachTheModel) {
  api_->apply("resourceclaims", fake_resource_claim("ml", "c1", "gpu.nvidia.com", 2));
  api_->apply("resourceclaims", fake_resource_claim("ml", "gone-soon", "gpu.nvidia.com", 1));
  api_->apply("resourceclaimtemplates", fake_resource_claim_template("ml", "t1", "gpu.nvidia.com", 1));
  json bad = fake_resource_claim("ml", "bad", "gpu.nvidia.com", 1);
  bad["spec"]["devices"]["requests"] = "all of them";
  api_->apply("resourceclaims", bad);
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; })) << live_->readiness().detail;
  {
    auto view = live_->model()->read();
    ASSERT_NE(view.claims().find(Claims::Kind::Claim, "ml", "c1"), nullptr);
    EXPECT_EQ(view.claims().find(Claims::Kind::Claim, "ml", "c1")->requests.at(0).alternatives.at(0).count, 2);
    EXPECT_NE(view.claims().find(Claims::Kind::Template, "ml", "t1"), nullptr);
    EXPECT_EQ(view.claims().find(Claims::Kind::Claim, "ml", "bad"), nullptr);
    EXPECT_EQ(view.claims().size(), 3u);
  }
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  const std::string text = metrics.serialize();
  for (const char* line : {"gpuadmit_cluster_rejected_objects_total 1", "gpuadmit_watch_objects{kind=\"resourceclaim\"} 3",
                           "gpuadmit_watch_synced{kind=\"resourceclaimtemplate\"} 1"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;

  api_->remove("resourceclaims", "ml/gone-soon");
  api_->apply("resourceclaimtemplates", fake_resource_claim_template("ml", "t2", "gpu.nvidia.com", 1));
  EXPECT_TRUE(eventually([&] {
    auto view = live_->model()->read();
    return view.claims().find(Claims::Kind::Claim, "ml", "gone-soon") == nullptr &&
           view.claims().find(Claims::Kind::Template, "ml", "t2") != nullptr;
  }));
}

// A cluster without resource.k8s.io (before 1.32, or DRA disabled): ready, fresh, and no DRA
// kind named as silent.
TEST_F(LiveClusterTest, AClusterWithoutDraIsReadyAndFresh) {
  api_->set_dra_api_version("");
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; })) << live_->readiness().detail;
  EXPECT_EQ(live_->readiness().detail, "synced: 1 nodes, 1 pods, 1 namespaces");
  EXPECT_EQ(live_->staleness(), "");
  EXPECT_EQ(live_->model()->read().namespace_usage("ml").devices(), 2);
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  const std::string text = metrics.serialize();
  for (const char* line : {"gpuadmit_watch_synced{kind=\"resourceclaim\"} 1",
                           "gpuadmit_watch_seconds_since_last_event{kind=\"resourceclaim\"} -1",
                           "gpuadmit_watch_failures_total{kind=\"resourceclaimtemplate\"} 0", "gpuadmit_cluster_stale 0"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

// ---- disruption budgets and priority classes -----------------------------------------------

TEST_F(LiveClusterTest, DisruptionBudgetsAndPriorityClassesReachTheModel) {
  api_->apply("poddisruptionbudgets", fake_disruption_budget("ml", "serving", {{"matchLabels", {{"app", "inference"}}}}, 1));
  api_->apply("poddisruptionbudgets", fake_disruption_budget("ml", "gone-soon", json::object(), 1));
  json bad = fake_disruption_budget("ml", "bad", json::object(), 1);
  bad["spec"]["selector"] = {{"matchExpressions", {{{"key", "app"}, {"operator", "Near"}}}}};
  api_->apply("poddisruptionbudgets", bad);
  api_->apply("priorityclasses", fake_priority_class("gpu-high", 100000, true));
  api_->apply("priorityclasses", fake_priority_class("gone-soon", 5));
  json bad_class = fake_priority_class("bad", 1);
  bad_class["value"] = "high";
  api_->apply("priorityclasses", bad_class);
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; })) << live_->readiness().detail;
  {
    auto view = live_->model()->read();
    EXPECT_EQ(view.disruption_budgets().size(), 2u);  // the bad one skipped
    // policy/v1: an empty selector selects every pod of the namespace.
    EXPECT_EQ(view.disruption_budgets().selecting("ml", {{"app", "inference"}}).size(), 2u);
    EXPECT_EQ(view.disruption_budgets().selecting("ml", {{"app", "other"}}).size(), 1u);
    ASSERT_NE(view.priority_classes().find("gpu-high"), nullptr);
    EXPECT_EQ(view.priority_classes().find("gpu-high")->value, 100000);
    EXPECT_EQ(view.priority_classes().global_default(), view.priority_classes().find("gpu-high"));
    EXPECT_EQ(view.priority_classes().find("bad"), nullptr);
    EXPECT_EQ(view.priority_classes().size(), 2u);
  }
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  std::string text = metrics.serialize();
  for (const char* line : {"gpuadmit_cluster_rejected_objects_total 2", "gpuadmit_watch_objects{kind=\"poddisruptionbudget\"} 3",
                           "gpuadmit_watch_objects{kind=\"priorityclass\"} 3",
                           "gpuadmit_watch_synced{kind=\"poddisruptionbudget\"} 1",
                           "gpuadmit_watch_synced{kind=\"priorityclass\"} 1"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;

  // Events: deletions, a new one, a change, and one more the model cannot read.
  api_->remove("poddisruptionbudgets", "ml/gone-soon");
  api_->remove("priorityclasses", "gone-soon");
  api_->apply("priorityclasses", fake_priority_class("gpu-high", 200000, true));
  api_->apply("poddisruptionbudgets", fake_disruption_budget("web", "new", json::object(), 1));
  api_->apply("poddisruptionbudgets", bad);
  EXPECT_TRUE(eventually([&] {
    auto view = live_->model()->read();
    return view.disruption_budgets().size() == 2 && view.disruption_budgets().selecting("web", {}).size() == 1 &&
           view.priority_classes().find("gone-soon") == nullptr &&
           view.priority_classes().find("gpu-high")->value == 200000;
  }));
  EXPECT_TRUE(eventually([&] { return metrics.serialize().find("gpuadmit_cluster_rejected_objects_total 3") != std::string::npos; }));
  EXPECT_EQ(live_->staleness(), "");
}

// Kubernetes 1.20: the budgets come from policy/v1beta1, whose list items carry no apiVersion;
// they are read as v1beta1, where an empty selector selects no pod.
TEST_F(LiveClusterTest, DisruptionBudgetsFromPolicyV1beta1KeepItsEmptySelectorMeaning) {
  api_->set_policy_api_version("v1beta1");
  api_->apply("poddisruptionbudgets", fake_disruption_budget("ml", "empty", json::object(), 1));
  api_->apply("poddisruptionbudgets", fake_disruption_budget("ml", "serving", {{"matchLabels", {{"app", "inference"}}}}, 1));
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; })) << live_->readiness().detail;
  auto selected = [&](const std::string& ns, const k8s::Labels& labels) {
    std::vector<std::string> names;
    for (const k8s::DisruptionBudget* budget : live_->model()->read().disruption_budgets().selecting(ns, labels))
      names.push_back(budget->name);
    return names;
  };
  EXPECT_EQ(selected("ml", {{"app", "inference"}}), std::vector<std::string>{"serving"});
  // An event carries its own apiVersion: the same meaning.
  api_->apply("poddisruptionbudgets", fake_disruption_budget("ml", "empty-2", json::object(), 1));
  EXPECT_TRUE(eventually([&] { return live_->model()->read().disruption_budgets().size() == 3; }));
  EXPECT_EQ(selected("ml", {{"app", "inference"}}), std::vector<std::string>{"serving"});
  EXPECT_EQ(live_->status().kind(kube::ObjectKind::PodDisruptionBudget).failures, 0u);
}

// A cluster that serves no policy version at all: ready, fresh, and no budgets.
TEST_F(LiveClusterTest, AClusterWithoutPolicyIsReadyAndFresh) {
  api_->set_policy_api_version("");
  start({});
  ASSERT_TRUE(eventually([&] { return live_->readiness().ready; })) << live_->readiness().detail;
  EXPECT_EQ(live_->staleness(), "");
  EXPECT_EQ(live_->model()->read().disruption_budgets().size(), 0u);
  webhook::WebhookMetrics metrics;
  metrics.add_collectable(live_->metrics());
  const std::string text = metrics.serialize();
  for (const char* line : {"gpuadmit_watch_synced{kind=\"poddisruptionbudget\"} 1",
                           "gpuadmit_watch_seconds_since_last_event{kind=\"poddisruptionbudget\"} -1",
                           "gpuadmit_watch_failures_total{kind=\"poddisruptionbudget\"} 0", "gpuadmit_cluster_stale 0"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

}  // namespace
}  // namespace gpuadmit
