// gpu-availability and gpu-spread: which workloads count, how replicas, PodDisruptionBudgets (from
// check's manifests and from the cluster) and node spreading are judged, and that the added
// anti-affinity merges into what is there, once.
#include <gtest/gtest.h>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/scheduling_objects.h"
#include "engine/manifests.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

constexpr const char* kNamespace = "team-a";

// A workload of `kind` whose one template runs a 1-GPU container; `replicas` null leaves it unset.
json workload(const std::string& kind, json replicas, json template_spec = json::object()) {
  json spec = {{"containers", json::array({{{"name", "server"}, {"image", "vllm/vllm-openai:v0.10.0"},
                                            {"resources", {{"limits", {{"nvidia.com/gpu", 1}}}}}}})}};
  for (auto& [key, value] : template_spec.items()) spec[key] = value;
  const json templ = {{"metadata", {{"labels", {{"app", "llm"}, {"tier", "serve"}}}}}, {"spec", spec}};
  json object = {{"apiVersion", "apps/v1"}, {"kind", kind}, {"metadata", {{"name", "llm"}}}, {"spec", json::object()}};
  if (kind == "LeaderWorkerSet") {
    object["apiVersion"] = "leaderworkerset.x-k8s.io/v1";
    object["spec"]["leaderWorkerTemplate"] = {{"size", 2}, {"workerTemplate", templ}};
  } else if (kind == "Job") {
    object["apiVersion"] = "batch/v1";
    object["spec"]["template"] = templ;
    object["spec"]["template"]["spec"]["restartPolicy"] = "Never";
  } else if (kind == "Pod") {
    object = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "llm"}}}, {"spec", spec}};
  } else {
    object["spec"]["selector"] = {{"matchLabels", {{"app", "llm"}}}};
    object["spec"]["template"] = templ;
  }
  if (!replicas.is_null() && kind != "Pod") object["spec"]["replicas"] = replicas;
  return object;
}

json deployment(json replicas, json template_spec = json::object()) {
  return workload("Deployment", std::move(replicas), std::move(template_spec));
}

json budget(const std::string& name, json spec, const std::string& ns = kNamespace,
            const std::string& api_version = "policy/v1") {
  return {{"apiVersion", api_version}, {"kind", "PodDisruptionBudget"},
          {"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", spec}};
}

json selecting_llm(json rest) {
  rest["selector"] = {{"matchLabels", {{"app", "llm"}}}};
  return rest;
}

const json kSpreadByAntiAffinity = {{"affinity", {{"podAntiAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution",
    {{{"weight", 100}, {"podAffinityTerm", {{"labelSelector", {{"matchLabels", {{"app", "llm"}}}}},
                                             {"topologyKey", "kubernetes.io/hostname"}}}}}}}}}}};

json anti_affinity_term(json term) {
  term["topologyKey"] = term.value("topologyKey", "kubernetes.io/hostname");
  if (!term.contains("labelSelector")) term["labelSelector"] = {{"matchLabels", {{"app", "llm"}}}};
  return {{"affinity", {{"podAntiAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution", {term}}}}}}};
}

struct Where {
  std::vector<json> manifests;  // check's catalog; no catalog when `with_catalog` is false
  bool with_catalog = false;
  std::vector<json> cluster;  // the cluster's objects; no cluster when `with_cluster` is false
  bool with_cluster = false;
};
Where in_manifests(std::vector<json> objects) { return {std::move(objects), true, {}, false}; }
Where in_cluster(std::vector<json> objects) { return {{}, false, std::move(objects), true}; }
Where in_both(std::vector<json> manifests, std::vector<json> cluster) {
  return {std::move(manifests), true, std::move(cluster), true};
}

