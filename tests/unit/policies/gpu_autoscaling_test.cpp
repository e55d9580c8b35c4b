// gpu-autoscaling and gpu-quota's autoscaler check, row by row: an autoscaler, the manifests its
// target may be written in (what `check` reads), optionally the cluster of
// policies/gpu-autoscaling/cluster.json (what admission reads), and the outcome.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/capacity/cluster_model.h"
#include "engine/manifests.h"
#include "engine/workload_summary.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

enum class Expect { Allow, Deny, Warn };

struct Row {
  std::string name;
  std::string policy;      // the `policies:` entries, as YAML
  std::string targets;     // manifests beside the autoscaler (multi-document YAML), may be empty
  std::string autoscaler;  // one object, as YAML
  Expect expect;
  std::vector<std::string> says;
  bool cluster = false;
};

std::string indent(const std::string& text) {
  std::string out = "  ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

const capacity::ClusterModel& sample_cluster() {
  static const auto model = capacity::ClusterModel::load(
      {(std::filesystem::path(GPUADMIT_SOURCE_DIR) / "policies/gpu-autoscaling/cluster.json").string()}, GpuResources{});
  return *model;
}

ReviewOutcome review(const Row& row) {
  auto engine = Engine::from_yaml("policies:\n" + indent(row.policy), "test.yaml");
  k8s::ObjectCatalog catalog;
  if (!row.targets.empty()) {
    const auto documents = parse_manifests(row.targets, "targets.yaml");
    for (const ManifestDocument& document : documents)
      if (k8s::ObjectCatalog::holds(document.object.value("kind", ""))) {
        json object = document.object;
        if (!object["metadata"].contains("namespace")) object["metadata"]["namespace"] = "ml-serving";
        catalog.upsert(object);
      }
    for (const ManifestDocument& document : documents)
      if (auto summary = summarize_workload(document.object, "ml-serving", engine->config().kinds, engine->config().gpu,
                                            &catalog.claims))
        catalog.workloads.insert_or_assign(summary->first, summary->second);
  }
  json object = parse_manifests(row.autoscaler, "autoscaler.yaml").at(0).object;
  return engine->review(request_for_manifest(object, "ml-serving", engine->config().kinds),
                        row.cluster ? &sample_cluster() : nullptr, ReviewPhases::All, {},
                        row.targets.empty() ? nullptr : &catalog);
}

class AutoscalingTable : public ::testing::TestWithParam<Row> {};

TEST_P(AutoscalingTable, Outcome) {
  const Row& row = GetParam();
  const ReviewOutcome outcome = review(row);
  const Response& response = outcome.response;
  std::string said = response.status_message;
  for (const std::string& warning : response.warnings) said += "\n" + warning;
  for (const auto& [key, value] : response.audit_annotations) said += "\n" + key + ": " + value;
  EXPECT_EQ(outcome.skipped, "") << said;
  switch (row.expect) {
    case Expect::Allow:
      EXPECT_TRUE(response.allowed) << said;
      EXPECT_TRUE(response.warnings.empty()) << said;
      break;
    case Expect::Deny:
      EXPECT_FALSE(response.allowed) << said;
      EXPECT_EQ(response.status_code, 403) << said;
      break;
    case Expect::Warn:
      EXPECT_TRUE(response.allowed) << said;
      EXPECT_FALSE(response.warnings.empty()) << said;
      break;
  }
  for (const std::string& text : row.says) EXPECT_NE(said.find(text), std::string::npos) << "missing '" << text << "' in:\n" << said;
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  std::string name = info.param.name;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

constexpr const char* kPolicy = "gpu-autoscaling: {mode: enforce}\n";

// llm: 2 GPUs per pod, a startupProbe budget of 0 + 60 × 10 = 600 s.
constexpr const char* kLlm = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: llm}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.10.0
        resources: {limits: {nvidia.com/gpu: 2}}
        startupProbe: {httpGet: {path: /health, port: 8000}, periodSeconds: 10, failureThreshold: 60}
)";

std::string annotated(const std::string& seconds, bool on_object = false) {
  const std::string annotation = "annotations: {gpu-admit.io/model-load-seconds: \"" + seconds + "\"}";
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm" + (on_object ? ", " + annotation : "") +
         "}\nspec:\n  template:\n    metadata: {" + (on_object ? "" : annotation) +
         "}\n    spec:\n      containers:\n      - {name: c, image: i, resources: {limits: {nvidia.com/gpu: 1}}}\n";
}

