// KubeClient's writes against the fake API server over TLS: create, read, update with optimistic
// concurrency, server-side apply, merge patch, list by label, delete; authentication, keep-alive,
// answers larger than an error body, faults and cancellation.
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <set>
#include <tuple>
#include <future>
#include <thread>

#include "tests/support/fake_apiserver.h"
#include "webhook/kube/client.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::FakeApiServer;

constexpr const char* kLeases = "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases";
constexpr const char* kReports = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/ml/policyreports";
constexpr const char* kClusterReports = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports";

json lease(const std::string& name, const std::string& holder) {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", name}, {"namespace", "gpu-admit"}}},
          {"spec", {{"holderIdentity", holder}, {"leaseDurationSeconds", 15}}}};
}

json report(const std::string& name, const std::string& ns, const std::string& managed_by, int results) {
  json object = {{"apiVersion", "wgpolicyk8s.io/v1alpha2"},
                 {"kind", ns.empty() ? "ClusterPolicyReport" : "PolicyReport"},
                 {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/managed-by", managed_by}}}}},
                 {"summary", {{"fail", results}}},
                 {"results", json::array()}};
  if (!ns.empty()) object["metadata"]["namespace"] = ns;
  for (int i = 0; i < results; ++i) object["results"].push_back({{"policy", "gpu-quota"}, {"result", "fail"}});
  return object;
}

// Polls `condition` every few milliseconds, at most `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string rv_of(const KubeResponse& response) {
  return json::parse(response.body)["metadata"]["resourceVersion"].get<std::string>();
}

class KubeClientWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    dir_ = fs::temp_directory_path() / ("kube_client_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    api_ = std::make_unique<FakeApiServer>(dir_);
    api_->set_token("good-token");
  }
  void TearDown() override {
    api_.reset();
    spdlog::set_level(spdlog::level::info);
    fs::remove_all(dir_);
  }

  KubeConfig kubeconfig(const std::string& token = "good-token", bool client_certificate = false) {
    return load_kubeconfig(api_->write_kubeconfig(dir_ / "kubeconfig", token, client_certificate));
  }

  fs::path dir_;
  std::unique_ptr<FakeApiServer> api_;
};

TEST_F(KubeClientWriteTest, CreateReadUpdateAndDeleteWithOptimisticConcurrency) {
  KubeClient client(kubeconfig(), 5s);
  const std::string path = std::string(kLeases) + "/audit";

  KubeResponse created = client.send("POST", kLeases, lease("audit", "a").dump(), content_type::kJson, 5s);
  ASSERT_EQ(created.status, 201) << created.body << created.error;
  EXPECT_TRUE(created.created_or_ok());
  EXPECT_FALSE(created.ok());  // ok() stays 200 only
  const std::string first_rv = rv_of(created);
  EXPECT_EQ(json::parse(created.body)["spec"]["holderIdentity"], "a");

  KubeResponse again = client.send("POST", kLeases, lease("audit", "b").dump(), content_type::kJson, 5s);
  EXPECT_EQ(again.status, 409);
  EXPECT_FALSE(again.created_or_ok());
  EXPECT_EQ(json::parse(again.body)["reason"], "AlreadyExists") << again.body;

  KubeResponse read = client.get(path, 5s);
  ASSERT_TRUE(read.ok()) << read.body;
  json object = json::parse(read.body);
  EXPECT_EQ(object["kind"], "Lease");
  EXPECT_EQ(object["metadata"]["resourceVersion"], first_rv);

  object["spec"]["holderIdentity"] = "b";
  KubeResponse updated = client.send("PUT", path, object.dump(), content_type::kJson, 5s);
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_TRUE(updated.created_or_ok());
  EXPECT_NE(rv_of(updated), first_rv);

  // The same resourceVersion again is stale now: 409 Conflict with a metav1.Status.
  object["spec"]["holderIdentity"] = "c";
  KubeResponse stale = client.send("PUT", path, object.dump(), content_type::kJson, 5s);
  EXPECT_EQ(stale.status, 409);
  json status = json::parse(stale.body);
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["reason"], "Conflict");
  EXPECT_EQ(api_->object("leases", "gpu-admit", "audit")["spec"]["holderIdentity"], "b");

  KubeResponse missing = client.send("PUT", std::string(kLeases) + "/other",
                                     lease("other", "a").dump(), content_type::kJson, 5s);
  EXPECT_EQ(missing.status, 404);

  KubeResponse deleted = client.send("DELETE", path, "", "", 5s);
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(client.send("DELETE", path, "", "", 5s).status, 404);
  EXPECT_EQ(client.get(path, 5s).status, 404);

  // Every request carried the token and its content type, over a kept-alive connection (the
  // fake's httplib server closes one after 5 requests).
  const auto requests = api_->requests();
  ASSERT_EQ(requests.size(), 9u);
  std::set<int> ports;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].authorization, "Bearer good-token");
    EXPECT_EQ(requests[i].resource, "leases");
    if (i < 5) ports.insert(requests[i].remote_port);
  }
  EXPECT_EQ(ports.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].content_type, "application/json");
  EXPECT_EQ(json::parse(requests[0].body)["spec"]["holderIdentity"], "a");
  EXPECT_EQ(requests[3].method, "PUT");
  EXPECT_EQ(requests[6].method, "DELETE");
  EXPECT_TRUE(requests[6].body.empty());
}

