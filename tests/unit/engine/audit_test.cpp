// The audit (engine/audit.h): a stored object is judged as its creation would be today, its own
// pods' room and quota are not asked for twice, a pod is judged through the controller whose
// template made it, and the PolicyReports carry every result within their size.
#include <gtest/gtest.h>

#include "engine/audit.h"
#include "engine/capacity/cluster_model.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

constexpr const char* kConfig = R"(
policies:
  gpu-tolerations:
    mode: enforce
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  image-tags:
    mode: warn
  env-secrets:
    mode: enforce
  gpu-capacity:
    mode: enforce
  gpu-quota:
    mode: enforce
    budgets: [{namespace: team, gpus: 8}]
)";

json deployment(const std::string& name, const std::string& image, int gpus, json env = json::array()) {
  json container = {{"name", "server"}, {"image", image}, {"resources", {{"limits", {{"nvidia.com/gpu", gpus}}}}}};
  if (!env.empty()) container["env"] = env;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "team"}, {"uid", "uid-" + name}}},
          {"spec",
           {{"replicas", 1},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec",
               {{"tolerations", json::array({{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}})},
                {"containers", json::array({container})}}}}}}}};
}

const audit::PolicyResult* result_of(const audit::AuditedObject& object, const std::string& policy) {
  for (const audit::PolicyResult& result : object.results)
    if (result.policy == policy) return &result;
  return nullptr;
}

// One node of 8 GPUs that a pod of `deployment` fills: what is running now.
std::unique_ptr<capacity::ClusterModel> cluster_running(const std::string& deployment_name) {
  auto model = std::make_unique<capacity::ClusterModel>();
  model->apply(json::parse(R"({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1", "labels": {
      "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}},
    "status": {"allocatable": {"nvidia.com/gpu": "8", "cpu": "64", "memory": "512Gi", "pods": "110"},
               "capacity": {"nvidia.com/gpu": "8", "cpu": "64", "memory": "512Gi", "pods": "110"}}})"));
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", deployment_name + "-abc-1"},
                {"namespace", "team"},
                {"ownerReferences",
                 json::array({{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", deployment_name + "-abc"},
                               {"uid", "rs"}, {"controller", true}}})}}},
              {"spec",
               {{"nodeName", "gpu-1"},
                {"containers", json::array({{{"name", "server"}, {"image", "vllm/vllm-openai:v0.6.3"},
                                             {"resources", {{"limits", {{"nvidia.com/gpu", 8}}}}}}})}}},
              {"status", {{"phase", "Running"}}}};
  model->apply(pod);
  return model;
}

TEST(Audit, AStoredObjectIsJudgedAsItsCreationWouldBeToday) {
  auto engine = Engine::from_yaml(kConfig, "test");
  json object = deployment("llama", "vllm/vllm-openai:latest", 1, json::array({{{"name", "HF_TOKEN"}, {"value", "hf_x"}}}));
  object["spec"]["template"]["spec"].erase("tolerations");
  const auto audited = audit::audit_object(*engine, object, nullptr);
  ASSERT_TRUE(audited);
  EXPECT_EQ(audited->ref.text(), "Deployment team/llama");
  EXPECT_EQ(audited->ref.uid, "uid-llama");
  EXPECT_TRUE(audited->denied_today);

  const audit::PolicyResult* tags = result_of(*audited, "image-tags");
  ASSERT_NE(tags, nullptr);
  EXPECT_EQ(tags->result, audit::Result::Fail);
  EXPECT_FALSE(tags->denied_today);
  EXPECT_TRUE(tags->denied_if_enforced);
  EXPECT_NE(tags->message().find("spec.template.spec.containers[0].image: "), std::string::npos) << tags->message();

  const audit::PolicyResult* secrets = result_of(*audited, "env-secrets");
  ASSERT_NE(secrets, nullptr);
  EXPECT_EQ(secrets->result, audit::Result::Fail);
  EXPECT_TRUE(secrets->denied_today);
  EXPECT_FALSE(secrets->denied_if_enforced);

  // The mutation a creation would get today, which the stored object lacks.
  const audit::PolicyResult* tolerations = result_of(*audited, "gpu-tolerations");
  ASSERT_NE(tolerations, nullptr);
  EXPECT_EQ(tolerations->result, audit::Result::Warn);
  EXPECT_TRUE(tolerations->message().starts_with("not applied to the stored object: ")) << tolerations->message();

  // A policy that found nothing passes; one that is off is not listed.
  const audit::PolicyResult* quota = result_of(*audited, "gpu-quota");
  ASSERT_NE(quota, nullptr);
  EXPECT_EQ(quota->result, audit::Result::Pass);
  EXPECT_EQ(result_of(*audited, "dev-shm"), nullptr);
}