ReviewOutcome review(const json& object, const Where& where = {},
                     const std::string& policy = "gpu-availability: {mode: warn}", const std::string& operation = "CREATE") {
  auto engine = Engine::from_yaml("policies:\n  " + policy + "\n", "test.yaml");
  k8s::ObjectCatalog catalog;
  for (const json& item : where.manifests) catalog.upsert(item);
  capacity::ClusterModel cluster;
  for (const json& item : where.cluster) cluster.apply(item);
  Request request = request_for_manifest(object, kNamespace);
  if (operation == "UPDATE") {
    request.operation = "UPDATE";
    request.old_object = object;
  }
  return engine->review(request, where.with_cluster ? &cluster : nullptr, ReviewPhases::All, {},
                        where.with_catalog ? &catalog : nullptr);
}

// As many warnings as `says`, the i-th holding says[i]; a warning longer than kubectl shows is
// cut, and its whole text is in the policy's audit annotation.
void expect_warnings(const ReviewOutcome& outcome, const std::vector<std::string>& says) {
  const std::vector<std::string>& warnings = outcome.response.warnings;
  std::string all;
  for (const std::string& warning : warnings) all += warning + "\n";
  auto annotation = outcome.response.audit_annotations.find("gpu-availability");
  const std::string full = annotation == outcome.response.audit_annotations.end() ? "" : annotation->second;
  EXPECT_TRUE(outcome.response.allowed) << all;
  ASSERT_EQ(warnings.size(), says.size()) << all;
  for (std::size_t i = 0; i < says.size(); ++i) {
    const std::string head = says[i].substr(0, 40);
    EXPECT_NE(warnings[i].find(head), std::string::npos) << all;
    EXPECT_TRUE(warnings[i].find(says[i]) != std::string::npos || full.find(says[i]) != std::string::npos)
        << says[i] << "\nin:\n" << all << full;
  }
}

const std::string kOneReplica = "spec.replicas: only 1 replica: run at least 2 (with an autoscaler, its minReplicas); one node drain, GPU fault or rollout stops this Deployment";
const std::string kNoSpread = "spec.template.spec.affinity: the 3 replicas may all land on one node: add a preferred podAntiAffinity";
const std::string kNoBudget = "spec.template.metadata.labels: no PodDisruptionBudget selects these pods: add one with maxUnavailable: 1 whose selector matches these labels in namespace team-a";

TEST(GpuAvailability, ReplicasBelowTheMinimumAreReported) {
  expect_warnings(review(deployment(1)), {kOneReplica});
  expect_warnings(review(deployment(nullptr)), {kOneReplica});  // unset is 1
  expect_warnings(review(workload("StatefulSet", 1)), {"spec.replicas: only 1 replica: run at least 2 (with an autoscaler, its minReplicas); one node drain, GPU fault or rollout stops this StatefulSet"});
  expect_warnings(review(workload("LeaderWorkerSet", 1)), {"spec.replicas: only 1 group: run at least 2"});
  expect_warnings(review(deployment(2, kSpreadByAntiAffinity)), {});
  // Scaled to zero runs nothing; a spec.replicas the API server refuses is not judged here.
  expect_warnings(review(deployment(0)), {});
  expect_warnings(review(deployment("two")), {});
  expect_warnings(review(deployment(-1)), {});
  expect_warnings(review(deployment(1), {}, "gpu-availability: {mode: warn, minReplicas: 0}"), {});
  expect_warnings(review(deployment(2), {}, "gpu-availability: {mode: warn, minReplicas: 3, requireNodeSpread: false}"),
                  {"spec.replicas: only 2 replicas: run at least 3"});
}

TEST(GpuAvailability, OnlyLongRunningGpuWorkloads) {
  expect_warnings(review(workload("Job", 1)), {});
  expect_warnings(review(workload("Pod", 1)), {});
  expect_warnings(review(workload("DaemonSet", nullptr)), {});
  json cpu = deployment(1);
  cpu["spec"]["template"]["spec"]["containers"][0].erase("resources");
  expect_warnings(review(cpu), {});
}

