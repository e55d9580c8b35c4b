// A pod's GPU use besides GPU resources: DRA claims resolved against the manifests and the
// cluster model, KAI's fraction annotations as its admission plugin reads them, HAMi's shares;
// and the policies' one test for a GPU container (PolicyContext::uses_gpu) built on them.
#include <gtest/gtest.h>

#include "engine/capacity/cluster_model.h"
#include "engine/gpu_use.h"
#include "engine/k8s/resource_claims.h"
#include "gpuadmit/policy.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

json claim_template(const std::string& ns, const std::string& name, const std::string& device_class, int count) {
  return {{"apiVersion", "resource.k8s.io/v1"},
          {"kind", "ResourceClaimTemplate"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"spec", {{"devices", {{"requests", {{{"name", "r"}, {"exactly", {{"deviceClassName", device_class}, {"count", count}}}}}}}}}}}}};
}

json dra_pod_spec() {
  return json::parse(R"({
    "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "two-gpus"},
                       {"name": "nic", "resourceClaimTemplateName": "nic"},
                       {"name": "shared", "resourceClaimName": "shared-gpu"}],
    "containers": [{"name": "model", "image": "m", "resources": {"claims": [{"name": "gpu"}]}},
                   {"name": "net", "image": "n", "resources": {"claims": [{"name": "nic"}]}},
                   {"name": "side", "image": "s"}]})");
}

PodGpuUse resolve(const json& spec, const json& metadata, ClaimSources sources, const std::string& ns = "ml") {
  return resolve_gpu_use(spec, &metadata, ns, "spec", "metadata", GpuResources{}, sources);
}

TEST(GpuUse, DraTemplatesAndClaimsResolveFromTheManifestsThenTheCluster) {
  k8s::ClaimCatalog manifests;
  manifests.upsert(claim_template("ml", "two-gpus", "gpu.nvidia.com", 2));
  manifests.upsert(claim_template("ml", "nic", "rdma.example.com", 1));
  capacity::ClusterModel cluster;
  cluster.apply(json::parse(R"({"apiVersion":"resource.k8s.io/v1beta1","kind":"ResourceClaim",
      "metadata":{"name":"shared-gpu","namespace":"ml"},
      "spec":{"devices":{"requests":[{"name":"g","deviceClassName":"mig.nvidia.com","count":3}]}}})"));
  const PodGpuUse use = resolve(dra_pod_spec(), json::object(), {&manifests, &cluster});
  EXPECT_EQ(use.containers, (std::set<std::string>{"model"}));
  EXPECT_EQ(use.template_claim_devices, 2);
  EXPECT_EQ(use.named_claim_devices, 3);
  EXPECT_TRUE(use.unresolved_claims.empty());
  EXPECT_TRUE(use.any());
  // Another namespace sees none of them.
  const PodGpuUse elsewhere = resolve(dra_pod_spec(), json::object(), {&manifests, &cluster}, "other");
  EXPECT_EQ(elsewhere.unresolved_claims.size(), 3u);
  EXPECT_EQ(elsewhere.unresolved_claims[0].field, "spec.resourceClaims[0]");
  EXPECT_EQ(elsewhere.unresolved_claims[0].message, "ResourceClaimTemplate two-gpus in namespace other is not known to gpu-admit");
}

TEST(GpuUse, AnUnknownClaimMakesItsContainerAGpuContainerWithNoDevices) {
  const PodGpuUse use = resolve(dra_pod_spec(), json::object(), {});
  EXPECT_EQ(use.containers, (std::set<std::string>{"model", "net"}));
  EXPECT_EQ(use.template_claim_devices + use.named_claim_devices, 0);
  EXPECT_EQ(use.unresolved_claims.size(), 3u);
}

TEST(GpuUse, ClaimSourcesBefore128AreRead) {
  k8s::ClaimCatalog manifests;
  manifests.upsert(claim_template("ml", "t", "gpu.nvidia.com", 1));
  const json spec = json::parse(R"({"resourceClaims":[{"name":"g","source":{"resourceClaimTemplateName":"t"}}],
      "containers":[{"name":"c","resources":{"claims":[{"name":"g"}]}}]})");
  EXPECT_EQ(resolve(spec, json::object(), {&manifests, nullptr}).template_claim_devices, 1);
}

TEST(GpuUse, DeviceClassesComeFromTheConfig) {
  k8s::ClaimCatalog manifests;
  manifests.upsert(claim_template("ml", "t", "vgpu.example.com", 1));
  const json spec = json::parse(R"({"resourceClaims":[{"name":"g","resourceClaimTemplateName":"t"}],
      "containers":[{"name":"c","resources":{"claims":[{"name":"g"}]}}]})");
  GpuResources gpu;
  EXPECT_TRUE(resolve_gpu_use(spec, nullptr, "ml", "spec", "metadata", gpu, {&manifests, nullptr}).containers.empty());
  gpu.device_classes = {"vgpu.example.com"};
  EXPECT_EQ(resolve_gpu_use(spec, nullptr, "ml", "spec", "metadata", gpu, {&manifests, nullptr}).template_claim_devices, 1);
}

