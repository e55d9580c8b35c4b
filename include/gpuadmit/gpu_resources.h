// Which resource names are GPUs: the one definition the policies, the capacity model and
// `inventory` all use, so a resource listed in `gpuResources` counts everywhere or nowhere.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace gpuadmit {

// nvidia.com/gpu and every nvidia.com/mig-* always; the config's `gpuResources` besides
// (nvidia.com/gpu.shared in the default config, what the device plugin's time-slicing with
// renameByDefault advertises).
struct GpuResources {
  std::vector<std::string> extra;
  // DRA device classes whose devices are GPUs (`gpuDeviceClasses`): a ResourceClaim asking for
  // them is GPU use (engine/gpu_use.h). The NVIDIA DRA driver's classes by default.
  std::vector<std::string> device_classes{"gpu.nvidia.com", "mig.nvidia.com"};
  bool is_gpu(std::string_view resource) const;
  bool is_gpu_device_class(std::string_view device_class) const;
  // HAMi's per-GPU share dimensions (nvidia.com/gpumem, gpumem-percentage, gpucores): no node
  // advertises them, HAMi's scheduler extender tracks them and the default scheduler is told to
  // ignore them (ignoredByScheduler), and the kubelet drops extended resources its node lacks.
  // So they are neither GPUs nor node capacity to the capacity model.
  static bool is_share_dimension(std::string_view resource);
  // Whether a container requests or limits a non-zero amount of any GPU resource. Policies ask
  // PolicyContext::uses_gpu, which adds DRA claims and KAI's fraction annotations.
  bool container_uses_gpu(const nlohmann::json& container) const;
  bool pod_uses_gpu(const nlohmann::json& pod_spec) const;
  // "nvidia.com/gpu, nvidia.com/mig-*, <extra...>", for messages.
  std::string describe() const;
  friend bool operator==(const GpuResources&, const GpuResources&) = default;
};

}  // namespace gpuadmit
