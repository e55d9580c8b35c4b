// Autoscalers as reviewed objects: locate_workload reads a HorizontalPodAutoscaler's or a KEDA
// ScaledObject's scale target with each field's API default, answers a wrong JSON type as a
// malformed request, and the model-load budget and manifest summaries their checks use.
#include <gtest/gtest.h>

#include "engine/k8s/model_load.h"
#include "engine/manifests.h"
#include "engine/workload_summary.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

json yaml(const std::string& text) { return parse_manifests(text, "t.yaml").at(0).object; }

TEST(Autoscalers, HpaDefaults) {
  const Workload v1 = locate_workload(yaml(
      "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
      "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}, maxReplicas: 3}\n"));
  ASSERT_TRUE(v1.scale_target);
  EXPECT_TRUE(v1.supported);
  EXPECT_TRUE(v1.pods.empty());
  EXPECT_EQ(v1.scale_target->kind, "Deployment");
  EXPECT_EQ(v1.scale_target->name, "d");
  EXPECT_EQ(v1.scale_target->min_replicas, 1);  // minReplicas defaults to 1
  EXPECT_FALSE(v1.scale_target->min_replicas_written);
  EXPECT_EQ(v1.scale_target->max_replicas, 3);
  EXPECT_EQ(v1.scale_target->scale_down_window, 300);
  EXPECT_FALSE(v1.scale_target->scale_down_window_written);
  EXPECT_FALSE(v1.scale_target->keda);

  // v1 has no behavior: one written there (pruned by the API server) is not read.
  const Workload v1_behavior = locate_workload(yaml(
      "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
      "spec: {scaleTargetRef: {kind: Deployment, name: d}, maxReplicas: 3, behavior: {scaleDown: {stabilizationWindowSeconds: 900}}}\n"));
  ASSERT_TRUE(v1_behavior.scale_target);
  EXPECT_EQ(v1_behavior.scale_target->scale_down_window, 300);

  for (const char* version : {"v2", "v2beta2"}) {
    const Workload v2 = locate_workload(yaml(
        std::string("apiVersion: autoscaling/") + version + "\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
        "spec: {scaleTargetRef: {kind: StatefulSet, name: s}, minReplicas: 0, maxReplicas: 4,\n"
        "  behavior: {scaleDown: {stabilizationWindowSeconds: 900, selectPolicy: Disabled, policies: [{type: Pods, value: 1, periodSeconds: 60}]}}}\n"));
    ASSERT_TRUE(v2.scale_target) << version;
    EXPECT_EQ(v2.scale_target->min_replicas, 0);
    EXPECT_TRUE(v2.scale_target->min_replicas_written);
    EXPECT_EQ(v2.scale_target->scale_down_window, 900);
    EXPECT_TRUE(v2.scale_target->scale_down_window_written);
    EXPECT_TRUE(v2.scale_target->scale_down_disabled);
    EXPECT_EQ(v2.scale_target->window_field, "spec.behavior.scaleDown.stabilizationWindowSeconds");
  }
  // A version the engine does not know is not reviewed.
  EXPECT_FALSE(locate_workload(yaml("apiVersion: autoscaling/v3\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {}\n")).supported);
}

