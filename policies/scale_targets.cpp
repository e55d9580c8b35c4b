#include "policies/scale_targets.h"

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/scheduling_objects.h"

namespace gpuadmit::policies {

std::string target_text(const ScaleTarget& target) {
  return (target.kind.empty() ? std::string("<no kind>") : target.kind) + " " +
         (target.name.empty() ? std::string("<no name>") : target.name);
}

std::string unresolved_text(const PolicyContext& context, const ScaleTarget& target) {
  std::string sources = context.manifests ? "the manifests read" : "";
  if (context.cluster) sources += std::string(sources.empty() ? "" : " nor ") + "the cluster's pods";
  return "could not check: " + target_text(target) + " is not in " + (sources.empty() ? "anything gpu-admit can read" : sources) +
         ", so its GPUs per pod and model-load time are unknown";
}

ResolvedScaleTarget resolve_scale_target(const PolicyContext& context, const ScaleTarget& target) {
  ResolvedScaleTarget out;
  if (target.kind.empty() || target.name.empty()) return out;
  const std::string key = workload_key(context.workload.namespace_, target.kind, target.name);
  if (context.manifests) {
    auto it = context.manifests->workloads.find(key);
    if (it != context.manifests->workloads.end()) {
      out.found = true;
      out.where = "the manifests";
      out.gpus_per_pod = it->second.gpus_per_pod;
      out.gpus_unresolved = it->second.gpus_unresolved;
      out.model_load_seconds = it->second.model_load_seconds;
    }
  }
  if (context.cluster) {
    const capacity::ClusterModel::View view = context.cluster->read();
    if (const std::optional<k8s::WorkloadSummary> running = view.workload(key)) {
      out.pods_now = running->pods;
      out.gpus_now = running->gpus_in_use;
      // The manifests say what is being applied; the running pods what was applied before.
      if (!out.found) {
        out.found = true;
        out.where = "the cluster";
        out.gpus_per_pod = running->gpus_per_pod;
        out.gpus_unresolved = running->gpus_unresolved;
        out.model_load_seconds = running->model_load_seconds;
      } else if (!out.model_load_seconds) {
        out.model_load_seconds = running->model_load_seconds;
      }
    }
  }
  return out;
}

}  // namespace gpuadmit::policies
