// Trimming listed/watched objects and splitting watch streams into lines.
#include <gtest/gtest.h>

#include "tests/support/fake_apiserver.h"
#include "webhook/kube/objects.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;

TEST(KubeObjects, KindNames) {
  EXPECT_EQ(kind_from_name("pods"), ObjectKind::Pod);
  EXPECT_EQ(kind_from_name("Node"), ObjectKind::Node);
  EXPECT_EQ(kind_from_name("Namespace"), ObjectKind::Namespace);
  EXPECT_EQ(kind_from_name("resourceclaims"), ObjectKind::ResourceClaim);
  EXPECT_EQ(kind_from_name("ResourceClaimTemplate"), ObjectKind::ResourceClaimTemplate);
  EXPECT_EQ(kind_from_name("poddisruptionbudgets"), ObjectKind::PodDisruptionBudget);
  EXPECT_EQ(kind_from_name("PriorityClass"), ObjectKind::PriorityClass);
  EXPECT_EQ(kind_from_name("priorityclasses"), ObjectKind::PriorityClass);
  EXPECT_EQ(kind_from_name("deployments"), std::nullopt);
}

TEST(KubeObjects, CollectionPaths) {
  EXPECT_EQ(collection_path(ObjectKind::Pod, "v1beta2"), "/api/v1/pods");
  EXPECT_EQ(collection_path(ObjectKind::Namespace, "v1"), "/api/v1/namespaces");
  EXPECT_EQ(collection_path(ObjectKind::ResourceClaim, "v1"), "/apis/resource.k8s.io/v1/resourceclaims");
  EXPECT_EQ(collection_path(ObjectKind::ResourceClaimTemplate, "v1beta1"),
            "/apis/resource.k8s.io/v1beta1/resourceclaimtemplates");
  EXPECT_EQ(api_version(ObjectKind::ResourceClaim, "v1beta2"), "resource.k8s.io/v1beta2");
  EXPECT_EQ(api_version(ObjectKind::Node, "v1beta2"), "v1");
  EXPECT_EQ(collection_path(ObjectKind::PodDisruptionBudget, "v1"), "/apis/policy/v1/poddisruptionbudgets");
  EXPECT_EQ(collection_path(ObjectKind::PodDisruptionBudget, "v1beta1"), "/apis/policy/v1beta1/poddisruptionbudgets");
  EXPECT_EQ(collection_path(ObjectKind::PriorityClass, "v1"), "/apis/scheduling.k8s.io/v1/priorityclasses");
  EXPECT_EQ(api_version(ObjectKind::PodDisruptionBudget, "v1beta1"), "policy/v1beta1");
}

TEST(KubeObjects, KeysAndResourceVersions) {
  EXPECT_EQ(object_key(testing::fake_pod("ml", "p1", "n1", 1)), "ml/p1");
  EXPECT_EQ(object_key(testing::fake_node("n1", 8)), "n1");
  EXPECT_EQ(object_key(json::array()), "");
  EXPECT_EQ(resource_version_of(json{{"metadata", {{"resourceVersion", "42"}}}}), "42");
  EXPECT_EQ(resource_version_of(json{{"metadata", {{"resourceVersion", 42}}}}), "");
}

