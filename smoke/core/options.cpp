#include "smoke/core/options.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "smoke/core/expectations.h"

namespace gpusmoke {

namespace {

bool parse_number(std::string_view text, long long& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

bool parse_number(std::string_view text, double& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out, std::chars_format::general);
  return ec == std::errc() && ptr == end && !text.empty() && std::isfinite(out);
}

std::string range_error(std::string_view flag, std::string_view value, std::string_view range) {
  return std::string(flag) + ": '" + std::string(value) + "' is not " + std::string(range);
}

// Each value flag: its name and how to store its text (returns an error message or "").
struct ValueFlag {
  std::string_view name;
  std::function<std::string(Options&, std::string_view)> apply;
};

template <typename T>
std::function<std::string(Options&, std::string_view)> integer(std::string_view flag, T Options::*field,
                                                                long long lo, long long hi) {
  return [=](Options& o, std::string_view v) -> std::string {
    long long n = 0;
    if (!parse_number(v, n) || n < lo || n > hi) {
      return range_error(flag, v, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    o.*field = static_cast<T>(n);
    return {};
  };
}

std::function<std::string(Options&, std::string_view)> real(std::string_view flag, double Options::*field,
                                                             double lo, double hi, bool lo_open,
                                                             std::string_view range) {
  return [=](Options& o, std::string_view v) -> std::string {
    double x = 0;
    if (!parse_number(v, x) || x < lo || (lo_open && x == lo) || x > hi) {
      return range_error(flag, v, range);
    }
    o.*field = x;
    return {};
  };
}

std::function<std::string(Options&, std::string_view)> optional_real(std::string_view flag,
                                                                     std::optional<double> Options::*field,
                                                                     double hi, std::string_view range) {
  return [=](Options& o, std::string_view v) -> std::string {
    double x = 0;
    if (!parse_number(v, x) || x <= 0 || x > hi) return range_error(flag, v, range);
    o.*field = x;
    return {};
  };
}

const std::vector<ValueFlag>& value_flags() {
  static const std::vector<ValueFlag> flags = {
      {"--device",
       [](Options& o, std::string_view v) -> std::string {
         long long n = 0;
         if (!parse_number(v, n) || n < 0 || n > 1023) {
           return range_error("--device", v, "a device index in [0, 1023]");
         }
         o.device = static_cast<int>(n);
         return {};
       }},
      {"--expect-gpus", integer("--expect-gpus", &Options::expect_gpus, 0, 1024)},
      {"--product",
       [](Options& o, std::string_view v) -> std::string {
         if (find_product(v) == nullptr) {
           std::string keys;
           for (const ProductExpectation& p : product_table()) {
             if (!keys.empty()) keys += ", ";
             keys += p.key;
           }
           return "--product: unknown product '" + std::string(v) + "' (known: " + keys + ")";
         }
         o.product = std::string(v);
         return {};
       }},
      {"--min-bandwidth-fraction",
       real("--min-bandwidth-fraction", &Options::min_bandwidth_fraction, 0, 1, false,
            "a fraction in [0, 1]")},
      {"--min-pcie-fraction",
       real("--min-pcie-fraction", &Options::min_pcie_fraction, 0, 1, false, "a fraction in [0, 1]")},
      {"--min-d2d-gbps",
       optional_real("--min-d2d-gbps", &Options::min_d2d_gbps, 1e6, "a bandwidth in GB/s in (0, 1e6]")},
      {"--min-host-gbps",
       optional_real("--min-host-gbps", &Options::min_host_gbps, 1e6, "a bandwidth in GB/s in (0, 1e6]")},
      {"--mem-fraction",
       real("--mem-fraction", &Options::mem_fraction, 0, 1, true, "a fraction in (0, 1]")},
      {"--copy-mib", integer("--copy-mib", &Options::copy_mib, 1, 65536)},
      {"--host-copy-mib", integer("--host-copy-mib", &Options::host_copy_mib, 1, 16384)},
      {"--iterations", integer("--iterations", &Options::iterations, 1, 10000)},
      {"--vector-elements",
       integer("--vector-elements", &Options::vector_elements, 1, 1LL << 31)},
      // The CPU reference costs n^3 multiply-adds; 2048 keeps it to seconds.
      {"--gemm-n", integer("--gemm-n", &Options::gemm_n, 16, 2048)},
      {"--max-temp-c",
       optional_real("--max-temp-c", &Options::max_temp_c, 150, "a temperature in (0, 150] degrees C")},
  };
  return flags;
}

}  // namespace

ParseResult parse_args(std::span<const std::string_view> args) {
  ParseResult result;
  Options& o = result.options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--json") {
      o.json = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--version") {
      o.version = true;
    } else if (arg == "--list-products") {
      o.list_products = true;
    } else if (arg == "--no-nvml") {
      o.nvml = false;
    } else if (arg == "--allow-minor-version-compat") {
      o.allow_minor_version_compat = true;
    } else {
      std::string_view name = arg;
      std::optional<std::string_view> value;
      if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      }
      const ValueFlag* flag = nullptr;
      for (const ValueFlag& f : value_flags()) {
        if (f.name == name) flag = &f;
      }
      if (flag == nullptr) {
        result.error = "unknown argument '" + std::string(arg) + "' (see --help)";
        return result;
      }
      if (!value) {
        if (i + 1 >= args.size()) {
          result.error = std::string(name) + ": missing value";
          return result;
        }
        value = args[++i];
      }
      result.error = flag->apply(o, *value);
      if (!result.error.empty()) return result;
    }
  }
  return result;
}

ParseResult parse_args(int argc, const char* const* argv) {
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return parse_args(std::span<const std::string_view>(args));
}

std::string usage_text() {
  return R"(usage: gpu-smoke [options]

Proves that the GPUs visible to this process work: enumeration, driver/runtime
compatibility, vector add, device and host<->device copy bandwidth, a cuBLAS GEMM
checked against a CPU reference, a large allocation, and NVML health facts.

Output:
  --json                         JSON report on stdout (the human summary goes to stderr)
  --list-products                print the per-product expectation table and exit
  --version, --help

What to test:
  --device N                     test only CUDA device N (default: every visible device)
  --expect-gpus N                fail unless at least N GPUs are visible (default: 1)
  --product KEY                  use this expectation entry instead of matching the name

Thresholds:
  --min-bandwidth-fraction F     device copy bandwidth >= F x datasheet peak (default 0.5)
  --min-pcie-fraction F          host<->device bandwidth >= F x PCIe link peak (default 0.5)
                                 (a fraction of 0 records the figure without judging it)
  --min-d2d-gbps X               absolute minimum for the device copy, GB/s (overrides F)
  --min-host-gbps X              absolute minimum for host<->device copies, GB/s
  --max-temp-c X                 fail at or above X degrees C (default: the GPU's own
                                 slowdown temperature, from NVML)
  --allow-minor-version-compat   accept a driver older than the runtime within the same
                                 CUDA major version (CUDA minor version compatibility)

Sizes:
  --mem-fraction F               share of free device memory to allocate (default 0.9)
  --copy-mib N                   device-to-device copy size in MiB (default 256)
  --host-copy-mib N              pinned host buffer size in MiB (default 64)
  --iterations N                 timed repetitions per bandwidth figure (default 20)
  --vector-elements N            vector add length (default 16777216)
  --gemm-n N                     SGEMM size, 16..2048 (default 1024)
  --no-nvml                      skip the NVML checks

Exit status: 0 healthy, 1 a check failed, 2 no GPU / no driver / driver too old,
64 bad command line.
)";
}

}  // namespace gpusmoke