// Pods that each take more than half of the largest GPU node (8 GPUs without a cluster) never
// share a node: no spreading is asked of them.
TEST(GpuAvailability, PodsTooLargeToShareANodeNeedNoSpreading) {
  auto with_gpus = [](int gpus) {
    json d = deployment(3);
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = gpus;
    return d;
  };
  expect_warnings(review(with_gpus(4)), {kNoSpread});  // two fit one 8-GPU node
  expect_warnings(review(with_gpus(5)), {});
  expect_warnings(review(with_gpus(8)), {});
}

TEST(GpuAvailability, ReplicasMustBeSpreadOnTheHostname) {
  expect_warnings(review(deployment(3)), {kNoSpread});
  expect_warnings(review(deployment(3, kSpreadByAntiAffinity)), {});
  expect_warnings(review(deployment(3, anti_affinity_term(json::object()))), {});
  const json spread = {{"topologySpreadConstraints", {{{"maxSkew", 1}, {"topologyKey", "kubernetes.io/hostname"},
      {"whenUnsatisfiable", "ScheduleAnyway"}, {"labelSelector", {{"matchLabels", {{"tier", "serve"}}}}}}}}};
  expect_warnings(review(deployment(3, spread)), {});
  json by_zone = spread;
  by_zone["topologySpreadConstraints"][0]["topologyKey"] = "topology.kubernetes.io/zone";
  expect_warnings(review(deployment(3, by_zone)), {kNoSpread});
  json no_selector = spread;  // a null labelSelector selects no pod
  no_selector["topologySpreadConstraints"][0].erase("labelSelector");
  expect_warnings(review(deployment(3, no_selector)), {kNoSpread});
  // Terms that do not match the pods' own labels or namespace keep nothing apart.
  expect_warnings(review(deployment(3, anti_affinity_term({{"labelSelector", {{"matchLabels", {{"app", "other"}}}}}}))), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"labelSelector", {{"matchExpressions",
      {{{"key", "app"}, {"operator", "NotIn"}, {"values", {"llm"}}}}}}}}))), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"namespaces", {"other"}}}))), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"namespaces", {"other", kNamespace}}}))), {});
  expect_warnings(review(deployment(3, anti_affinity_term({{"namespaceSelector", json::object()}}))), {});
  expect_warnings(review(deployment(3, anti_affinity_term({{"namespaces", {"other"}}, {"namespaceSelector",
      {{"matchLabels", {{"kubernetes.io/metadata.name", kNamespace}}}}}}))), {});
  expect_warnings(review(deployment(3, anti_affinity_term({{"namespaceSelector", {{"matchLabels", {{"team", "x"}}}}}}))), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"mismatchLabelKeys", {"app"}}}))), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"topologyKey", "topology.kubernetes.io/zone"}}))), {kNoSpread});
  // Hostile shapes are not spreading, and do not crash.
  expect_warnings(review(deployment(3, {{"affinity", "x"}})), {kNoSpread});
  expect_warnings(review(deployment(3, {{"topologySpreadConstraints", {1, "x", nullptr}}})), {kNoSpread});
  expect_warnings(review(deployment(3, anti_affinity_term({{"labelSelector", {{"matchLabels", 7}}}}))), {kNoSpread});
  expect_warnings(review(deployment(3), {}, "gpu-availability: {mode: warn, requireNodeSpread: false}"), {});
}

TEST(GpuAvailability, LeaderWorkerSetGroupsAndTheirLabels) {
  json lws = workload("LeaderWorkerSet", 2);
  expect_warnings(review(lws), {"spec.leaderWorkerTemplate.workerTemplate.spec.affinity: the 2 groups may all land on one node"});
  lws["metadata"]["annotations"] = {{"leaderworkerset.sigs.k8s.io/exclusive-topology", "kubernetes.io/hostname"}};
  expect_warnings(review(lws), {});
  // The controller labels every pod with the set's name: a budget may select by it.
  const json by_name = budget("llm", {{"maxUnavailable", 1},
                                      {"selector", {{"matchLabels", {{"leaderworkerset.sigs.k8s.io/name", "llm"}}}}}});
  expect_warnings(review(lws, in_manifests({by_name})), {});
  expect_warnings(review(lws, in_manifests({})),
                  {"spec.leaderWorkerTemplate.workerTemplate.metadata.labels: no PodDisruptionBudget"});
  // A leader template and a worker template are one service: each rule reports once.
  json both = workload("LeaderWorkerSet", 2);
  both["spec"]["leaderWorkerTemplate"]["leaderTemplate"] = both["spec"]["leaderWorkerTemplate"]["workerTemplate"];
  expect_warnings(review(both, in_manifests({})),
                  {"spec.leaderWorkerTemplate.leaderTemplate.metadata.labels: no PodDisruptionBudget",
                   "spec.leaderWorkerTemplate.leaderTemplate.spec.affinity: the 2 groups may all land on one node"});
}