TEST_F(KubeClientWriteTest, ServerSideApplyCreatesThenReplacesTheWholeObject) {
  KubeClient client(kubeconfig(), 5s);
  const std::string path = std::string(kReports) + "/gpu-admit-ml?fieldManager=gpu-admit&force=true";

  KubeResponse created = client.send("PATCH", path, report("gpu-admit-ml", "ml", "gpu-admit", 2).dump(),
                                     content_type::kApplyPatch, 5s);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_TRUE(created.created_or_ok());
  const std::string first_rv = rv_of(created);

  json replacement = report("gpu-admit-ml", "ml", "gpu-admit", 1);
  replacement.erase("summary");
  KubeResponse replaced = client.send("PATCH", path, replacement.dump(), content_type::kApplyPatch, 5s);
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_NE(rv_of(replaced), first_rv);
  json stored = api_->object("policyreports", "ml", "gpu-admit-ml");
  EXPECT_EQ(stored["results"].size(), 1u);
  EXPECT_FALSE(stored.contains("summary"));  // replaced, not merged
  EXPECT_EQ(stored["kind"], "PolicyReport");

  const auto requests = api_->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().method, "PATCH");
  EXPECT_EQ(requests.back().content_type, "application/apply-patch+yaml");
  EXPECT_EQ(requests.back().params.at("fieldManager"), "gpu-admit");
  EXPECT_EQ(requests.back().params.at("force"), "true");

  // Cluster-scoped reports, and an apply without a field manager is refused as the API server does.
  KubeResponse cluster = client.send("PATCH", std::string(kClusterReports) + "/gpu-admit?fieldManager=gpu-admit",
                                     report("gpu-admit", "", "gpu-admit", 3).dump(), content_type::kApplyPatch, 5s);
  EXPECT_EQ(cluster.status, 201) << cluster.body;
  KubeResponse no_manager = client.send("PATCH", std::string(kClusterReports) + "/gpu-admit",
                                        report("gpu-admit", "", "gpu-admit", 3).dump(), content_type::kApplyPatch, 5s);
  EXPECT_EQ(no_manager.status, 400);
  KubeResponse wrong_name = client.send("PATCH", std::string(kClusterReports) + "/other?fieldManager=gpu-admit",
                                        report("gpu-admit", "", "gpu-admit", 3).dump(), content_type::kApplyPatch, 5s);
  EXPECT_EQ(wrong_name.status, 400);

  // A merge patch changes what it names and keeps the rest.
  KubeResponse merged = client.send("PATCH", std::string(kReports) + "/gpu-admit-ml",
                                    R"({"metadata":{"annotations":{"a":"b"}},"summary":{"pass":4}})",
                                    content_type::kMergePatch, 5s);
  ASSERT_EQ(merged.status, 200) << merged.body;
  stored = api_->object("policyreports", "ml", "gpu-admit-ml");
  EXPECT_EQ(stored["metadata"]["annotations"]["a"], "b");
  EXPECT_EQ(stored["results"].size(), 1u);
  EXPECT_EQ(stored["summary"]["pass"], 4);
  EXPECT_EQ(client.send("PATCH", std::string(kReports) + "/absent", "{}", content_type::kMergePatch, 5s).status, 404);
  EXPECT_EQ(client.send("PATCH", std::string(kReports) + "/gpu-admit-ml", "{}", "application/strategic-merge-patch+json",
                        5s).status, 415);
}

