// What the policies share (policies/<name>/ includes it); the SDK is include/gpuadmit/.
#pragma once

#include "gpuadmit/policy.h"

namespace gpuadmit::policies {

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