TEST(GpuAvailability, ADisruptionBudgetMustSelectThePods) {
  const json spread = kSpreadByAntiAffinity;
  // Neither check's manifests nor a cluster: the budgets are not known, so nothing is said.
  expect_warnings(review(deployment(3, spread)), {});
  expect_warnings(review(deployment(3, spread), in_manifests({})), {kNoBudget});
  expect_warnings(review(deployment(3, spread), in_manifests({budget("llm", selecting_llm({{"maxUnavailable", 1}}))})), {});
  // Another namespace, another selector, v1beta1's empty selector: none of them selects the pods.
  expect_warnings(review(deployment(3, spread), in_manifests({budget("llm", selecting_llm({{"maxUnavailable", 1}}), "other")})), {kNoBudget});
  expect_warnings(review(deployment(3, spread), in_manifests({budget("llm", {{"maxUnavailable", 1}, {"selector", {{"matchLabels", {{"app", "web"}}}}}})})),
                  {kNoBudget});
  expect_warnings(review(deployment(3, spread), in_manifests({budget("llm", {{"maxUnavailable", 1}, {"selector", json::object()}}, kNamespace, "policy/v1beta1")})),
                  {kNoBudget});
  // policy/v1's empty selector selects every pod of the namespace.
  expect_warnings(review(deployment(3, spread), in_manifests({budget("all", {{"maxUnavailable", 1}, {"selector", json::object()}})})), {});
  expect_warnings(review(deployment(3, spread), in_manifests({}), "gpu-availability: {mode: warn, requireDisruptionBudget: false}"), {});
}

TEST(GpuAvailability, ABudgetThatAllowsNoEvictionIsReported) {
  const json spread = kSpreadByAntiAffinity;
  auto with = [&](json replicas, json rest) {
    return review(deployment(std::move(replicas), spread), in_manifests({budget("llm", selecting_llm(std::move(rest)))}));
  };
  const std::string blocks = "spec.template.metadata.labels: PodDisruptionBudget llm allows no eviction (";
  expect_warnings(with(3, {{"maxUnavailable", 0}}), {blocks + "maxUnavailable 0)"});
  expect_warnings(with(3, {{"maxUnavailable", "0%"}}), {blocks + "maxUnavailable 0%)"});
  expect_warnings(with(3, {{"maxUnavailable", "10%"}}), {});  // rounds up to 1 pod
  expect_warnings(with(3, {{"minAvailable", 3}}), {blocks + "minAvailable 3 of 3 pods)"});
  expect_warnings(with(3, {{"minAvailable", 5}}), {blocks + "minAvailable 5 of 3 pods)"});
  expect_warnings(with(3, {{"minAvailable", 2}}), {});
  expect_warnings(with(3, {{"minAvailable", "100%"}}), {blocks + "minAvailable 100% of 3 pods)"});
  expect_warnings(with(2, {{"minAvailable", "60%"}}), {blocks + "minAvailable 60% of 2 pods)"});  // 1.2 rounds up to 2
  expect_warnings(with(3, {{"minAvailable", "60%"}}), {});
  expect_warnings(with(3, {{"minAvailable", "99999999999999%"}}), {blocks + "minAvailable 999999999... of 3 pods)"});
  expect_warnings(with(3, {{"minAvailable", "lots"}}), {});  // cannot tell
  expect_warnings(with(3, json::object()), {});  // neither: every pod may be evicted
  // One replica with minAvailable 1, the classic: both are reported.
  expect_warnings(with(1, {{"minAvailable", 1}}), {kOneReplica, blocks + "minAvailable 1 of 1 pod)"});
}

