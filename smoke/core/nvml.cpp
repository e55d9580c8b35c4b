#include "smoke/core/nvml.h"

#include <dlfcn.h>

#include <utility>

namespace gpusmoke {

// The slice of the NVML C API that gpu-smoke uses, declared here because nvml.h is not part
// of the CUDA toolkit. Types and values as documented in the NVML API reference; C enums
// are passed as int.
namespace nvml {
using Return = int;  // nvmlReturn_t
struct DeviceSt;
using Device = DeviceSt*;  // nvmlDevice_t
constexpr Return kSuccess = 0;
constexpr int kTemperatureGpu = 0;                 // NVML_TEMPERATURE_GPU
constexpr int kTemperatureThresholdSlowdown = 1;   // NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
constexpr int kMemoryErrorCorrected = 0;           // NVML_MEMORY_ERROR_TYPE_CORRECTED
constexpr int kMemoryErrorUncorrected = 1;         // NVML_MEMORY_ERROR_TYPE_UNCORRECTED
constexpr int kVolatileEcc = 0;                    // NVML_VOLATILE_ECC
constexpr int kAggregateEcc = 1;                   // NVML_AGGREGATE_ECC
constexpr unsigned kDriverVersionBufferSize = 80;  // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE
}  // namespace nvml

struct Nvml::Api {
  nvml::Return (*init)() = nullptr;      // nvmlInit_v2
  nvml::Return (*shutdown)() = nullptr;  // nvmlShutdown
  const char* (*error_string)(nvml::Return) = nullptr;
  nvml::Return (*handle_by_pci_bus_id)(const char*, nvml::Device*) = nullptr;
  // Optional: older drivers may lack some of these.
  nvml::Return (*driver_version)(char*, unsigned) = nullptr;
  nvml::Return (*temperature)(nvml::Device, int, unsigned*) = nullptr;
  nvml::Return (*temperature_threshold)(nvml::Device, int, unsigned*) = nullptr;
  nvml::Return (*power_usage)(nvml::Device, unsigned*) = nullptr;
  nvml::Return (*enforced_power_limit)(nvml::Device, unsigned*) = nullptr;
  nvml::Return (*clock_event_reasons)(nvml::Device, unsigned long long*) = nullptr;
  nvml::Return (*total_ecc_errors)(nvml::Device, int, int, unsigned long long*) = nullptr;
  nvml::Return (*remapped_rows)(nvml::Device, unsigned*, unsigned*, unsigned*, unsigned*) = nullptr;
  nvml::Return (*mig_mode)(nvml::Device, unsigned*, unsigned*) = nullptr;
  nvml::Return (*pcie_gen)(nvml::Device, unsigned*) = nullptr;
  nvml::Return (*pcie_width)(nvml::Device, unsigned*) = nullptr;
  nvml::Return (*pcie_max_gen)(nvml::Device, unsigned*) = nullptr;
  nvml::Return (*pcie_max_width)(nvml::Device, unsigned*) = nullptr;
};

namespace {

template <typename F>
void resolve(void* handle, F& fn, const char* symbol) {
  fn = reinterpret_cast<F>(dlsym(handle, symbol));
}

}  // namespace

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

std::unique_ptr<Nvml> Nvml::open(std::string& why, const char* library) {
  void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    why = std::string(library) + " could not be loaded (" + (err ? err : "unknown dlopen error") +
          "): NVML is absent, as on hosts without the NVIDIA driver or in containers without the "
          "'utility' driver capability";
    return nullptr;
  }
  auto api = std::make_unique<Api>();
  resolve(handle, api->init, "nvmlInit_v2");
  resolve(handle, api->shutdown, "nvmlShutdown");
  resolve(handle, api->error_string, "nvmlErrorString");
  resolve(handle, api->handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
  if (!api->init || !api->shutdown || !api->error_string || !api->handle_by_pci_bus_id) {
    why = std::string(library) + " does not export the NVML entry points (nvmlInit_v2, nvmlShutdown, "
                                 "nvmlErrorString, nvmlDeviceGetHandleByPciBusId_v2)";
    dlclose(handle);
    return nullptr;
  }
  resolve(handle, api->driver_version, "nvmlSystemGetDriverVersion");
  resolve(handle, api->temperature, "nvmlDeviceGetTemperature");
  resolve(handle, api->temperature_threshold, "nvmlDeviceGetTemperatureThreshold");
  resolve(handle, api->power_usage, "nvmlDeviceGetPowerUsage");
  resolve(handle, api->enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  // Renamed from "throttle reasons" to "clocks event reasons" in CUDA 12.2-era drivers.
  resolve(handle, api->clock_event_reasons, "nvmlDeviceGetCurrentClocksEventReasons");
  if (!api->clock_event_reasons) {
    resolve(handle, api->clock_event_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
  }
  resolve(handle, api->total_ecc_errors, "nvmlDeviceGetTotalEccErrors");
  resolve(handle, api->remapped_rows, "nvmlDeviceGetRemappedRows");
  resolve(handle, api->mig_mode, "nvmlDeviceGetMigMode");
  resolve(handle, api->pcie_gen, "nvmlDeviceGetCurrPcieLinkGeneration");
  resolve(handle, api->pcie_width, "nvmlDeviceGetCurrPcieLinkWidth");
  resolve(handle, api->pcie_max_gen, "nvmlDeviceGetMaxPcieLinkGeneration");
  resolve(handle, api->pcie_max_width, "nvmlDeviceGetMaxPcieLinkWidth");

  const nvml::Return rc = api->init();
  if (rc != nvml::kSuccess) {
    why = std::string("nvmlInit_v2 failed: ") + api->error_string(rc);
    dlclose(handle);
    return nullptr;
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api)));
}

std::optional<std::string> Nvml::driver_version() const {
  if (!api_->driver_version) return std::nullopt;
  char buf[nvml::kDriverVersionBufferSize] = {};
  if (api_->driver_version(buf, sizeof buf) != nvml::kSuccess) return std::nullopt;
  return std::string(buf);
}

NvmlDeviceFacts Nvml::query(const std::string& pci_bus_id) const {
  NvmlDeviceFacts f;
  nvml::Device dev = nullptr;
  if (const nvml::Return rc = api_->handle_by_pci_bus_id(pci_bus_id.c_str(), &dev); rc != nvml::kSuccess) {
    f.error = "nvmlDeviceGetHandleByPciBusId_v2(" + pci_bus_id + "): " + api_->error_string(rc);
    return f;
  }
  f.found = true;

  // Runs one query; on failure records "what: reason" and leaves the fact absent.
  auto ask = [&](const char* what, auto fn, auto&&... args) -> bool {
    if (!fn) {
      f.unavailable.push_back(std::string(what) + ": not exported by this NVML");
      return false;
    }
    const nvml::Return rc = fn(dev, args...);
    if (rc != nvml::kSuccess) {
      f.unavailable.push_back(std::string(what) + ": " + api_->error_string(rc));
      return false;
    }
    return true;
  };

  unsigned u = 0;
  if (ask("temperature", api_->temperature, nvml::kTemperatureGpu, &u)) f.temperature_c = u;
  if (ask("slowdown_temperature", api_->temperature_threshold, nvml::kTemperatureThresholdSlowdown, &u)) {
    f.slowdown_temperature_c = u;
  }
  if (ask("power", api_->power_usage, &u)) f.power_w = u / 1000.0;  // milliwatts
  if (ask("power_limit", api_->enforced_power_limit, &u)) f.power_limit_w = u / 1000.0;
  unsigned long long ull = 0;
  if (ask("clock_event_reasons", api_->clock_event_reasons, &ull)) f.clock_event_reasons = ull;
  if (ask("ecc", api_->total_ecc_errors, nvml::kMemoryErrorUncorrected, nvml::kVolatileEcc, &ull)) {
    f.ecc_volatile_uncorrected = ull;
    if (ask("ecc", api_->total_ecc_errors, nvml::kMemoryErrorCorrected, nvml::kVolatileEcc, &ull)) {
      f.ecc_volatile_corrected = ull;
    }
    if (ask("ecc", api_->total_ecc_errors, nvml::kMemoryErrorUncorrected, nvml::kAggregateEcc, &ull)) {
      f.ecc_aggregate_uncorrected = ull;
    }
    if (ask("ecc", api_->total_ecc_errors, nvml::kMemoryErrorCorrected, nvml::kAggregateEcc, &ull)) {
      f.ecc_aggregate_corrected = ull;
    }
  }
  unsigned corr = 0, unc = 0, pending = 0, failure = 0;
  if (ask("remapped_rows", api_->remapped_rows, &corr, &unc, &pending, &failure)) {
    f.remapped_rows = RemappedRows{corr, unc, pending != 0, failure != 0};
  }
  unsigned current = 0, pending_mode = 0;
  if (ask("mig_mode", api_->mig_mode, &current, &pending_mode)) f.mig_enabled = current != 0;
  if (ask("pcie_link", api_->pcie_gen, &u)) f.pcie_gen = u;
  if (ask("pcie_link", api_->pcie_width, &u)) f.pcie_width = u;
  if (ask("pcie_link", api_->pcie_max_gen, &u)) f.pcie_max_gen = u;
  if (ask("pcie_link", api_->pcie_max_width, &u)) f.pcie_max_width = u;
  return f;
}

}  // namespace gpusmoke
