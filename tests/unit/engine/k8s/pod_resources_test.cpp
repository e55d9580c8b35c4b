// Effective pod requests/limits against the upstream fact table
// (shared/fixtures/upstream/pod_requests.json, every case), plus error paths and JSON forms.
#include "engine/k8s/pod_resources.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

constexpr std::size_t kTableSize = 92;

// Cases that cannot pass, each with the reason. None: the status-based (in-place resize) cases
// are implemented too, although an admission webhook sees only the spec.
const std::map<std::string, std::string> kSkipped = {};

std::vector<json> load_cases() {
  std::ifstream in(GPUADMIT_SHARED_DIR "/fixtures/upstream/pod_requests.json");
  if (!in) return {json{{"id", "fixture-missing"}, {"functions", {"fixture-missing"}}}};
  return json::parse(in).at("cases").get<std::vector<json>>();
}

const std::vector<json>& cases() {
  static const std::vector<json> all = load_cases();
  return all;
}

PodResourcesOptions options_for(const json& c) {
  PodResourcesOptions opts;
  const json& o = c.contains("options") && !c["options"].is_null() ? c["options"] : json::object();
  for (const auto& [key, value] : o.items()) {
    const bool on = value.get<bool>();
    if (key == "excludeOverhead") {
      opts.exclude_overhead = on;
    } else if (key == "skipPodLevelResources") {
      opts.skip_pod_level_resources = on;
    } else if (key == "useStatusResources") {
      opts.use_status_resources = on;
    } else if (key == "inPlacePodLevelResourcesVerticalScalingEnabled") {
      opts.in_place_pod_level_resources_vertical_scaling_enabled = on;
    } else {
      ADD_FAILURE() << "unknown option " << key;
    }
  }
  return opts;
}

std::string describe(const ResourceList& list) {
  std::string out = "{";
  for (const auto& [name, q] : list) out += " " + name + ": " + q.to_string();
  return out + " }";
}

// Same resource names, each quantity numerically equal (equality.Semantic.DeepEqual).
void expect_same(const ResourceList& got, const json& want, const std::string& what) {
  SCOPED_TRACE(what + " = " + describe(got) + ", want " + want.dump());
  std::vector<std::string> got_names, want_names;
  for (const auto& [name, q] : got) got_names.push_back(name);
  for (const auto& [name, q] : want.items()) want_names.push_back(name);
  std::sort(want_names.begin(), want_names.end());
  EXPECT_EQ(got_names, want_names);
  for (const auto& [name, q] : want.items()) {
    if (const auto it = got.find(name); it != got.end()) {
      EXPECT_EQ(it->second.cmp(Quantity::parse(q.get<std::string>())), 0) << name;
    }
  }
}

class PodRequestsTable : public ::testing::TestWithParam<json> {};

TEST_P(PodRequestsTable, Case) {
  const json& c = GetParam();
  const std::string id = c.at("id");
  SCOPED_TRACE("case " + id);
  if (const auto skip = kSkipped.find(id); skip != kSkipped.end()) GTEST_SKIP() << skip->second;
  PodResourcesOptions opts = options_for(c);
  const json& pod = c.contains("pod") ? c["pod"] : json::object();
  const json& spec = pod.contains("spec") ? pod["spec"] : json::object();
  if (pod.contains("status")) opts.status = &pod["status"];
  for (const std::string fn : c.at("functions")) {
    if (fn == "PodRequests") {
      expect_same(pod_requests(spec, opts), c.at("expectedRequests"), fn);
    } else if (fn == "PodLimits") {
      expect_same(pod_limits(spec, opts), c.at("expectedLimits"), fn);
    } else if (fn == "AggregateContainerRequests") {
      expect_same(aggregate_container_requests(spec, opts), c.at("expectedRequests"), fn);
    } else if (fn == "AggregateContainerLimits") {
      expect_same(aggregate_container_limits(spec, opts), c.at("expectedLimits"), fn);
    } else if (fn == "IsPodLevelResourcesSet") {
      EXPECT_EQ(is_pod_level_resources_set(spec), c.at("expected").get<bool>());
    } else if (fn == "IsPodLevelLimitsSet") {
      EXPECT_EQ(is_pod_level_limits_set(spec), c.at("expected").get<bool>());
    } else if (fn == "IsSupportedPodLevelResource") {
      EXPECT_EQ(is_supported_pod_level_resource(c.at("resourceName").get<std::string>()),
                c.at("expected").get<bool>());
    } else {
      ADD_FAILURE() << "unknown function " << fn;
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<json>& info) {
  std::string name = info.param.at("id");
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(PodRequestsUpstream, PodRequestsTable, ::testing::ValuesIn(cases()),
                         case_name);

TEST(PodRequestsTableFile, HasEveryCase) { EXPECT_EQ(cases().size(), kTableSize); }

// ---- Beyond the table ----

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const QuantityError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no QuantityError";
  return "";
}

constexpr std::string_view kRegexError =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

TEST(PodRequestsErrors, NameTheField) {
  const json spec = json::parse(R"({
    "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}},
                   {"name": "b", "resources": {"requests": {"memory": "12Q"}}}]})");
  EXPECT_EQ(error_of([&] { pod_requests(spec); }),
            "spec.containers[1].resources.requests.memory: \"12Q\" is not a valid quantity: " +
                std::string(kRegexError));
  EXPECT_EQ(error_of([&] { container_requests(spec["containers"][1]); }),
            "container.resources.requests.memory: \"12Q\" is not a valid quantity: " +
                std::string(kRegexError));
  EXPECT_EQ(error_of([&] { container_requests(spec["containers"][1], "pod/x container b"); }),
            "pod/x container b.resources.requests.memory: \"12Q\" is not a valid quantity: " +
                std::string(kRegexError));

  const json init = json::parse(
      R"({"initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "1.5.5"}}}]})");
  EXPECT_EQ(error_of([&] { pod_limits(init); }),
            "spec.initContainers[0].resources.limits.nvidia.com/gpu: \"1.5.5\" is not a valid "
            "quantity: " +
                std::string(kRegexError));
  EXPECT_EQ(error_of([&] { pod_requests(json::parse(R"({"overhead": {"cpu": "1Gi1"}})")); }),
            "spec.overhead.cpu: \"1Gi1\" is not a valid quantity: unable to parse quantity's "
            "suffix");
}