TEST(Autoscalers, KedaDefaults) {
  const Workload so = locate_workload(yaml(
      "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec: {scaleTargetRef: {name: d}, triggers: []}\n"));
  ASSERT_TRUE(so.scale_target);
  EXPECT_TRUE(so.scale_target->keda);
  EXPECT_EQ(so.scale_target->api_version, "apps/v1");
  EXPECT_EQ(so.scale_target->kind, "Deployment");
  EXPECT_EQ(so.scale_target->min_replicas, 0);
  EXPECT_FALSE(so.scale_target->min_replicas_written);
  EXPECT_EQ(so.scale_target->max_replicas, 100);
  EXPECT_FALSE(so.scale_target->idle_replicas);
  EXPECT_EQ(so.scale_target->scale_down_window, 300);
  EXPECT_EQ(so.scale_target->window_field,
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds");

  const Workload written = locate_workload(yaml(
      "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\n"
      "spec: {scaleTargetRef: {apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: r}, minReplicaCount: 2, maxReplicaCount: 5,\n"
      "  idleReplicaCount: 0, advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: 1200}}}}}\n"));
  ASSERT_TRUE(written.scale_target);
  EXPECT_EQ(written.scale_target->kind, "Rollout");
  EXPECT_EQ(written.scale_target->min_replicas, 2);
  EXPECT_EQ(written.scale_target->max_replicas, 5);
  EXPECT_EQ(written.scale_target->idle_replicas, 0);
  EXPECT_EQ(written.scale_target->scale_down_window, 1200);
  EXPECT_FALSE(locate_workload(yaml("apiVersion: keda.sh/v1beta9\nkind: ScaledObject\nmetadata: {name: s}\nspec: {}\n")).supported);
}

TEST(Autoscalers, WrongTypesAreMalformed) {
  const std::string hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, namespace: t}\n";
  const std::string so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s, namespace: t}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {hpa + "spec: []\n", "spec must be an object"},
      {hpa + "spec: {scaleTargetRef: [a]}\n", "spec.scaleTargetRef must be an object"},
      {hpa + "spec: {scaleTargetRef: {name: 5}}\n", "spec.scaleTargetRef.name must be a string"},
      {hpa + "spec: {scaleTargetRef: {kind: [x]}}\n", "spec.scaleTargetRef.kind must be a string"},
      {hpa + "spec: {maxReplicas: \"3\"}\n", "spec.maxReplicas must be an integer"},
      {hpa + "spec: {minReplicas: 1.5}\n", "spec.minReplicas must be an integer"},
      {hpa + "spec: {behavior: 1}\n", "spec.behavior must be an object"},
      {hpa + "spec: {behavior: {scaleDown: x}}\n", "spec.behavior.scaleDown must be an object"},
      {hpa + "spec: {behavior: {scaleDown: {stabilizationWindowSeconds: x}}}\n",
       "spec.behavior.scaleDown.stabilizationWindowSeconds must be an integer"},
      {hpa + "spec: {behavior: {scaleDown: {selectPolicy: 1}}}\n", "spec.behavior.scaleDown.selectPolicy must be a string"},
      {hpa + "spec: {behavior: {scaleDown: {policies: {}}}}\n", "spec.behavior.scaleDown.policies must be a list"},
      {"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, namespace: t, ownerReferences: {}}\nspec: {}\n",
       "metadata.ownerReferences must be a list"},
      {so + "spec: {minReplicaCount: \"0\"}\n", "spec.minReplicaCount must be an integer"},
      {so + "spec: {idleReplicaCount: true}\n", "spec.idleReplicaCount must be an integer"},
      {so + "spec: {advanced: []}\n", "spec.advanced must be an object"},
      {so + "spec: {advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: \"600\"}}}}}\n",
       "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds must be an integer"},
  };
  auto engine = Engine::from_default();
  for (const auto& [manifest, reason] : cases) {
    const json object = yaml(manifest);
    const Workload workload = locate_workload(object);
    EXPECT_EQ(workload.malformed, reason) << manifest;
    EXPECT_FALSE(workload.scale_target) << manifest;
    const ReviewOutcome outcome = engine->review(request_for_manifest(object, "t"));
    EXPECT_FALSE(outcome.response.allowed) << manifest;
    EXPECT_EQ(outcome.response.status_code, 400) << manifest;
  }
}

TEST(Autoscalers, OwnerReferencesOfOtherTypesDoNotThrow) {
  const Workload w = locate_workload(yaml(
      "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
      "metadata: {name: h, ownerReferences: [{controller: \"yes\", kind: 5, apiVersion: [x]}, 7, {controller: true, kind: ScaledObject, apiVersion: keda.sh/v1alpha1}]}\n"
      "spec: {scaleTargetRef: {kind: Deployment, name: d}, maxReplicas: 2}\n"));
  ASSERT_TRUE(w.scale_target);
  EXPECT_TRUE(w.scale_target->managed_by_keda);  // the third entry
}

TEST(Autoscalers, NegativeAndHugeCountsAreBounded) {
  const Workload w = locate_workload(json::parse(R"({"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler",
    "metadata":{"name":"h"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"minReplicas":-4,
    "maxReplicas":18446744073709551615}})"));
  ASSERT_TRUE(w.scale_target);
  EXPECT_EQ(w.scale_target->min_replicas, 0);
  EXPECT_EQ(w.scale_target->max_replicas, INT64_MAX);
}