std::string hpa(const std::string& spec, const std::string& version = "v2", const std::string& metadata = "{name: h}") {
  return "apiVersion: autoscaling/" + version + "\nkind: HorizontalPodAutoscaler\nmetadata: " + metadata +
         "\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}\n" + spec;
}

std::string scaled_object(const std::string& spec, const std::string& ref = "{name: llm}") {
  return "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: so}\nspec:\n  scaleTargetRef: " + ref + "\n" + spec +
         "  triggers: [{type: cpu, metricType: Utilization, metadata: {value: \"80\"}}]\n";
}

constexpr const char* kWindow600 = "  behavior: {scaleDown: {stabilizationWindowSeconds: 600}}\n";
constexpr const char* kKedaWindow600 =
    "  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: 600}}}}\n";

INSTANTIATE_TEST_SUITE_P(GpuAutoscaling, AutoscalingTable, ::testing::Values(
    Row{"window at the minimum", kPolicy, kLlm, hpa("  maxReplicas: 2\n" + std::string(kWindow600)), Expect::Allow, {}},
    Row{"window one second short", kPolicy, kLlm,
        hpa("  maxReplicas: 2\n  behavior: {scaleDown: {stabilizationWindowSeconds: 599}}\n"), Expect::Deny,
        {"[gpu-autoscaling] spec.behavior.scaleDown.stabilizationWindowSeconds: scale-down stabilization of 599 s for "
         "Deployment llm (GPU pods, per the manifests)", "set it to at least 600 s"}},
    Row{"unset window is the HPA's 300", kPolicy, kLlm, hpa("  maxReplicas: 2\n"), Expect::Deny,
        {"of 300 s (the default: the field is not set)"}},
    Row{"v1 is always 300", kPolicy, kLlm, hpa("  maxReplicas: 2\n  minReplicas: 1\n", "v1"), Expect::Deny, {"of 300 s (the default"}},
    Row{"v2beta1 has no behavior either", kPolicy, kLlm, hpa("  maxReplicas: 2\n" + std::string(kWindow600), "v2beta1"),
        Expect::Deny, {"of 300 s (the default"}},
    Row{"v2beta2 reads behavior", kPolicy, kLlm, hpa("  maxReplicas: 2\n" + std::string(kWindow600), "v2beta2"), Expect::Allow, {}},
    Row{"scale down disabled", kPolicy, kLlm, hpa("  maxReplicas: 2\n  behavior: {scaleDown: {selectPolicy: Disabled}}\n"),
        Expect::Allow, {}},
    Row{"a configured shorter minimum", "gpu-autoscaling: {mode: enforce, minScaleDownWindowSeconds: 300}\n", kLlm,
        hpa("  maxReplicas: 2\n"), Expect::Allow, {}},
    Row{"window check as a warning", "gpu-autoscaling: {mode: enforce, scaleDownWindow: warning}\n", kLlm,
        hpa("  maxReplicas: 2\n"), Expect::Warn, {"of 300 s"}},
    Row{"window check off", "gpu-autoscaling: {mode: enforce, scaleDownWindow: off}\n", kLlm, hpa("  maxReplicas: 2\n"),
        Expect::Allow, {}},
    Row{"warn mode", "gpu-autoscaling: {mode: warn}\n", kLlm, hpa("  maxReplicas: 2\n"), Expect::Warn, {"[gpu-autoscaling]"}},
    Row{"no GPUs in the target", kPolicy,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n",
        hpa("  minReplicas: 0\n  maxReplicas: 2\n"), Expect::Allow, {}},
    Row{"DRA template claim makes it a GPU workload", kPolicy,
        R"(apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: two}
spec: {spec: {devices: {requests: [{name: g, exactly: {deviceClassName: gpu.nvidia.com, count: 2}}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: llm}
spec:
  template:
    spec:
      resourceClaims: [{name: g, resourceClaimTemplateName: two}]
      containers: [{name: c, image: i, resources: {claims: [{name: g}]}}]
)",
        hpa("  maxReplicas: 2\n"), Expect::Deny, {"of 300 s"}},
    Row{"scale to zero over the threshold", kPolicy, annotated("61"), hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)),
        Expect::Deny, {"[gpu-autoscaling] spec.minReplicas: spec.minReplicas is 0: Deployment llm (GPU pods, per the manifests) "
                       "scales to zero, and its model-load budget is 61 s (over 60 s)"}},
    Row{"scale to zero at the threshold", kPolicy, annotated("60"), hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)),
        Expect::Allow, {}},
    Row{"the object's annotation counts", kPolicy, annotated("900", true),
        hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)), Expect::Deny, {"budget is 900 s"}},
    Row{"the startupProbe's budget counts", kPolicy, kLlm, hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)),
        Expect::Deny, {"budget is 600 s"}},
    Row{"a configured higher threshold", "gpu-autoscaling: {mode: enforce, scaleToZeroMaxLoadSeconds: 600}\n", kLlm,
        hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)), Expect::Allow, {}},
    Row{"unknown load time is an advice", kPolicy,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]\n",
        hpa("  minReplicas: 0\n  maxReplicas: 2\n" + std::string(kWindow600)), Expect::Warn,
        {"could not check scale to zero: spec.minReplicas is 0 and the model-load time of Deployment llm"}},
    Row{"KEDA's default minReplicaCount is 0", kPolicy, kLlm, scaled_object(kKedaWindow600), Expect::Deny,
        {"[gpu-autoscaling] spec.minReplicaCount: spec.minReplicaCount is 0 (KEDA's default)"}},
    Row{"KEDA at least one replica", kPolicy, kLlm, scaled_object("  minReplicaCount: 1\n" + std::string(kKedaWindow600)),
        Expect::Allow, {}},
    Row{"KEDA idleReplicaCount 0", kPolicy, kLlm,
        scaled_object("  minReplicaCount: 1\n  idleReplicaCount: 0\n" + std::string(kKedaWindow600)), Expect::Deny,
        {"spec.idleReplicaCount: idleReplicaCount is 0"}},
    Row{"KEDA window unset is 300", kPolicy, kLlm, scaled_object("  minReplicaCount: 1\n"), Expect::Deny,
        {"spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds: scale-down stabilization of 300 s"}},
    Row{"KEDA names a StatefulSet", kPolicy,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]\n",
        scaled_object("  minReplicaCount: 1\n", "{apiVersion: apps/v1, kind: StatefulSet, name: llm}"), Expect::Deny,
        {"StatefulSet llm (GPU pods"}},
    Row{"KEDA's default kind is Deployment, not a StatefulSet of that name", kPolicy,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]\n",
        scaled_object("  minReplicaCount: 1\n"), Expect::Warn, {"could not check: Deployment llm is not in the manifests read"}},
    Row{"a target in another namespace is not this one's", kPolicy,
        std::string("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm, namespace: other}\n") +
            "spec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]\n",
        hpa("  maxReplicas: 2\n"), Expect::Warn, {"could not check"}},
    Row{"unresolved is an advice even in enforce mode", kPolicy, "", hpa("  maxReplicas: 2\n"), Expect::Warn,
        {"spec.scaleTargetRef: could not check: Deployment llm is not in anything gpu-admit can read"}},
    Row{"KEDA's own HPA is skipped", kPolicy, kLlm,
        hpa("  maxReplicas: 2\n", "v2",
            "{name: keda-hpa-so, ownerReferences: [{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: so, uid: u, controller: true}]}"),
        Expect::Allow, {}},
    Row{"another owner's HPA is not skipped", kPolicy, kLlm,
        hpa("  maxReplicas: 2\n", "v2", "{name: h, ownerReferences: [{apiVersion: example.com/v1, kind: ScaledObject, name: so, uid: u, controller: true}]}"),
        Expect::Deny, {"of 300 s"}},
    Row{"exempt by its own annotation", "gpu-autoscaling: {mode: enforce, exemptibleByAnnotation: true}\n", kLlm,
        hpa("  maxReplicas: 2\n", "v2", "{name: h, annotations: {gpu-admit.io/exempt: gpu-autoscaling}}"), Expect::Allow, {}},
    Row{"from the cluster's pods at admission", kPolicy, "", hpa("  maxReplicas: 2\n"), Expect::Deny,
        {"Deployment llm (GPU pods, per the cluster)"}, true},
    Row{"the manifests win over the running pods", kPolicy,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n",
        hpa("  maxReplicas: 2\n"), Expect::Allow, {}, true}),
    row_name);

