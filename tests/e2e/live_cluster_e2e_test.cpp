// End to end: `gpu-admit serve --kubeconfig` against the fake API server. The real binary lists
// and watches the fake over TLS; reviews sent to it over TLS change their answers as the
// cluster changes: a node with 8 GPUs appears, a pod is bound, a burst of creates meets a quota,
// and the API server falls silent.
#include <gtest/gtest.h>

#include "tests/support/fake_apiserver.h"
#include "tests/support/server_process.h"

namespace {

using namespace gpuadmit::testing::e2e;
using gpuadmit::testing::FakeApiServer;
using gpuadmit::testing::fake_namespace;
using gpuadmit::testing::fake_node;
using gpuadmit::testing::fake_pod;

// A Pod CREATE as the API server sends it to the validating webhook (uid assigned by then).
// A dry run (`kubectl apply --dry-run=server`) creates nothing, so it is never counted.
std::string pod_review(const std::string& name, int gpus, bool dry_run = true) {
  json review = json::parse(golden_request("mutate--pod-gpu-basic"));
  json& request = review["request"];
  request["dryRun"] = dry_run;
  request["uid"] = "review-" + name;
  request["name"] = name;
  request["namespace"] = "ml";
  json& pod = request["object"];
  pod["metadata"]["name"] = name;
  pod["metadata"]["namespace"] = "ml";
  pod["metadata"]["uid"] = "pod-uid-" + name;
  pod["spec"].erase("nodeSelector");
  pod["spec"]["tolerations"] = json::array({{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}}});
  for (json& container : pod["spec"]["containers"]) container.erase("resources");
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}};
  return review.dump();
}

struct Answer {
  bool allowed = false;
  std::string message;
  std::vector<std::string> warnings;
  std::string body;
};

class LiveClusterE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    make_certs(dir_.path());
    api_ = std::make_unique<FakeApiServer>(dir_.path() / "api");
    api_->set_token("webhook-token");
    api_->apply("namespaces", fake_namespace("ml"));
    api_->apply("nodes", fake_node("small-0", 4));  // 4 GPUs: an 8-GPU pod fits nowhere
    write_text(dir_.path() / "config.yaml",
               "policies:\n"
               "  gpu-capacity: {}\n"
               "  gpu-quota:\n"
               "    budgets: [{namespace: ml, gpus: 10}]\n");
  }

  void start_server(const std::vector<std::string>& extra = {}) {
    const std::string kubeconfig = api_->write_kubeconfig(dir_.path() / "kubeconfig", "webhook-token");
    std::vector<std::string> args = {"--config", (dir_.path() / "config.yaml").string(), "--kubeconfig",
                                     kubeconfig, "--cluster-stale-after", "2", "--admission-ttl", "60"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(dir_.path(), args);
    client_ = client_for(server_->port(), dir_.path());
  }

  Answer validate(const std::string& review) {
    auto response = client_->Post("/validate", review, "application/json");
    Answer answer;
    if (!response || response->status != 200) {
      ADD_FAILURE() << "no answer: " << (response ? response->body : httplib::to_string(response.error()));
      return answer;
    }
    oracle_.add(review, response->body, true);
    json body = json::parse(response->body);
    answer.allowed = body["response"]["allowed"];
    answer.message = body["response"].value("status", json::object()).value("message", "");
    answer.warnings = body["response"].value("warnings", std::vector<std::string>{});
    answer.body = response->body;
    return answer;
  }

  int readyz_status() {
    auto response = client_->Get("/readyz");
    return response ? response->status : 0;
  }

  std::string metrics() {
    auto response = client_->Get("/metrics");
    return response ? response->body : "";
  }

  TempDir dir_;
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<httplib::SSLClient> client_;
  OracleCheck oracle_{dir_.path()};
};

