// gpu-tolerations: GPU nodes are tainted so that only GPU pods land there; give every pod that
// requests a GPU the tolerations it needs, unless it already tolerates those taints.
#include "engine/k8s/taints.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct WantedToleration {
  k8s::Toleration toleration;
  json as_json;
  std::vector<k8s::Taint> taints;  // the taints it exists to tolerate
  std::string description;
};

class GpuTolerations final : public Policy {
 public:
  explicit GpuTolerations(std::vector<WantedToleration> wanted) : wanted_(std::move(wanted)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      if (!context.pod_uses_gpu(pod)) continue;
      const std::string field = field_path(pod.field, "tolerations");
      std::vector<k8s::Toleration> existing;
      if (spec.contains("tolerations")) {
        if (!spec["tolerations"].is_array()) throw std::invalid_argument(field + " must be a list");
        existing = k8s::tolerations_from_json(spec["tolerations"]);
      }
      for (const WantedToleration& wanted : wanted_) {
        bool covered = std::all_of(wanted.taints.begin(), wanted.taints.end(), [&](const k8s::Taint& taint) {
          return k8s::tolerated_by_any(existing, taint);
        });
        if (covered) continue;
        spec["tolerations"].push_back(wanted.as_json);
        existing.push_back(wanted.toleration);
        context.changed(field, "added toleration " + wanted.description);
      }
    }
  }

 private:
  std::vector<WantedToleration> wanted_;
};

WantedToleration parse_toleration(const ConfigNode& node) {
  node.allow_only({"key", "operator", "value", "effect", "tolerationSeconds"});
  WantedToleration wanted;
  k8s::Toleration& t = wanted.toleration;
  t.key = node.string("key", "");
  t.op = node.string("operator", "Equal");
  t.value = node.string("value", "");
  t.effect = node.string("effect", "");
  if (t.key.empty())
    node.fail("key is required: a toleration without a key tolerates every taint on every node");
  if (t.op != "Equal" && t.op != "Exists") node.child("operator").fail("operator must be Equal or Exists");
  if (t.op == "Exists" && !t.value.empty()) node.child("value").fail("operator Exists takes no value");
  if (!t.effect.empty() && t.effect != "NoSchedule" && t.effect != "PreferNoSchedule" && t.effect != "NoExecute")
    node.child("effect").fail("effect must be NoSchedule, PreferNoSchedule or NoExecute");
  if (node.has("tolerationSeconds")) {
    if (t.effect != "NoExecute") node.child("tolerationSeconds").fail("tolerationSeconds needs effect NoExecute");
    t.toleration_seconds = node.integer("tolerationSeconds", 0);
  }
  wanted.as_json = k8s::to_json(t);
  std::vector<std::string> effects = t.effect.empty()
                                         ? std::vector<std::string>{"NoSchedule", "PreferNoSchedule", "NoExecute"}
                                         : std::vector<std::string>{t.effect};
  for (const std::string& effect : effects) wanted.taints.push_back({t.key, t.op == "Exists" ? "" : t.value, effect});
  wanted.description = t.key + (t.op == "Exists" ? " Exists" : "=" + t.value) + " " +
                       (t.effect.empty() ? "(all effects)" : t.effect);
  return wanted;
}

}  // namespace

PolicyInfo gpu_tolerations_info() {
  return {"gpu-tolerations", PolicyKind::Mutating,
          "adds the tolerations for the GPU node taints to pods that request GPUs",
          {
           {"tolerations", "list of tolerations", "`[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]`",
            "tolerations to add (`key` required; `operator` Equal or Exists; `effect` empty means all effects; `tolerationSeconds` only with NoExecute)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            std::vector<WantedToleration> wanted;
            if (!node.has("tolerations")) {
              wanted.push_back(parse_toleration(ConfigNode(
                  YAML::Load("{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}"), node.file(),
                  node.path() + ".tolerations[default]")));
            }
            for (const ConfigNode& item : node.child("tolerations").items()) wanted.push_back(parse_toleration(item));
            return std::make_unique<GpuTolerations>(std::move(wanted));
          }};
}

}  // namespace gpuadmit::policies