json kai_metadata(json annotations) { return {{"annotations", std::move(annotations)}}; }

const json kTwoContainers = json::parse(R"({"containers":[{"name":"app"},{"name":"sidecar"}]})");

TEST(GpuUse, KaiFractionGoesToTheFirstContainerOrTheNamedOne) {
  PodGpuUse use = resolve(kTwoContainers, kai_metadata({{"gpu-fraction", "0.5"}}), {});
  EXPECT_TRUE(use.kai);
  EXPECT_EQ(use.containers, (std::set<std::string>{"app"}));
  EXPECT_EQ(use.shares.fraction_milli, 500);
  EXPECT_TRUE(use.problems.empty());
  use = resolve(kTwoContainers, kai_metadata({{"gpu-memory", "20000"}, {"gpu-fraction-num-devices", "2"},
                                              {"gpu-fraction-container-name", "sidecar"}}), {});
  EXPECT_EQ(use.containers, (std::set<std::string>{"sidecar"}));
  EXPECT_EQ(use.shares.memory_mib, 40000);
  EXPECT_EQ(use.shares.fraction_milli, 0);
}

TEST(GpuUse, KaiAnnotationsTheSchedulerWouldRefuseAreProblems) {
  auto problems = [](json annotations, json spec = kTwoContainers) {
    std::vector<std::string> out;
    for (const auto& p : resolve(spec, kai_metadata(std::move(annotations)), {}).problems)
      out.push_back(p.field + ": " + p.message);
    return out;
  };
  EXPECT_EQ(problems({{"gpu-fraction", "1.5"}}),
            std::vector<std::string>{"metadata.annotations.gpu-fraction: must be a number above 0 and at most 1, got \"1.5\""});
  EXPECT_EQ(problems({{"gpu-fraction", "half"}}).size(), 1u);
  EXPECT_EQ(problems({{"gpu-memory", "2Gi"}}),
            std::vector<std::string>{"metadata.annotations.gpu-memory: must be a whole number of MiB, 1 or more, got \"2Gi\""});
  EXPECT_EQ(problems({{"gpu-fraction", "0.5"}, {"gpu-memory", "100"}}),
            std::vector<std::string>{"metadata.annotations.gpu-fraction: asks for both gpu-fraction and gpu-memory; the KAI scheduler takes one"});
  EXPECT_EQ(problems({{"gpu-fraction-num-devices", "2"}}),
            std::vector<std::string>{"metadata.annotations.gpu-fraction-num-devices: asks for several fractional GPUs without gpu-fraction or gpu-memory"});
  EXPECT_EQ(problems({{"gpu-fraction", "0.5"}, {"gpu-fraction-num-devices", "0"}}).size(), 1u);
  EXPECT_EQ(problems({{"gpu-fraction", "0.5"}, {"gpu-fraction-container-name", "nope"}}),
            std::vector<std::string>{"metadata.annotations.gpu-fraction-container-name: names container \"nope\", which the pod does not have"});
  EXPECT_EQ(problems({{"gpu-fraction", "0.5"}},
                     json::parse(R"({"containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":1}}}]})")).size(),
            1u);
  EXPECT_TRUE(problems({{"gpu-fraction", "1"}}).empty());
}

TEST(GpuUse, HamiSharesArePerVgpu) {
  const json spec = json::parse(R"({"containers":[
      {"name":"a","resources":{"limits":{"nvidia.com/gpu":2,"nvidia.com/gpumem":"3000","nvidia.com/gpucores":30}}},
      {"name":"b","resources":{"limits":{"nvidia.com/gpumem":"5000"}}}]})");
  const GpuShares shares = pod_gpu_shares(spec, nullptr);
  EXPECT_EQ(shares.memory_mib, 6000);  // b has no vGPU: its gpumem buys nothing
  EXPECT_EQ(shares.cores, 60);
  // KAI's annotations that the scheduler refuses count as no share for a pod already running.
  const json bad = {{"gpu-fraction", "2"}};
  EXPECT_FALSE(pod_gpu_shares(kTwoContainers, &bad).any());
}

TEST(GpuUse, PolicyContextUsesGpuJoinsResourcesClaimsAndFractions) {
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}, {"namespace", "ml"},
              {"annotations", {{"gpu-fraction", "0.25"}}}}}, {"spec", dra_pod_spec()}};
  Request request;
  request.operation = "CREATE";
  request.object = pod;
  const Workload workload = locate_workload(pod);
  PolicyContext context(request, workload, GpuResources{}, pod);
  const PodTarget& target = workload.pods.at(0);
  const json& containers = pod["spec"]["containers"];
  EXPECT_TRUE(context.uses_gpu(target, containers[0]));   // KAI's first container, and an unknown claim
  EXPECT_TRUE(context.uses_gpu(target, containers[1]));   // an unknown claim
  EXPECT_FALSE(context.uses_gpu(target, containers[2]));  // nothing
  EXPECT_TRUE(context.pod_uses_gpu(target));
  // A PodTarget that is not the workload's own has no GPU use besides resources.
  PodTarget stranger = target;
  EXPECT_FALSE(context.gpu_use(stranger).any());
}

}  // namespace
}  // namespace gpuadmit
