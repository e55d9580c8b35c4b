// What the autoscaling checks need of a workload written in the manifests `check` reads: its GPU
// devices per pod (GPU resources plus devices of DRA claims made from templates, as gpu-quota
// counts demand), the replicas it asks for and its model-load budget (k8s::WorkloadSummary).
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/k8s/scheduling_objects.h"
#include "gpuadmit/gpu_resources.h"
#include "gpuadmit/workload.h"

namespace gpuadmit {

// The summary of `object` under its key "namespace/Kind/name" (a manifest without a namespace is
// in `default_namespace`); nullopt for an object without pod templates, or a malformed one.
// `claims`: the manifests' ResourceClaimTemplates, for DRA devices.
std::optional<std::pair<std::string, k8s::WorkloadSummary>> summarize_workload(const nlohmann::json& object,
                                                                              const std::string& default_namespace,
                                                                              const WorkloadKinds& kinds,
                                                                              const GpuResources& gpu,
                                                                              const k8s::ClaimCatalog* claims);

}  // namespace gpuadmit
