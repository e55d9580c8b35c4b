// How a pod gets GPUs besides a GPU resource in a container's requests or limits: a Dynamic
// Resource Allocation claim for a GPU device class, the KAI scheduler's fraction annotations, and
// HAMi's share dimensions beside nvidia.com/gpu. The engine works it out once per pod template and
// review (engine/gpu_use.h); the policies read it through PolicyContext::uses_gpu and gpu_use.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace gpuadmit {

// GPU shares a pod takes, for quota dimensions of their own.
struct GpuShares {
  std::int64_t fraction_milli = 0;  // KAI gpu-fraction × gpu-fraction-num-devices, in thousandths of a GPU
  std::int64_t memory_mib = 0;      // KAI gpu-memory × devices, plus HAMi nvidia.com/gpumem × nvidia.com/gpu
  std::int64_t cores = 0;           // HAMi nvidia.com/gpucores × nvidia.com/gpu (percent of a GPU each)
  bool any() const { return fraction_milli || memory_mib || cores; }
  void add(const GpuShares& other, std::int64_t times);  // saturating
};

struct PodGpuUse {
  // Containers (by name) given GPUs by a DRA claim or by KAI's annotations.
  std::set<std::string> containers;
  // DRA: GPU devices (the least the claims can take) of the claims made for this pod from
  // ResourceClaimTemplates, and of the ResourceClaims it names (shared, already in the cluster).
  std::int64_t template_claim_devices = 0;
  std::int64_t named_claim_devices = 0;
  struct Problem {
    std::string field, message;
  };
  // Claims gpu-admit cannot read ({spec.resourceClaims[0], "ResourceClaimTemplate gpu-claim in
  // namespace ml is not known to gpu-admit"}): their containers count as GPU containers, their
  // devices as none.
  std::vector<Problem> unresolved_claims;
  // KAI (gpu-fraction, gpu-memory) and HAMi shares.
  GpuShares shares;
  bool kai = false;  // KAI's fraction annotations ask for a GPU share
  // KAI annotations its scheduler would refuse.
  std::vector<Problem> problems;
  bool any() const { return !containers.empty() || template_claim_devices || named_claim_devices || kai; }
};

}  // namespace gpuadmit
