// Working out a pod template's GPU use besides GPU resources (include/gpuadmit/gpu_use.h): DRA
// claims resolved against the claims and templates gpu-admit can see, KAI's annotations and
// HAMi's share dimensions read and checked.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "gpuadmit/gpu_resources.h"
#include "gpuadmit/gpu_use.h"

namespace gpuadmit {

namespace capacity {
class ClusterModel;
}
namespace k8s {
class ClaimCatalog;
}

// Where claims are looked up: the manifests `check` reads (their ResourceClaimTemplates sit
// beside the Deployments that use them), then the cluster model (a snapshot or the live watch).
struct ClaimSources {
  const k8s::ClaimCatalog* manifests = nullptr;
  const capacity::ClusterModel* cluster = nullptr;
};

// KAI's annotations (the pod's own, not its controller's: they are not copied down).
inline constexpr const char* kKaiFraction = "gpu-fraction";
inline constexpr const char* kKaiMemory = "gpu-memory";
inline constexpr const char* kKaiDevices = "gpu-fraction-num-devices";
inline constexpr const char* kKaiContainer = "gpu-fraction-container-name";

// `spec` and `metadata` (null when absent) are a pod's, `namespace_` where it runs; fields name
// them in problems (spec.template.spec, spec.template.metadata). Takes the cluster model's read
// lock briefly when the pod has claims to resolve: never call it holding a View.
PodGpuUse resolve_gpu_use(const nlohmann::json& spec, const nlohmann::json* metadata, const std::string& namespace_,
                          const std::string& spec_field, const std::string& metadata_field, const GpuResources& gpu,
                          ClaimSources sources);

// The shares alone (KAI annotations, HAMi dimensions) of a pod already in the cluster; values
// the scheduler would have rejected count as none.
GpuShares pod_gpu_shares(const nlohmann::json& spec, const nlohmann::json* annotations);

}  // namespace gpuadmit