TEST(GpuAvailability, SeveralBudgetsOnOnePodAreReported) {
  const json spread = kSpreadByAntiAffinity;
  expect_warnings(review(deployment(3, spread), in_manifests({budget("a", selecting_llm({{"maxUnavailable", 1}})),
                                                       budget("b", {{"maxUnavailable", 1}, {"selector", json::object()}})})),
                  {"2 PodDisruptionBudgets select these pods (a, b): the eviction API refuses"});
}

TEST(GpuAvailability, BudgetsFromTheClusterAndFromTheManifests) {
  const json spread = kSpreadByAntiAffinity;
  const json good = budget("llm", selecting_llm({{"maxUnavailable", 1}}));
  expect_warnings(review(deployment(3, spread), in_cluster({good})), {});
  expect_warnings(review(deployment(3, spread), in_cluster({})), {kNoBudget});
  // The same budget in both is one budget, and the manifests' version is the one judged.
  expect_warnings(review(deployment(3, spread), in_both({good}, {good})), {});
  const json frozen = budget("llm", selecting_llm({{"maxUnavailable", 0}}));
  expect_warnings(review(deployment(3, spread), in_both({frozen}, {good})), {"PodDisruptionBudget llm allows no eviction"});
  expect_warnings(review(deployment(3, spread), in_both({budget("other", selecting_llm({{"maxUnavailable", 1}}))}, {good})),
                  {"2 PodDisruptionBudgets select these pods (other, llm)"});
}

TEST(GpuAvailability, UpdatesAreJudgedLikeCreates) {
  expect_warnings(review(deployment(1), {}, "gpu-availability: {mode: warn}", "UPDATE"), {kOneReplica});
}

TEST(GpuAvailability, MessagesDoNotQuoteLongValues) {
  const std::string long_name(200, 'b');
  ReviewOutcome outcome = review(deployment(3, kSpreadByAntiAffinity),
                                 in_manifests({budget(long_name, selecting_llm({{"maxUnavailable", 0}}))}));
  ASSERT_EQ(outcome.response.warnings.size(), 1u);
  EXPECT_EQ(outcome.response.warnings[0].find(long_name), std::string::npos) << outcome.response.warnings[0];
}

TEST(GpuAvailability, ConfigErrorsNameTheKey) {
  EXPECT_THROW(
      {
        try {
          Engine::from_yaml("policies:\n  gpu-availability: {minReplicas: -1}\n", "c.yaml");
        } catch (const ConfigError& error) {
          EXPECT_NE(std::string(error.what()).find("minReplicas"), std::string::npos) << error.what();
          throw;
        }
      },
      ConfigError);
}

// ---------------------------------------------------------------------------------------------
// gpu-spread

const std::string kSpread = "gpu-spread: {}";

json preferred_of(const json& object, const std::string& templ = "/spec/template/spec") {
  return object.at(json::json_pointer(templ + "/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution"));
}

const json kAddedTerm = json::parse(R"({"weight":100,"podAffinityTerm":{
    "labelSelector":{"matchLabels":{"app":"llm"}},"topologyKey":"kubernetes.io/hostname"}})");

TEST(GpuSpread, AddsAPreferredAntiAffinityFromTheSelector) {
  ReviewOutcome outcome = review(deployment(3), {}, kSpread);
  ASSERT_TRUE(outcome.response.allowed);
  EXPECT_EQ(preferred_of(outcome.mutated), json::array({kAddedTerm}));
  EXPECT_NE(outcome.response.audit_annotations["gpu-spread"].find("spec.template.spec.affinity: added a preferred podAntiAffinity"),
            std::string::npos);
  // Reviewing what it made changes nothing more.
  EXPECT_EQ(review(outcome.mutated, {}, kSpread).response.patch, json::array());
  // And gpu-availability, run after it, sees the replicas spread.
  expect_warnings(review(deployment(3), {}, kSpread + "\n  gpu-availability: {mode: warn}"), {});
}

