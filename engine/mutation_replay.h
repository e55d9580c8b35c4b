// Rolling back a mutation that throws half-way, without copying the object before every policy:
// the object is rebuilt from the request's by running the mutations that completed again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gpuadmit/policy.h"

namespace gpuadmit {

struct AppliedMutation {
  std::string_view name;  // the configured policy's, for the error
  const Policy* policy;
};

struct ReplayedObject {
  nlohmann::json object;  // as the policies see it: shorthand containers moved into `containers`
  // Empty when every mutation ran again. Otherwise why one threw this time (it was not
  // deterministic after all), and `object` is the request's object, unchanged.
  std::string error;
};

// Runs `applied` again, in order, on a copy of `request.object`. Mutating policies are
// deterministic (same request, config and object: same changes), so this is the object they
// made before; their findings are dropped, as they were counted the first time.
ReplayedObject replay_mutations(const Request& request, const Workload& workload, const GpuResources& gpu,
                                const capacity::ClusterModel* cluster, const std::vector<PodGpuUse>* gpu_uses,
                                const std::vector<AppliedMutation>& applied);

}  // namespace gpuadmit
