// `gpu-admit serve --kubeconfig F --audit-interval S` against the fake API server: the replica
// takes the Lease, judges the stored pods, writes the namespace's PolicyReport and the
// ClusterPolicyReport by server-side apply, audits again on a config change and on changes in
// the cluster (the interval is an hour here, so nothing else starts one), and when the API
// server refuses the writes it counts a failed audit, tries again, and leaves the reports as
// they were. The real API server's suite (tests/e2e/apiserver/) covers two replicas and failover.
#include <gtest/gtest.h>

#include "tests/support/fake_apiserver.h"
#include "tests/support/server_process.h"

namespace {

using namespace gpuadmit::testing::e2e;
using gpuadmit::testing::FakeApiServer;
using gpuadmit::testing::fake_namespace;
using gpuadmit::testing::fake_node;
using gpuadmit::testing::fake_pod;

// A pod no controller owns, so the audit judges it itself.
json bare_pod(const std::string& name, const std::string& image) {
  json pod = fake_pod("ml", name, "gpu-0", 1);
  pod["metadata"].erase("ownerReferences");
  pod["spec"]["containers"][0]["image"] = image;
  return pod;
}

class BackgroundAuditE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    make_certs(dir_.path());
    api_ = std::make_unique<FakeApiServer>(dir_.path() / "api");
    api_->set_token("t");
    api_->apply("namespaces", fake_namespace("ml"));
    api_->apply("nodes", fake_node("gpu-0", 8));
    api_->apply("pods", bare_pod("floating", "vllm/vllm-openai:latest"));
    api_->apply("pods", bare_pod("pinned", "vllm/vllm-openai:v0.4.2"));
    write_text(dir_.path() / "config.yaml",
               "policies:\n"
               "  image-tags: {mode: warn}\n"
               "  gpu-quota:\n"
               "    budgets: [{namespace: ml, gpus: 1}]\n");
    const std::string kubeconfig = api_->write_kubeconfig(dir_.path() / "kubeconfig", "t");
    server_ = std::make_unique<ServerProcess>(
        dir_.path(), std::vector<std::string>{"--config", (dir_.path() / "config.yaml").string(), "--kubeconfig", kubeconfig,
                                              "--audit-interval", "3600", "--audit-min-interval", "1",
                                              "--audit-lease-duration", "3", "--audit-identity", "replica-1",
                                              // Tests share a loaded machine: at SCHED_IDLE the audit would wait
                                              // for an idle CPU (bench/audit_load.sh measures the default).
                                              "--audit-scheduling", "batch"});
    ASSERT_GT(server_->port(), 0);  // the server's log is in the failure above
    client_ = client_for(server_->port(), dir_.path());
  }

  json report(const std::string& ns) const { return api_->object("policyreports", ns, "gpu-admit"); }

  // The report's results for pod `name` and `policy`.
  static std::vector<json> results_for(const json& report, const std::string& name, const std::string& policy) {
    std::vector<json> out;
    if (!report.is_object() || !report.contains("results")) return out;
    for (const json& result : report["results"])
      if (result["resources"][0]["name"] == name && result["policy"] == policy) out.push_back(result);
    return out;
  }

  std::string scrape() {
    auto response = client_->Get("/metrics");
    return response && response->status == 200 ? response->body : std::string();
  }

  TempDir dir_;
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<httplib::SSLClient> client_;
};

