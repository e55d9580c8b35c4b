// The workload annotations users write: gpu-admit.io/model-load-seconds (probe-defaults),
// gpu-memory (a quantity), cuda-version (a dotted version) and cuda-arch (sm_XY lists), read by
// gpu-affinity and gpu-capacity. Their parsers are called directly (parse_cuda_archs throws
// std::invalid_argument, as documented; the others return nullopt), then the four values are
// put on a GPU Deployment that an engine with those policies reviews against the sample
// cluster, where a bad value must come back as a violation or a warning, never an exception.
// The same values are also read as GPU feature discovery labels of a node.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "engine/capacity/gpu_facts.h"
#include "engine/k8s/quantity.h"
#include "tests/fuzz/fuzz_common.h"

namespace capacity = gpuadmit::capacity;
using nlohmann::json;

namespace {

const gpuadmit::Engine& annotation_engine() {
  static const std::shared_ptr<const gpuadmit::Engine> engine = gpuadmit::Engine::from_yaml(
      "policies:\n  gpu-tolerations: {}\n  probe-defaults: {}\n  gpu-affinity: {}\n  gpu-capacity: {}\n",
      "fuzz-annotations.yaml");
  return *engine;
}

void parse_directly(const std::string& memory, const std::string& cuda, const std::string& arch) {
  gpuadmit::k8s::Quantity q;
  if (gpuadmit::k8s::Quantity::try_parse(memory, q)) (void)q.value();
  if (const auto version = capacity::Version::parse(cuda)) {
    (void)version->to_string();
    capacity::minimum_driver_for_cuda(*version);
    capacity::cuda_supported_by_driver(*version);
  }
  try {
    for (const capacity::CudaArch& entry : capacity::parse_cuda_archs(arch)) entry.runs_on({9, 0});
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

// Input: four lines, in the order above.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(input)) return -1;
  std::string value[4];
  std::size_t at = 0;
  for (int i = 0; i < 4 && at <= input.size(); ++i) {
    const std::size_t end = std::min(input.find('\n', at), input.size());
    value[i] = std::string(input.substr(at, end - at));
    at = end + 1;
  }
  parse_directly(value[1], value[2], value[3]);
  // The MiB rounding of a gpu-memory that saturates int64 overflows (reported; see README.md).
  if (gpuadmit::k8s::Quantity q; gpuadmit::fuzz::skip_known_enabled() &&
                                 gpuadmit::k8s::Quantity::try_parse(value[1], q) && q.value() > (std::int64_t{1} << 62))
    return -1;

  gpuadmit::k8s::Labels labels{{"nvidia.com/gpu.memory", value[1]},
                               {"nvidia.com/cuda.driver-version.major", value[2]},
                               {"nvidia.com/cuda.driver-version.minor", value[0]},
                               {"nvidia.com/gpu.compute.major", value[3]},
                               {"nvidia.com/mig-" + value[3] + ".memory", value[1]},
                               {"nvidia.com/gpu.product", value[0]}};
  const capacity::GpuFacts facts = capacity::gpu_facts_from_labels(labels);
  for (const auto& profile : facts.mig_profiles) facts.device_memory_mib("nvidia.com/mig-" + profile.name);

  // json::dump would throw on invalid UTF-8; the API server only sends valid JSON strings.
  json annotations = json::object();
  const char* keys[] = {"gpu-admit.io/model-load-seconds", "gpu-admit.io/gpu-memory", "gpu-admit.io/cuda-version",
                        "gpu-admit.io/cuda-arch"};
  for (int i = 0; i < 4; ++i)
    if (!value[i].empty()) annotations[keys[i]] = value[i];
  json review = json::parse(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
   "request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
   "namespace":"ml-serving","operation":"CREATE","userInfo":{"username":"fuzz"},
   "object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"ml-serving"},
    "spec":{"replicas":1,"template":{"metadata":{},"spec":{
     "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
       {"matchExpressions":[{"key":"nvidia.com/gpu.product","operator":"In","values":["NVIDIA-H100-80GB-HBM3"]}]},
       {"matchExpressions":[{"key":"nvidia.com/gpu.product","operator":"In","values":["NVIDIA-A100-SXM4-80GB"]}]}]}}},
     "containers":[{"name":"c","image":"vllm/vllm-openai:v0.5.0","readinessProbe":{"httpGet":{"path":"/health","port":8000}},
      "resources":{"limits":{"nvidia.com/gpu":"1","cpu":"4","memory":"32Gi"}}}]}}}}}})");
  review["request"]["object"]["spec"]["template"]["metadata"]["annotations"] = annotations;
  std::string body;
  try {
    body = review.dump();
  } catch (const json::type_error&) {
    return 0;
  }
  gpuadmit::answer_admission_review(annotation_engine(), body, &gpuadmit::fuzz::sample_cluster());
  return 0;
}
