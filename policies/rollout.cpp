#include "policies/rollout.h"

#include <algorithm>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/int_or_string.h"
#include "engine/k8s/json_fields.h"

namespace gpuadmit::policies {

using nlohmann::json;

std::int64_t RolloutDemand::pods() const { return capacity::saturating_add(added_pods, surge_pods); }

RolloutDemand rollout_demand(const PolicyContext& context, const PodTarget& pod, const PodTarget* old_pod) {
  RolloutDemand demand;
  const std::int64_t old_replicas = old_pod ? old_pod->replicas : 0;
  demand.added_pods = std::max<std::int64_t>(0, pod.replicas - old_replicas);
  if (context.workload.kind != "Deployment" || !old_pod || pod.replicas <= 0) return demand;
  const json& old_object = context.request.old_object;
  const json* new_template = context.object.contains(pod.spec) ? &context.object.at(pod.spec) : nullptr;
  const json* old_template = old_object.contains(old_pod->spec) ? &old_object.at(old_pod->spec) : nullptr;
  if (!new_template || !old_template || *new_template == *old_template) return demand;
  const json* spec = k8s::json_fields::member(context.object, "", "spec");
  const json* strategy = spec ? k8s::json_fields::member(*spec, "spec", "strategy") : nullptr;
  if (strategy && k8s::json_fields::string_or(*strategy, "type", "RollingUpdate") != "RollingUpdate") return demand;
  const json* rolling = strategy ? k8s::json_fields::member(*strategy, "spec.strategy", "rollingUpdate") : nullptr;
  const json surge_value = rolling && rolling->contains("maxSurge") ? rolling->at("maxSurge") : json("25%");
  const json unavailable_value = rolling && rolling->contains("maxUnavailable") ? rolling->at("maxUnavailable") : json("25%");
  const auto surge = k8s::scaled_int_or_percent(surge_value, pod.replicas, true);
  const auto unavailable = k8s::scaled_int_or_percent(unavailable_value, pod.replicas, false);
  if (!surge || !unavailable) return demand;  // the API server rejects such a strategy itself
  demand.surge_pods = std::min(*surge, pod.replicas);
  demand.max_unavailable = *unavailable;
  // The Deployment controller: both resolving to 0 means maxUnavailable 1.
  if (demand.surge_pods == 0 && demand.max_unavailable == 0) demand.max_unavailable = 1;
  demand.surge_must_fit = demand.surge_pods > 0 && demand.max_unavailable == 0;
  demand.surge_text = "maxSurge " + (surge_value.is_string() ? surge_value.get<std::string>() : surge_value.dump()) + " of " +
                      std::to_string(pod.replicas) + (pod.replicas == 1 ? " replica" : " replicas");
  return demand;
}

}  // namespace gpuadmit::policies