TEST_F(KubeClientWriteTest, CollectionsListByLabel) {
  KubeClient client(kubeconfig(), 5s);
  for (const auto& [ns, name, manager] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"ml", "a", "gpu-admit"}, {"ml", "b", "kyverno"}, {"team", "c", "gpu-admit"}}) {
    KubeResponse r = client.send("PATCH",
                                 "/apis/wgpolicyk8s.io/v1alpha2/namespaces/" + ns + "/policyreports/" + name +
                                     "?fieldManager=gpu-admit&force=true",
                                 report(name, ns, manager, 1).dump(), content_type::kApplyPatch, 5s);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  auto names = [&](const std::string& path) {
    KubeResponse r = client.get(path, 5s);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status << " " << r.body;
    std::vector<std::string> out;
    if (!r.ok()) return out;
    json list = json::parse(r.body);
    EXPECT_EQ(list["kind"], "PolicyReportList");
    EXPECT_TRUE(list["metadata"]["resourceVersion"].is_string());
    for (const auto& item : list["items"]) out.push_back(item["metadata"]["name"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(kReports), (V{"a", "b"}));
  EXPECT_EQ(names("/apis/wgpolicyk8s.io/v1alpha2/policyreports"), (V{"a", "b", "c"}));  // all namespaces
  EXPECT_EQ(names(with_query("/apis/wgpolicyk8s.io/v1alpha2/policyreports",
                             {{"labelSelector", "app.kubernetes.io/managed-by=gpu-admit"}})),
            (V{"a", "c"}));
  EXPECT_EQ(names(with_query(kReports, {{"labelSelector", "app.kubernetes.io/managed-by!=gpu-admit"}})), (V{"b"}));
  EXPECT_EQ(names(with_query(kReports, {{"labelSelector", "app.kubernetes.io/managed-by,!absent"}})), (V{"a", "b"}));
  EXPECT_EQ(client.get(with_query(kReports, {{"labelSelector", "env in (a,b)"}}), 5s).status, 400);
  EXPECT_EQ(client.get("/apis/wgpolicyk8s.io/v1alpha2/namespaces/ml/nothings", 5s).status, 404);
  EXPECT_EQ(client.get("/apis/wgpolicyk8s.io/v1/namespaces/ml/policyreports", 5s).status, 404);  // another version

  EXPECT_EQ(client.send("DELETE", std::string(kReports) + "/a", "", "", 5s).status, 200);
  EXPECT_EQ(names(kReports), (V{"b"}));
  EXPECT_EQ(client.send("DELETE", std::string(kReports) + "/a", "", "", 5s).status, 404);
}

// The audit's reports may be larger than an error body's bound (1 MiB): a 201 is the answer whole.
TEST_F(KubeClientWriteTest, ALargeCreatedObjectComesBackWhole) {
  KubeClient client(kubeconfig(), 5s);
  json big = report("big", "ml", "gpu-admit", 0);
  big["results"] = json::array();
  for (int i = 0; i < 20000; ++i)
    big["results"].push_back({{"policy", "gpu-quota"}, {"message", std::string(100, 'x')}, {"result", "fail"}});
  KubeResponse created = client.send("PATCH", std::string(kReports) + "/big?fieldManager=gpu-admit",
                                     big.dump(), content_type::kApplyPatch, 10s);
  ASSERT_EQ(created.status, 201) << created.error;
  ASSERT_GT(created.body.size(), 2u << 20);
  EXPECT_EQ(json::parse(created.body)["results"].size(), 20000u);
}

TEST_F(KubeClientWriteTest, AuthenticatesWritesByTokenOrClientCertificate) {
  KubeClient certificate(kubeconfig("", true), 5s);
  KubeResponse created = certificate.send("POST", kLeases, lease("by-cert", "a").dump(), content_type::kJson, 5s);
  EXPECT_EQ(created.status, 201) << created.body;

  KubeClient wrong(kubeconfig("wrong-token"), 5s);
  KubeResponse refused = wrong.send("POST", kLeases, lease("by-token", "a").dump(), content_type::kJson, 5s);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(json::parse(refused.body)["reason"], "Unauthorized");
  EXPECT_TRUE(api_->object("leases", "gpu-admit", "by-token").is_null());

  api_->add_token("second-token");
  KubeClient second(kubeconfig("second-token"), 5s);
  EXPECT_EQ(second.send("POST", kLeases, lease("by-token", "a").dump(), content_type::kJson, 5s).status, 201);
}

TEST_F(KubeClientWriteTest, OnlyWriteMethodsAreSent) {
  KubeClient client(kubeconfig(), 5s);
  for (const char* method : {"GET", "HEAD", "put", ""}) {
    KubeResponse r = client.send(method, kLeases, "{}", content_type::kJson, 5s);
    EXPECT_EQ(r.status, 0) << method;
    EXPECT_NE(r.error.find("unsupported method"), std::string::npos) << r.error;
  }
  EXPECT_TRUE(api_->requests().empty());
}

TEST_F(KubeClientWriteTest, FaultsAnswerOrStallAndCancelAbortsAWrite) {
  KubeClient client(kubeconfig(), 5s);
  api_->add_fault("leases", {"PUT", "", false, 503, ""});
  EXPECT_EQ(client.send("POST", kLeases, lease("x", "a").dump(), content_type::kJson, 5s).status, 201);
  KubeResponse failed = client.send("PUT", std::string(kLeases) + "/x", lease("x", "b").dump(), content_type::kJson, 5s);
  EXPECT_EQ(failed.status, 503);
  EXPECT_FALSE(failed.created_or_ok());
  api_->clear_faults("leases");

  // A stalled write times out on its read timeout ... (the faults stay until the server stops: a
  // stalled request released would still be served, as a real API server may apply a write whose
  // client gave up)
  api_->add_fault("leases", {"DELETE", "Bearer good-token", true, 0, ""});
  api_->add_fault("leases", {"PUT", "", true, 0, ""});
  const auto started = std::chrono::steady_clock::now();
  KubeResponse timed_out = client.send("DELETE", std::string(kLeases) + "/x", "", "", 300ms);
  EXPECT_EQ(timed_out.status, 0);
  EXPECT_FALSE(timed_out.error.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);

  // ... and cancel() from another thread aborts one at once.
  auto pending = std::async(std::launch::async, [&] {
    return client.send("PUT", std::string(kLeases) + "/x", lease("x", "c").dump(), content_type::kJson, 20s);
  });
  ASSERT_TRUE(eventually([&] {
    return api_->count_requests([](const auto& r) { return r.method == "PUT"; }) >= 2;
  }));
  const auto cancelled_at = std::chrono::steady_clock::now();
  // One cancel may land before the request is on the wire: cancel until it returns.
  while (pending.wait_for(10ms) != std::future_status::ready) client.cancel();
  KubeResponse cancelled = pending.get();
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 5s);
  EXPECT_EQ(cancelled.status, 0);
  // The client works again afterwards, on a new connection.
  EXPECT_EQ(client.get(std::string(kLeases) + "/x", 5s).status, 200);
  EXPECT_EQ(api_->object("leases", "gpu-admit", "x")["spec"]["holderIdentity"], "a");
}

}  // namespace
}  // namespace gpuadmit::kube
