#include "smoke/core/startup.h"

#include <dlfcn.h>

#include <fstream>

#include "smoke/core/options.h"

namespace gpusmoke {

DriverProbe probe_driver(const char* libcuda, const char* proc_version) {
  DriverProbe p;
  if (void* h = dlopen(libcuda, RTLD_NOW | RTLD_LOCAL)) {
    p.libcuda_loadable = true;
    dlclose(h);
  } else {
    const char* err = dlerror();
    p.libcuda_error = err ? err : "unknown dlopen error";
  }
  std::ifstream in(proc_version);
  std::string line;
  if (in && std::getline(in, line) && !line.empty()) p.kernel_module = line;
  return p;
}

namespace {

std::string quoted_error(const StartupFacts& f) {
  return " [" + f.call + ": " + f.error_name + ": " + f.error_string + "]";
}

std::string env_or_unset(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "unset"; }

std::string kernel_module_sentence(const DriverProbe& p) {
  if (p.kernel_module) return " The nvidia kernel module is loaded (" + *p.kernel_module + ").";
  return " /proc/driver/nvidia/version is absent: the nvidia kernel module is not loaded (no NVIDIA driver "
         "installed, or this is not a GPU node).";
}

}  // namespace

StartupFailure diagnose_startup(const StartupFacts& f) {
  StartupFailure out;
  out.exit_code = kExitNoGpu;
  const std::string runtime = format_cuda_version(f.runtime_version);
  switch (f.error) {
    case CudaInitError::no_device:
      out.status = "no_gpu";
      out.message = "no GPU visible: ";
      out.message += f.driver_version > 0
                         ? "the NVIDIA driver is loaded (it supports CUDA " + format_cuda_version(f.driver_version) + ")"
                         : std::string("CUDA found a driver");
      out.message += " but no CUDA device is visible to this process (CUDA_VISIBLE_DEVICES " +
                     env_or_unset(f.cuda_visible_devices) + ", NVIDIA_VISIBLE_DEVICES " +
                     env_or_unset(f.nvidia_visible_devices) +
                     "). In Kubernetes, the pod must request nvidia.com/gpu and land on a GPU node.";
      if (!f.probe.kernel_module) out.message += kernel_module_sentence(f.probe);
      break;
    case CudaInitError::insufficient_driver:
      if (f.driver_version > 0) {
        out.status = "driver_too_old";
        out.message = "driver too old for this runtime: the driver supports CUDA " +
                      format_cuda_version(f.driver_version) + " but gpu-smoke uses CUDA runtime " + runtime +
                      ". Upgrade the node's driver to one that supports CUDA " + runtime +
                      ", or run a gpu-smoke built with an older CUDA.";
      } else if (!f.probe.libcuda_loadable) {
        out.status = "no_driver";
        out.message = "no driver loaded: libcuda.so.1, the NVIDIA user-space driver, could not be loaded (" +
                      f.probe.libcuda_error + ").";
        out.message += f.probe.kernel_module
                           ? kernel_module_sentence(f.probe) +
                                 " The driver libraries are missing from this container: run it with the NVIDIA "
                                 "container runtime and NVIDIA_DRIVER_CAPABILITIES including 'compute'."
                           : kernel_module_sentence(f.probe);
      } else {
        out.status = "no_driver";
        out.message = "no driver loaded: libcuda.so.1 loads but reports no usable driver." +
                      kernel_module_sentence(f.probe);
      }
      break;
    case CudaInitError::stub_library:
      out.status = "no_driver";
      out.message = "no driver loaded: libcuda.so.1 is the CUDA toolkit's link stub (lib64/stubs), not a "
                    "driver; the real driver library is missing or shadowed by LD_LIBRARY_PATH." +
                    kernel_module_sentence(f.probe);
      break;
    case CudaInitError::system_driver_mismatch:
      out.status = "driver_mismatch";
      out.message = "driver mismatch: the user-space driver (libcuda.so.1) and the nvidia kernel module are "
                    "different versions, typically a driver upgrade without a reboot or a container that "
                    "bundles its own libcuda." +
                    kernel_module_sentence(f.probe);
      break;
    case CudaInitError::compat_not_supported:
      out.status = "driver_compat_unsupported";
      out.message = "driver too old for this runtime: the CUDA forward-compatibility libraries (cuda-compat) in "
                    "use are not supported on this GPU; upgrade the node's driver to one that supports CUDA " +
                    runtime + ".";
      break;
    case CudaInitError::other:
      out.status = "enumeration_failed";
      out.exit_code = kExitCheckFailed;
      out.message = "device enumeration failed: a driver is present but CUDA could not use the GPU (check the "
                    "node's kernel log for NVIDIA Xid errors and nvidia-smi).";
      break;
  }
  out.message += quoted_error(f);
  return out;
}

}  // namespace gpusmoke
