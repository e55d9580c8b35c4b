// Engine micro benchmarks: one AdmissionReview of a typical GPU Deployment (the vLLM golden
// case) through the whole pipeline, through each policy alone, and the no-work ceiling (parse
// the review and serialize an allowed answer) measured in the same run for the ratio.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/input_limits.h"
#include "engine/review_wire.h"
#include "gpuadmit/engine.h"

namespace {

using namespace gpuadmit;
using nlohmann::json;

std::string read_request() {
  std::ifstream in(std::filesystem::path(GPUADMIT_SOURCE_DIR) / "tests/golden/probe-defaults--deployment-vllm-profile/request.json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string& request_body() {
  static const std::string body = read_request();
  return body;
}

// The work every webhook must do even with no policies: parse (with parse_json, as the routes
// do), decode, encode, serialize. The decode moves the object out of the parsed review, as
// answer_admission_review does.
void BM_NoWorkCeiling(benchmark::State& state) {
  for (auto _ : state) {
    json review = parse_json(request_body());
    Request request = decode_admission_review(std::move(review));
    Response response;
    response.uid = request.uid;
    benchmark::DoNotOptimize(serialize_admission_review(response));
  }
}
BENCHMARK(BM_NoWorkCeiling);

void BM_ReviewDefaultPolicies(benchmark::State& state) {
  auto engine = Engine::from_default();
  for (auto _ : state) benchmark::DoNotOptimize(answer_admission_review(*engine, request_body()).body);
}
BENCHMARK(BM_ReviewDefaultPolicies);

// What each webhook route does with the default policies: /mutate runs only the mutations,
// /validate only the validations (on the object the API server has already mutated).
void BM_ReviewMutateRoute(benchmark::State& state) {
  auto engine = Engine::from_default();
  for (auto _ : state)
    benchmark::DoNotOptimize(answer_admission_review(*engine, request_body(), nullptr, ReviewPhases::MutateOnly).body);
}
BENCHMARK(BM_ReviewMutateRoute);

void BM_ReviewValidateRoute(benchmark::State& state) {
  auto engine = Engine::from_default();
  for (auto _ : state)
    benchmark::DoNotOptimize(answer_admission_review(*engine, request_body(), nullptr, ReviewPhases::ValidateOnly).body);
}
BENCHMARK(BM_ReviewValidateRoute);

// Each policy alone in its default configuration (policies/default.yaml with every other policy
// off), behind the same parse/serialize work. smoke-test, off by default, runs in enforce mode.
std::string alone(std::string_view name) {
  if (name == "smoke-test") return "policies:\n  smoke-test: {image: gpu-admit/gpu-smoke:0.1.0}\n";
  std::string yaml(embedded_default_config());
  for (const PolicyInfo& other : policy_registry()) {
    if (other.name == name) continue;
    const std::string marker = "  " + std::string(other.name) + ":\n    mode: enforce";
    if (auto at = yaml.find(marker); at != std::string::npos)
      yaml.replace(at, marker.size(), "  " + std::string(other.name) + ":\n    mode: off");
  }
  return yaml;
}

void BM_ReviewOnePolicy(benchmark::State& state) {
  const PolicyInfo& info = policy_registry()[static_cast<std::size_t>(state.range(0))];
  state.SetLabel(std::string(info.name));
  auto engine = Engine::from_yaml(alone(info.name), "bench");
  for (auto _ : state) benchmark::DoNotOptimize(answer_admission_review(*engine, request_body()).body);
}
BENCHMARK(BM_ReviewOnePolicy)->DenseRange(0, static_cast<int>(policy_registry().size()) - 1);

}  // namespace

BENCHMARK_MAIN();