TEST(KubeObjects, NodeKeepsCapacityTaintsAndLabels) {
  json node = testing::fake_node("gpu-1", 8);
  node["spec"]["unschedulable"] = true;
  json trimmed = trim_object(ObjectKind::Node, node);
  EXPECT_EQ(trimmed["kind"], "Node");
  EXPECT_EQ(trimmed["apiVersion"], "v1");
  EXPECT_EQ(trimmed["metadata"]["labels"]["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
  EXPECT_FALSE(trimmed["metadata"].contains("managedFields"));
  EXPECT_FALSE(trimmed["metadata"].contains("creationTimestamp"));
  EXPECT_EQ(trimmed["status"]["allocatable"]["nvidia.com/gpu"], "8");
  EXPECT_EQ(trimmed["spec"]["taints"], node["spec"]["taints"]);
  EXPECT_EQ(trimmed["spec"]["unschedulable"], true);
  EXPECT_FALSE(trimmed["spec"].contains("providerID"));
  EXPECT_EQ(trimmed["status"]["conditions"][1], (json{{"type", "Ready"}, {"status", "True"}}));
  for (const char* dropped : {"images", "nodeInfo", "addresses", "daemonEndpoints"})
    EXPECT_FALSE(trimmed["status"].contains(dropped)) << dropped;
  EXPECT_LT(trimmed.dump().size(), node.dump().size() / 2);
}

TEST(KubeObjects, PodKeepsResourcesPlacementAndPhase) {
  json pod = testing::fake_pod("ml", "p1", "gpu-1", 2);
  pod["spec"]["initContainers"] = json::array({{{"name", "sidecar"}, {"image", "x"}, {"restartPolicy", "Always"},
                                                {"resources", {{"requests", {{"cpu", "1"}}}}}}});
  pod["spec"]["affinity"] = {{"nodeAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution", json::object()}}},
                             {"podAntiAffinity", json::object()}};
  pod["spec"]["overhead"] = {{"cpu", "250m"}};
  json trimmed = trim_object(ObjectKind::Pod, pod);
  EXPECT_EQ(trimmed["metadata"]["namespace"], "ml");
  EXPECT_FALSE(trimmed["metadata"].contains("annotations"));  // only last-applied-configuration was there
  EXPECT_EQ(trimmed["metadata"]["ownerReferences"],
            (json::array({{{"kind", "ReplicaSet"}, {"name", "inference-7d9c8b6f5"}, {"controller", true}}})));
  EXPECT_EQ(trimmed["spec"]["nodeName"], "gpu-1");
  EXPECT_EQ(trimmed["spec"]["containers"],
            (json::array({{{"name", "main"}, {"resources", pod["spec"]["containers"][0]["resources"]}}})));
  EXPECT_EQ(trimmed["spec"]["initContainers"][0]["restartPolicy"], "Always");
  EXPECT_FALSE(trimmed["spec"]["initContainers"][0].contains("image"));
  EXPECT_EQ(trimmed["spec"]["overhead"]["cpu"], "250m");
  EXPECT_TRUE(trimmed["spec"]["affinity"].contains("nodeAffinity"));
  EXPECT_FALSE(trimmed["spec"]["affinity"].contains("podAntiAffinity"));
  EXPECT_EQ(trimmed["spec"]["tolerations"], pod["spec"]["tolerations"]);
  for (const char* dropped : {"volumes", "dnsPolicy", "serviceAccountName"})
    EXPECT_FALSE(trimmed["spec"].contains(dropped)) << dropped;
  EXPECT_EQ(trimmed["status"], (json{{"phase", "Running"}, {"conditions", {{{"type", "PodScheduled"}, {"status", "True"}}}}}));
}

