// void-visible-devices: an image can set NVIDIA_VISIBLE_DEVICES itself (the CUDA base images set
// "all"), and where nvidia is the node's default runtime a container that requested no GPU then
// gets every GPU of the node. Admission cannot read an image's environment, so on pods that can
// land on GPU nodes this sets NVIDIA_VISIBLE_DEVICES=void on each container that requests no GPU:
// the runtime reads a pod's own env over the image's, and void means no GPU.
#include <stdexcept>

#include "policies/gpu_nodes.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

constexpr const char* kVisibleDevices = "NVIDIA_VISIBLE_DEVICES";

struct VoidConfig {
  GpuNodes gpu_nodes;
  bool all_pods = false;
};

class VoidVisibleDevices final : public Policy {
 public:
  explicit VoidVisibleDevices(VoidConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      std::string why;
      if (context.pod_uses_gpu(pod))
        why = "it runs on a GPU node beside the pod's GPU containers";
      else if (auto aim = config_.gpu_nodes.aim(spec, pod.field, /*keyless=*/true))
        why = "the pod " + aim->what;
      else if (config_.all_pods)
        why = "allPods is set";
      else
        continue;
      for (const char* list : {"initContainers", "containers"})
        for_each_container(spec, pod.field, list, [&](json& container, const std::string& field) {
          if (!context.uses_gpu(pod, container)) hide(context, container, field, why);
        });
    }
  }

 private:
  static void hide(PolicyContext& context, json& container, const std::string& field, const std::string& why) {
    json& env = container["env"];
    if (env.is_null()) env = json::array();
    if (!env.is_array()) throw std::invalid_argument(field_path(field, "env") + " must be a list");
    for (const json& var : env)  // any value, void or not, is gpu-device-env's to judge
      if (var.is_object() && var.contains("name") && var["name"] == kVisibleDevices) return;
    env.push_back({{"name", kVisibleDevices}, {"value", "void"}});
    context.changed(field_path(field, "env"),
                    "added NVIDIA_VISIBLE_DEVICES=void: the container requests no GPU and " + why +
                        ", so an image that sets it could otherwise reach the node's GPUs");
  }

  VoidConfig config_;
};

}  // namespace

PolicyInfo void_visible_devices_info() {
  return {"void-visible-devices", PolicyKind::Mutating,
          "sets NVIDIA_VISIBLE_DEVICES=void on containers that request no GPU in pods that can land on GPU nodes",
          {{"allPods", "bool", "false",
            "every pod, not only those that run GPU containers, tolerate a GPU taint (or every taint) or select GPU "
            "nodes: for clusters whose GPU nodes are not tainted"},
           kGpuTaintKeysKey,
           kGpuNodeLabelsKey},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            VoidConfig config;
            config.gpu_nodes = GpuNodes::parse(node);
            config.all_pods = node.boolean("allPods", false);
            return std::make_unique<VoidVisibleDevices>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
