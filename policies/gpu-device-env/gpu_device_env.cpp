// gpu-device-env: the NVIDIA container runtime gives a container the GPUs its
// NVIDIA_VISIBLE_DEVICES names ("all": every GPU of the node), whether or not it requested one,
// past the device plugin and so past quota, capacity, sharing and tenancy alike
// (k8s-device-plugin #87, #195, #548, #1605; gpu-operator #2080). The kubelet passes a
// container's own env after the device plugin's, so the user's value wins in a GPU container too.
#include "engine/text.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

constexpr std::string_view kVisibleDevices = "NVIDIA_VISIBLE_DEVICES";
constexpr std::string_view kDriverCapabilities = "NVIDIA_DRIVER_CAPABILITIES";

// The values under which the runtime exposes no GPU.
bool hides_gpus(std::string value) {
  value = trim(value);
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value.empty() || value == "void" || value == "none";
}

struct DeviceEnvConfig {
  CheckLevel gpu_containers = CheckLevel::Violation;
  CheckLevel driver_capabilities = CheckLevel::Violation;
};

class GpuDeviceEnv final : public Policy {
 public:
  explicit GpuDeviceEnv(DeviceEnvConfig config) : config_(config) {}

  void run(PolicyContext& context) const override {
    for_each_pod_container(context, false, [&](const PodTarget& pod, const json&, const json& container,
                                               const std::string& field) {
      auto env = container.find("env");
      if (env == container.end() || !env->is_array()) return;
      const bool requests_gpu = context.uses_gpu(pod, container);
      for (std::size_t i = 0; i < env->size(); ++i) check(context, (*env)[i], field_path(field, "env", i), requests_gpu);
    });
  }

 private:
  void check(PolicyContext& context, const json& var, const std::string& field, bool requests_gpu) const {
    if (!var.is_object() || !var.contains("name") || !var["name"].is_string()) return;
    const std::string& name = var["name"].get_ref<const std::string&>();
    const bool from_elsewhere = var.contains("valueFrom") && !var["valueFrom"].is_null();
    const std::string value = var.contains("value") && var["value"].is_string() ? var["value"].get<std::string>() : "";
    if (name == kVisibleDevices) {
      if (!from_elsewhere && hides_gpus(value)) return;
      const std::string set = from_elsewhere ? "takes NVIDIA_VISIBLE_DEVICES from valueFrom, which admission cannot read"
                                             : "sets NVIDIA_VISIBLE_DEVICES=" + shorten(value, 40);
      if (!requests_gpu) {
        context.violation(field, "the container requests no GPU but " + set +
                                     "; the NVIDIA runtime would give it those GPUs (all of the node's for 'all') "
                                     "past the device plugin, quota and capacity. Request nvidia.com/gpu, or set void");
        return;
      }
      report(context, config_.gpu_containers, field,
             "the container " + set + ", which overrides the GPUs the device plugin assigned it; remove it (the "
             "device plugin sets it), or set void");
      return;
    }
    if (name == kDriverCapabilities && !requests_gpu)
      report(context, config_.driver_capabilities, field,
             "the container requests no GPU but sets NVIDIA_DRIVER_CAPABILITIES, which asks the NVIDIA runtime for "
             "the driver's libraries and devices; request nvidia.com/gpu, or remove it");
  }

  DeviceEnvConfig config_;
};

}  // namespace

PolicyInfo gpu_device_env_info() {
  return {"gpu-device-env", PolicyKind::Validating,
          "no GPUs through the NVIDIA runtime's environment: NVIDIA_VISIBLE_DEVICES only as void, "
          "NVIDIA_DRIVER_CAPABILITIES only with a GPU request",
          {{"gpuContainers", "level", "violation",
            "level for a container that requests GPUs and sets `NVIDIA_VISIBLE_DEVICES` (other than `void`, `none` "
            "or empty) itself. A container that requests no GPU and sets it is always a violation"},
           {"driverCapabilities", "level", "violation",
            "level for a container that requests no GPU and sets `NVIDIA_DRIVER_CAPABILITIES`"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            DeviceEnvConfig config;
            config.gpu_containers = parse_check_level(node.child("gpuContainers"), CheckLevel::Violation);
            config.driver_capabilities = parse_check_level(node.child("driverCapabilities"), CheckLevel::Violation);
            return std::make_unique<GpuDeviceEnv>(config);
          }};
}

}  // namespace gpuadmit::policies