constexpr const char* kQuota = "gpu-quota: {mode: enforce, budgets: [{namespace: ml-serving, gpus: 12}]}\n";

// The cluster: ml-serving uses 6 GPUs, 4 of them llm's (2 pods × 2).
INSTANTIATE_TEST_SUITE_P(GpuQuotaAutoscalers, AutoscalingTable, ::testing::Values(
    Row{"max fills the budget exactly", kQuota, "", hpa("  maxReplicas: 5\n"), Expect::Allow, {}, true},
    Row{"one replica over", kQuota, "", hpa("  maxReplicas: 6\n"), Expect::Deny,
        {"[gpu-quota] spec.maxReplicas: namespace ml-serving uses 6 of its 12 GPUs (4 of them Deployment llm's); at 6 "
         "replicas × 2 GPUs per pod Deployment llm would take it to 14; lower maxReplicas to 5"}, true},
    Row{"the manifests' GPUs per pod, the cluster's pods subtracted", kQuota,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {nvidia.com/gpu: 4}}}]\n",
        hpa("  maxReplicas: 3\n"), Expect::Deny, {"at 3 replicas × 4 GPUs per pod Deployment llm would take it to 14; lower maxReplicas to 2"}, true},
    Row{"KEDA's default maxReplicaCount 100", kQuota, "", scaled_object("  minReplicaCount: 1\n"), Expect::Deny,
        {"spec.maxReplicaCount:", "at 100 replicas", "lower maxReplicaCount to 5"}, true},
    Row{"huge maxReplicas saturates", kQuota, "", hpa("  maxReplicas: 9223372036854775807\n"), Expect::Deny,
        {"would take it to 9223372036854775807"}, true},
    Row{"a StatefulSet's own pods", kQuota, "",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: r}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: ranker}\n  maxReplicas: 7\n",
        Expect::Allow, {}, true},
    Row{"a StatefulSet's own pods, one over", kQuota, "",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: r}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: ranker}\n  maxReplicas: 8\n",
        Expect::Deny, {"(1 of them StatefulSet ranker's)", "lower maxReplicas to 7"}, true},
    Row{"no budget for the namespace", "gpu-quota: {mode: enforce, budgets: [{namespace: other, gpus: 1}]}\n", "",
        hpa("  maxReplicas: 1000\n"), Expect::Allow, {}, true},
    Row{"a target it cannot see is an advice", kQuota, "",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: g}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}\n  maxReplicas: 1000\n",
        Expect::Warn, {"could not check: Deployment ghost is not in the cluster's pods", "not checked against the namespace's GPU budget"}, true},
    Row{"no GPUs in the target", kQuota, "", 
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: w}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 1000\n",
        Expect::Allow, {}, true}),
    row_name);

