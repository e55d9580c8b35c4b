// What an autoscaler's target is, for the policies that review autoscalers (gpu-autoscaling,
// gpu-quota): its GPU devices per pod and model-load budget from the manifests `check` reads,
// else from the cluster model's pods; the GPUs its pods hold now from the cluster model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gpuadmit/policy.h"

namespace gpuadmit::policies {

struct ResolvedScaleTarget {
  bool found = false;
  std::string where;  // "the manifests", "the cluster"
  std::int64_t gpus_per_pod = 0;
  bool gpus_unresolved = false;  // a DRA claim gpu-admit could not read: its devices count as none
  std::optional<std::int64_t> model_load_seconds;
  // From the cluster model, when it has pods of the target: how many, and the GPUs they hold.
  std::int64_t pods_now = 0;
  std::int64_t gpus_now = 0;
};

ResolvedScaleTarget resolve_scale_target(const PolicyContext& context, const ScaleTarget& target);

// "Deployment llm"
std::string target_text(const ScaleTarget& target);

// The advice given when the target cannot be resolved: never a silent pass, never a denial.
std::string unresolved_text(const PolicyContext& context, const ScaleTarget& target);

}  // namespace gpuadmit::policies
