#pragma once
// NVML, loaded at run time with dlopen() so that gpu-smoke neither links nor requires it:
// where libnvidia-ml.so.1 is absent (or NVML cannot initialise) the NVML checks are
// skipped with the reason.

#include <memory>
#include <optional>
#include <string>

#include "smoke/core/thresholds.h"

namespace gpusmoke {

class Nvml {
 public:
  // Loads `library`, resolves the symbols gpu-smoke needs and calls nvmlInit_v2. Returns
  // nullptr and sets `why` when any of that fails.
  static std::unique_ptr<Nvml> open(std::string& why, const char* library = "libnvidia-ml.so.1");
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  std::optional<std::string> driver_version() const;
  // Facts about the device at `pci_bus_id` ("0000:3B:00.0", as cudaDeviceGetPCIBusId gives).
  NvmlDeviceFacts query(const std::string& pci_bus_id) const;

  struct Api;

 private:
  Nvml(void* handle, std::unique_ptr<Api> api);
  void* handle_;
  std::unique_ptr<Api> api_;
};

}  // namespace gpusmoke
