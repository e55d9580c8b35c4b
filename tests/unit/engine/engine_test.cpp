// The pipeline's own behaviour: idempotence of every mutation, config errors that name the file,
// line and key, JSON Patch escaping, the workload locator and manifest reading.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "engine/json_patch.h"
#include "engine/manifests.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Reviewing what a mutation produced must change nothing: every golden CREATE case that was
// patched, and every sample manifest, reviewed a second time yields an empty patch.
TEST(Idempotence, GoldenCasesYieldNoSecondPatch) {
  int patched = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden")) {
    const fs::path dir = entry.path();
    json review = json::parse(std::ifstream(dir / "request.json"), nullptr, false);
    if (review.is_discarded()) continue;
    auto engine = fs::exists(dir / "config.yaml") ? Engine::from_file((dir / "config.yaml").string())
                                                  : Engine::from_default();
    Request request;
    try {
      request = decode_admission_review(review);
    } catch (const ReviewError&) {
      continue;
    }
    ReviewOutcome first = engine->review(request);
    if (!first.response.allowed || first.response.patch.empty()) continue;
    ++patched;
    request.object = first.mutated;
    ReviewOutcome second = engine->review(request);
    EXPECT_TRUE(second.response.patch.empty()) << dir.filename() << ": " << second.response.patch.dump();
  }
  EXPECT_GE(patched, 10);
}

TEST(Idempotence, SampleManifests) {
  auto engine = Engine::from_default();
  int patched = 0;
  for (const ManifestDocument& doc : load_manifests({std::string(GPUADMIT_SOURCE_DIR) + "/manifests/examples"})) {
    if (!locate_workload(doc.object).supported) continue;
    ReviewOutcome first = engine->review(request_for_manifest(doc.object, "default"));
    if (first.response.patch.empty()) continue;
    ++patched;
    ReviewOutcome second = engine->review(request_for_manifest(first.mutated, "default"));
    EXPECT_TRUE(second.response.patch.empty()) << doc.file << ": " << second.response.patch.dump();
  }
  EXPECT_GE(patched, 4);
}

