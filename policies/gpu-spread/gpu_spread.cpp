// gpu-spread: a long-running GPU workload with several replicas and nothing keeping them apart
// can have them all scheduled onto one node, and lose them all with it. A preferred
// podAntiAffinity on the hostname asks the scheduler to spread them without ever leaving a pod
// pending for it (a required one would, on a cluster with fewer free GPU nodes than replicas).
#include "policies/availability.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

// What the added term selects: the workload's spec.selector.matchLabels (the pods it owns) when
// the template's labels carry every one of them, else the template's labels (and the name label
// a LeaderWorkerSet's pods get); empty when there are none.
json selector_labels(const PolicyContext& context, const k8s::Labels& labels) {
  const json& object = context.object;
  json match = json::object();
  if (object.contains("spec") && object["spec"].is_object() && object["spec"].contains("selector")) {
    const json& selector = object["spec"]["selector"];
    if (selector.is_object() && selector.contains("matchLabels") && selector["matchLabels"].is_object()) {
      for (auto it = selector["matchLabels"].begin(); it != selector["matchLabels"].end(); ++it) {
        auto own = labels.find(it.key());
        if (!it.value().is_string() || own == labels.end() || own->second != it.value()) {
          match = json::object();
          break;
        }
        match[it.key()] = it.value();
      }
    }
  }
  if (!match.empty()) return match;
  for (const auto& [key, value] : labels) match[key] = value;
  return match;
}

class GpuSpread final : public Policy {
 public:
  explicit GpuSpread(std::int64_t weight) : weight_(weight) {}

  void run(PolicyContext& context) const override {
    const std::optional<std::int64_t> replicas = long_running_gpu_replicas(context);
    if (!replicas || *replicas < 2) return;
    for (const PodTarget& pod : context.workload.pods) {
      if (!context.pod_uses_gpu(pod)) continue;
      json& spec = context.pod_spec(pod);
      const std::optional<k8s::Labels> labels = pod_labels(context, pod);
      if (!spec.is_object() || !labels || spreads_across_nodes(context, spec, *labels)) continue;
      json match = selector_labels(context, *labels);
      if (match.empty()) continue;  // nothing to select its own pods by
      // Merged into what is there: other affinities and anti-affinity terms stay. A field of the
      // wrong type is left alone (the API server refuses the object anyway).
      json* affinity = &spec["affinity"];
      if (affinity->is_null()) *affinity = json::object();
      if (!affinity->is_object()) continue;
      json* anti = &(*affinity)["podAntiAffinity"];
      if (anti->is_null()) *anti = json::object();
      if (!anti->is_object()) continue;
      json* preferred = &(*anti)["preferredDuringSchedulingIgnoredDuringExecution"];
      if (preferred->is_null()) *preferred = json::array();
      if (!preferred->is_array()) continue;
      preferred->push_back({{"weight", weight_},
                            {"podAffinityTerm",
                             {{"labelSelector", {{"matchLabels", std::move(match)}}},
                              {"topologyKey", std::string(kHostnameKey)}}}});
      context.changed(field_path(pod.field, "affinity"),
                      "added a preferred podAntiAffinity on kubernetes.io/hostname (weight " + std::to_string(weight_) +
                          ") so the scheduler spreads the " + std::to_string(*replicas) + " replicas across nodes");
    }
  }

 private:
  std::int64_t weight_;
};

}  // namespace

PolicyInfo gpu_spread_info() {
  return {"gpu-spread", PolicyKind::Mutating,
          "adds a preferred podAntiAffinity on the hostname to long-running GPU workloads whose replicas nothing "
          "spreads across nodes",
          {{"weight", "integer", "100",
            "the added term's weight, 1 to 100: how much the scheduler's score favours a node without a replica "
            "against its other preferences (node affinity preferences, image locality, least allocated)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            const std::int64_t weight = node.integer("weight", 100);
            if (weight < 1 || weight > 100) node.child("weight").fail("weight must be 1 to 100, as the API server requires");
            return std::make_unique<GpuSpread>(weight);
          }};
}

}  // namespace gpuadmit::policies
