// What an UPDATE asks of the cluster at once. A scale-up adds pods; a changed pod template of a
// Deployment rolls out, and RollingUpdate first creates up to maxSurge new pods beside the old
// ones. Only when maxUnavailable is 0 (the default 25% of fewer than 4 replicas rounds down to
// 0) must those surge pods find room before any old pod goes: otherwise the controller retires
// old pods first and the rollout proceeds, only slower.
#pragma once

#include <cstdint>
#include <string>

#include "policies/policies.h"

namespace gpuadmit::policies {

struct RolloutDemand {
  std::int64_t added_pods = 0;  // new replicas beyond the old object's
  std::int64_t surge_pods = 0;  // a rolling update's maxSurge, when the template changed
  std::int64_t max_unavailable = 0;
  bool surge_must_fit = false;  // surge pods and maxUnavailable 0: no room means a stalled rollout
  std::string surge_text;       // "maxSurge 25% of 3 replicas", for messages
  std::int64_t pods() const;    // added + surge, saturating
};

// For an UPDATE of `context.object` (workload `pod` of it) against request.old_object, whose
// matching template is `old_pod` (null when the old object had none at that place).
RolloutDemand rollout_demand(const PolicyContext& context, const PodTarget& pod, const PodTarget* old_pod);

}  // namespace gpuadmit::policies