// Every shipped policy on autoscalers, which have no pods: nothing but the two that review them
// reports anything, and none fails.
TEST(Autoscalers, NoOtherPolicyActsOnThem) {
  auto engine = Engine::from_default();
  for (const std::string& manifest :
       {hpa("  maxReplicas: 2\n"), hpa("  maxReplicas: 2\n", "v1"), scaled_object("  maxReplicaCount: 2\n")})
    for (const capacity::ClusterModel* cluster : {static_cast<const capacity::ClusterModel*>(nullptr), &sample_cluster()}) {
      const json object = parse_manifests(manifest, "a.yaml").at(0).object;
      const ReviewOutcome outcome = engine->review(request_for_manifest(object, "ml-serving", engine->config().kinds), cluster);
      EXPECT_EQ(outcome.skipped, "");
      EXPECT_TRUE(outcome.response.allowed);
      EXPECT_TRUE(outcome.response.patch.empty());
      for (const PolicyOutcome& policy : outcome.policies) {
        EXPECT_FALSE(policy.error) << policy.policy;
        if (policy.policy != "gpu-autoscaling" && policy.policy != "gpu-quota") {
          EXPECT_FALSE(policy.fired) << policy.policy;
        }
      }
    }
}

TEST(GpuAutoscalingConfig, ErrorsNameTheKey) {
  for (const auto& [yaml, key] : std::vector<std::pair<std::string, std::string>>{
           {"{minScaleDownWindowSeconds: 3601}", "minScaleDownWindowSeconds"},
           {"{minScaleDownWindowSeconds: -1}", "minScaleDownWindowSeconds"},
           {"{scaleToZeroMaxLoadSeconds: -5}", "scaleToZeroMaxLoadSeconds"},
           {"{scaleToZero: deny}", "scaleToZero"},
           {"{windowSeconds: 5}", "windowSeconds"}}) {
    try {
      Engine::from_yaml("policies:\n  gpu-autoscaling: " + yaml + "\n", "c.yaml");
      ADD_FAILURE() << yaml;
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(key), std::string::npos) << error.what();
    }
  }
}

}  // namespace
}  // namespace gpuadmit
