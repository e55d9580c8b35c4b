// The built-in policies, in their default order: mutations first, then validations.
#include "policies/policies.h"

#include <algorithm>

namespace gpuadmit {
namespace policies {

// One per policy folder. Adding a policy: its folder, its declaration here and its line below.
PolicyInfo gpu_tolerations_info();        // policies/gpu-tolerations/gpu_tolerations.cpp
PolicyInfo dev_shm_info();                // policies/dev-shm/dev_shm.cpp
PolicyInfo probe_defaults_info();         // policies/probe-defaults/probe_defaults.cpp
PolicyInfo requests_equal_limits_info();  // policies/requests-equal-limits/requests_equal_limits.cpp
PolicyInfo smoke_test_info();             // policies/smoke-test/smoke_test.cpp
PolicyInfo default_priority_class_info(); // policies/default-priority-class/default_priority_class.cpp
PolicyInfo gpu_affinity_info();           // policies/gpu-affinity/gpu_affinity.cpp
PolicyInfo void_visible_devices_info();   // policies/void-visible-devices/void_visible_devices.cpp
PolicyInfo gpu_spread_info();             // policies/gpu-spread/gpu_spread.cpp
PolicyInfo image_registries_info();       // policies/image-registries/image_registries.cpp
PolicyInfo image_tags_info();             // policies/image-tags/image_tags.cpp
PolicyInfo env_secrets_info();            // policies/env-secrets/env_secrets.cpp
PolicyInfo serving_args_info();           // policies/serving-args/serving_args.cpp
PolicyInfo gpu_device_env_info();         // policies/gpu-device-env/gpu_device_env.cpp
PolicyInfo gpu_shape_info();              // policies/gpu-shape/gpu_shape.cpp
PolicyInfo pod_security_info();           // policies/pod-security/pod_security.cpp
PolicyInfo gpu_priority_info();           // policies/gpu-priority/gpu_priority.cpp
PolicyInfo gpu_capacity_info();           // policies/gpu-capacity/gpu_capacity.cpp
PolicyInfo gpu_quota_info();              // policies/gpu-quota/gpu_quota.cpp
PolicyInfo gpu_autoscaling_info();        // policies/gpu-autoscaling/gpu_autoscaling.cpp
PolicyInfo gpu_availability_info();       // policies/gpu-availability/gpu_availability.cpp

}  // namespace policies

const std::vector<PolicyInfo>& policy_registry() {
  static const std::vector<PolicyInfo> registry = {
      policies::gpu_tolerations_info(),
      policies::dev_shm_info(),
      policies::probe_defaults_info(),
      policies::requests_equal_limits_info(),
      policies::smoke_test_info(),
      policies::default_priority_class_info(),
      policies::gpu_affinity_info(),
      policies::void_visible_devices_info(),
      policies::gpu_spread_info(),
      policies::image_registries_info(),
      policies::image_tags_info(),
      policies::env_secrets_info(),
      policies::serving_args_info(),
      policies::gpu_device_env_info(),
      policies::gpu_shape_info(),
      policies::pod_security_info(),
      policies::gpu_priority_info(),
      policies::gpu_capacity_info(),
      policies::gpu_quota_info(),
      policies::gpu_autoscaling_info(),
      policies::gpu_availability_info(),
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
