#pragma once
// Command-line options of gpu-smoke. Parsing needs no GPU and is unit-tested everywhere.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace gpusmoke {

// Process exit statuses (documented in smoke/README.md and manifests/smoke-test/RUNBOOK.md).
inline constexpr int kExitHealthy = 0;      // every check passed (or was skipped)
inline constexpr int kExitCheckFailed = 1;  // at least one check failed: this GPU is not healthy
inline constexpr int kExitNoGpu = 2;        // no GPU visible, no driver, or a driver too old
inline constexpr int kExitUsage = 64;       // bad command line (EX_USAGE); 2 is taken by "no GPU"

struct Options {
  bool json = false;           // --json: JSON report on stdout, human summary on stderr
  bool help = false;           // --help, -h
  bool version = false;        // --version
  bool list_products = false;  // --list-products: print the expectation table and exit

  std::optional<int> device;           // --device N: test only this CUDA device (default: all)
  int expect_gpus = 0;                 // --expect-gpus N: enumeration fails below N (0: >= 1)
  std::optional<std::string> product;  // --product KEY: expectation entry to use (default: by name)

  // Bandwidth thresholds: a fraction of the product's documented peak, unless an absolute
  // minimum in GB/s (10^9 bytes/s) is given. A fraction of 0 records the figure only.
  double min_bandwidth_fraction = 0.5;  // --min-bandwidth-fraction: device memory (d2d copy)
  double min_pcie_fraction = 0.5;       // --min-pcie-fraction: host<->device copies
  std::optional<double> min_d2d_gbps;   // --min-d2d-gbps
  std::optional<double> min_host_gbps;  // --min-host-gbps (both directions)

  double mem_fraction = 0.9;            // --mem-fraction: share of free memory to allocate
  std::size_t copy_mib = 256;           // --copy-mib: device-to-device copy size
  std::size_t host_copy_mib = 64;       // --host-copy-mib: pinned host buffer size
  int iterations = 20;                  // --iterations: timed repetitions per bandwidth figure
  std::size_t vector_elements = std::size_t{1} << 24;  // --vector-elements
  int gemm_n = 1024;                    // --gemm-n: square SGEMM size (CPU reference is n^3)

  std::optional<double> max_temp_c;     // --max-temp-c (default: the GPU's slowdown threshold)
  bool nvml = true;                     // --no-nvml skips the NVML checks
  bool allow_minor_version_compat = false;  // --allow-minor-version-compat
};

struct ParseResult {
  Options options;
  std::string error;  // empty when parsing succeeded
  bool ok() const { return error.empty(); }
};

// Parses the arguments after argv[0]. Accepts "--flag value" and "--flag=value".
ParseResult parse_args(std::span<const std::string_view> args);
ParseResult parse_args(int argc, const char* const* argv);

std::string usage_text();

}  // namespace gpusmoke
