#include "smoke/core/thresholds.h"

#include <cstdio>

namespace gpusmoke {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

}  // namespace

BandwidthThreshold bandwidth_threshold(Copy copy, const ProductExpectation* product, const Options& options,
                                       bool mig_instance) {
  const bool d2d = copy == Copy::device_to_device;
  const std::optional<double>& absolute = d2d ? options.min_d2d_gbps : options.min_host_gbps;
  if (absolute) {
    return {*absolute, std::string(d2d ? "--min-d2d-gbps" : "--min-host-gbps") + " " + fixed(*absolute, 1)};
  }
  if (product == nullptr) return {std::nullopt, "no expectation for this product: figure recorded only"};
  if (d2d && mig_instance) {
    return {std::nullopt, "MIG instance: it has only a share of the memory system, so the product peak does "
                          "not apply (use --min-d2d-gbps); figure recorded only"};
  }
  const double fraction = d2d ? options.min_bandwidth_fraction : options.min_pcie_fraction;
  const char* flag = d2d ? "--min-bandwidth-fraction" : "--min-pcie-fraction";
  if (fraction <= 0) return {std::nullopt, std::string(flag) + " 0: figure recorded only"};
  if (d2d) {
    return {fraction * product->memory_bandwidth_gbps,
            fixed(fraction, 2) + " x " + fixed(product->memory_bandwidth_gbps, 0) + " GB/s " +
                std::string(product->memory_type) + " peak of " + std::string(product->display_name)};
  }
  const double link = pcie_gbps_per_direction(product->pcie_gen, product->pcie_lanes);
  return {fraction * link, fixed(fraction, 2) + " x " + fixed(link, 1) + " GB/s PCIe Gen" +
                               std::to_string(product->pcie_gen) + " x" + std::to_string(product->pcie_lanes) +
                               " per direction of " + std::string(product->display_name)};
}

CheckResult judge_bandwidth(std::string name, int device, double measured_gbps, const BandwidthThreshold& t,
                            std::string how_measured) {
  CheckResult c;
  c.name = std::move(name);
  c.device = device;
  c.figure = measured_gbps;
  c.unit = "GB/s";
  c.detail = std::move(how_measured) + "; threshold: " + t.basis;
  if (t.min_gbps) {
    c.threshold = Bound{*t.min_gbps, true};
    c.status = measured_gbps >= *t.min_gbps ? Status::pass : Status::fail;
    if (c.status == Status::fail) {
      c.detail += "; measured " + fixed(measured_gbps, 1) + " GB/s is below the minimum " + fixed(*t.min_gbps, 1) +
                  " GB/s";
    }
  } else {
    c.status = Status::pass;
  }
  return c;
}

CheckResult judge_driver_runtime(int driver_version, int runtime_version, bool allow_minor_version_compat) {
  CheckResult c;
  c.name = "driver_runtime_version";
  c.figure = driver_version;
  c.unit = "CUDA version";
  const bool same_major = driver_version / 1000 == runtime_version / 1000;
  const int minimum = allow_minor_version_compat ? runtime_version / 1000 * 1000 : runtime_version;
  c.threshold = Bound{static_cast<double>(minimum), true};
  const std::string facts = "driver supports CUDA " + format_cuda_version(driver_version) +
                            ", gpu-smoke uses CUDA runtime " + format_cuda_version(runtime_version);
  if (driver_version >= runtime_version) {
    c.status = Status::pass;
    c.detail = facts + " (cudaDriverGetVersion >= cudaRuntimeGetVersion)";
  } else if (allow_minor_version_compat && same_major && driver_version > 0) {
    c.status = Status::pass;
    c.detail = facts + ": accepted under CUDA minor version compatibility (--allow-minor-version-compat); "
                       "features that need a newer driver fail with cudaErrorCallRequiresNewerDriver";
  } else {
    c.status = Status::fail;
    c.detail = facts + ": the driver is older than the runtime; programs built with this runtime fail with "
                       "cudaErrorInsufficientDriver: \"CUDA driver version is insufficient for CUDA runtime "
                       "version\". Upgrade the node's driver to one that supports CUDA " +
               format_cuda_version(runtime_version) + (same_major ? " (or pass --allow-minor-version-compat)" : "");
  }
  return c;
}

std::vector<std::string> clock_reason_names(std::uint64_t reasons) {
  static const std::pair<std::uint64_t, const char*> known[] = {
      {kClockGpuIdle, "gpu_idle"},
      {kClockApplicationsSetting, "applications_clocks_setting"},
      {kClockSwPowerCap, "sw_power_cap"},
      {kClockHwSlowdown, "hw_slowdown"},
      {kClockSyncBoost, "sync_boost"},
      {kClockSwThermalSlowdown, "sw_thermal_slowdown"},
      {kClockHwThermalSlowdown, "hw_thermal_slowdown"},
      {kClockHwPowerBrakeSlowdown, "hw_power_brake_slowdown"},
      {kClockDisplaySetting, "display_clock_setting"},
  };
  std::vector<std::string> names;
  std::uint64_t rest = reasons;
  for (const auto& [bit, name] : known) {
    if (reasons & bit) names.emplace_back(name);
    rest &= ~bit;
  }
  if (rest != 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(rest));
    names.emplace_back(buf);
  }
  return names;
}

std::optional<std::string> format_pcie_link(const NvmlDeviceFacts& f) {
  if (!f.pcie_gen || !f.pcie_width) return std::nullopt;
  std::string s = "Gen" + std::to_string(*f.pcie_gen) + " x" + std::to_string(*f.pcie_width);
  if (f.pcie_max_gen && f.pcie_max_width) {
    s += " (max Gen" + std::to_string(*f.pcie_max_gen) + " x" + std::to_string(*f.pcie_max_width) + ")";
  }
  return s;
}

