#pragma once
// Why gpu-smoke could not start testing: no GPU visible, no driver, a driver too old for
// the runtime... The CUDA program maps the cudaGetDeviceCount error to CudaInitError and
// gathers the facts; the diagnosis (exit status and message) is plain C++, unit-tested
// without a GPU.

#include <optional>
#include <string>

#include "smoke/core/report.h"

namespace gpusmoke {

// The cudaError_t values that decide the diagnosis.
enum class CudaInitError {
  no_device,               // cudaErrorNoDevice (or zero devices)
  insufficient_driver,     // cudaErrorInsufficientDriver: no driver, or older than the runtime
  stub_library,            // cudaErrorStubLibrary: libcuda.so is the toolkit's link stub
  system_driver_mismatch,  // cudaErrorSystemDriverMismatch: libcuda vs kernel module
  compat_not_supported,    // cudaErrorCompatNotSupportedOnDevice: cuda-compat on this GPU
  other,
};

// What is known about the driver besides the CUDA error.
struct DriverProbe {
  bool libcuda_loadable = false;
  std::string libcuda_error;                 // dlerror() when it is not
  std::optional<std::string> kernel_module;  // first line of /proc/driver/nvidia/version
};

DriverProbe probe_driver(const char* libcuda = "libcuda.so.1",
                         const char* proc_version = "/proc/driver/nvidia/version");

struct StartupFacts {
  std::string call;          // the CUDA call that failed, e.g. "cudaGetDeviceCount"
  CudaInitError error = CudaInitError::other;
  std::string error_name;    // cudaGetErrorName
  std::string error_string;  // cudaGetErrorString
  int driver_version = 0;    // cudaDriverGetVersion (0: no driver)
  int runtime_version = 0;   // cudaRuntimeGetVersion
  DriverProbe probe;
  std::optional<std::string> cuda_visible_devices;    // environment, where set
  std::optional<std::string> nvidia_visible_devices;
};

// Exit 2 (no_gpu, no_driver, driver_too_old, driver_mismatch, driver_compat_unsupported)
// or exit 1 (enumeration_failed: a driver and a device are there but CUDA cannot use it).
StartupFailure diagnose_startup(const StartupFacts& facts);

}  // namespace gpusmoke