TEST(Audit, ItsOwnPodsRoomAndQuotaAreNotAskedForTwice) {
  auto engine = Engine::from_yaml(kConfig, "test");
  auto cluster = cluster_running("llama");
  const json object = deployment("llama", "vllm/vllm-openai:v0.6.3", 8);
  // As a creation (check): 8 GPUs in use in team, and 8 more asked for: over the budget of 8,
  // and no room now.
  const ReviewOutcome created = engine->review(request_for_manifest(object, "team"), cluster.get());
  EXPECT_FALSE(created.response.allowed);
  ASSERT_FALSE(created.denials.empty());
  EXPECT_EQ(created.denials[0].policy, "gpu-quota");
  // Stored: those 8 GPUs are its own.
  const auto audited = audit::audit_object(*engine, object, cluster.get());
  ASSERT_TRUE(audited);
  EXPECT_FALSE(audited->denied_today);
  EXPECT_EQ(result_of(*audited, "gpu-quota")->result, audit::Result::Pass);
  EXPECT_EQ(result_of(*audited, "gpu-capacity")->result, audit::Result::Pass) << result_of(*audited, "gpu-capacity")->message();
  // A second Deployment is not its owner's: it does not fit the budget now, and a creation of
  // it is judged as ever (the audit judges the stored object only against what can never work).
  const auto other = audit::audit_object(*engine, deployment("other", "vllm/vllm-openai:v0.6.3", 16), cluster.get());
  ASSERT_TRUE(other);
  EXPECT_EQ(result_of(*other, "gpu-capacity")->result, audit::Result::Fail) << "16 GPUs in one pod never fit an 8-GPU node";
  EXPECT_TRUE(other->denied_today);
}

TEST(Audit, APodIsJudgedThroughTheControllerWhoseTemplateMadeIt) {
  const json owned = json::parse(R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "ownerReferences": [
      {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]}})");
  EXPECT_TRUE(audit::judged_through_owner(owned, {"apps/ReplicaSet", "/Pod"}));
  // The owner's kind is not read (a snapshot of pods alone, an operator's kind gpu-admit does
  // not know): the pod is judged itself.
  EXPECT_FALSE(audit::judged_through_owner(owned, {"/Pod"}));
  json not_controller = owned;
  not_controller["metadata"]["ownerReferences"][0]["controller"] = false;
  EXPECT_FALSE(audit::judged_through_owner(not_controller, {"apps/ReplicaSet"}));
  // Hostile shapes are no owner.
  for (const char* text : {R"({"metadata": {"ownerReferences": "x"}})", R"({"metadata": {"ownerReferences": [1, null]}})",
                           R"({"metadata": []})", R"([])", R"({"metadata": {"ownerReferences": [{"controller": "true"}]}})"})
    EXPECT_FALSE(audit::judged_through_owner(json::parse(text), {"apps/ReplicaSet", "/"})) << text;
  EXPECT_EQ(audit::kind_key(json::parse(R"({"apiVersion": "batch/v1", "kind": "Job"})")), "batch/Job");
  EXPECT_EQ(audit::kind_key(json::parse(R"({"apiVersion": "v1", "kind": "Pod"})")), "/Pod");
}

TEST(Audit, AFinishedPodAndAnObjectWithoutPodsAreNotAudited) {
  auto engine = Engine::from_yaml(kConfig, "test");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "done"}, {"namespace", "team"}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "x:latest"}}})}}},
              {"status", {{"phase", "Succeeded"}}}};
  EXPECT_FALSE(audit::audit_object(*engine, pod, nullptr));
  pod["status"]["phase"] = "Running";
  EXPECT_TRUE(audit::audit_object(*engine, pod, nullptr));
  EXPECT_FALSE(audit::audit_object(*engine, json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})"), nullptr));
}

TEST(Audit, AnObjectGpuAdmitCannotReadIsAnErrorNotAPass) {
  auto engine = Engine::from_yaml(kConfig, "test");
  json object = deployment("bad", "vllm/vllm-openai:v0.6.3", 1);
  object["spec"]["template"] = "not an object";
  const auto audited = audit::audit_object(*engine, object, nullptr);
  ASSERT_TRUE(audited);
  ASSERT_EQ(audited->results.size(), 1u);
  EXPECT_EQ(audited->results[0].policy, "gpu-admit");
  EXPECT_EQ(audited->results[0].result, audit::Result::Error);
  EXPECT_NE(audited->results[0].message().find("spec.template"), std::string::npos) << audited->results[0].message();
}