TEST_F(LiveClusterE2e, AnswersFollowTheLiveCluster) {
  api_->set_stalled("pods", true);  // the first sync cannot finish yet
  start_server();
  ASSERT_GT(server_->port(), 0);  // the server's log is in the failure above
  EXPECT_EQ(readyz_status(), 503);
  const std::string waiting = client_->Get("/readyz")->body;
  EXPECT_NE(waiting.find("waiting for the first full list of"), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("pods"), std::string::npos) << waiting;
  api_->set_stalled("pods", false);
  ASSERT_TRUE(eventually([&] { return readyz_status() == 200; }, 15s)) << client_->Get("/readyz")->body;

  // No node can ever hold 8 GPUs ...
  Answer denied = validate(pod_review("train", 8));
  EXPECT_FALSE(denied.allowed);
  EXPECT_NE(denied.message.find("[gpu-capacity]"), std::string::npos) << denied.message;
  // ... until a node with 8 appears.
  api_->apply("nodes", fake_node("big-0", 8));
  EXPECT_TRUE(eventually([&] { return validate(pod_review("train", 8)).allowed; }));

  // Dry runs created nothing: nothing is pending.
  EXPECT_NE(metrics().find("gpuadmit_pending_admissions 0"), std::string::npos);
  // A pod bound in the namespace uses 4 of its 10 GPUs: 8 more no longer fit the budget.
  api_->apply("pods", fake_pod("ml", "running", "small-0", 4));
  ASSERT_TRUE(eventually([&] { return !validate(pod_review("train", 8)).allowed; }));
  Answer over = validate(pod_review("train", 8));
  EXPECT_NE(over.message.find("namespace ml uses 4 of its 10 GPUs"), std::string::npos) << over.message;
  EXPECT_EQ(over.message.find("[gpu-capacity]"), std::string::npos) << over.message;

  // A burst: the first allowed create counts before the watch shows its pod.
  Answer first = validate(pod_review("burst-1", 4, false));
  EXPECT_TRUE(first.allowed) << first.message;
  Answer second = validate(pod_review("burst-2", 4, false));
  EXPECT_FALSE(second.allowed);
  EXPECT_NE(second.message.find("namespace ml uses 8 of its 10 GPUs"), std::string::npos) << second.message;
  EXPECT_NE(metrics().find("gpuadmit_pending_admissions 1"), std::string::npos);
  // The watch shows burst-1 (same uid): it is counted once, by the cache.
  json shown = fake_pod("ml", "burst-1", "", 4);
  shown["metadata"]["uid"] = "pod-uid-burst-1";
  api_->apply("pods", shown);
  EXPECT_TRUE(eventually([&] { return metrics().find("gpuadmit_pending_admissions 0") != std::string::npos; }));
  EXPECT_NE(validate(pod_review("burst-2", 4)).message.find("namespace ml uses 8 of its 10 GPUs"), std::string::npos);

  // The API server falls silent: past the 2 s bound, denials on cluster state become warnings.
  api_->set_events_suppressed(true);
  Answer degraded;
  ASSERT_TRUE(eventually([&] {
    degraded = validate(pod_review("huge", 16));
    return degraded.allowed;
  }, 10s)) << degraded.message;
  ASSERT_FALSE(degraded.warnings.empty());
  EXPECT_EQ(degraded.warnings[0].rfind("[gpu-admit] not denied, cluster state is stale: nothing heard from the API server", 0), 0u)
      << degraded.warnings[0];
  const std::string text = metrics();
  EXPECT_NE(text.find("gpuadmit_cluster_stale 1"), std::string::npos) << text;
  EXPECT_NE(text.find("result=\"degraded\""), std::string::npos);
  // Review lines are written by the background log writer: the last may lag its answer a moment.
  EXPECT_TRUE(eventually([&] {
    return server_->log().find(R"("degraded":["gpu-capacity","gpu-quota"])") != std::string::npos;
  })) << server_->log();

  // News again: a bookmark on every kind, and denials are trusted once more.
  api_->set_events_suppressed(false);
  for (const char* resource : {"nodes", "pods", "namespaces", "resourceclaims", "resourceclaimtemplates",
                               "poddisruptionbudgets", "priorityclasses"})
    api_->bookmark(resource);
  EXPECT_TRUE(eventually([&] { return !validate(pod_review("huge", 16)).allowed; }));

  oracle_.expect_all_ok();
  server_->signal(SIGTERM);
  EXPECT_EQ(server_->wait_exit(20s), 0);

  // One stream of JSON lines: the watch logs its lists through the server's logger, on stderr,
  // and nothing reaches stdout.
  const std::string log = server_->log();
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) EXPECT_TRUE(json::accept(line)) << line;
  EXPECT_NE(log.find(R"("msg":"kube list complete","objects":1,"resource":"nodes")"), std::string::npos) << log;
  EXPECT_EQ(server_->output(), "");
}