TEST(GpuSpread, TheWeightIsConfigured) {
  ReviewOutcome outcome = review(deployment(3), {}, "gpu-spread: {weight: 10}");
  EXPECT_EQ(preferred_of(outcome.mutated)[0]["weight"], 10);
  for (const char* bad : {"0", "101", "x"})
    EXPECT_THROW(Engine::from_yaml(std::string("policies:\n  gpu-spread: {weight: ") + bad + "}\n", "c.yaml"), ConfigError)
        << bad;
}

TEST(GpuSpread, MergesIntoTheAffinityThatIsThere) {
  const json node_affinity = {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms",
      {{{"matchExpressions", {{{"key", "gpu"}, {"operator", "Exists"}}}}}}}}}};
  const json zone_term = {{"weight", 10}, {"podAffinityTerm", {{"labelSelector", {{"matchLabels", {{"app", "llm"}}}}},
                                                             {"topologyKey", "topology.kubernetes.io/zone"}}}};
  const json pod_affinity = {{"preferredDuringSchedulingIgnoredDuringExecution", {zone_term}}};
  json spec = {{"affinity", {{"nodeAffinity", node_affinity}, {"podAffinity", pod_affinity},
                             {"podAntiAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution", {zone_term}}}}}}};
  ReviewOutcome outcome = review(deployment(2, spec), {}, kSpread);
  const json& affinity = outcome.mutated["spec"]["template"]["spec"]["affinity"];
  EXPECT_EQ(affinity["nodeAffinity"], node_affinity);
  EXPECT_EQ(affinity["podAffinity"], pod_affinity);
  EXPECT_EQ(preferred_of(outcome.mutated), json::array({zone_term, kAddedTerm}));
  // An affinity: null is no affinity.
  outcome = review(deployment(2, {{"affinity", nullptr}}), {}, kSpread);
  EXPECT_EQ(preferred_of(outcome.mutated), json::array({kAddedTerm}));
}

TEST(GpuSpread, LeavesAloneWhatItShouldNot) {
  for (const json& object : {deployment(1), deployment(0), deployment(3, kSpreadByAntiAffinity), workload("Job", 3),
                             deployment(3, {{"affinity", "x"}}), deployment(3, {{"affinity", {{"podAntiAffinity", 1}}}}),
                             deployment(3, {{"affinity", {{"podAntiAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution", "x"}}}}}})}) {
    ReviewOutcome outcome = review(object, {}, kSpread);
    EXPECT_TRUE(outcome.response.allowed);
    EXPECT_EQ(outcome.response.patch, json::array()) << object.dump();
  }
}

TEST(GpuSpread, SelectorFallsBackToTheTemplateLabels) {
  // A selector by expressions only: the template's labels.
  json object = deployment(2);
  object["spec"]["selector"] = {{"matchExpressions", {{{"key", "app"}, {"operator", "In"}, {"values", {"llm"}}}}}};
  ReviewOutcome outcome = review(object, {}, kSpread);
  EXPECT_EQ(preferred_of(outcome.mutated)[0]["podAffinityTerm"]["labelSelector"],
            json::parse(R"({"matchLabels":{"app":"llm","tier":"serve"}})"));
  // A LeaderWorkerSet's pods also carry its name label.
  outcome = review(workload("LeaderWorkerSet", 2), {}, kSpread);
  EXPECT_EQ(preferred_of(outcome.mutated, "/spec/leaderWorkerTemplate/workerTemplate/spec")[0]["podAffinityTerm"]["labelSelector"],
            json::parse(R"({"matchLabels":{"app":"llm","leaderworkerset.sigs.k8s.io/name":"llm","tier":"serve"}})"));
}

}  // namespace
}  // namespace gpuadmit