namespace {

CheckResult skipped(std::string name, int device, std::string why) {
  return unmeasured(std::move(name), device, Status::skip, std::move(why));
}

std::string why_unavailable(const NvmlDeviceFacts& f, const std::string& what) {
  for (const std::string& u : f.unavailable) {
    if (u.starts_with(what + ":")) return "NVML has no answer: " + u;
  }
  return "NVML has no answer for " + what;
}

std::string count_or_na(const std::optional<std::uint64_t>& v) { return v ? std::to_string(*v) : "n/a"; }

}  // namespace

std::vector<CheckResult> judge_nvml(int device, const NvmlDeviceFacts& f, const Options& options) {
  std::vector<CheckResult> out;
  if (!f.found) {
    out.push_back(skipped("nvml", device, "device not found in NVML: " + f.error));
    return out;
  }

  // Temperature against --max-temp-c, or the GPU's own slowdown threshold.
  if (!f.temperature_c) {
    out.push_back(skipped("nvml_temperature", device, why_unavailable(f, "temperature")));
  } else {
    CheckResult c;
    c.name = "nvml_temperature";
    c.device = device;
    c.figure = *f.temperature_c;
    c.unit = "C";
    std::optional<double> limit = options.max_temp_c;
    std::string basis = "--max-temp-c";
    if (!limit && f.slowdown_temperature_c) {
      limit = *f.slowdown_temperature_c;
      basis = "the GPU's slowdown temperature";
    }
    if (limit) {
      c.threshold = Bound{*limit, false};
      c.status = *f.temperature_c < *limit ? Status::pass : Status::fail;
      c.detail = "GPU core temperature; limit is " + basis + " (fail at or above " + format_figure(*limit) + " C)";
    } else {
      c.status = Status::pass;
      c.detail = "GPU core temperature; no limit (NVML reports no slowdown temperature and --max-temp-c is unset)";
    }
    out.push_back(std::move(c));
  }

  // Power draw: a fact, reported with the enforced limit.
  if (!f.power_w) {
    out.push_back(skipped("nvml_power", device, why_unavailable(f, "power")));
  } else {
    CheckResult c;
    c.name = "nvml_power";
    c.device = device;
    c.figure = *f.power_w;
    c.unit = "W";
    c.status = Status::pass;
    c.detail = "board power draw after the tests" +
               (f.power_limit_w ? "; enforced limit " + format_figure(*f.power_limit_w) + " W" : std::string());
    out.push_back(std::move(c));
  }

  // Clock event reasons: hardware slowdown, thermal slowdown and power brake are faults.
  if (!f.clock_event_reasons) {
    out.push_back(skipped("nvml_clock_events", device, why_unavailable(f, "clock_event_reasons")));
  } else {
    const std::uint64_t faults = *f.clock_event_reasons & kClockFaultReasons;
    const std::vector<std::string> faulty = clock_reason_names(faults);
    const std::vector<std::string> all = clock_reason_names(*f.clock_event_reasons);
    CheckResult c;
    c.name = "nvml_clock_events";
    c.device = device;
    c.figure = static_cast<double>(faulty.size());
    c.unit = "fault reasons";
    c.threshold = Bound{0, false};
    c.status = faulty.empty() ? Status::pass : Status::fail;
    c.detail = "active clock event (throttle) reasons: " + (all.empty() ? std::string("none") : join(all, ", "));
    if (!faulty.empty()) c.detail += "; faults: " + join(faulty, ", ");
    out.push_back(std::move(c));
  }

  // ECC: uncorrected errors since the driver loaded mean data was corrupted on this GPU.
  if (!f.ecc_volatile_uncorrected) {
    out.push_back(skipped("nvml_ecc_errors", device,
                          why_unavailable(f, "ecc") + " (ECC disabled or not supported on this GPU)"));
  } else {
    CheckResult c;
    c.name = "nvml_ecc_errors";
    c.device = device;
    c.figure = static_cast<double>(*f.ecc_volatile_uncorrected);
    c.unit = "uncorrected";
    c.threshold = Bound{0, false};
    c.status = *f.ecc_volatile_uncorrected == 0 ? Status::pass : Status::fail;
    c.detail = "since driver load: corrected " + count_or_na(f.ecc_volatile_corrected) + ", uncorrected " +
               count_or_na(f.ecc_volatile_uncorrected) + "; lifetime: corrected " +
               count_or_na(f.ecc_aggregate_corrected) + ", uncorrected " + count_or_na(f.ecc_aggregate_uncorrected);
    out.push_back(std::move(c));
  }

  // Row remapping (A100 and later): pending needs a GPU reset; failure means the GPU is
  // out of spare rows.
  if (!f.remapped_rows) {
    out.push_back(skipped("nvml_row_remapping", device,
                          why_unavailable(f, "remapped_rows") + " (row remapping exists on A100 and later)"));
  } else {
    const RemappedRows& r = *f.remapped_rows;
    CheckResult c;
    c.name = "nvml_row_remapping";
    c.device = device;
    c.figure = r.uncorrectable;
    c.unit = "rows (uncorr.)";
    c.status = (r.pending || r.failure) ? Status::fail : Status::pass;
    c.detail = "remapped rows: correctable " + std::to_string(r.correctable) + ", uncorrectable " +
               std::to_string(r.uncorrectable) + "; pending " + (r.pending ? "yes" : "no") + ", failure " +
               (r.failure ? "yes" : "no");
    if (r.pending) c.detail += "; a remapping is pending: the GPU needs a reset (drain the node, reset or reboot)";
    if (r.failure) c.detail += "; remapping failed: the GPU has no spare rows left (RMA)";
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace gpusmoke
