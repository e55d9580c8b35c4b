#include "engine/mutation_replay.h"

#include <stdexcept>

namespace gpuadmit {

ReplayedObject replay_mutations(const Request& request, const Workload& workload, const GpuResources& gpu,
                                const capacity::ClusterModel* cluster, const std::vector<AppliedMutation>& applied) {
  ReplayedObject replayed{request.object, {}};
  for (const AppliedMutation& mutation : applied) {
    PolicyContext again(request, workload, gpu, replayed.object);
    again.cluster = cluster;
    try {
      mutation.policy->run(again);
    } catch (const std::exception& error) {
      return {request.object, std::string(mutation.name) + " threw when run again to roll back (" + error.what() +
                                  "), so no mutation is kept and the object is checked as submitted"};
    }
  }
  return replayed;
}

}  // namespace gpuadmit