std::string config_error(const std::string& yaml) {
  try {
    Engine::from_yaml(yaml, "cfg.yaml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "no error";
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(config_error("policies:\n  dev-shm:\n    memoryFraction: 2\n"),
            "cfg.yaml:3:21: policies.dev-shm.memoryFraction: must be greater than 0 and at most 1");
  EXPECT_EQ(config_error("policies:\n  dev-shm:\n    memoryFracton: 0.5\n").substr(0, 49),
            "cfg.yaml:3:20: policies.dev-shm.memoryFracton: un");
  EXPECT_NE(config_error("policies:\n  dev-shm:\n    memoryFracton: 0.5\n").find("unknown key 'memoryFracton'"),
            std::string::npos);
  EXPECT_EQ(config_error("policies:\n  dev-shm:\n    maxSize: lots\n").substr(0, 39),
            "cfg.yaml:3:14: policies.dev-shm.maxSize");
  EXPECT_NE(config_error("policies:\n  gpu-tolerationz: {}\n").find("unknown policy 'gpu-tolerationz'"),
            std::string::npos);
  EXPECT_NE(config_error("policies:\n  dev-shm: {mode: block}\n").find("unknown mode 'block'"), std::string::npos);
  EXPECT_NE(config_error("policies:\n  probe-defaults:\n    profiles:\n      - {name: x, images: ['(['], port: 1, "
                         "startupPath: /}\n")
                .find("policies.probe-defaults.profiles[0].images[0]: bad regular expression"),
            std::string::npos);
  EXPECT_NE(config_error("policies: [1, 2").find("cfg.yaml:"), std::string::npos);
  EXPECT_NE(config_error("excludedNamespaces: kube-system\n").find("excludedNamespaces: expected a list"),
            std::string::npos);
  EXPECT_NE(config_error("policies:\n  dev-shm: {}\n  dev-shm: {}\n").find("duplicate key 'dev-shm'"), std::string::npos);
  EXPECT_NE(config_error("policies:\n  gpu-tolerations:\n    tolerations: [{operator: Exists}]\n").find("key is required"),
            std::string::npos);
}

TEST(Config, EmbeddedDefaultLoadsEveryPolicy) {
  auto engine = Engine::from_default();
  // The shipped configuration names every built-in policy, so README and default stay complete.
  std::set<std::string> configured;
  for (const auto* list : {&engine->config().mutating, &engine->config().validating})
    for (const ConfiguredPolicy& p : *list) configured.insert(p.settings.name);
  for (const PolicyInfo& info : policy_registry()) EXPECT_TRUE(configured.count(std::string(info.name))) << info.name;
  EXPECT_EQ(engine->config().excluded_namespaces, (std::vector<std::string>{"kube-system", "gpu-admit"}));
  // The shipped file on disk is the same one the binary embeds.
  std::ifstream in(std::string(GPUADMIT_SOURCE_DIR) + "/policies/default.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, embedded_default_config());
}

TEST(JsonPatch, EscapesAndUsesExplicitIndices) {
  json from = {{"a/b", 1}, {"m~n", {1, 2, 3}}, {"keep", "x"}};
  json to = {{"a/b", 2}, {"m~n", {1, 5}}, {"keep", "x"}, {"nvidia.com/gpu", "1"}};
  json patch = json_patch_diff(from, to);
  EXPECT_EQ(patch, json::parse(R"([
    {"op":"replace","path":"/a~1b","value":2},
    {"op":"replace","path":"/m~0n/1","value":5},
    {"op":"remove","path":"/m~0n/2"},
    {"op":"add","path":"/nvidia.com~1gpu","value":"1"}])"));
  EXPECT_EQ(from.patch(patch), to);
  json grow = json_patch_diff(json{{"l", {1}}}, json{{"l", {1, 2, 3}}});
  EXPECT_EQ(grow[0]["path"], "/l/1");
  EXPECT_EQ(grow[1]["path"], "/l/2");
  EXPECT_TRUE(json_patch_diff(to, to).empty());
}

TEST(Workload, LocatesEveryPodController) {
  struct Case {
    const char* api_version;
    const char* kind;
    json spec;
    const char* pointer;
    const char* field;
  };
  json pod_spec = {{"containers", json::array()}};
  json templ = {{"template", {{"spec", pod_spec}}}};
  std::vector<Case> cases = {
      {"v1", "Pod", pod_spec, "/spec", "spec"},
      {"apps/v1", "Deployment", templ, "/spec/template/spec", "spec.template.spec"},
      {"apps/v1", "StatefulSet", templ, "/spec/template/spec", "spec.template.spec"},
      {"apps/v1", "DaemonSet", templ, "/spec/template/spec", "spec.template.spec"},
      {"apps/v1", "ReplicaSet", templ, "/spec/template/spec", "spec.template.spec"},
      {"v1", "ReplicationController", templ, "/spec/template/spec", "spec.template.spec"},
      {"batch/v1", "Job", templ, "/spec/template/spec", "spec.template.spec"},
      {"batch/v1", "CronJob", {{"jobTemplate", {{"spec", templ}}}}, "/spec/jobTemplate/spec/template/spec",
       "spec.jobTemplate.spec.template.spec"},
  };
  for (const Case& c : cases) {
    Workload w = locate_workload({{"apiVersion", c.api_version}, {"kind", c.kind}, {"spec", c.spec}});
    ASSERT_TRUE(w.supported) << c.kind;
    ASSERT_EQ(w.pods.size(), 1u) << c.kind;
    EXPECT_EQ(w.pods[0].spec.to_string(), c.pointer) << c.kind;
    EXPECT_EQ(w.pods[0].field, c.field) << c.kind;
  }
  EXPECT_FALSE(locate_workload({{"apiVersion", "ray.io/v1"}, {"kind", "RayCluster"}, {"spec", templ}}).supported);
  EXPECT_FALSE(locate_workload({{"apiVersion", "v1"}, {"kind", "Deployment"}, {"spec", templ}}).supported);
  EXPECT_FALSE(locate_workload({{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"spec", 3}}).supported);
  EXPECT_FALSE(locate_workload(json::array()).supported);
}

TEST(Manifests, YamlScalarsResolveAsKubectlDoes) {
  auto docs = parse_manifests(
      "a: yes\nb: 'yes'\nc: 1\nd: \"1\"\ne: 1.5\nf: 16Gi\ng: ~\nh: 0x1F\ni: 1e3\n---\n---\nkind: X\n", "m.yaml");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].object, json::parse(R"({"a":true,"b":"yes","c":1,"d":"1","e":1.5,"f":"16Gi","g":null,"h":"0x1F","i":1000.0})"));
  EXPECT_EQ(docs[1].document, 2);
  EXPECT_EQ(docs[1].line, 12);
}

TEST(Manifests, BadInputNamesFileAndLine) {
  try {
    parse_manifests("a: 1\nb: [1, 2\n", "bad.yaml");
    FAIL() << "no error";
  } catch (const ManifestError& error) {
    EXPECT_EQ(std::string(error.what()).substr(0, 9), "bad.yaml:");
  }
  EXPECT_THROW(parse_manifests("- 1\n- 2\n", "list.yaml"), ManifestError);
  EXPECT_THROW(parse_manifests("{\"a\": ", "x.json"), ManifestError);
  EXPECT_THROW(load_manifests({"/nonexistent/gpu-admit"}), ManifestError);
  auto list = parse_manifests(R"({"kind":"List","items":[{"kind":"Pod"},{"kind":"Node"}]})", "l.json");
  EXPECT_EQ(list.size(), 2u);
}

TEST(Manifests, YamlRoundTripQuotesAmbiguousStrings) {
  json object = {{"a", "yes"}, {"b", "1"}, {"c", 1}, {"d", "16Gi"}, {"e", json::array({"x", "null"})}};
  EXPECT_EQ(parse_manifests(to_yaml(object), "rt.yaml")[0].object, object);
}

}  // namespace
}  // namespace gpuadmit