TEST(PodRequestsErrors, WrongJsonTypes) {
  EXPECT_EQ(error_of([] { pod_requests(json::parse(R"({"containers": {}})")); }),
            "spec.containers: expected a list");
  EXPECT_EQ(error_of([] { pod_requests(json::parse(R"({"containers": [7]})")); }),
            "spec.containers[0]: expected an object");
  EXPECT_EQ(error_of([] { pod_requests(json::parse(R"({"containers": [{"resources": []}]})")); }),
            "spec.containers[0].resources: expected an object");
  EXPECT_EQ(error_of([] {
              pod_requests(json::parse(R"({"containers": [{"resources": {"requests": {"cpu":
              true}}}]})"));
            }),
            "spec.containers[0].resources.requests.cpu: \"true\" is not a valid quantity: " +
                std::string(kRegexError));
}

TEST(PodRequestsJson, QuantitiesAsKubernetesDecodesThem) {
  const json spec = json::parse(R"({
    "containers": [{"resources": {"requests": {"cpu": 2, "memory": " 1Gi ", "nvidia.com/gpu": null},
                                  "limits": {"cpu": 0.5}}}]})");
  const ResourceList requests = pod_requests(spec);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests.at("cpu").to_string(), "2");
  EXPECT_EQ(requests.at("memory").to_string(), "1Gi");
  EXPECT_TRUE(requests.at("nvidia.com/gpu").is_zero());  // present, as Go keeps the key
  EXPECT_EQ(pod_limits(spec).at("cpu").to_string(), "500m");
}

TEST(PodRequestsJson, GpuPodWithSidecarAndInit) {
  const json spec = json::parse(R"({
    "containers": [
      {"name": "train", "resources": {"requests": {"cpu": "3500m", "nvidia.com/gpu": "4"},
                                      "limits": {"nvidia.com/gpu": "4", "memory": "64Gi"}}},
      {"name": "metrics", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
    "initContainers": [
      {"name": "proxy", "restartPolicy": "Always",
       "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
      {"name": "warmup", "resources": {"requests": {"cpu": "8", "nvidia.com/gpu": "1"},
                                       "limits": {"memory": "80Gi"}}}],
    "overhead": {"cpu": "250m", "memory": "120Mi"}})");
  const ResourceList requests = pod_requests(spec);
  // max(app+sidecars, warmup+proxy): cpu max(3.85, 8.25)=8.25 (+0.25 overhead), gpu max(4, 1).
  EXPECT_EQ(requests.at("cpu").to_string(), "8500m");
  EXPECT_EQ(requests.at("nvidia.com/gpu").to_string(), "4");
  EXPECT_EQ(requests.at("memory").to_string(), "504Mi");
  const ResourceList limits = pod_limits(spec);
  EXPECT_EQ(limits.at("memory").to_string(), "82040Mi");  // max(64Gi, 80Gi) + 120Mi overhead
  EXPECT_EQ(limits.at("nvidia.com/gpu").to_string(), "4");
  EXPECT_EQ(limits.count("cpu"), 0u);  // no container limits cpu: overhead adds none
}

}  // namespace
}  // namespace gpuadmit::k8s

// The API server's defaulting: a limit without a request becomes the request too; capacity
// decisions on objects from files rely on it.
TEST(PodRequestsDefaulting, LimitsFillMissingRequests) {
  using nlohmann::json;
  json spec = json::parse(R"({"containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":1,"memory":"8Gi"},
                              "requests":{"memory":"4Gi"}}}],
                              "initContainers":[{"name":"i","resources":{"limits":{"cpu":"2"}}}]})");
  auto defaulted = gpuadmit::k8s::with_requests_defaulted_from_limits(spec);
  ASSERT_TRUE(defaulted.has_value());
  EXPECT_EQ((*defaulted)["containers"][0]["resources"]["requests"],
            json::parse(R"({"memory":"4Gi","nvidia.com/gpu":1})"));
  EXPECT_EQ((*defaulted)["initContainers"][0]["resources"]["requests"], json::parse(R"({"cpu":"2"})"));
  auto requests = gpuadmit::k8s::pod_requests(*defaulted);
  EXPECT_EQ(requests.at("nvidia.com/gpu").value(), 1);
  EXPECT_FALSE(gpuadmit::k8s::with_requests_defaulted_from_limits(*defaulted).has_value());
}
