// gpu-affinity: the node affinity it adds selects exactly the nodes whose GPU labels meet the
// pod's annotations as gpu-capacity reads them, ANDs with the pod's own node affinity, and is
// added once.
#include <gtest/gtest.h>

#include <map>

#include "engine/capacity/placement.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

const std::string kConfig = "policies:\n  gpu-affinity: {}\n";

using Annotations = std::map<std::string, std::string>;

json pod(const Annotations& annotations, json spec_extra = json::object(), json requests = json::object({{"nvidia.com/gpu", "1"}})) {
  json spec = {{"containers", {{{"name", "c"}, {"image", "x"}, {"resources", {{"requests", requests}, {"limits", requests}}}}}}};
  for (auto& [k, v] : spec_extra.items()) spec[k] = v;
  return {{"apiVersion", "v1"}, {"kind", "Pod"},
          {"metadata", {{"name", "p"}, {"namespace", "team"}, {"annotations", annotations}}}, {"spec", spec}};
}

ReviewOutcome mutate(const json& object, const std::string& config = kConfig) {
  auto engine = Engine::from_yaml(config, "test.yaml");
  return engine->review(request_for_manifest(object, "default"));
}

const json& terms_of(const json& object) {
  return object["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
}

json expr(const std::string& key, const std::string& op, const std::string& value) {
  return {{"key", key}, {"operator", op}, {"values", {value}}};
}

TEST(GpuAffinity, GpuMemoryBecomesAGreaterThanOnGpuMemoryInMiB) {
  ReviewOutcome out = mutate(pod({{"gpu-admit.io/gpu-memory", "40Gi"}}));
  ASSERT_TRUE(out.response.allowed);
  EXPECT_EQ(terms_of(out.mutated), json::parse(R"([{"matchExpressions":[
      {"key":"nvidia.com/gpu.memory","operator":"Gt","values":["40959"]}]}])"));
  ASSERT_TRUE(out.response.audit_annotations.count("gpu-affinity"));
  EXPECT_NE(out.response.audit_annotations["gpu-affinity"].find(
                "added required node affinity for GPU memory of at least 40960 MiB (gpu-admit.io/gpu-memory): "
                "nvidia.com/gpu.memory>40959"),
            std::string::npos)
      << out.response.audit_annotations["gpu-affinity"];
  // 40G is 40e9 bytes: 38147 MiB rounded up.
  out = mutate(pod({{"gpu-admit.io/gpu-memory", "40G"}}));
  EXPECT_EQ(terms_of(out.mutated)[0]["matchExpressions"][0], expr("nvidia.com/gpu.memory", "Gt", "38146"));
}

TEST(GpuAffinity, AndsWithEveryExistingTermAndKeepsTheRest) {
  json affinity = json::parse(R"({"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
      {"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"In","values":["a"]}]},
      {"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]},
      {}]},
    "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":{"matchExpressions":[
      {"key":"x","operator":"Exists"}]}}]}})");
  ReviewOutcome out = mutate(pod({{"gpu-admit.io/gpu-memory", "20Gi"}}, json::object({{"affinity", affinity}})));
  EXPECT_EQ(terms_of(out.mutated), json::parse(R"([
      {"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"In","values":["a"]},
                           {"key":"nvidia.com/gpu.memory","operator":"Gt","values":["20479"]}]},
      {"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}],
       "matchExpressions":[{"key":"nvidia.com/gpu.memory","operator":"Gt","values":["20479"]}]},
      {}])"));
  // The preferred terms are not touched.
  EXPECT_EQ(out.mutated["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
            affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]);
  EXPECT_NE(out.response.audit_annotations["gpu-affinity"].find("added to every required node affinity term"), std::string::npos);
}

