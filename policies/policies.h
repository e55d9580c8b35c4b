// One function per built-in policy, each defined in its own file in policies/.
#pragma once

#include "gpuadmit/policy.h"

namespace gpuadmit::policies {

PolicyInfo gpu_tolerations_info();        // gpu_tolerations.cpp
PolicyInfo dev_shm_info();                // dev_shm.cpp
PolicyInfo probe_defaults_info();         // probe_defaults.cpp
PolicyInfo requests_equal_limits_info();  // requests_equal_limits.cpp
PolicyInfo smoke_test_info();             // smoke_test.cpp
PolicyInfo gpu_affinity_info();           // gpu_affinity.cpp
PolicyInfo image_registries_info();       // image_registries.cpp
PolicyInfo image_tags_info();             // image_tags.cpp
PolicyInfo env_secrets_info();            // env_secrets.cpp
PolicyInfo gpu_shape_info();              // gpu_shape.cpp
PolicyInfo pod_security_info();           // pod_security.cpp
PolicyInfo gpu_capacity_info();           // gpu_capacity.cpp
PolicyInfo gpu_quota_info();              // gpu_quota.cpp

// Calls `visit(container, field)` for each container object in `list` ("containers",
// "initContainers", "ephemeralContainers") of a pod spec.
template <typename Spec, typename Visit>
void for_each_container(Spec& pod_spec, const std::string& spec_field, const char* list, Visit visit) {
  auto it = pod_spec.find(list);
  if (it == pod_spec.end() || !it->is_array()) return;
  for (std::size_t i = 0; i < it->size(); ++i)
    if ((*it)[i].is_object()) visit((*it)[i], field_path(spec_field, list, i));
}

}  // namespace gpuadmit::policies
