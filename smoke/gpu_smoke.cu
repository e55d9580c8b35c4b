// gpu-smoke: proves that the GPUs visible to this process work, and fails fast with a
// clear reason when they do not. See smoke/README.md for the checks, flags and exit codes.
//
// This file holds only what needs CUDA: each check is a function that runs on the current
// device and returns a CheckResult. Judging figures against thresholds, the expectation
// table, the report formats, the startup diagnosis and NVML live in smoke/core (plain C++,
// unit-tested without a GPU).

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "smoke/core/expectations.h"
#include "smoke/core/nvml.h"
#include "smoke/core/options.h"
#include "smoke/core/report.h"
#include "smoke/core/startup.h"
#include "smoke/core/thresholds.h"

namespace gpusmoke {
namespace {

// ---- Error handling and owning wrappers --------------------------------------------------

// A failed CUDA or cuBLAS call; the message names the call and quotes the error.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void cuda_check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) {
    throw CudaError(what + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  }
}

void cublas_check(cublasStatus_t s, const std::string& what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw CudaError(what + ": " + cublasGetStatusName(s) + ": " + cublasGetStatusString(s));
  }
}

std::string mib_text(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    void* p = nullptr;
    cuda_check(cudaMalloc(&p, bytes()), "cudaMalloc(" + mib_text(bytes()) + ")");
    ptr_ = static_cast<T*>(p);
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  std::size_t count() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  std::size_t count_;
};