TEST(GpuAffinity, AlternativesMultiplyTheTermsAndASecondReviewAddsNothing) {
  json affinity = json::parse(R"({"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
      {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]},
      {"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]}]}}})");
  json object = pod({{"gpu-admit.io/cuda-arch", "sm_80,sm_90"}, {"gpu-admit.io/gpu-memory", "40Gi"}}, json::object({{"affinity", affinity}}));
  ReviewOutcome out = mutate(object);
  const json& terms = terms_of(out.mutated);
  ASSERT_EQ(terms.size(), 4u) << terms.dump();  // 2 zones × 2 architectures, memory in each
  EXPECT_EQ(terms[0]["matchExpressions"], json::parse(R"([
      {"key":"zone","operator":"In","values":["a"]},
      {"key":"nvidia.com/gpu.memory","operator":"Gt","values":["40959"]},
      {"key":"nvidia.com/gpu.compute.major","operator":"In","values":["8"]},
      {"key":"nvidia.com/gpu.compute.minor","operator":"Exists"}])"));
  EXPECT_EQ(terms[3]["matchExpressions"][0], expr("zone", "In", "b"));
  EXPECT_EQ(terms[3]["matchExpressions"][2], expr("nvidia.com/gpu.compute.major", "In", "9"));
  // Reviewing the mutated pod changes nothing.
  ReviewOutcome again = mutate(out.mutated);
  EXPECT_TRUE(again.response.patch.empty()) << again.response.patch.dump();
  EXPECT_EQ(again.mutated, out.mutated);
}

TEST(GpuAffinity, OnlyGpuPodsWithValidAnnotationsAndOffByDefault) {
  // No GPU: nothing to steer.
  ReviewOutcome out = mutate(pod({{"gpu-admit.io/gpu-memory", "40Gi"}}, json::object(), json::object({{"cpu", "1"}})));
  EXPECT_TRUE(out.response.patch.empty());
  // Annotations that do not parse are gpu-capacity's to report.
  out = mutate(pod({{"gpu-admit.io/gpu-memory", "lots"}, {"gpu-admit.io/cuda-arch", "sm_x"}, {"gpu-admit.io/cuda-version", "12"}}));
  EXPECT_TRUE(out.response.patch.empty()) << out.response.patch.dump();
  // MIG devices: their profile fixes the memory, gpu.memory is the whole GPU's.
  out = mutate(pod({{"gpu-admit.io/gpu-memory", "10Gi"}}, json::object(), json::object({{"nvidia.com/mig-1g.10gb", "1"}})));
  EXPECT_TRUE(out.response.patch.empty()) << out.response.patch.dump();
  // The shipped configuration lists it with mode off.
  auto engine = Engine::from_default();
  ReviewOutcome shipped = engine->review(request_for_manifest(pod({{"gpu-admit.io/gpu-memory", "40Gi"}}), "default"));
  EXPECT_FALSE(shipped.mutated["spec"].contains("affinity"));
  // Each requirement can be switched off.
  out = mutate(pod({{"gpu-admit.io/gpu-memory", "40Gi"}, {"gpu-admit.io/cuda-version", "12.4"}}),
               "policies:\n  gpu-affinity: {gpuMemory: false, deprecatedDriverLabels: false}\n");
  EXPECT_EQ(terms_of(out.mutated).size(), 3u) << terms_of(out.mutated).dump();
  EXPECT_EQ(terms_of(out.mutated).dump().find("gpu.memory"), std::string::npos);
  // In warn mode nothing changes and a warning says what it would do.
  out = mutate(pod({{"gpu-admit.io/gpu-memory", "40Gi"}}), "policies:\n  gpu-affinity: {mode: warn}\n");
  EXPECT_TRUE(out.response.patch.empty());
  ASSERT_EQ(out.response.warnings.size(), 1u);
  EXPECT_NE(out.response.warnings[0].find("gpu-affinity"), std::string::npos) << out.response.warnings[0];
}