TEST_F(BackgroundAuditE2e, WritesReportsFollowsChangesAndKeepsThemWhenWritesFail) {
  // The pods were there before gpu-admit: the audit reports the floating tag (warn mode: it
  // would be denied if enforce), and passes the pinned one.
  ASSERT_TRUE(eventually([&] { return results_for(report("ml"), "floating", "image-tags").size() == 1; }, 20s))
      << report("ml").dump(2);
  const json first = report("ml");
  const json floating = results_for(first, "floating", "image-tags")[0];
  EXPECT_EQ(floating["result"], "fail");
  EXPECT_EQ(floating["properties"]["mode"], "warn");
  EXPECT_EQ(floating["properties"]["deniedIfEnforced"], "true");
  EXPECT_EQ(floating["resources"][0]["kind"], "Pod");
  EXPECT_TRUE(results_for(first, "pinned", "image-tags").empty());
  EXPECT_GE(first["summary"]["pass"].get<int>(), 1);
  EXPECT_EQ(first["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gpu-admit");
  // Two pods of one GPU each run in a namespace whose budget is 1: neither is a creation, so
  // gpu-quota asks nothing of them.
  EXPECT_TRUE(results_for(first, "floating", "gpu-quota").empty());
  // Written after the namespaces' reports.
  ASSERT_TRUE(eventually([&] { return api_->object("clusterpolicyreports", "", "gpu-admit").is_object(); }, 10s));
  const json cluster = api_->object("clusterpolicyreports", "", "gpu-admit");
  EXPECT_GE(cluster["summary"]["fail"].get<int>(), 1);
  // Written by server-side apply, as the writer that holds the Lease.
  EXPECT_GT(api_->count_requests([](const auto& r) { return r.method == "PATCH" && r.content_type == "application/apply-patch+yaml"; }), 0u);
  EXPECT_EQ(api_->object("leases", "gpu-admit", "gpu-admit-audit")["spec"]["holderIdentity"], "replica-1");
  // The figures are kept once the audit has written everything.
  ASSERT_TRUE(eventually([&] { return scrape().find(R"(gpuadmit_audit_runs_total{result="ok"} 0)") == std::string::npos; }, 10s));
  std::string text = scrape();
  EXPECT_NE(text.find("\ngpuadmit_audit_leader 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(gpuadmit_audit_results{policy="image-tags",result="fail"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(gpuadmit_audit_denied_objects{policy="image-tags",when="if_enforced"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(gpuadmit_audit_violations{policy="image-tags",namespace="ml",mode="warn"} 1)"), std::string::npos)
      << text;

  // The config changes: image-tags enforce. The same pod is now denied if created today.
  write_text(dir_.path() / "config.yaml",
             "policies:\n"
             "  image-tags: {mode: enforce}\n"
             "  gpu-quota:\n"
             "    budgets: [{namespace: ml, gpus: 1}]\n");
  ASSERT_TRUE(eventually([&] {
    const auto now = results_for(report("ml"), "floating", "image-tags");
    return now.size() == 1 && now[0]["properties"]["deniedToday"] == "true";
  }, 20s)) << report("ml").dump(2);

  // Fixed: the floating pod replaced by a pinned one; its result goes.
  ASSERT_TRUE(api_->remove("pods", "ml/floating"));
  api_->apply("pods", bare_pod("floating-fixed", "vllm/vllm-openai:v0.4.2"));
  ASSERT_TRUE(eventually([&] {
    const json now = report("ml");
    return results_for(now, "floating", "image-tags").empty() && now["summary"]["fail"] == 0;
  }, 20s)) << report("ml").dump(2);

  // The API server refuses the report writes: failed audits are counted, and the report stays.
  const json kept = report("ml");
  api_->add_fault("policyreports", {"PATCH", "", false, 403, ""});
  api_->apply("pods", bare_pod("another", "vllm/vllm-openai:latest"));
  ASSERT_TRUE(eventually([&] { return scrape().find(R"(gpuadmit_audit_runs_total{result="failed"} 0)") == std::string::npos; }, 20s))
      << scrape();
  EXPECT_EQ(report("ml")["metadata"]["resourceVersion"], kept["metadata"]["resourceVersion"]);
  api_->clear_faults("policyreports");

  // Deleted: the namespace's last workload goes, and its report with it.
  ASSERT_TRUE(api_->remove("pods", "ml/pinned"));
  ASSERT_TRUE(api_->remove("pods", "ml/floating-fixed"));
  ASSERT_TRUE(api_->remove("pods", "ml/another"));
  ASSERT_TRUE(eventually([&] { return report("ml").is_null(); }, 20s)) << report("ml").dump(2);
  EXPECT_TRUE(api_->object("clusterpolicyreports", "", "gpu-admit").is_object());
}

}  // namespace
