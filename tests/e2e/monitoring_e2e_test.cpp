// The monitoring manifests against what gpu-admit exports: the real `gpu-admit serve
// --kubeconfig` against the fake API server (so the watch's metrics exist too), scraped after a
// review with a violation; every metric the dashboard's panels and variables and the alert
// rules query must be among those it exports (or `up`, Prometheus' own). The rules' behaviour
// is promtool's test (tests/monitoring/).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "tests/support/fake_apiserver.h"
#include "tests/support/server_process.h"

namespace {

using namespace gpuadmit::testing::e2e;
using gpuadmit::testing::FakeApiServer;
using gpuadmit::testing::fake_namespace;
using gpuadmit::testing::fake_node;
using gpuadmit::testing::fake_pod;

// A GPU Pod CREATE in namespace ml asking for `gpus` GPUs.
std::string pod_review(int gpus) {
  json review = json::parse(golden_request("mutate--pod-gpu-basic"));
  json& request = review["request"];
  request["dryRun"] = true;
  request["namespace"] = "ml";
  json& pod = request["object"];
  pod["metadata"]["namespace"] = "ml";
  pod["spec"].erase("nodeSelector");
  pod["spec"]["tolerations"] = json::array({{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}}});
  for (json& container : pod["spec"]["containers"]) container.erase("resources");
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}};
  return review.dump();
}

// The metric names in Prometheus text: each family's name, and a histogram's series.
std::set<std::string> exported_names(const std::string& text) {
  std::set<std::string> names;
  const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$)");
  const std::regex sample_line(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ])");
  std::istringstream in(text);
  std::smatch match;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, match, type_line)) {
      names.insert(match[1]);
      if (match[2] == "histogram" || match[2] == "summary")
        for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(match[1].str() + suffix);
    } else if (std::regex_search(line, match, sample_line)) {
      names.insert(match[1]);
    }
  }
  return names;
}

// The metrics a PromQL expression selects: gpu-admit's by their prefix, and any other name
// followed by a label matcher or a range (a label name is followed by `=`, a function by `(`).
std::set<std::string> queried_names(const std::string& expr) {
  std::set<std::string> names;
  const std::regex prefixed(R"(\bgpuadmit_[a-zA-Z0-9_:]*)");
  for (std::sregex_iterator it(expr.begin(), expr.end(), prefixed), end; it != end; ++it) names.insert(it->str());
  const std::regex selector(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[])");
  for (std::sregex_iterator it(expr.begin(), expr.end(), selector), end; it != end; ++it) names.insert((*it)[1]);
  return names;
}

void expect_known(const std::string& where, const std::string& expr, const std::set<std::string>& known) {
  const std::set<std::string> names = queried_names(expr);
  EXPECT_FALSE(names.empty()) << where << ": names no metric: " << expr;
  for (const std::string& name : names)
    EXPECT_TRUE(known.count(name)) << where << ": " << name << " is not a metric gpu-admit exports: " << expr;
}

// Every panel, rows' nested panels included.
void collect_panels(const json& panels, std::vector<json>& out) {
  for (const json& panel : panels) {
    out.push_back(panel);
    if (panel.contains("panels")) collect_panels(panel["panels"], out);
  }
}

class MonitoringE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    make_certs(dir_.path());
    api_ = std::make_unique<FakeApiServer>(dir_.path() / "api");
    api_->set_token("t");
    api_->apply("namespaces", fake_namespace("ml"));
    api_->apply("nodes", fake_node("gpu-0", 8));
    api_->apply("pods", fake_pod("ml", "running", "gpu-0", 2));
    write_text(dir_.path() / "config.yaml",
               "policies:\n"
               "  gpu-capacity: {}\n"
               "  gpu-quota:\n"
               "    budgets: [{namespace: ml, gpus: 4}]\n");
  }

  void start_server() {
    const std::string kubeconfig = api_->write_kubeconfig(dir_.path() / "kubeconfig", "t");
    server_ = std::make_unique<ServerProcess>(
        dir_.path(), std::vector<std::string>{"--config", (dir_.path() / "config.yaml").string(), "--kubeconfig", kubeconfig,
                                              // The background audit, so that its metrics exist too.
                                              "--audit-interval", "1", "--audit-min-interval", "1",
                                              "--audit-identity", "monitoring-test", "--audit-scheduling", "batch"});
    client_ = client_for(server_->port(), dir_.path());
  }

  std::string scrape() {
    auto response = client_->Get("/metrics");
    if (!response || response->status != 200) {
      ADD_FAILURE() << "no /metrics: " << (response ? response->body : httplib::to_string(response.error()));
      return {};
    }
    return response->body;
  }

  TempDir dir_;
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<httplib::SSLClient> client_;
};

TEST_F(MonitoringE2e, ReadinessCertificateCapacityAndViolationsAreExported) {
  api_->set_stalled("namespaces", true);
  start_server();
  ASSERT_GT(server_->port(), 0);  // the server's log is in the failure above
  EXPECT_NE(scrape().find("\ngpuadmit_ready 0\n"), std::string::npos);  // waiting for the namespaces list
  api_->set_stalled("namespaces", false);
  ASSERT_TRUE(eventually([&] { return scrape().find("\ngpuadmit_ready 1\n") != std::string::npos; }, 10s)) << scrape();

  // 2 GPUs used of 4: asking for 3 more is a gpu-quota violation (enforce: denied).
  auto response = client_->Post("/validate", pod_review(3), "application/json");
  ASSERT_TRUE(response && response->status == 200);
  EXPECT_FALSE(json::parse(response->body)["response"]["allowed"].get<bool>()) << response->body;

  const std::string text = scrape();
  EXPECT_NE(text.find(R"(gpuadmit_policy_violations_total{mode="enforce",namespace="ml",policy="gpu-quota"} 1)"),
            std::string::npos)
      << text;
  const auto pair = gpuadmit::webhook::load_certified_key((dir_.path() / "tls.crt").string(), (dir_.path() / "tls.key").string());
  const long long not_after = std::chrono::duration_cast<std::chrono::seconds>(pair->not_after.time_since_epoch()).count();
  EXPECT_NE(text.find("\ngpuadmit_certificate_expiry_timestamp_seconds " + std::to_string(not_after) + "\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(gpuadmit_pool_gpus_free{pool="NVIDIA-H100-80GB-HBM3×8"} 6)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(gpuadmit_namespace_gpus_used{namespace="ml"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(gpuadmit_namespace_gpu_budget{namespace="ml"} 4)"), std::string::npos) << text;
}

