// The built-in policies, in their default order: mutations first, then validations.
#include "policies/policies.h"

#include <algorithm>

namespace gpuadmit {

const std::vector<PolicyInfo>& policy_registry() {
  static const std::vector<PolicyInfo> registry = {
      policies::gpu_tolerations_info(),
      policies::dev_shm_info(),
      policies::probe_defaults_info(),
      policies::requests_equal_limits_info(),
      policies::smoke_test_info(),
      policies::gpu_affinity_info(),
      policies::image_registries_info(),
      policies::image_tags_info(),
      policies::env_secrets_info(),
      policies::gpu_shape_info(),
      policies::pod_security_info(),
      policies::gpu_capacity_info(),
      policies::gpu_quota_info(),
  };
  return registry;
}

const PolicyInfo* find_policy(std::string_view name) {
  const auto& registry = policy_registry();
  auto it = std::find_if(registry.begin(), registry.end(),
                         [&](const PolicyInfo& info) { return info.name == name; });
  return it == registry.end() ? nullptr : &*it;
}

}  // namespace gpuadmit
