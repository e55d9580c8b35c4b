#pragma once
// Turning measured figures into verdicts. Pure functions, unit-tested without a GPU.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "smoke/core/expectations.h"
#include "smoke/core/options.h"
#include "smoke/core/report.h"

namespace gpusmoke {

enum class Copy { device_to_device, host_to_device, device_to_host };

struct BandwidthThreshold {
  std::optional<double> min_gbps;  // absent: the figure is recorded, not judged
  std::string basis;               // where the minimum comes from, for the report
};

// The minimum for a copy bandwidth: an absolute flag wins; otherwise a fraction of the
// product's documented peak (device memory for d2d, the PCIe link for host copies). No
// minimum when the product is unknown, the fraction is 0, or (for d2d) the device is a MIG
// instance, which only has a share of the memory system.
BandwidthThreshold bandwidth_threshold(Copy copy, const ProductExpectation* product, const Options& options,
                                       bool mig_instance);

// A bandwidth check from a measured figure.
CheckResult judge_bandwidth(std::string name, int device, double measured_gbps, const BandwidthThreshold& t,
                            std::string how_measured);

// Is the driver new enough for the runtime? cudaDriverGetVersion >= cudaRuntimeGetVersion,
// or the same major version when minor version compatibility is allowed.
CheckResult judge_driver_runtime(int driver_version, int runtime_version, bool allow_minor_version_compat);

// NVML clock event ("throttle") reason bits, as in nvml.h.
inline constexpr std::uint64_t kClockGpuIdle = 0x1;
inline constexpr std::uint64_t kClockApplicationsSetting = 0x2;
inline constexpr std::uint64_t kClockSwPowerCap = 0x4;
inline constexpr std::uint64_t kClockHwSlowdown = 0x8;
inline constexpr std::uint64_t kClockSyncBoost = 0x10;
inline constexpr std::uint64_t kClockSwThermalSlowdown = 0x20;
inline constexpr std::uint64_t kClockHwThermalSlowdown = 0x40;
inline constexpr std::uint64_t kClockHwPowerBrakeSlowdown = 0x80;
inline constexpr std::uint64_t kClockDisplaySetting = 0x100;
// The reasons that mean the hardware or its cooling is in trouble (the others, such as
// the software power cap or idle, are normal operation).
inline constexpr std::uint64_t kClockFaultReasons =
    kClockHwSlowdown | kClockSwThermalSlowdown | kClockHwThermalSlowdown | kClockHwPowerBrakeSlowdown;

std::vector<std::string> clock_reason_names(std::uint64_t reasons);

// NVML facts about one device; every field is absent where NVML does not report it.
struct RemappedRows {
  unsigned correctable = 0;
  unsigned uncorrectable = 0;
  bool pending = false;
  bool failure = false;
};

struct NvmlDeviceFacts {
  bool found = false;  // the device was found in NVML by PCI bus id
  std::string error;   // why not
  std::optional<unsigned> temperature_c;
  std::optional<unsigned> slowdown_temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  std::optional<std::uint64_t> clock_event_reasons;
  std::optional<std::uint64_t> ecc_volatile_corrected;
  std::optional<std::uint64_t> ecc_volatile_uncorrected;
  std::optional<std::uint64_t> ecc_aggregate_corrected;
  std::optional<std::uint64_t> ecc_aggregate_uncorrected;
  std::optional<RemappedRows> remapped_rows;
  std::optional<bool> mig_enabled;
  std::optional<unsigned> pcie_gen, pcie_width, pcie_max_gen, pcie_max_width;
  std::vector<std::string> unavailable;  // "what: NVML error" for each query that failed
};

// "Gen4 x16 (max Gen4 x16)", or absent.
std::optional<std::string> format_pcie_link(const NvmlDeviceFacts& facts);

// The NVML checks of one device: nvml_temperature, nvml_power, nvml_clock_events,
// nvml_ecc_errors, nvml_row_remapping. Each is skipped where NVML has no answer.
std::vector<CheckResult> judge_nvml(int device, const NvmlDeviceFacts& facts, const Options& options);

}  // namespace gpusmoke