// Page-locked host memory, so that host<->device copies run at the link's speed.
class PinnedBuffer {
 public:
  explicit PinnedBuffer(std::size_t bytes) {
    cuda_check(cudaMallocHost(&ptr_, bytes), "cudaMallocHost(" + mib_text(bytes) + ")");
  }
  ~PinnedBuffer() { cudaFreeHost(ptr_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

class Event {
 public:
  Event() { cuda_check(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class CublasHandle {
 public:
  CublasHandle() { cublas_check(cublasCreate(&handle_), "cublasCreate"); }
  ~CublasHandle() { cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// Milliseconds that `work` (work queued on the default stream) takes on the GPU.
template <typename F>
float time_on_gpu_ms(F&& work) {
  Event start, stop;
  cuda_check(cudaEventRecord(start.get()), "cudaEventRecord");
  work();
  cuda_check(cudaEventRecord(stop.get()), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(stop.get()), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
  return ms;
}

// Surfaces errors that a kernel raised while it ran.
void check_kernels_ran(const char* kernels) {
  cuda_check(cudaDeviceSynchronize(), std::string("cudaDeviceSynchronize after ") + kernels);
}

CheckResult failed(std::string name, int device, std::string detail) {
  return unmeasured(std::move(name), device, Status::fail, std::move(detail));
}

// Runs one check; a failed CUDA call (or host allocation) fails the check, not the program.
template <typename F>
CheckResult guarded(const char* name, int device, F&& body) {
  try {
    return body();
  } catch (const CudaError& e) {
    cudaGetLastError();  // clear a non-sticky error so that it does not leak into the next check
    return failed(name, device, e.what());
  } catch (const std::bad_alloc&) {
    return failed(name, device, "host memory allocation failed (std::bad_alloc)");
  }
}

// ---- Kernels -------------------------------------------------------------------------------

constexpr int kThreads = 256;

__global__ void vector_add_kernel(const float* a, const float* b, float* c, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    c[i] = a[i] + b[i];
  }
}

// An address-dependent 32-bit pattern (a splitmix64 step), so that aliased or stuck
// addresses show up as mismatches, unlike a memset to one value.
__host__ __device__ inline std::uint32_t pattern(std::size_t i, std::uint32_t seed) {
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  return static_cast<std::uint32_t>(x ^ (x >> 31));
}

__global__ void fill_pattern_kernel(std::uint32_t* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    p[i] = pattern(i, seed);
  }
}

__global__ void verify_pattern_kernel(const std::uint32_t* p, std::size_t n, std::uint32_t seed,
                                      unsigned long long* mismatches) {
  unsigned long long local = 0;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    if (p[i] != pattern(i, seed)) ++local;
  }
  if (local != 0) atomicAdd(mismatches, local);
}

// Enough blocks to fill the GPU; the kernels use grid-stride loops.
unsigned grid_for(std::size_t n, int multiprocessors) {
  const std::size_t wanted = (n + kThreads - 1) / kThreads;
  const std::size_t cap = static_cast<std::size_t>(multiprocessors) * 16;
  return static_cast<unsigned>(wanted < cap ? wanted : cap);
}

// ---- Checks (each runs on the current device) ----------------------------------------------

CheckResult check_vector_add(int dev, int sms, const Options& o) {
  return guarded("vector_add", dev, [&] {
    const std::size_t n = o.vector_elements;
    // Small integers: every sum is exact in FP32, so the GPU must match the CPU bit for bit.
    std::vector<float> ha(n), hb(n), hc(n);
    for (std::size_t i = 0; i < n; ++i) {
      ha[i] = static_cast<float>(i & 0xFFFF);
      hb[i] = static_cast<float>((i * 7) & 0xFFFF);
    }
    DeviceBuffer<float> a(n), b(n), c(n);
    cuda_check(cudaMemcpy(a.get(), ha.data(), a.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy a");
    cuda_check(cudaMemcpy(b.get(), hb.data(), b.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy b");
    cuda_check(cudaMemset(c.get(), 0xFF, c.bytes()), "cudaMemset c");  // NaNs: unwritten shows
    const float ms = time_on_gpu_ms([&] {
      vector_add_kernel<<<grid_for(n, sms), kThreads>>>(a.get(), b.get(), c.get(), n);
      cuda_check(cudaGetLastError(), "vector_add_kernel<<<>>>");
    });
    check_kernels_ran("vector_add_kernel");
    cuda_check(cudaMemcpy(hc.data(), c.get(), c.bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy c");

    std::size_t mismatches = 0, first = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (!(hc[i] == ha[i] + hb[i])) {
        if (mismatches++ == 0) first = i;
      }
    }
    CheckResult r;
    r.name = "vector_add";
    r.device = dev;
    r.figure = static_cast<double>(mismatches);
    r.unit = "mismatches";
    r.threshold = Bound{0, false};
    r.status = mismatches == 0 ? Status::pass : Status::fail;
    r.detail = std::to_string(n) + " floats, c = a + b compared exactly with the CPU; kernel " + fixed(ms, 3) +
               " ms (" + fixed(3.0 * a.bytes() / (ms / 1e3) / 1e9, 1) + " GB/s effective)";
    if (mismatches != 0) {
      r.detail += "; first mismatch at element " + std::to_string(first) + ": got " + fixed(hc[first], 1) +
                  ", want " + fixed(ha[first] + hb[first], 1);
    }
    return r;
  });
}

CheckResult check_d2d_bandwidth(int dev, const ProductExpectation* product, bool mig, const Options& o) {
  return guarded("d2d_bandwidth", dev, [&] {
    const std::size_t bytes = o.copy_mib << 20;
    DeviceBuffer<unsigned char> src(bytes), dst(bytes);
    cuda_check(cudaMemset(src.get(), 0x5A, bytes), "cudaMemset");
    cuda_check(cudaMemcpy(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy (warm-up)");
    const float ms = time_on_gpu_ms([&] {
      for (int i = 0; i < o.iterations; ++i) {
        cuda_check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, 0),
                   "cudaMemcpyAsync device-to-device");
      }
    });
    // A device-to-device copy reads and writes every byte: count both, as the peak does.
    const double gbps = 2.0 * static_cast<double>(bytes) * o.iterations / (ms / 1e3) / 1e9;
    return judge_bandwidth("d2d_bandwidth", dev, gbps,
                           bandwidth_threshold(Copy::device_to_device, product, o, mig),
                           "cudaMemcpy device-to-device, " + mib_text(bytes) + " x " +
                               std::to_string(o.iterations) + " in " + fixed(ms, 2) +
                               " ms, counted as read + write");
  });
}

CheckResult check_host_bandwidth(int dev, Copy direction, const ProductExpectation* product, const Options& o) {
  const bool h2d = direction == Copy::host_to_device;
  const char* name = h2d ? "h2d_bandwidth" : "d2h_bandwidth";
  return guarded(name, dev, [&] {
    const std::size_t bytes = o.host_copy_mib << 20;
    PinnedBuffer host(bytes);
    DeviceBuffer<unsigned char> device(bytes);
    std::memset(host.get(), 0x5A, bytes);
    void* dst = h2d ? static_cast<void*>(device.get()) : host.get();
    const void* src = h2d ? static_cast<const void*>(host.get()) : device.get();
    const cudaMemcpyKind kind = h2d ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    const std::string what = h2d ? "cudaMemcpyAsync host-to-device" : "cudaMemcpyAsync device-to-host";
    cuda_check(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy (warm-up)");
    const float ms = time_on_gpu_ms([&] {
      for (int i = 0; i < o.iterations; ++i) cuda_check(cudaMemcpyAsync(dst, src, bytes, kind, 0), what);
    });
    const double gbps = static_cast<double>(bytes) * o.iterations / (ms / 1e3) / 1e9;
    return judge_bandwidth(name, dev, gbps, bandwidth_threshold(direction, product, o, false),
                           what.substr(sizeof("cudaMemcpyAsync ") - 1) + " from pinned memory, " +
                               mib_text(bytes) + " x " + std::to_string(o.iterations) + " in " + fixed(ms, 2) +
                               " ms");
  });
}

CheckResult check_gemm(int dev, const Options& o) {
  return guarded("gemm", dev, [&] {
    const int n = o.gemm_n;
    const std::size_t nn = static_cast<std::size_t>(n) * n;
    // Integer-valued inputs in [-4, 4]: every product and partial sum (|sum| <= 16 n < 2^24)
    // is exact in FP32, and the inputs are exact in TF32 too, so the result is exact whatever
    // the summation order or algorithm cuBLAS picks. Any difference is a fault.
    std::vector<float> A(nn), B(nn), C(nn), ref(nn, 0.0f);
    std::uint32_t state = 20240607u;
    auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return static_cast<float>(static_cast<int>((state >> 16) % 9) - 4);
    };
    for (float& x : A) x = next();
    for (float& x : B) x = next();

    DeviceBuffer<float> dA(nn), dB(nn), dC(nn);
    cuda_check(cudaMemcpy(dA.get(), A.data(), dA.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy A");
    cuda_check(cudaMemcpy(dB.get(), B.data(), dB.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy B");
    cuda_check(cudaMemset(dC.get(), 0xFF, dC.bytes()), "cudaMemset C");
    CublasHandle handle;
    const float alpha = 1.0f, beta = 0.0f;
    auto sgemm = [&] {
      cublas_check(cublasSgemm(handle.get(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, dA.get(), n, dB.get(), n,
                               &beta, dC.get(), n),
                   "cublasSgemm");
    };
    sgemm();  // warm-up: library initialisation and algorithm selection
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    const float ms = time_on_gpu_ms([&] {
      for (int i = 0; i < o.iterations; ++i) sgemm();
    });
    cuda_check(cudaMemcpy(C.data(), dC.get(), dC.bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy C");

    // CPU reference, column-major like cuBLAS: C(:, j) += A(:, k) * B(k, j).
    for (int j = 0; j < n; ++j) {
      float* cj = &ref[static_cast<std::size_t>(j) * n];
      for (int k = 0; k < n; ++k) {
        const float bkj = B[static_cast<std::size_t>(j) * n + k];
        const float* ak = &A[static_cast<std::size_t>(k) * n];
        for (int i = 0; i < n; ++i) cj[i] += ak[i] * bkj;
      }
    }
    double max_error = 0;
    std::size_t mismatches = 0, first = nn;
    for (std::size_t i = 0; i < nn; ++i) {
      const double err = C[i] == ref[i] ? 0.0 : std::abs(static_cast<double>(C[i]) - ref[i]);
      if (C[i] != ref[i]) {
        if (mismatches++ == 0) first = i;
      }
      if (std::isnan(err) || err > max_error) max_error = std::isnan(err) ? INFINITY : err;
    }
    const double gflops = 2.0 * n * static_cast<double>(n) * n * o.iterations / (ms / 1e3) / 1e9;
    CheckResult r;
    r.name = "gemm";
    r.device = dev;
    r.figure = max_error;
    r.unit = "max abs error";
    r.threshold = Bound{0, false};
    r.status = mismatches == 0 ? Status::pass : Status::fail;
    r.detail = "cuBLAS SGEMM " + std::to_string(n) + "^3 with integer inputs in [-4, 4], compared exactly with a "
               "CPU reference; " + fixed(gflops, 0) + " GFLOP/s over " + std::to_string(o.iterations) +
               " calls (informational)";
    if (mismatches != 0) {
      r.detail += "; " + std::to_string(mismatches) + " of " + std::to_string(nn) + " elements differ, first at (" +
                  std::to_string(first % n) + ", " + std::to_string(first / n) + "): got " + fixed(C[first], 1) +
                  ", want " + fixed(ref[first], 1);
    }
    return r;
  });
}

CheckResult check_memory_alloc(int dev, int sms, const Options& o) {
  return guarded("memory_alloc", dev, [&] {
    std::size_t free_bytes = 0, total_bytes = 0;
    cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const std::size_t granule = std::size_t{2} << 20;
    const std::size_t bytes =
        static_cast<std::size_t>(static_cast<double>(free_bytes) * o.mem_fraction) / granule * granule;
    const std::string share = fixed(o.mem_fraction, 2) + " of " + fixed(free_bytes / kGiB, 1) + " GiB free (" +
                              fixed(total_bytes / kGiB, 1) + " GiB total)";
    if (bytes == 0) return failed("memory_alloc", dev, "nothing to allocate: " + share);
    const std::size_t words = bytes / sizeof(std::uint32_t);
    // The small counter first, so that a --mem-fraction close to 1 cannot starve it.
    DeviceBuffer<unsigned long long> mismatches(1);
    cuda_check(cudaMemset(mismatches.get(), 0, sizeof(unsigned long long)), "cudaMemset");
    std::optional<DeviceBuffer<std::uint32_t>> block;
    try {
      block.emplace(words);
    } catch (const CudaError& e) {
      cudaGetLastError();
      return failed("memory_alloc", dev, "could not allocate " + fixed(bytes / kGiB, 2) + " GiB = " + share +
                                             ": " + e.what());
    }
    const std::uint32_t seed = 0xC0FFEEu;
    const unsigned grid = grid_for(words, sms);
    const float ms = time_on_gpu_ms([&] {
      fill_pattern_kernel<<<grid, kThreads>>>(block->get(), words, seed);
      cuda_check(cudaGetLastError(), "fill_pattern_kernel<<<>>>");
      verify_pattern_kernel<<<grid, kThreads>>>(block->get(), words, seed, mismatches.get());
      cuda_check(cudaGetLastError(), "verify_pattern_kernel<<<>>>");
    });
    check_kernels_ran("fill_pattern_kernel, verify_pattern_kernel");
    unsigned long long bad = 0;
    cuda_check(cudaMemcpy(&bad, mismatches.get(), sizeof bad, cudaMemcpyDeviceToHost), "cudaMemcpy");
    CheckResult r;
    r.name = "memory_alloc";
    r.device = dev;
    r.figure = bytes / kGiB;
    r.unit = "GiB";
    r.status = bad == 0 ? Status::pass : Status::fail;
    r.detail = "allocated " + share + "; wrote and read back an address-dependent pattern in " + fixed(ms, 1) +
               " ms: " + std::to_string(bad) + " of " + std::to_string(words) + " words wrong";
    return r;
  });
}

// ---- Enumeration and the program -------------------------------------------------------------

std::string uuid_text(const cudaUUID_t& u) {
  // nvidia-smi's form: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  std::string s = "GPU-";
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(u.bytes[i]));
    s += hex;
  }
  return s;
}

DeviceInfo describe_device(int dev, int& multiprocessors) {
  cudaDeviceProp p{};
  cuda_check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  char bus[32] = {};
  cuda_check(cudaDeviceGetPCIBusId(bus, sizeof bus, dev), "cudaDeviceGetPCIBusId");
  std::size_t free_bytes = 0, total_bytes = 0;
  cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  DeviceInfo d;
  d.index = dev;
  d.name = p.name;
  d.pci_bus_id = bus;
  d.uuid = uuid_text(p.uuid);
  d.total_memory_bytes = p.totalGlobalMem;
  d.free_memory_bytes = free_bytes;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.ecc_enabled = p.ECCEnabled != 0;
  multiprocessors = p.multiProcessorCount;
  return d;
}

CudaInitError classify(cudaError_t e) {
  switch (e) {
    case cudaErrorNoDevice: return CudaInitError::no_device;
    case cudaErrorInsufficientDriver: return CudaInitError::insufficient_driver;
    case cudaErrorStubLibrary: return CudaInitError::stub_library;
    case cudaErrorSystemDriverMismatch: return CudaInitError::system_driver_mismatch;
    case cudaErrorCompatNotSupportedOnDevice: return CudaInitError::compat_not_supported;
    default: return CudaInitError::other;
  }
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

int emit(const Report& report, const Options& o) {
  if (o.json) std::cout << format_json(report) << std::flush;
  if (report.startup_failure) {
    std::cerr << "gpu-smoke: " << report.startup_failure->message << "\n";
  } else {
    (o.json ? std::cerr : std::cout) << format_human(report) << std::flush;
  }
  return exit_code(report);
}

int run(const Options& o) {
  Report report;
  report.tool_version = GPUSMOKE_VERSION;
  // Neither call needs a driver: the runtime version is compiled in, and the driver version
  // is 0 when there is no driver.
  cudaRuntimeGetVersion(&report.runtime_version);
  cudaDriverGetVersion(&report.driver_version);

  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    StartupFacts f;
    f.call = "cudaGetDeviceCount";
    f.error = e == cudaSuccess ? CudaInitError::no_device : classify(e);
    f.error_name = cudaGetErrorName(e);
    f.error_string = e == cudaSuccess ? "returned 0 devices" : cudaGetErrorString(e);
    f.driver_version = report.driver_version;
    f.runtime_version = report.runtime_version;
    f.probe = probe_driver();
    f.cuda_visible_devices = env("CUDA_VISIBLE_DEVICES");
    f.nvidia_visible_devices = env("NVIDIA_VISIBLE_DEVICES");
    report.startup_failure = diagnose_startup(f);
    report.nvml = o.nvml ? "not attempted" : "disabled (--no-nvml)";
    return emit(report, o);
  }

  std::vector<int> devices;
  for (int d = 0; d < count; ++d) {
    if (!o.device || *o.device == d) devices.push_back(d);
  }
  {
    CheckResult c;
    c.name = "device_enumeration";
    c.figure = count;
    c.unit = "GPUs";
    const int wanted = o.expect_gpus > 0 ? o.expect_gpus : 1;
    c.threshold = Bound{static_cast<double>(wanted), true};
    c.status = count >= wanted && !devices.empty() ? Status::pass : Status::fail;
    const std::optional<std::string> visible = env("CUDA_VISIBLE_DEVICES");
    c.detail = std::to_string(count) + " CUDA device(s) visible (CUDA_VISIBLE_DEVICES " +
               (visible ? "'" + *visible + "'" : std::string("unset")) + ")";
    if (count < wanted) c.detail += "; expected at least " + std::to_string(wanted) + " (--expect-gpus)";
    if (devices.empty()) c.detail += "; --device " + std::to_string(*o.device) + " is not among them";
    report.checks.push_back(std::move(c));
  }
  report.checks.push_back(
      judge_driver_runtime(report.driver_version, report.runtime_version, o.allow_minor_version_compat));

  std::unique_ptr<Nvml> nvml;
  if (!o.nvml) {
    report.nvml = "disabled (--no-nvml)";
  } else {
    std::string why;
    nvml = Nvml::open(why);
    if (nvml) {
      report.nvml = "loaded";
      report.nvml_driver_version = nvml->driver_version();
    } else {
      report.nvml = "unavailable";
      CheckResult c;
      c.name = "nvml";
      c.status = Status::skip;
      c.detail = why;
      report.checks.push_back(std::move(c));
    }
  }

  for (int dev : devices) {
    int sms = 0;
    DeviceInfo info;
    try {
      cuda_check(cudaSetDevice(dev), "cudaSetDevice");
      info = describe_device(dev, sms);
    } catch (const CudaError& err) {
      cudaGetLastError();
      report.checks.push_back(failed("device_init", dev, err.what()));
      continue;
    }
    const ProductExpectation* product = o.product ? find_product(*o.product) : match_product(info.name);
    if (product) info.product_key = std::string(product->key);
    bool mig = false;
    if (nvml) {
      const NvmlDeviceFacts before = nvml->query(info.pci_bus_id);
      info.mig_enabled = before.mig_enabled;
      info.pcie_link = format_pcie_link(before);
      mig = before.mig_enabled.value_or(false);
    }
    report.devices.push_back(info);

    report.checks.push_back(check_vector_add(dev, sms, o));
    report.checks.push_back(check_d2d_bandwidth(dev, product, mig, o));
    report.checks.push_back(check_host_bandwidth(dev, Copy::host_to_device, product, o));
    report.checks.push_back(check_host_bandwidth(dev, Copy::device_to_host, product, o));
    report.checks.push_back(check_gemm(dev, o));
    report.checks.push_back(check_memory_alloc(dev, sms, o));
    if (nvml) {
      // After the load, so that clock events and temperature reflect a working GPU.
      for (CheckResult& c : judge_nvml(dev, nvml->query(info.pci_bus_id), o)) report.checks.push_back(std::move(c));
    }
  }
  return emit(report, o);
}

}  // namespace
}  // namespace gpusmoke

int main(int argc, char** argv) {
  using namespace gpusmoke;
  const ParseResult parsed = parse_args(argc, argv);
  if (!parsed.ok()) {
    std::cerr << "gpu-smoke: " << parsed.error << "\n";
    return kExitUsage;
  }
  const Options& o = parsed.options;
  if (o.help) {
    std::cout << usage_text();
    return kExitHealthy;
  }
  if (o.version) {
    std::cout << "gpu-smoke " << GPUSMOKE_VERSION << " (built with CUDA " << format_cuda_version(CUDART_VERSION)
              << ")\n";
    return kExitHealthy;
  }
  if (o.list_products) {
    std::cout << format_product_table();
    return kExitHealthy;
  }
  return run(o);
}