// The added affinity selects exactly the nodes whose labels gpu-capacity finds suitable, for
// nodes labelled with the current or the deprecated driver labels (and no runtime-version
// labels, which gpu-capacity would prefer over the driver).
TEST(GpuAffinity, SelectsExactlyTheNodesGpuCapacityAccepts) {
  struct NodeLabels {
    int memory;
    std::string driver;  // "550.54.15"
    bool deprecated;
    int cc_major, cc_minor;
  };
  std::vector<NodeLabels> nodes;
  for (int memory : {23034, 40960, 81920})
    for (std::string driver : {"525.60.13", "550.54.13", "550.54.14", "550.54.03", "550.90.07", "560.28.03", "570.26", "580.65.06"})
      for (bool deprecated : {false, true})
        for (auto [major, minor] : std::vector<std::pair<int, int>>{{7, 5}, {8, 0}, {8, 6}, {8, 9}, {9, 0}, {10, 0}})
          nodes.push_back({memory, driver, deprecated, major, minor});
  const std::vector<Annotations> annotation_sets = {
      {{"gpu-admit.io/gpu-memory", "40Gi"}},
      {{"gpu-admit.io/gpu-memory", "40961Mi"}},
      {{"gpu-admit.io/cuda-version", "12.4"}},
      {{"gpu-admit.io/cuda-version", "12.7"}},
      {{"gpu-admit.io/cuda-version", "12.8"}},
      {{"gpu-admit.io/cuda-version", "11.8"}},
      {{"gpu-admit.io/cuda-arch", "sm_80"}},
      {{"gpu-admit.io/cuda-arch", "sm_86,sm_90a"}},
      {{"gpu-admit.io/cuda-arch", "compute_86"}},
      {{"gpu-admit.io/cuda-arch", "sm_75, compute_90"}},
      {{"gpu-admit.io/gpu-memory", "24Gi"}, {"gpu-admit.io/cuda-version", "12.2"}, {"gpu-admit.io/cuda-arch", "sm_80,compute_90"}},
  };
  int matched = 0, checked = 0;
  for (const Annotations& annotations : annotation_sets) {
    ReviewOutcome out = mutate(pod(annotations));
    const k8s::RequiredNodeAffinity affinity(out.mutated["spec"]);
    capacity::GpuRequirements requirements;
    if (annotations.count("gpu-admit.io/gpu-memory"))
      requirements.memory_mib = (k8s::Quantity::parse(annotations.at("gpu-admit.io/gpu-memory")).value() + (1 << 20) - 1) >> 20;
    if (annotations.count("gpu-admit.io/cuda-version"))
      requirements.cuda = capacity::Version::parse(annotations.at("gpu-admit.io/cuda-version"));
    if (annotations.count("gpu-admit.io/cuda-arch"))
      requirements.archs = capacity::parse_cuda_archs(annotations.at("gpu-admit.io/cuda-arch"));
    capacity::Amounts requests;
    requests.extended = {{"nvidia.com/gpu", 1}};
    for (const NodeLabels& n : nodes) {
      k8s::Node node{"n", {}};
      node.labels["nvidia.com/gpu.product"] = "GPU";
      node.labels["nvidia.com/gpu.memory"] = std::to_string(n.memory);
      node.labels["nvidia.com/gpu.compute.major"] = std::to_string(n.cc_major);
      node.labels["nvidia.com/gpu.compute.minor"] = std::to_string(n.cc_minor);
      const std::string prefix = n.deprecated ? "nvidia.com/cuda.driver." : "nvidia.com/cuda.driver-version.";
      const auto version = capacity::Version::parse(n.driver);
      node.labels[prefix + "major"] = std::to_string(version->parts[0]);
      node.labels[prefix + "minor"] = std::to_string(version->parts[1]);
      // GFD writes the revision as the driver string has it: "03", not "3".
      if (version->parts.size() > 2) node.labels[prefix + (n.deprecated ? "rev" : "revision")] = n.driver.substr(n.driver.rfind('.') + 1);
      const bool suitable = !requirements.unmet_by(capacity::gpu_facts_from_labels(node.labels), requests, GpuResources{});
      ASSERT_EQ(affinity.matches(node), suitable)
          << json(annotations).dump() << " on " << n.memory << " MiB, driver " << n.driver << (n.deprecated ? " (deprecated labels)" : "")
          << ", cc " << n.cc_major << "." << n.cc_minor << "; terms " << terms_of(out.mutated).dump();
      matched += suitable;
      ++checked;
    }
  }
  EXPECT_GT(matched, checked / 5);
  EXPECT_LT(matched, checked * 4 / 5);
}

}  // namespace
}  // namespace gpuadmit
