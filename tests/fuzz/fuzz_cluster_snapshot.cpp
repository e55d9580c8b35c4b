// `--cluster` snapshots: ClusterModel::load() reads a file (JSON streamed item by item, or
// YAML) and throws SnapshotError naming the file and object, nothing else. The extension is
// picked by the first byte so both readers are reached. A snapshot that loads is then asked
// about a GPU pod by gpu-capacity and gpu-quota, which walk every pool and namespace, and about an
// autoscaler of its workload "d" (the model's workload index).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_common.h"

namespace {

constexpr std::string_view kReview = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
 "request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
 "namespace":"ml-team","operation":"CREATE","userInfo":{"username":"fuzz"},
 "object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"ml-team",
   "annotations":{"gpu-admit.io/gpu-memory":"40Gi","gpu-admit.io/cuda-version":"12.2","gpu-admit.io/cuda-arch":"sm_80"}},
  "spec":{"replicas":3,"template":{"spec":{"nodeSelector":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB"},
   "containers":[{"name":"c","image":"nvcr.io/nvidia/pytorch:24.05-py3",
   "resources":{"limits":{"nvidia.com/gpu":"4","nvidia.com/mig-3g.40gb":"1","memory":"64Gi","cpu":"16"}}}]}}}}}})";

// An autoscaler of the snapshot's Deployment "d": gpu-autoscaling and gpu-quota read its pods
// from the model's workload index (ReplicaSet owners and pod-template-hash labels).
constexpr std::string_view kAutoscalerReview = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
 "request":{"uid":"u2","kind":{"group":"autoscaling","version":"v2","kind":"HorizontalPodAutoscaler"},
 "resource":{"group":"autoscaling","version":"v2","resource":"horizontalpodautoscalers"},
 "namespace":"ml-team","operation":"CREATE","userInfo":{"username":"fuzz"},
 "object":{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"d","namespace":"ml-team"},
  "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"d"},"minReplicas":0,"maxReplicas":2147483647}}}})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(text)) return -1;
  const bool json = size > 0 && (data[0] == '{' || data[0] == '[' || data[0] == ' ');
  const std::string path = gpuadmit::fuzz::write_temp_file(json ? "cluster.json" : "cluster.yaml", text);
  std::unique_ptr<gpuadmit::capacity::ClusterModel> model;
  try {
    model = gpuadmit::capacity::ClusterModel::load({path}, gpuadmit::fuzz::default_engine().config().gpu);
  } catch (const gpuadmit::capacity::SnapshotError&) {
    return 0;
  }
  gpuadmit::answer_admission_review(gpuadmit::fuzz::default_engine(), kReview, model.get());
  gpuadmit::answer_admission_review(gpuadmit::fuzz::default_engine(), kAutoscalerReview, model.get());
  return 0;
}