TEST(KubeObjects, NamespaceKeepsLabelsAnnotationsAndPhase) {
  json ns = testing::fake_namespace("team-a");
  ns["metadata"]["annotations"] = {{"gpu-admit.io/gpu-quota", "16"},
                                   {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  json trimmed = trim_object(ObjectKind::Namespace, ns);
  EXPECT_EQ(trimmed["metadata"]["annotations"], (json{{"gpu-admit.io/gpu-quota", "16"}}));
  EXPECT_EQ(trimmed["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
  EXPECT_EQ(trimmed["status"], (json{{"phase", "Active"}}));
  EXPECT_FALSE(trimmed.contains("spec"));
}

TEST(KubeObjects, ClaimsKeepTheirApiVersionNamesAndWholeSpec) {
  json claim = testing::fake_resource_claim("ml", "c1", "gpu.nvidia.com", 2);
  claim["apiVersion"] = "resource.k8s.io/v1";
  claim["kind"] = "ResourceClaim";
  claim["metadata"]["resourceVersion"] = "42";
  claim["metadata"]["annotations"] = {{"a", "b"}};
  json trimmed = trim_object(ObjectKind::ResourceClaim, claim, "v1beta1");
  EXPECT_EQ(trimmed["kind"], "ResourceClaim");
  EXPECT_EQ(trimmed["apiVersion"], "resource.k8s.io/v1");  // its own, not the version listed
  EXPECT_EQ(trimmed["metadata"], (json{{"name", "c1"}, {"namespace", "ml"}, {"uid", claim["metadata"]["uid"]},
                                       {"resourceVersion", "42"}}));
  EXPECT_EQ(trimmed["spec"], claim["spec"]);
  EXPECT_FALSE(trimmed.contains("status"));
  // A list item carries no apiVersion: it gets the version listed.
  claim.erase("apiVersion");
  EXPECT_EQ(trim_object(ObjectKind::ResourceClaim, claim, "v1beta2")["apiVersion"], "resource.k8s.io/v1beta2");
  EXPECT_EQ(trim_object(ObjectKind::ResourceClaim, claim)["apiVersion"], "resource.k8s.io/v1");

  json template_ = testing::fake_resource_claim_template("ml", "t1", "gpu.nvidia.com", 1);
  trimmed = trim_object(ObjectKind::ResourceClaimTemplate, template_);
  EXPECT_EQ(trimmed["kind"], "ResourceClaimTemplate");
  EXPECT_EQ(trimmed["spec"], template_["spec"]);  // spec.metadata and spec.spec, whole
  EXPECT_FALSE(trimmed["metadata"].contains("managedFields"));
  EXPECT_FALSE(trimmed["metadata"].contains("labels"));
}

TEST(KubeObjects, DisruptionBudgetsKeepTheirApiVersionNamesAndSpec) {
  json budget = testing::fake_disruption_budget("ml", "b1", {{"matchLabels", {{"app", "a"}}}}, 1);
  budget["apiVersion"] = "policy/v1beta1";
  budget["metadata"]["resourceVersion"] = "42";
  json trimmed = trim_object(ObjectKind::PodDisruptionBudget, budget, "v1");
  EXPECT_EQ(trimmed, (json{{"kind", "PodDisruptionBudget"},
                           {"apiVersion", "policy/v1beta1"},  // its own, not the version listed
                           {"metadata", {{"name", "b1"}, {"namespace", "ml"}, {"uid", budget["metadata"]["uid"]},
                                         {"resourceVersion", "42"}}},
                           {"spec", budget["spec"]}}));
  // A list item carries no apiVersion: it gets the version listed, which decides what an empty
  // selector means.
  budget.erase("apiVersion");
  EXPECT_EQ(trim_object(ObjectKind::PodDisruptionBudget, budget, "v1beta1")["apiVersion"], "policy/v1beta1");
  EXPECT_EQ(trim_object(ObjectKind::PodDisruptionBudget, budget)["apiVersion"], "policy/v1");
  budget["apiVersion"] = "";
  EXPECT_EQ(trim_object(ObjectKind::PodDisruptionBudget, budget, "v1beta1")["apiVersion"], "policy/v1beta1");
}

TEST(KubeObjects, PriorityClassesKeepValueGlobalDefaultAndPreemptionPolicy) {
  json priority_class = testing::fake_priority_class("gpu-high", 1000, true);
  priority_class["preemptionPolicy"] = "Never";
  json trimmed = trim_object(ObjectKind::PriorityClass, priority_class);
  EXPECT_EQ(trimmed, (json{{"kind", "PriorityClass"},
                           {"apiVersion", "scheduling.k8s.io/v1"},
                           {"metadata", {{"name", "gpu-high"}, {"uid", priority_class["metadata"]["uid"]}}},
                           {"value", 1000},
                           {"globalDefault", true},
                           {"preemptionPolicy", "Never"}}));
  // Left out when absent or null, as the catalog reads them then.
  priority_class.erase("globalDefault");
  priority_class["preemptionPolicy"] = nullptr;
  trimmed = trim_object(ObjectKind::PriorityClass, priority_class);
  EXPECT_FALSE(trimmed.contains("globalDefault"));
  EXPECT_FALSE(trimmed.contains("preemptionPolicy"));
  EXPECT_FALSE(trimmed.contains("description"));
}

TEST(KubeObjects, MalformedObjectsTrimWithoutThrowing) {
  for (const json& bad : {json(nullptr), json::array(), json{{"metadata", 5}}, json{{"spec", {{"containers", "x"}}}},
                          json{{"status", {{"conditions", {1, 2}}}}}, json{{"apiVersion", 5}, {"value", {1}}}})
    for (ObjectKind kind : kWatchedKinds) EXPECT_NO_THROW(trim_object(kind, bad)) << bad.dump();
}

TEST(KubeObjects, LineSplitterAssemblesPieces) {
  LineSplitter splitter;
  std::vector<std::string> lines;
  EXPECT_TRUE(splitter.feed("{\"a\":", lines));
  EXPECT_TRUE(lines.empty());
  EXPECT_TRUE(splitter.feed("1}\n{\"b\"", lines));
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}"}));
  EXPECT_TRUE(splitter.feed(":2}\r\n\n{\"c\":3}\n", lines));
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
  EXPECT_EQ(splitter.pending_bytes(), 0u);
  LineSplitter small(8);
  EXPECT_FALSE(small.feed("0123456789", lines));
}

}  // namespace
}  // namespace gpuadmit::kube