TEST_F(MonitoringE2e, DashboardAndAlertRulesQueryOnlyExportedMetrics) {
  // A pod no controller owns: the audit judges it, so its per-policy series exist.
  json bare = fake_pod("ml", "bare", "gpu-0", 1);
  bare["metadata"].erase("ownerReferences");
  api_->apply("pods", bare);
  start_server();
  ASSERT_GT(server_->port(), 0);  // the server's log is in the failure above
  ASSERT_TRUE(eventually([&] { return scrape().find("\ngpuadmit_ready 1\n") != std::string::npos; }, 10s)) << scrape();
  ASSERT_TRUE(client_->Post("/validate", pod_review(3), "application/json"));  // a violation: its series exists
  // The audit's figures exist once it has finished once (it holds the Lease alone).
  ASSERT_TRUE(eventually([&] { return scrape().find("\ngpuadmit_audit_last_success_timestamp_seconds ") != std::string::npos; }, 20s))
      << scrape();
  std::set<std::string> known = exported_names(scrape());
  ASSERT_TRUE(known.count("gpuadmit_policy_violations_total"));
  ASSERT_TRUE(known.count("gpuadmit_watch_synced"));
  known.insert("up");  // Prometheus' own, per scrape target

  const json dashboard = json::parse(read_text(kSource + "/manifests/monitoring/dashboard.json"));
  EXPECT_GE(dashboard.at("schemaVersion").get<int>(), 36);
  bool datasource_variable = false;
  for (const json& variable : dashboard.at("templating").at("list")) {
    if (variable.at("type") == "datasource" && variable.at("name") == "datasource" && variable.at("query") == "prometheus")
      datasource_variable = true;
    if (variable.at("type") == "query")
      expect_known("variable " + variable.at("name").get<std::string>(),
                   variable.at("query").at("query").get<std::string>(), known);
  }
  EXPECT_TRUE(datasource_variable) << "the Prometheus data source must be the templated variable $datasource";

  std::vector<json> panels;
  collect_panels(dashboard.at("panels"), panels);
  std::set<int> ids;
  std::string queries;
  for (const json& panel : panels) {
    const std::string title = panel.at("title").get<std::string>();
    EXPECT_TRUE(ids.insert(panel.at("id").get<int>()).second) << title << ": panel id used twice";
    if (panel.at("type") == "row") continue;
    EXPECT_EQ(panel.at("datasource").at("uid").get<std::string>(), "${datasource}") << title;
    ASSERT_FALSE(panel.value("targets", json::array()).empty()) << title << ": no query";
    for (const json& target : panel.at("targets")) {
      expect_known("panel \"" + title + "\"", target.at("expr").get<std::string>(), known);
      queries += target.at("expr").get<std::string>() + "\n";
    }
  }
  // What issue #18 asks the dashboard to show.
  for (const char* metric : {"gpuadmit_review_duration_seconds_count", "gpuadmit_review_duration_seconds_bucket",
                             "gpuadmit_policy_violations_total", "gpuadmit_cluster_stale",
                             "gpuadmit_watch_seconds_since_last_event", "gpuadmit_watch_failures_total",
                             "gpuadmit_pool_gpus_free", "gpuadmit_pool_gpus_stranded",
                             "gpuadmit_pool_largest_free_block_gpus", "gpuadmit_namespace_gpus_used",
                             "gpuadmit_namespace_gpu_budget", "gpuadmit_audit_results", "gpuadmit_audit_denied_objects",
                             "gpuadmit_audit_runs_total", "gpuadmit_audit_last_success_timestamp_seconds",
                             "gpuadmit_audit_duration_seconds", "gpuadmit_audit_leader"})
    EXPECT_NE(queries.find(metric), std::string::npos) << "no panel shows " << metric;

  const YAML::Node rule = YAML::LoadFile(kSource + "/manifests/monitoring/prometheusrule.yaml");
  EXPECT_EQ(rule["apiVersion"].as<std::string>(), "monitoring.coreos.com/v1");
  EXPECT_EQ(rule["kind"].as<std::string>(), "PrometheusRule");
  std::set<std::string> alerts;
  for (const YAML::Node& group : rule["spec"]["groups"])
    for (const YAML::Node& alert : group["rules"]) {
      const std::string name = alert["alert"].as<std::string>();
      alerts.insert(name);
      expect_known("alert " + name, alert["expr"].as<std::string>(), known);
      EXPECT_TRUE(alert["labels"]["severity"]) << name;
      for (const char* annotation : {"summary", "description", "runbook"})
        EXPECT_TRUE(alert["annotations"][annotation]) << name << " has no " << annotation;
    }
  EXPECT_EQ(alerts, (std::set<std::string>{"GpuAdmitDown", "GpuAdmitReplicaDown", "GpuAdmitNotReady",
                                           "GpuAdmitReviewLatencyHigh", "GpuAdmitClusterStateStale",
                                           "GpuAdmitCertificateExpiringSoon", "GpuAdmitAuditFailing"}));
}

}  // namespace
