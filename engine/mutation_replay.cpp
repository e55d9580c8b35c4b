#include "engine/mutation_replay.h"

#include <stdexcept>

#include "engine/shorthand_containers.h"

namespace gpuadmit {

ReplayedObject replay_mutations(const Request& request, const Workload& workload, const GpuResources& gpu,
                                const capacity::ClusterModel* cluster, const std::vector<PodGpuUse>* gpu_uses,
                                const std::vector<AppliedMutation>& applied) {
  ReplayedObject replayed{request.object, {}};
  const ShorthandContainers moved(workload, replayed.object);  // as the policies saw it the first time
  for (const AppliedMutation& mutation : applied) {
    PolicyContext again(request, workload, gpu, replayed.object);
    again.cluster = cluster;
    again.gpu_uses = gpu_uses;
    try {
      mutation.policy->run(again);
    } catch (const std::exception& error) {
      ReplayedObject submitted{request.object, std::string(mutation.name) + " threw when run again to roll back (" +
                                                   error.what() +
                                                   "), so no mutation is kept and the object is checked as submitted"};
      const ShorthandContainers moved_back(workload, submitted.object);
      return submitted;
    }
  }
  return replayed;
}

}  // namespace gpuadmit
