#pragma once
// The report model of gpu-smoke and its two renderings: a human summary and one JSON
// document. No CUDA here: the CUDA program fills a Report, this code judges and prints it.
// (No nlohmann/json in this header either: it is included from the .cu file.)

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpusmoke {

enum class Status { pass, fail, skip };
const char* to_string(Status s);

// A limit a figure is judged against: figure >= value (is_min) or figure <= value.
struct Bound {
  double value = 0;
  bool is_min = true;
};

// One check: its verdict and the figure it measured.
struct CheckResult {
  std::string name;                // e.g. "d2d_bandwidth"
  int device = -1;                 // CUDA device index; -1 for host-wide checks
  Status status = Status::skip;
  std::optional<double> figure;    // the measured figure, absent if nothing was measured
  std::string unit;                // unit of the figure, e.g. "GB/s"
  std::optional<Bound> threshold;  // what the figure was judged against, if anything
  std::string detail;              // how it was measured, why it failed or was skipped
};

// A check that measured nothing: skipped, or failed before a figure existed.
CheckResult unmeasured(std::string name, int device, Status status, std::string detail);

// What enumeration found about a device (facts, not verdicts).
struct DeviceInfo {
  int index = 0;
  std::string name;
  std::string pci_bus_id;
  std::string uuid;
  std::string product_key;  // expectation table entry used, empty if none
  std::uint64_t total_memory_bytes = 0;
  std::uint64_t free_memory_bytes = 0;
  int cc_major = 0;
  int cc_minor = 0;
  int multiprocessors = 0;
  bool ecc_enabled = false;
  std::optional<bool> mig_enabled;      // from NVML, where visible
  std::optional<std::string> pcie_link;  // from NVML, e.g. "Gen4 x16 (max Gen4 x16)"
};

// Why the program could not test any GPU at all (exit 2), or enumeration failed (exit 1).
struct StartupFailure {
  std::string status;   // no_gpu, no_driver, driver_too_old, driver_mismatch, ...
  int exit_code = 2;
  std::string message;  // one line, quoting the CUDA error name and string
};

struct Report {
  std::string tool_version;
  int runtime_version = 0;  // cudaRuntimeGetVersion, e.g. 13000
  int driver_version = 0;   // cudaDriverGetVersion (0: no driver)
  std::optional<std::string> nvml_driver_version;
  std::string nvml;  // "loaded", "disabled (--no-nvml)", or why it is unavailable
  std::optional<StartupFailure> startup_failure;
  std::vector<DeviceInfo> devices;
  std::vector<CheckResult> checks;
};

// 13000 -> "13.0", 12040 -> "12.4"; 0 -> "none".
std::string format_cuda_version(int version);

// 0 healthy, 1 a check failed, else the startup failure's exit code.
int exit_code(const Report& report);
// "healthy", "unhealthy", or the startup failure's status.
std::string overall_status(const Report& report);

// The JSON report (schema "gpu-smoke/v1", see smoke/README.md), indented by 2.
std::string format_json(const Report& report);
std::string format_human(const Report& report);

// A figure as printed in the human summary: integers without decimals, others with one
// (>= 10) or two decimals.
std::string format_figure(double value);

}  // namespace gpusmoke
