// The policy configuration (`--config`, the embedded default): Engine::from_yaml() throws
// ConfigError naming file, line and key, and nothing else. A config that loads is also used
// once, so policies built from hostile settings run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gpuadmit/config.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

// A GPU pod every policy has something to say about.
constexpr std::string_view kReview = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
 "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"ml","operation":"CREATE","userInfo":{"username":"fuzz"},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ml",
   "annotations":{"gpu-admit.io/gpu-memory":"40Gi","gpu-admit.io/cuda-version":"12.4","gpu-admit.io/cuda-arch":"sm_80","gpu-admit.io/smoke-test":"true"}},
  "spec":{"containers":[{"name":"c","image":"vllm/vllm-openai:latest","env":[{"name":"HF_TOKEN","value":"x"}],
   "readinessProbe":{"httpGet":{"path":"/health","port":8000}},
   "resources":{"limits":{"nvidia.com/gpu":"2","memory":"16Gi"},"requests":{"cpu":"4"}}}]}}}})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(yaml)) return -1;
  std::shared_ptr<const gpuadmit::Engine> engine;
  try {
    engine = gpuadmit::Engine::from_yaml(yaml, "fuzz.yaml");
  } catch (const gpuadmit::ConfigError&) {
    return 0;
  }
  gpuadmit::answer_admission_review(*engine, kReview, &gpuadmit::fuzz::sample_cluster());
  return 0;
}