TEST(ModelLoad, AnnotationThenLongestStartupProbe) {
  const json spec = json::parse(R"({"containers":[
    {"name":"a","startupProbe":{"initialDelaySeconds":30,"periodSeconds":5,"failureThreshold":10}},
    {"name":"b","startupProbe":{"httpGet":{"port":80}}},
    {"name":"c"}]})");
  EXPECT_EQ(k8s::model_load_seconds(spec, nullptr), 80);  // 30 + 10 × 5 over b's 0 + 3 × 10
  const json annotations = {{"gpu-admit.io/model-load-seconds", "1200"}};
  EXPECT_EQ(k8s::model_load_seconds(spec, &annotations), 1200);
  const json object_annotations = {{"gpu-admit.io/model-load-seconds", "90"}};
  EXPECT_EQ(k8s::model_load_seconds(spec, nullptr, &object_annotations), 90);
  EXPECT_EQ(k8s::model_load_seconds(spec, &annotations, &object_annotations), 1200);  // the pod's first
  // A value probe-defaults would not accept falls through to the probes.
  for (const char* bad : {"0", "86401", "1e3", "-5", " 60", "sixty", ""}) {
    const json invalid = {{"gpu-admit.io/model-load-seconds", bad}};
    EXPECT_EQ(k8s::model_load_seconds(spec, &invalid), 80) << bad;
  }
  EXPECT_FALSE(k8s::model_load_seconds(json::parse(R"({"containers":[{"name":"c"}]})"), nullptr));
  EXPECT_FALSE(k8s::model_load_seconds(json::parse(R"({"containers":"x"})"), nullptr));
  // Hostile numbers saturate; wrong types take the default.
  const json huge = json::parse(R"({"containers":[{"startupProbe":{"initialDelaySeconds":9223372036854775807,
    "periodSeconds":9223372036854775807,"failureThreshold":18446744073709551615}},{"startupProbe":{"periodSeconds":"x"}}]})");
  EXPECT_EQ(k8s::model_load_seconds(huge, nullptr), INT64_MAX);
}

TEST(WorkloadSummary, GpusPerPodReplicasAndLoad) {
  const GpuResources gpu;
  const json deployment = yaml(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: d, annotations: {gpu-admit.io/model-load-seconds: "45"}}
spec:
  replicas: 3
  template:
    spec:
      initContainers: [{name: i, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]
      containers:
      - {name: a, image: i, resources: {limits: {nvidia.com/gpu: 2}}}
      - {name: b, image: i, resources: {limits: {nvidia.com/mig-1g.10gb: 1}}}
)");
  auto summary = summarize_workload(deployment, "ns", WorkloadKinds::builtin(), gpu, nullptr);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->first, "ns/Deployment/d");
  EXPECT_EQ(summary->second.gpus_per_pod, 3);
  EXPECT_EQ(summary->second.pods, 3);
  EXPECT_EQ(summary->second.model_load_seconds, 45);
  EXPECT_FALSE(summary->second.gpus_unresolved);
  // An unknown claim template: its devices count as none, and the summary says so.
  const json dra = yaml(R"(apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s, namespace: other}
spec:
  template:
    spec:
      resourceClaims: [{name: g, resourceClaimTemplateName: missing}]
      containers: [{name: c, image: i, resources: {claims: [{name: g}]}}]
)");
  summary = summarize_workload(dra, "ns", WorkloadKinds::builtin(), gpu, nullptr);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->first, "other/StatefulSet/s");
  EXPECT_EQ(summary->second.gpus_per_pod, 0);
  EXPECT_TRUE(summary->second.gpus_unresolved);
  EXPECT_EQ(summary->second.pods, 1);  // replicas defaults to 1
  EXPECT_FALSE(summary->second.model_load_seconds);
  // Objects without pod templates, and malformed ones, have none.
  EXPECT_FALSE(summarize_workload(yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"), "ns", WorkloadKinds::builtin(), gpu, nullptr));
  EXPECT_FALSE(summarize_workload(yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: 3}\n"), "ns",
                                  WorkloadKinds::builtin(), gpu, nullptr));
}

}  // namespace
}  // namespace gpuadmit