// --dra-api-version reaches the watch: claims are listed at that version, or not at all.
TEST_F(LiveClusterE2e, ClaimsAreListedAtTheDraApiVersionGiven) {
  api_->set_dra_api_version("v1beta1");
  api_->apply("resourceclaims", gpuadmit::testing::fake_resource_claim("ml", "c1", "gpu.nvidia.com", 1));
  start_server({"--dra-api-version", "v1beta1"});
  ASSERT_TRUE(eventually([&] { return readyz_status() == 200; }, 15s)) << server_->log();
  EXPECT_NE(metrics().find("gpuadmit_watch_objects{kind=\"resourceclaim\"} 1"), std::string::npos) << metrics();
  EXPECT_GE(api_->count_requests([](const auto& r) { return r.path == "/apis/resource.k8s.io/v1beta1/resourceclaims"; }), 1u);
}

TEST_F(LiveClusterE2e, DraApiVersionOffListsNoClaims) {
  start_server({"--dra-api-version", "off"});
  ASSERT_TRUE(eventually([&] { return readyz_status() == 200; }, 15s)) << server_->log();
  EXPECT_NE(metrics().find("gpuadmit_watch_synced{kind=\"resourceclaim\"} 1"), std::string::npos) << metrics();
  EXPECT_EQ(api_->count_requests([](const auto& r) { return r.path.rfind("/apis/resource.k8s.io/", 0) == 0; }), 0u);
}

// As Kubernetes 1.20: the budgets are read from policy/v1beta1 once policy/v1 answers 404.
TEST_F(LiveClusterE2e, DisruptionBudgetsFallBackToPolicyV1beta1AndPriorityClassesAreWatched) {
  api_->set_policy_api_version("v1beta1");
  api_->apply("poddisruptionbudgets", gpuadmit::testing::fake_disruption_budget("ml", "b1", nlohmann::json::object(), 1));
  api_->apply("priorityclasses", gpuadmit::testing::fake_priority_class("gpu-high", 1000));
  start_server();
  ASSERT_GT(server_->port(), 0);  // the server's log is in the failure above
  ASSERT_TRUE(eventually([&] { return readyz_status() == 200; }, 15s)) << server_->log();
  const std::string text = metrics();
  for (const char* line : {"gpuadmit_watch_objects{kind=\"poddisruptionbudget\"} 1",
                           "gpuadmit_watch_objects{kind=\"priorityclass\"} 1",
                           "gpuadmit_watch_failures_total{kind=\"poddisruptionbudget\"} 0"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  EXPECT_GE(api_->count_requests([](const auto& r) { return r.path == "/apis/policy/v1beta1/poddisruptionbudgets"; }), 1u);
}

TEST_F(LiveClusterE2e, DisruptionBudgetsAndPriorityClassesCanBeTurnedOff) {
  start_server({"--disruption-budgets", "off", "--priority-classes=off"});
  ASSERT_TRUE(eventually([&] { return readyz_status() == 200; }, 15s)) << server_->log();
  EXPECT_NE(metrics().find("gpuadmit_watch_synced{kind=\"poddisruptionbudget\"} 1"), std::string::npos) << metrics();
  EXPECT_EQ(api_->count_requests([](const auto& r) {
              return r.resource == "poddisruptionbudgets" || r.resource == "priorityclasses";
            }),
            0u);
}

TEST_F(LiveClusterE2e, BadInvocationsAreRefused) {
  const std::string binary = kBinary + " serve --tls-cert " + (dir_.path() / "tls.crt").string() + " --tls-key " +
                             (dir_.path() / "tls.key").string();
  const std::string kubeconfig = api_->write_kubeconfig(dir_.path() / "kubeconfig", "webhook-token");
  for (const std::string& extra :
       {" --kubeconfig " + kubeconfig + " --cluster " + kSource + "/manifests/examples/cluster.json",
        " --kubeconfig " + kubeconfig + " --in-cluster", std::string(" --cluster-stale-after 30"),
        " --kubeconfig " + kubeconfig + " --cluster-stale-after 0",
        " --kubeconfig " + kubeconfig + " --dra-api-version v1beta", std::string(" --dra-api-version off"),
        " --kubeconfig " + kubeconfig + " --disruption-budgets yes",
        " --kubeconfig " + kubeconfig + " --priority-classes false",
        std::string(" --disruption-budgets off"), std::string(" --priority-classes on"),
        " --kubeconfig " + (dir_.path() / "missing").string()}) {
    const std::string out = (dir_.path() / "out.txt").string();
    const int status = std::system((binary + extra + " >" + out + " 2>&1").c_str());
    EXPECT_EQ(WEXITSTATUS(status), 2) << extra << "\n" << read_text(out);
    EXPECT_FALSE(read_text(out).empty()) << extra;
  }
}

}  // namespace
