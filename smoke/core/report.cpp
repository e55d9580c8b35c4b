#include "smoke/core/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "smoke/core/options.h"

namespace gpusmoke {

const char* to_string(Status s) {
  switch (s) {
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::skip: return "skip";
  }
  return "skip";
}

CheckResult unmeasured(std::string name, int device, Status status, std::string detail) {
  CheckResult c;
  c.name = std::move(name);
  c.device = device;
  c.status = status;
  c.detail = std::move(detail);
  return c;
}

std::string format_cuda_version(int version) {
  if (version <= 0) return "none";
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

int exit_code(const Report& report) {
  if (report.startup_failure) return report.startup_failure->exit_code;
  for (const CheckResult& c : report.checks) {
    if (c.status == Status::fail) return kExitCheckFailed;
  }
  return kExitHealthy;
}

std::string overall_status(const Report& report) {
  if (report.startup_failure) return report.startup_failure->status;
  return exit_code(report) == kExitHealthy ? "healthy" : "unhealthy";
}

std::string format_figure(double value) {
  char buf[64];
  if (std::abs(value) < 1e15 && value == std::floor(value)) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
  } else if (std::abs(value) >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", value);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", value);
  }
  return buf;
}

namespace {

struct Counts {
  int passed = 0, failed = 0, skipped = 0;
};

Counts count(const Report& report) {
  Counts n;
  for (const CheckResult& c : report.checks) {
    if (c.status == Status::pass) ++n.passed;
    if (c.status == Status::fail) ++n.failed;
    if (c.status == Status::skip) ++n.skipped;
  }
  return n;
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

nlohmann::ordered_json optional_json(const std::optional<std::string>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string format_json(const Report& report) {
  using json = nlohmann::ordered_json;  // keys in schema order, not sorted
  json j;
  j["schema"] = "gpu-smoke/v1";
  j["tool"] = {{"name", "gpu-smoke"}, {"version", report.tool_version}};
  j["status"] = overall_status(report);
  j["exit_code"] = exit_code(report);
  j["message"] = report.startup_failure ? json(report.startup_failure->message) : json(nullptr);
  j["cuda"] = {{"runtime_version", format_cuda_version(report.runtime_version)},
               {"driver_version", report.driver_version > 0 ? json(format_cuda_version(report.driver_version))
                                                            : json(nullptr)}};
  j["nvml"] = {{"status", report.nvml}, {"driver_version", optional_json(report.nvml_driver_version)}};

  json devices = json::array();
  for (const DeviceInfo& d : report.devices) {
    devices.push_back({
        {"index", d.index},
        {"name", d.name},
        {"pci_bus_id", d.pci_bus_id},
        {"uuid", d.uuid},
        {"product", d.product_key.empty() ? json(nullptr) : json(d.product_key)},
        {"total_memory_bytes", d.total_memory_bytes},
        {"free_memory_bytes", d.free_memory_bytes},
        {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
        {"multiprocessors", d.multiprocessors},
        {"ecc_enabled", d.ecc_enabled},
        {"mig_enabled", d.mig_enabled ? json(*d.mig_enabled) : json(nullptr)},
        {"pcie_link", optional_json(d.pcie_link)},
    });
  }
  j["devices"] = std::move(devices);

  json checks = json::array();
  for (const CheckResult& c : report.checks) {
    json threshold = nullptr;
    if (c.threshold) threshold = {{c.threshold->is_min ? "min" : "max", c.threshold->value}};
    checks.push_back({
        {"name", c.name},
        {"device", c.device >= 0 ? json(c.device) : json(nullptr)},
        {"status", to_string(c.status)},
        {"figure", c.figure ? json(*c.figure) : json(nullptr)},
        {"unit", c.unit},
        {"threshold", std::move(threshold)},
        {"detail", c.detail},
    });
  }
  j["checks"] = std::move(checks);
  const Counts n = count(report);
  j["summary"] = {{"passed", n.passed}, {"failed", n.failed}, {"skipped", n.skipped}};
  // Device names and loader messages are not guaranteed UTF-8: replace, never throw.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string format_human(const Report& report) {
  std::ostringstream out;
  out << "gpu-smoke " << report.tool_version << ": CUDA runtime " << format_cuda_version(report.runtime_version)
      << ", driver supports CUDA " << format_cuda_version(report.driver_version) << ", NVML " << report.nvml;
  if (report.nvml_driver_version) out << " (driver " << *report.nvml_driver_version << ")";
  out << "\n";

  for (const DeviceInfo& d : report.devices) {
    out << "GPU " << d.index << ": " << d.name;
    if (!d.product_key.empty()) out << " [" << d.product_key << "]";
    out << ", " << d.pci_bus_id << ", " << gib(d.total_memory_bytes) << " (" << gib(d.free_memory_bytes)
        << " free), cc " << d.cc_major << "." << d.cc_minor << ", " << d.multiprocessors << " SMs, ECC "
        << (d.ecc_enabled ? "on" : "off");
    if (d.mig_enabled) out << ", MIG " << (*d.mig_enabled ? "on" : "off");
    if (d.pcie_link) out << ", PCIe " << *d.pcie_link;
    out << "\n";
  }

  if (!report.checks.empty()) {
    out << "\n";
    char line[160];
    for (const CheckResult& c : report.checks) {
      const std::string where = c.device >= 0 ? "gpu" + std::to_string(c.device) : "host";
      std::string figure = c.figure ? format_figure(*c.figure) + " " + c.unit : "-";
      std::string limit;
      if (c.threshold) limit = (c.threshold->is_min ? ">= " : "<= ") + format_figure(c.threshold->value);
      std::snprintf(line, sizeof line, "%-4s  %-5s %-22s %-18s %-12s ", c.status == Status::pass   ? "PASS"
                                                                          : c.status == Status::fail ? "FAIL"
                                                                                                     : "SKIP",
                    where.c_str(), c.name.c_str(), figure.c_str(), limit.c_str());
      out << line << c.detail << "\n";
    }
  }

  out << "\n";
  if (report.startup_failure) {
    out << "RESULT: " << report.startup_failure->status << " (exit " << report.startup_failure->exit_code
        << "): " << report.startup_failure->message << "\n";
    return out.str();
  }
  const Counts n = count(report);
  out << "RESULT: " << (n.failed == 0 ? "HEALTHY" : "UNHEALTHY") << " (exit " << exit_code(report) << "): "
      << n.passed << " passed, " << n.failed << " failed, " << n.skipped << " skipped";
  if (n.failed > 0) {
    out << "; failed:";
    for (const CheckResult& c : report.checks) {
      if (c.status != Status::fail) continue;
      out << " " << (c.device >= 0 ? "gpu" + std::to_string(c.device) + "/" : std::string()) << c.name;
    }
  }
  out << "\n";
  return out.str();
}

}  // namespace gpusmoke