TEST(AuditReport, TalliesEveryResultAndKeepsTheFlaggedObjectsUpToItsCap) {
  auto engine = Engine::from_yaml(kConfig, "test");
  audit::AuditReport report(2);
  for (int i = 0; i < 3; ++i)
    report.add(*audit::audit_object(*engine, deployment("tagless-" + std::to_string(i), "vllm/vllm-openai:latest", 1), nullptr));
  report.add(*audit::audit_object(*engine, deployment("clean", "vllm/vllm-openai:v0.6.3", 1), nullptr));
  report.skip();
  EXPECT_EQ(report.objects, 4u);
  EXPECT_EQ(report.skipped, 1u);
  EXPECT_EQ(report.flagged.size(), 2u);
  EXPECT_EQ(report.left_out, 1u);
  EXPECT_EQ(report.denied_today, 0u);
  EXPECT_EQ(report.denied_if_enforced, 3u);
  EXPECT_EQ(report.policies["image-tags"].results.fail, 3u);
  EXPECT_EQ(report.policies["image-tags"].results.pass, 1u);
  EXPECT_EQ(report.policies["image-tags"].denied_if_enforced, 3u);
  EXPECT_EQ(report.policies["image-tags"].mode, Mode::Warn);
  EXPECT_EQ(report.namespaces["team"].fail, 3u);
}

TEST(PolicyReports, OnePerNamespaceAndTheClusterTotals) {
  auto engine = Engine::from_yaml(kConfig, "test");
  audit::AuditReport report;
  report.add(*audit::audit_object(*engine, deployment("tagless", "vllm/vllm-openai:latest", 1), nullptr));
  json clean = deployment("clean", "vllm/vllm-openai:v0.6.3", 1);
  clean["metadata"]["namespace"] = "other";
  report.add(*audit::audit_object(*engine, clean, nullptr));
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000) + std::chrono::milliseconds(5));
  const std::vector<json> reports = audit::policy_reports(report, at);
  ASSERT_EQ(reports.size(), 3u);
  const json& other = reports[0];
  const json& team = reports[1];
  const json& cluster = reports[2];
  EXPECT_EQ(other["kind"], "PolicyReport");
  EXPECT_EQ(other["metadata"]["namespace"], "other");
  EXPECT_EQ(other["metadata"]["name"], "gpu-admit");
  EXPECT_EQ(other["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gpu-admit");
  EXPECT_EQ(other["results"], json::array());
  EXPECT_GT(other["summary"]["pass"].get<int>(), 0);
  EXPECT_EQ(other["summary"]["fail"], 0);

  ASSERT_EQ(team["results"].size(), 1u) << team.dump(2);
  const json& result = team["results"][0];
  EXPECT_EQ(result["policy"], "image-tags");
  EXPECT_EQ(result["result"], "fail");
  EXPECT_EQ(result["severity"], "medium");
  EXPECT_EQ(result["source"], "gpu-admit");
  EXPECT_EQ(result["properties"]["mode"], "warn");
  EXPECT_EQ(result["properties"]["deniedIfEnforced"], "true");
  EXPECT_EQ(result["properties"]["deniedToday"], "false");
  EXPECT_EQ(result["resources"], json::parse(R"([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "tagless",
                                                  "namespace": "team", "uid": "uid-tagless"}])"));
  EXPECT_EQ(result["timestamp"], json::parse(R"({"seconds": 1700000000, "nanos": 5000000})"));

  EXPECT_EQ(cluster["kind"], "ClusterPolicyReport");
  EXPECT_FALSE(cluster["metadata"].contains("namespace"));
  EXPECT_EQ(cluster["summary"]["fail"], 1);
  EXPECT_EQ(cluster["summary"]["pass"].get<int>(), other["summary"]["pass"].get<int>() + team["summary"]["pass"].get<int>());
  // Without a time, no timestamp: stable output for `audit -o policyreport`.
  EXPECT_FALSE(audit::policy_reports(report)[1]["results"][0].contains("timestamp"));
}

TEST(PolicyReports, PastTheirCapResultsAreCountedNotListed) {
  auto engine = Engine::from_yaml(kConfig, "test");
  audit::AuditReport report;
  const audit::AuditedObject one = *audit::audit_object(*engine, deployment("tagless", "vllm/vllm-openai:latest", 1), nullptr);
  for (std::size_t i = 0; i < audit::kMaxReportResults + 7; ++i) {
    audit::AuditedObject copy = one;
    copy.ref.name = "tagless-" + std::to_string(i);
    report.add(std::move(copy));
  }
  const std::vector<json> reports = audit::policy_reports(report);
  EXPECT_EQ(reports[0]["results"].size(), audit::kMaxReportResults);
  EXPECT_EQ(reports[0]["metadata"]["annotations"]["gpu-admit.io/results-left-out"], "7");
  EXPECT_EQ(reports[0]["summary"]["fail"], audit::kMaxReportResults + 7);
  // A message is bounded too.
  audit::PolicyResult long_one;
  long_one.result = audit::Result::Warn;
  long_one.findings.push_back({Finding::Severity::Advice, "f", std::string(5000, 'x')});
  EXPECT_LE(long_one.message().size(), audit::kMaxMessage);
}

}  // namespace
}  // namespace gpuadmit
