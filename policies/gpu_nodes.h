// How a pod aims at GPU nodes: by tolerating their taint or selecting their labels. gpu-shape
// denies it to pods that request no GPU; void-visible-devices hides the GPUs from such pods.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policies/policies.h"

namespace gpuadmit::policies {

// One nodeSelector entry or required node-affinity expression that steers the pod somewhere.
struct NodeChoice {
  std::string field;
  std::string key;
  std::vector<std::string> values;  // empty for Exists
};

// What the pod requires of its node: nodeSelector entries and the In/Exists/Gt/Lt expressions of
// required node affinity (NotIn and DoesNotExist steer pods away, so they select nothing).
std::vector<NodeChoice> node_choices(const nlohmann::json& spec, const std::string& spec_field);

// The `gpuTaintKeys` and `gpuNodeLabels` keys of the policies that use GpuNodes.
inline constexpr PolicyKey kGpuTaintKeysKey{"gpuTaintKeys", "list of taint keys", "`[nvidia.com/gpu]`",
                                            "taint keys of GPU nodes"};
inline constexpr PolicyKey kGpuNodeLabelsKey{
    "gpuNodeLabels", "list of label keys",
    "`nvidia.com/gpu.present`, `.product`, `.count`, `.family`, `.sharing-strategy`, "
    "`cloud.google.com/gke-accelerator`, `k8s.amazonaws.com/accelerator`",
    "node labels that select GPU nodes (in nodeSelector, or In/Exists/Gt/Lt in required node affinity)"};

struct GpuNodes {
  std::vector<std::string> taint_keys;
  std::vector<std::string> node_labels;
  static GpuNodes parse(const ConfigNode& node);  // the two keys above

  struct Aim {
    std::string field;  // the toleration or selector
    std::string what;   // "tolerates the GPU node taint nvidia.com/gpu", "selects GPU nodes by ..."
  };
  // The first toleration of a GPU taint key, or selector of a GPU node label, in the pod spec.
  // With `keyless`, a toleration with no key and operator Exists (it tolerates every taint)
  // counts too.
  std::optional<Aim> aim(const nlohmann::json& spec, const std::string& spec_field, bool keyless) const;
};

}  // namespace gpuadmit::policies
