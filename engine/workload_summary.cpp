#include "engine/workload_summary.h"

#include <algorithm>

#include "engine/capacity/placement.h"
#include "engine/gpu_use.h"
#include "engine/k8s/model_load.h"

namespace gpuadmit {

using nlohmann::json;

std::optional<std::pair<std::string, k8s::WorkloadSummary>> summarize_workload(const json& object,
                                                                              const std::string& default_namespace,
                                                                              const WorkloadKinds& kinds,
                                                                              const GpuResources& gpu,
                                                                              const k8s::ClaimCatalog* claims) {
  const Workload workload = locate_workload(object, kinds);
  if (!workload.malformed.empty() || workload.pods.empty() || workload.name.empty()) return std::nullopt;
  const std::string ns = workload.namespace_.empty() ? default_namespace : workload.namespace_;
  const json* object_annotations = nullptr;
  if (auto metadata = object.find("metadata"); metadata != object.end() && metadata->is_object())
    if (auto it = metadata->find("annotations"); it != metadata->end()) object_annotations = &*it;
  k8s::WorkloadSummary summary;
  for (const PodTarget& pod : workload.pods) {
    if (!object.contains(pod.spec)) continue;
    const json& spec = object.at(pod.spec);
    const json* metadata = object.contains(pod.metadata) ? &object.at(pod.metadata) : nullptr;
    const json* annotations = nullptr;
    if (metadata && metadata->is_object())
      if (auto it = metadata->find("annotations"); it != metadata->end()) annotations = &*it;
    std::int64_t devices = 0;
    try {
      devices = capacity::PodShape::from_pod_spec(spec, gpu).gpu_devices;
      const PodGpuUse use = resolve_gpu_use(spec, metadata && metadata->is_object() ? metadata : nullptr, ns, pod.field,
                                            pod.metadata_field, gpu, {claims, nullptr});
      devices = capacity::saturating_add(devices, use.template_claim_devices);
      if (!use.unresolved_claims.empty()) summary.gpus_unresolved = true;
    } catch (const std::exception&) {
      continue;  // a pod spec the API server would refuse: reported when the object is reviewed
    }
    // Several templates (a leader and its workers): a replica's pods each take their own.
    summary.gpus_per_pod = capacity::saturating_add(summary.gpus_per_pod, devices);
    summary.pods = capacity::saturating_add(summary.pods, pod.replicas);
    if (auto seconds = k8s::model_load_seconds(spec, annotations, object_annotations))
      summary.model_load_seconds = std::max(summary.model_load_seconds.value_or(0), *seconds);
  }
  return std::pair{workload_key(ns, workload.kind, workload.name), summary};
}

}  // namespace gpuadmit
