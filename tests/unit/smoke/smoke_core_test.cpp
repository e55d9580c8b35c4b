// Unit tests of gpu-smoke's GPU-free logic (smoke/core): argument parsing, the expectation
// table, thresholds, NVML judgements, the startup diagnosis and the report formats. They run
// on every machine; the GPU path is exercised by the SmokeBinary.* CTest entries.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "smoke/core/expectations.h"
#include "smoke/core/nvml.h"
#include "smoke/core/options.h"
#include "smoke/core/report.h"
#include "smoke/core/startup.h"
#include "smoke/core/thresholds.h"

namespace gpusmoke {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

ParseResult parse(std::vector<std::string_view> args) {
  return parse_args(std::span<const std::string_view>(args));
}

// ---- Arguments ---------------------------------------------------------------------------

TEST(SmokeArgs, DefaultsWhenNoArguments) {
  const ParseResult r = parse({});
  ASSERT_TRUE(r.ok()) << r.error;
  const Options& o = r.options;
  EXPECT_FALSE(o.json);
  EXPECT_FALSE(o.device.has_value());
  EXPECT_EQ(o.expect_gpus, 0);
  EXPECT_DOUBLE_EQ(o.min_bandwidth_fraction, 0.5);
  EXPECT_DOUBLE_EQ(o.min_pcie_fraction, 0.5);
  EXPECT_DOUBLE_EQ(o.mem_fraction, 0.9);
  EXPECT_EQ(o.copy_mib, 256u);
  EXPECT_EQ(o.host_copy_mib, 64u);
  EXPECT_EQ(o.iterations, 20);
  EXPECT_EQ(o.vector_elements, std::size_t{1} << 24);
  EXPECT_EQ(o.gemm_n, 1024);
  EXPECT_TRUE(o.nvml);
  EXPECT_FALSE(o.allow_minor_version_compat);
}

TEST(SmokeArgs, ParsesEveryFlagWithSpaceOrEquals) {
  const ParseResult r = parse({"--json", "--device", "3", "--expect-gpus=8", "--product", "h100-sxm",
                               "--min-bandwidth-fraction=0.7", "--min-pcie-fraction", "0.6", "--min-d2d-gbps",
                               "2500", "--min-host-gbps=20.5", "--mem-fraction", "0.5", "--copy-mib=512",
                               "--host-copy-mib", "128", "--iterations=5", "--vector-elements", "1000",
                               "--gemm-n=256", "--max-temp-c", "80", "--no-nvml", "--allow-minor-version-compat"});
  ASSERT_TRUE(r.ok()) << r.error;
  const Options& o = r.options;
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.device, 3);
  EXPECT_EQ(o.expect_gpus, 8);
  EXPECT_EQ(o.product, "h100-sxm");
  EXPECT_DOUBLE_EQ(o.min_bandwidth_fraction, 0.7);
  EXPECT_DOUBLE_EQ(o.min_pcie_fraction, 0.6);
  EXPECT_EQ(o.min_d2d_gbps, 2500.0);
  EXPECT_EQ(o.min_host_gbps, 20.5);
  EXPECT_DOUBLE_EQ(o.mem_fraction, 0.5);
  EXPECT_EQ(o.copy_mib, 512u);
  EXPECT_EQ(o.host_copy_mib, 128u);
  EXPECT_EQ(o.iterations, 5);
  EXPECT_EQ(o.vector_elements, 1000u);
  EXPECT_EQ(o.gemm_n, 256);
  EXPECT_EQ(o.max_temp_c, 80.0);
  EXPECT_FALSE(o.nvml);
  EXPECT_TRUE(o.allow_minor_version_compat);
}

TEST(SmokeArgs, InformationalFlags) {
  EXPECT_TRUE(parse({"--help"}).options.help);
  EXPECT_TRUE(parse({"-h"}).options.help);
  EXPECT_TRUE(parse({"--version"}).options.version);
  EXPECT_TRUE(parse({"--list-products"}).options.list_products);
}

TEST(SmokeArgs, RejectsUnknownArgumentsAndMissingValues) {
  EXPECT_THAT(parse({"--bogus"}).error, HasSubstr("unknown argument '--bogus'"));
  EXPECT_THAT(parse({"gpu0"}).error, HasSubstr("unknown argument 'gpu0'"));
  EXPECT_THAT(parse({"--json=yes"}).error, HasSubstr("unknown argument"));
  EXPECT_EQ(parse({"--device"}).error, "--device: missing value");
}

TEST(SmokeArgs, RejectsValuesOutOfRange) {
  const std::vector<std::vector<std::string_view>> bad = {
      {"--mem-fraction", "0"},        {"--mem-fraction", "1.5"},  {"--mem-fraction", "nan"},
      {"--min-bandwidth-fraction", "-0.1"}, {"--min-pcie-fraction", "2"}, {"--gemm-n", "4096"},
      {"--gemm-n", "8"},              {"--iterations", "0"},      {"--device", "-1"},
      {"--device", "abc"},            {"--copy-mib", "0"},        {"--vector-elements", "12x"},
      {"--min-d2d-gbps", "0"},        {"--max-temp-c", "200"},    {"--expect-gpus", "1.5"},
  };
  for (const auto& args : bad) {
    const ParseResult r = parse(args);
    EXPECT_FALSE(r.ok()) << args[0] << " " << args[1];
    EXPECT_THAT(r.error, StartsWith(std::string(args[0]) + ": '" + std::string(args[1]) + "' is not"));
  }
}

TEST(SmokeArgs, FractionZeroIsAllowedForBandwidth) {
  const ParseResult r = parse({"--min-bandwidth-fraction", "0", "--min-pcie-fraction=0"});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.min_bandwidth_fraction, 0.0);
  EXPECT_EQ(r.options.min_pcie_fraction, 0.0);
}

TEST(SmokeArgs, UnknownProductListsTheKnownOnes) {
  const ParseResult r = parse({"--product", "v100"});
  EXPECT_THAT(r.error, HasSubstr("unknown product 'v100'"));
  EXPECT_THAT(r.error, HasSubstr("h100-sxm"));
  EXPECT_THAT(r.error, HasSubstr("t4"));
}

TEST(SmokeArgs, UsageDocumentsEveryFlagAndTheExitCodes) {
  const std::string usage = usage_text();
  for (const char* flag :
       {"--json", "--list-products", "--version", "--help", "--device", "--expect-gpus", "--product",
        "--min-bandwidth-fraction", "--min-pcie-fraction", "--min-d2d-gbps", "--min-host-gbps", "--max-temp-c",
        "--allow-minor-version-compat", "--mem-fraction", "--copy-mib", "--host-copy-mib", "--iterations",
        "--vector-elements", "--gemm-n", "--no-nvml"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
  EXPECT_THAT(usage, HasSubstr("0 healthy, 1 a check failed, 2 no GPU"));
}

// ---- Expectation table -------------------------------------------------------------------

TEST(SmokeExpectations, MatchesTheNamesTheDriverReports) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"NVIDIA H100 80GB HBM3", "h100-sxm"},    {"NVIDIA H100 PCIe", "h100-pcie"},
      {"NVIDIA H100 NVL", "h100-nvl"},          {"NVIDIA H200", "h200-sxm"},
      {"NVIDIA H200 NVL", "h200-nvl"},          {"NVIDIA A100-SXM4-40GB", "a100-sxm-40gb"},
      {"NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"}, {"NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"},
      {"NVIDIA A100 80GB PCIe", "a100-pcie-80gb"}, {"NVIDIA A30", "a30"},
      {"NVIDIA L4", "l4"},                      {"NVIDIA L40", "l40"},
      {"NVIDIA L40S", "l40s"},                  {"NVIDIA A10G", "a10g"},
      {"NVIDIA A10", "a10"},                    {"Tesla T4", "t4"},
  };
  for (const auto& [name, key] : cases) {
    const ProductExpectation* p = match_product(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->key, key) << name;
  }
}

TEST(SmokeExpectations, EveryNodeLabelMatchesItsOwnEntry) {
  for (const ProductExpectation& p : product_table()) {
    const ProductExpectation* m = match_product(p.gpu_product_label);
    ASSERT_NE(m, nullptr) << p.gpu_product_label;
    EXPECT_EQ(m->key, p.key) << p.gpu_product_label;
  }
}

TEST(SmokeExpectations, UnknownOrAmbiguousNamesDoNotMatch) {
  for (const char* name : {"NVIDIA GeForce RTX 4090", "Tesla V100-SXM2-16GB", "NVIDIA A100", "NVIDIA H100",
                           "NVIDIA A1000", "NVIDIA L40G", "", "NVIDIA"}) {
    EXPECT_EQ(match_product(name), nullptr) << name;
  }
}

TEST(SmokeExpectations, NameWordsAreUpperCasedAndSplitOnSeparators) {
  EXPECT_EQ(product_name_words("NVIDIA A100-SXM4-80GB"),
            (std::vector<std::string>{"NVIDIA", "A100", "SXM4", "80GB"}));
  EXPECT_EQ(product_name_words("  nvidia_l4 "), (std::vector<std::string>{"NVIDIA", "L4"}));
}

TEST(SmokeExpectations, TableIsConsistent) {
  std::set<std::string_view> keys;
  for (const ProductExpectation& p : product_table()) {
    EXPECT_TRUE(keys.insert(p.key).second) << "duplicate key " << p.key;
    EXPECT_EQ(find_product(p.key), &p);
    EXPECT_GT(p.memory_bandwidth_gbps, 0);
    EXPECT_GE(p.pcie_gen, 3);
    EXPECT_LE(p.pcie_gen, 5);
    EXPECT_EQ(p.pcie_lanes, 16);
    EXPECT_GE(p.cc_major * 10 + p.cc_minor, 75) << p.key << ": CUDA 13 needs compute capability 7.5+";
    EXPECT_FALSE(p.source.empty());
  }
  EXPECT_EQ(find_product("v100"), nullptr);
}

TEST(SmokeExpectations, DocumentedPeaks) {
  EXPECT_EQ(find_product("h100-sxm")->memory_bandwidth_gbps, 3350);
  EXPECT_EQ(find_product("h200-sxm")->memory_bandwidth_gbps, 4800);
  EXPECT_EQ(find_product("a100-sxm-80gb")->memory_bandwidth_gbps, 2039);
  EXPECT_EQ(find_product("a100-sxm-40gb")->memory_bandwidth_gbps, 1555);
  EXPECT_EQ(find_product("l4")->memory_bandwidth_gbps, 300);
  EXPECT_EQ(find_product("t4")->pcie_gen, 3);
  EXPECT_EQ(find_product("h100-pcie")->pcie_gen, 5);
}

TEST(SmokeExpectations, PcieBandwidthPerDirection) {
  EXPECT_NEAR(pcie_gbps_per_direction(3, 16), 15.754, 0.001);
  EXPECT_NEAR(pcie_gbps_per_direction(4, 16), 31.508, 0.001);
  EXPECT_NEAR(pcie_gbps_per_direction(5, 16), 63.015, 0.001);
  EXPECT_NEAR(pcie_gbps_per_direction(4, 8), pcie_gbps_per_direction(4, 16) / 2, 1e-9);
  EXPECT_NEAR(pcie_gbps_per_direction(2, 16), 8.0, 1e-9);
  EXPECT_EQ(pcie_gbps_per_direction(7, 16), 0);
  EXPECT_EQ(pcie_gbps_per_direction(4, 0), 0);
}

TEST(SmokeExpectations, ListingShowsEveryEntry) {
  const std::string listing = format_product_table();
  for (const ProductExpectation& p : product_table()) {
    EXPECT_THAT(listing, HasSubstr(std::string(p.key)));
    EXPECT_THAT(listing, HasSubstr(std::string(p.gpu_product_label)));
  }
}

// ---- Thresholds ------------------------------------------------------------------------------

TEST(SmokeThresholds, DeviceCopyIsAFractionOfTheMemoryPeak) {
  const BandwidthThreshold t = bandwidth_threshold(Copy::device_to_device, find_product("h100-sxm"), Options{}, false);
  ASSERT_TRUE(t.min_gbps);
  EXPECT_DOUBLE_EQ(*t.min_gbps, 1675.0);
  EXPECT_THAT(t.basis, HasSubstr("0.50 x 3350 GB/s HBM3 peak"));
}

TEST(SmokeThresholds, HostCopiesAreAFractionOfThePcieLink) {
  Options o;
  o.min_pcie_fraction = 0.75;
  const BandwidthThreshold t = bandwidth_threshold(Copy::host_to_device, find_product("l4"), o, false);
  ASSERT_TRUE(t.min_gbps);
  EXPECT_NEAR(*t.min_gbps, 0.75 * pcie_gbps_per_direction(4, 16), 1e-9);
  EXPECT_THAT(t.basis, HasSubstr("PCIe Gen4 x16"));
  const BandwidthThreshold t3 = bandwidth_threshold(Copy::device_to_host, find_product("t4"), o, false);
  EXPECT_NEAR(*t3.min_gbps, 0.75 * pcie_gbps_per_direction(3, 16), 1e-9);
}

TEST(SmokeThresholds, AbsoluteMinimumsWin) {
  Options o;
  o.min_d2d_gbps = 1000;
  o.min_host_gbps = 12;
  const ProductExpectation* h100 = find_product("h100-sxm");
  EXPECT_EQ(bandwidth_threshold(Copy::device_to_device, h100, o, false).min_gbps, 1000.0);
  EXPECT_EQ(bandwidth_threshold(Copy::device_to_device, h100, o, true).min_gbps, 1000.0);  // MIG too
  EXPECT_EQ(bandwidth_threshold(Copy::host_to_device, nullptr, o, false).min_gbps, 12.0);
  EXPECT_EQ(bandwidth_threshold(Copy::device_to_host, h100, o, false).min_gbps, 12.0);
}

TEST(SmokeThresholds, RecordOnlyWithoutAnExpectation) {
  Options o;
  EXPECT_FALSE(bandwidth_threshold(Copy::device_to_device, nullptr, o, false).min_gbps);
  o.min_bandwidth_fraction = 0;
  const BandwidthThreshold zero = bandwidth_threshold(Copy::device_to_device, find_product("l4"), o, false);
  EXPECT_FALSE(zero.min_gbps);
  EXPECT_THAT(zero.basis, HasSubstr("recorded only"));
  const BandwidthThreshold mig = bandwidth_threshold(Copy::device_to_device, find_product("a100-sxm-40gb"), Options{}, true);
  EXPECT_FALSE(mig.min_gbps);
  EXPECT_THAT(mig.basis, HasSubstr("MIG"));
  // A MIG instance still has the whole host link.
  EXPECT_TRUE(bandwidth_threshold(Copy::host_to_device, find_product("a100-sxm-40gb"), Options{}, true).min_gbps);
}

TEST(SmokeThresholds, JudgeBandwidthAtTheBoundary) {
  const BandwidthThreshold t{100.0, "basis"};
  const CheckResult at = judge_bandwidth("d2d_bandwidth", 0, 100.0, t, "how");
  EXPECT_EQ(at.status, Status::pass);
  EXPECT_EQ(at.figure, 100.0);
  EXPECT_EQ(at.unit, "GB/s");
  ASSERT_TRUE(at.threshold);
  EXPECT_TRUE(at.threshold->is_min);
  EXPECT_EQ(at.detail, "how; threshold: basis");
  const CheckResult below = judge_bandwidth("d2d_bandwidth", 0, 99.9, t, "how");
  EXPECT_EQ(below.status, Status::fail);
  EXPECT_THAT(below.detail, HasSubstr("measured 99.9 GB/s is below the minimum 100.0 GB/s"));
  const CheckResult unjudged = judge_bandwidth("h2d_bandwidth", 1, 3.0, BandwidthThreshold{}, "how");
  EXPECT_EQ(unjudged.status, Status::pass);
  EXPECT_FALSE(unjudged.threshold);
}

TEST(SmokeThresholds, DriverMustBeAtLeastTheRuntime) {
  EXPECT_EQ(judge_driver_runtime(13000, 13000, false).status, Status::pass);
  EXPECT_EQ(judge_driver_runtime(13010, 13000, false).status, Status::pass);
  const CheckResult old = judge_driver_runtime(12080, 13000, false);
  EXPECT_EQ(old.status, Status::fail);
  EXPECT_EQ(old.figure, 12080.0);
  EXPECT_EQ(old.threshold->value, 13000.0);
  EXPECT_THAT(old.detail, HasSubstr("driver supports CUDA 12.8, gpu-smoke uses CUDA runtime 13.0"));
  EXPECT_THAT(old.detail, HasSubstr("cudaErrorInsufficientDriver: \"CUDA driver version is insufficient for CUDA "
                                    "runtime version\""));
  EXPECT_THAT(old.detail, Not(HasSubstr("--allow-minor-version-compat")));
}

TEST(SmokeThresholds, MinorVersionCompatibilityIsOptIn) {
  const CheckResult strict = judge_driver_runtime(13000, 13020, false);
  EXPECT_EQ(strict.status, Status::fail);
  EXPECT_THAT(strict.detail, HasSubstr("--allow-minor-version-compat"));
  const CheckResult compat = judge_driver_runtime(13000, 13020, true);
  EXPECT_EQ(compat.status, Status::pass);
  EXPECT_EQ(compat.threshold->value, 13000.0);
  EXPECT_EQ(judge_driver_runtime(12090, 13020, true).status, Status::fail);  // never across majors
}

TEST(SmokeThresholds, ClockReasonNames) {
  EXPECT_TRUE(clock_reason_names(0).empty());
  EXPECT_EQ(clock_reason_names(kClockSwPowerCap | kClockHwThermalSlowdown),
            (std::vector<std::string>{"sw_power_cap", "hw_thermal_slowdown"}));
  EXPECT_EQ(clock_reason_names(kClockGpuIdle | 0x1000), (std::vector<std::string>{"gpu_idle", "0x1000"}));
}

NvmlDeviceFacts healthy_facts() {
  NvmlDeviceFacts f;
  f.found = true;
  f.temperature_c = 45;
  f.slowdown_temperature_c = 87;
  f.power_w = 120.5;
  f.power_limit_w = 700;
  f.clock_event_reasons = kClockGpuIdle | kClockSwPowerCap;
  f.ecc_volatile_corrected = 3;
  f.ecc_volatile_uncorrected = 0;
  f.ecc_aggregate_corrected = 10;
  f.ecc_aggregate_uncorrected = 1;
  f.remapped_rows = RemappedRows{2, 1, false, false};
  return f;
}

const CheckResult& named(const std::vector<CheckResult>& checks, const std::string& name) {
  for (const CheckResult& c : checks) {
    if (c.name == name) return c;
  }
  static const CheckResult none;
  ADD_FAILURE() << "no check named " << name;
  return none;
}

TEST(SmokeThresholds, HealthyNvmlFactsPass) {
  const std::vector<CheckResult> checks = judge_nvml(0, healthy_facts(), Options{});
  ASSERT_EQ(checks.size(), 5u);
  for (const CheckResult& c : checks) {
    EXPECT_EQ(c.status, Status::pass) << c.name << ": " << c.detail;
    EXPECT_EQ(c.device, 0);
  }
  EXPECT_EQ(named(checks, "nvml_temperature").threshold->value, 87.0);
  EXPECT_FALSE(named(checks, "nvml_temperature").threshold->is_min);
  EXPECT_EQ(named(checks, "nvml_power").figure, 120.5);
  EXPECT_THAT(named(checks, "nvml_power").detail, HasSubstr("enforced limit 700 W"));
  EXPECT_THAT(named(checks, "nvml_clock_events").detail, HasSubstr("gpu_idle, sw_power_cap"));
  // Lifetime (aggregate) uncorrected errors are history, not a failure.
  EXPECT_THAT(named(checks, "nvml_ecc_errors").detail, HasSubstr("lifetime: corrected 10, uncorrected 1"));
}

TEST(SmokeThresholds, NvmlFaultsFail) {
  NvmlDeviceFacts f = healthy_facts();
  f.temperature_c = 87;  // at the slowdown temperature
  f.clock_event_reasons = kClockSwPowerCap | kClockHwSlowdown;
  f.ecc_volatile_uncorrected = 2;
  f.remapped_rows = RemappedRows{0, 1, true, false};
  const std::vector<CheckResult> checks = judge_nvml(1, f, Options{});
  EXPECT_EQ(named(checks, "nvml_temperature").status, Status::fail);
  EXPECT_EQ(named(checks, "nvml_clock_events").status, Status::fail);
  EXPECT_EQ(named(checks, "nvml_clock_events").figure, 1.0);
  EXPECT_THAT(named(checks, "nvml_clock_events").detail, HasSubstr("faults: hw_slowdown"));
  EXPECT_EQ(named(checks, "nvml_ecc_errors").status, Status::fail);
  EXPECT_EQ(named(checks, "nvml_ecc_errors").figure, 2.0);
  EXPECT_EQ(named(checks, "nvml_row_remapping").status, Status::fail);
  EXPECT_THAT(named(checks, "nvml_row_remapping").detail, HasSubstr("needs a reset"));
  EXPECT_EQ(named(checks, "nvml_power").status, Status::pass);

  f = healthy_facts();
  f.remapped_rows = RemappedRows{0, 0, false, true};
  const std::vector<CheckResult> failed_remap = judge_nvml(0, f, Options{});
  EXPECT_THAT(named(failed_remap, "nvml_row_remapping").detail, HasSubstr("RMA"));
}

TEST(SmokeThresholds, MaxTempFlagOverridesTheSlowdownTemperature) {
  Options o;
  o.max_temp_c = 40;
  const std::vector<CheckResult> checks = judge_nvml(0, healthy_facts(), o);
  const CheckResult& t = named(checks, "nvml_temperature");
  EXPECT_EQ(t.status, Status::fail);
  EXPECT_EQ(t.threshold->value, 40.0);
  EXPECT_THAT(t.detail, HasSubstr("--max-temp-c"));
}

TEST(SmokeThresholds, MissingNvmlFactsAreSkippedWithTheReason) {
  NvmlDeviceFacts f;
  f.found = true;
  f.unavailable = {"temperature: Not Supported", "ecc: Not Supported", "remapped_rows: Not Supported"};
  const std::vector<CheckResult> checks = judge_nvml(0, f, Options{});
  ASSERT_EQ(checks.size(), 5u);
  for (const CheckResult& c : checks) EXPECT_EQ(c.status, Status::skip) << c.name;
  EXPECT_THAT(named(checks, "nvml_temperature").detail, HasSubstr("temperature: Not Supported"));
  EXPECT_THAT(named(checks, "nvml_ecc_errors").detail, HasSubstr("ECC disabled or not supported"));
  EXPECT_THAT(named(checks, "nvml_power").detail, HasSubstr("NVML has no answer for power"));
}

TEST(SmokeThresholds, DeviceMissingFromNvmlIsOneSkip) {
  NvmlDeviceFacts f;
  f.error = "nvmlDeviceGetHandleByPciBusId_v2(0000:3B:00.0): Not Found";
  const std::vector<CheckResult> checks = judge_nvml(2, f, Options{});
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].name, "nvml");
  EXPECT_EQ(checks[0].status, Status::skip);
  EXPECT_THAT(checks[0].detail, HasSubstr("Not Found"));
}

TEST(SmokeThresholds, PcieLinkText) {
  NvmlDeviceFacts f;
  EXPECT_FALSE(format_pcie_link(f));
  f.pcie_gen = 4;
  f.pcie_width = 8;
  EXPECT_EQ(format_pcie_link(f), "Gen4 x8");
  f.pcie_max_gen = 4;
  f.pcie_max_width = 16;
  EXPECT_EQ(format_pcie_link(f), "Gen4 x8 (max Gen4 x16)");
}

// ---- Report ------------------------------------------------------------------------------------

Report sample_report() {
  Report r;
  r.tool_version = "0.1.0";
  r.runtime_version = 13000;
  r.driver_version = 13000;
  r.nvml = "loaded";
  r.nvml_driver_version = "580.65.06";
  DeviceInfo d;
  d.index = 0;
  d.name = "NVIDIA L4";
  d.pci_bus_id = "00000000:3B:00.0";
  d.uuid = "GPU-00000000-0000-0000-0000-000000000000";
  d.product_key = "l4";
  d.total_memory_bytes = 23034331136ull;
  d.free_memory_bytes = 22000000000ull;
  d.cc_major = 8;
  d.cc_minor = 9;
  d.multiprocessors = 58;
  d.ecc_enabled = true;
  d.mig_enabled = false;
  r.devices.push_back(d);
  r.checks.push_back(CheckResult{"device_enumeration", -1, Status::pass, 1.0, "GPUs", Bound{1, true}, "1 visible"});
  r.checks.push_back(CheckResult{"d2d_bandwidth", 0, Status::pass, 250.26, "GB/s", Bound{150, true}, "copy"});
  r.checks.push_back(CheckResult{"nvml_ecc_errors", 0, Status::skip, std::nullopt, "", std::nullopt, "n/a"});
  return r;
}

TEST(SmokeReport, ExitCodes) {
  Report r = sample_report();
  EXPECT_EQ(exit_code(r), kExitHealthy);
  EXPECT_EQ(overall_status(r), "healthy");
  r.checks.push_back(CheckResult{"gemm", 0, Status::fail, 4.0, "max abs error", Bound{0, false}, "differs"});
  EXPECT_EQ(exit_code(r), kExitCheckFailed);
  EXPECT_EQ(overall_status(r), "unhealthy");
  r.startup_failure = StartupFailure{"no_gpu", kExitNoGpu, "no GPU visible"};
  EXPECT_EQ(exit_code(r), kExitNoGpu);
  EXPECT_EQ(overall_status(r), "no_gpu");
  EXPECT_EQ(exit_code(Report{}), kExitHealthy);
}

TEST(SmokeReport, JsonFollowsTheSchema) {
  Report r = sample_report();
  r.checks.push_back(CheckResult{"gemm", 0, Status::fail, 4.0, "max abs error", Bound{0, false}, "differs"});
  const nlohmann::json j = nlohmann::json::parse(format_json(r));
  EXPECT_EQ(j["schema"], "gpu-smoke/v1");
  EXPECT_EQ(j["tool"]["name"], "gpu-smoke");
  EXPECT_EQ(j["tool"]["version"], "0.1.0");
  EXPECT_EQ(j["status"], "unhealthy");
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_TRUE(j["message"].is_null());
  EXPECT_EQ(j["cuda"]["runtime_version"], "13.0");
  EXPECT_EQ(j["cuda"]["driver_version"], "13.0");
  EXPECT_EQ(j["nvml"]["status"], "loaded");
  EXPECT_EQ(j["nvml"]["driver_version"], "580.65.06");

  ASSERT_EQ(j["devices"].size(), 1u);
  const nlohmann::json& d = j["devices"][0];
  EXPECT_EQ(d["name"], "NVIDIA L4");
  EXPECT_EQ(d["product"], "l4");
  EXPECT_EQ(d["compute_capability"], "8.9");
  EXPECT_EQ(d["total_memory_bytes"], 23034331136ull);
  EXPECT_EQ(d["ecc_enabled"], true);
  EXPECT_EQ(d["mig_enabled"], false);
  EXPECT_TRUE(d["pcie_link"].is_null());

  ASSERT_EQ(j["checks"].size(), 4u);
  const nlohmann::json& host = j["checks"][0];
  EXPECT_TRUE(host["device"].is_null());
  EXPECT_EQ(host["threshold"]["min"], 1.0);
  const nlohmann::json& bw = j["checks"][1];
  EXPECT_EQ(bw["device"], 0);
  EXPECT_EQ(bw["status"], "pass");
  EXPECT_EQ(bw["figure"], 250.26);
  EXPECT_EQ(bw["unit"], "GB/s");
  const nlohmann::json& skip = j["checks"][2];
  EXPECT_EQ(skip["status"], "skip");
  EXPECT_TRUE(skip["figure"].is_null());
  EXPECT_TRUE(skip["threshold"].is_null());
  EXPECT_EQ(j["checks"][3]["threshold"]["max"], 0.0);
  EXPECT_EQ(j["summary"], (nlohmann::json{{"passed", 2}, {"failed", 1}, {"skipped", 1}}));
}

TEST(SmokeReport, JsonKeysComeInSchemaOrder) {
  const std::string text = format_json(sample_report());
  EXPECT_LT(text.find("\"schema\""), text.find("\"status\""));
  EXPECT_LT(text.find("\"status\""), text.find("\"devices\""));
  EXPECT_LT(text.find("\"devices\""), text.find("\"checks\""));
  EXPECT_LT(text.find("\"checks\""), text.find("\"summary\""));
}

TEST(SmokeReport, JsonOfAStartupFailure) {
  Report r;
  r.tool_version = "0.1.0";
  r.runtime_version = 13000;
  r.nvml = "not attempted";
  r.startup_failure = StartupFailure{"no_driver", kExitNoGpu, "no driver loaded: ..."};
  const nlohmann::json j = nlohmann::json::parse(format_json(r));
  EXPECT_EQ(j["status"], "no_driver");
  EXPECT_EQ(j["exit_code"], 2);
  EXPECT_EQ(j["message"], "no driver loaded: ...");
  EXPECT_TRUE(j["cuda"]["driver_version"].is_null());
  EXPECT_TRUE(j["devices"].empty());
  EXPECT_TRUE(j["checks"].empty());
}

TEST(SmokeReport, JsonSurvivesInvalidUtf8) {
  Report r = sample_report();
  r.devices[0].name = "bad \xff name";
  nlohmann::json j;
  EXPECT_NO_THROW(j = nlohmann::json::parse(format_json(r)));
  EXPECT_THAT(j["devices"][0]["name"].get<std::string>(), StartsWith("bad "));
}

TEST(SmokeReport, HumanSummary) {
  Report r = sample_report();
  std::string text = format_human(r);
  EXPECT_THAT(text, HasSubstr("gpu-smoke 0.1.0: CUDA runtime 13.0, driver supports CUDA 13.0, NVML loaded (driver "
                              "580.65.06)"));
  EXPECT_THAT(text, HasSubstr("GPU 0: NVIDIA L4 [l4], 00000000:3B:00.0, 21.5 GiB"));
  EXPECT_THAT(text, HasSubstr("cc 8.9, 58 SMs, ECC on, MIG off"));
  EXPECT_THAT(text, HasSubstr("PASS  host  device_enumeration"));
  EXPECT_THAT(text, HasSubstr("PASS  gpu0  d2d_bandwidth          250.3 GB/s"));
  EXPECT_THAT(text, HasSubstr(">= 150"));
  EXPECT_THAT(text, HasSubstr("SKIP  gpu0  nvml_ecc_errors"));
  EXPECT_THAT(text, HasSubstr("RESULT: HEALTHY (exit 0): 2 passed, 0 failed, 1 skipped"));

  r.checks.push_back(CheckResult{"gemm", 0, Status::fail, 4.0, "max abs error", Bound{0, false}, "differs"});
  text = format_human(r);
  EXPECT_THAT(text, HasSubstr("FAIL  gpu0  gemm"));
  EXPECT_THAT(text, HasSubstr("<= 0"));
  EXPECT_THAT(text, HasSubstr("RESULT: UNHEALTHY (exit 1): 2 passed, 1 failed, 1 skipped; failed: gpu0/gemm"));
}

TEST(SmokeReport, HumanSummaryOfAStartupFailure) {
  Report r;
  r.startup_failure = StartupFailure{"no_gpu", kExitNoGpu, "no GPU visible: ..."};
  EXPECT_THAT(format_human(r), HasSubstr("RESULT: no_gpu (exit 2): no GPU visible: ..."));
}

TEST(SmokeReport, Figures) {
  EXPECT_EQ(format_figure(0), "0");
  EXPECT_EQ(format_figure(13000), "13000");
  EXPECT_EQ(format_figure(2871.34), "2871.3");
  EXPECT_EQ(format_figure(0.5), "0.50");
  EXPECT_EQ(format_figure(-3.25), "-3.25");
  EXPECT_EQ(format_cuda_version(13000), "13.0");
  EXPECT_EQ(format_cuda_version(12040), "12.4");
  EXPECT_EQ(format_cuda_version(0), "none");
  EXPECT_STREQ(to_string(Status::pass), "pass");
  EXPECT_STREQ(to_string(Status::fail), "fail");
  EXPECT_STREQ(to_string(Status::skip), "skip");
}

// ---- Startup diagnosis --------------------------------------------------------------------------

StartupFacts facts(CudaInitError error, const char* name, const char* text) {
  StartupFacts f;
  f.call = "cudaGetDeviceCount";
  f.error = error;
  f.error_name = name;
  f.error_string = text;
  f.runtime_version = 13000;
  return f;
}

constexpr const char* kInsufficient = "CUDA driver version is insufficient for CUDA runtime version";

TEST(SmokeStartup, NoDriverOnANodeWithoutTheKernelModule) {
  StartupFacts f = facts(CudaInitError::insufficient_driver, "cudaErrorInsufficientDriver", kInsufficient);
  f.probe.libcuda_error = "libcuda.so.1: cannot open shared object file: No such file or directory";
  const StartupFailure s = diagnose_startup(f);
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "no_driver");
  EXPECT_THAT(s.message, StartsWith("no driver loaded: libcuda.so.1"));
  EXPECT_THAT(s.message, HasSubstr("cannot open shared object file"));
  EXPECT_THAT(s.message, HasSubstr("the nvidia kernel module is not loaded"));
  EXPECT_THAT(s.message, HasSubstr("[cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is "
                                   "insufficient for CUDA runtime version]"));
}

TEST(SmokeStartup, NoDriverLibrariesInAContainerOnAGpuNode) {
  StartupFacts f = facts(CudaInitError::insufficient_driver, "cudaErrorInsufficientDriver", kInsufficient);
  f.probe.libcuda_error = "libcuda.so.1: cannot open shared object file";
  f.probe.kernel_module = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06";
  const StartupFailure s = diagnose_startup(f);
  EXPECT_EQ(s.status, "no_driver");
  EXPECT_THAT(s.message, HasSubstr("kernel module is loaded (NVRM version"));
  EXPECT_THAT(s.message, HasSubstr("NVIDIA container runtime"));
}

TEST(SmokeStartup, DriverTooOldForTheRuntime) {
  StartupFacts f = facts(CudaInitError::insufficient_driver, "cudaErrorInsufficientDriver", kInsufficient);
  f.driver_version = 12040;
  f.probe.libcuda_loadable = true;
  const StartupFailure s = diagnose_startup(f);
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "driver_too_old");
  EXPECT_THAT(s.message, StartsWith("driver too old for this runtime: the driver supports CUDA 12.4 but gpu-smoke "
                                    "uses CUDA runtime 13.0"));
  EXPECT_THAT(s.message, HasSubstr(kInsufficient));
}

TEST(SmokeStartup, NoGpuVisible) {
  StartupFacts f = facts(CudaInitError::no_device, "cudaErrorNoDevice", "no CUDA-capable device is detected");
  f.driver_version = 13000;
  f.probe.libcuda_loadable = true;
  f.probe.kernel_module = "NVRM version: ...";
  f.cuda_visible_devices = "-1";
  const StartupFailure s = diagnose_startup(f);
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "no_gpu");
  EXPECT_THAT(s.message, StartsWith("no GPU visible: the NVIDIA driver is loaded (it supports CUDA 13.0)"));
  EXPECT_THAT(s.message, HasSubstr("CUDA_VISIBLE_DEVICES '-1', NVIDIA_VISIBLE_DEVICES unset"));
  EXPECT_THAT(s.message, HasSubstr("nvidia.com/gpu"));
  EXPECT_THAT(s.message, HasSubstr("[cudaGetDeviceCount: cudaErrorNoDevice: no CUDA-capable device is detected]"));
}

TEST(SmokeStartup, OtherDriverProblemsExitTwo) {
  StartupFailure s = diagnose_startup(facts(CudaInitError::stub_library, "cudaErrorStubLibrary", "CUDA driver is a stub library"));
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "no_driver");
  EXPECT_THAT(s.message, HasSubstr("link stub"));

  s = diagnose_startup(facts(CudaInitError::system_driver_mismatch, "cudaErrorSystemDriverMismatch",
                             "system has unsupported display driver / cuda driver combination"));
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "driver_mismatch");

  s = diagnose_startup(facts(CudaInitError::compat_not_supported, "cudaErrorCompatNotSupportedOnDevice",
                             "forward compatibility was attempted on non supported HW"));
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_EQ(s.status, "driver_compat_unsupported");
  EXPECT_THAT(s.message, StartsWith("driver too old for this runtime"));
}

TEST(SmokeStartup, AnUnusableGpuIsAFailedCheckNotAMissingOne) {
  const StartupFailure s =
      diagnose_startup(facts(CudaInitError::other, "cudaErrorInitializationError", "initialization error"));
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_EQ(s.status, "enumeration_failed");
  EXPECT_THAT(s.message, HasSubstr("Xid"));
  EXPECT_THAT(s.message, HasSubstr("[cudaGetDeviceCount: cudaErrorInitializationError: initialization error]"));
}

TEST(SmokeStartup, ProbeReportsAMissingDriverLibrary) {
  const DriverProbe p = probe_driver("libgpusmoke-test-no-such-driver.so.1", "/nonexistent/nvidia/version");
  EXPECT_FALSE(p.libcuda_loadable);
  EXPECT_THAT(p.libcuda_error, HasSubstr("libgpusmoke-test-no-such-driver.so.1"));
  EXPECT_FALSE(p.kernel_module);
}

TEST(SmokeStartup, ProbeReadsTheKernelModuleVersion) {
  const std::string path = ::testing::TempDir() + "/gpusmoke_nvidia_version";
  {
    std::ofstream out(path);
    out << "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06\nGCC version: gcc 12\n";
  }
  const DriverProbe p = probe_driver("libgpusmoke-test-no-such-driver.so.1", path.c_str());
  std::remove(path.c_str());
  ASSERT_TRUE(p.kernel_module);
  EXPECT_EQ(*p.kernel_module, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06");
}

// ---- NVML loader ------------------------------------------------------------------------------

TEST(SmokeNvml, AbsentLibraryIsASkipReasonNotAnError) {
  std::string why;
  EXPECT_EQ(Nvml::open(why, "libgpusmoke-test-no-such-nvml.so.1"), nullptr);
  EXPECT_THAT(why, HasSubstr("libgpusmoke-test-no-such-nvml.so.1 could not be loaded"));
  EXPECT_THAT(why, HasSubstr("NVML is absent"));
}

TEST(SmokeNvml, LibraryWithoutNvmlSymbolsIsRejected) {
  std::string why;
  EXPECT_EQ(Nvml::open(why, "libm.so.6"), nullptr);
  EXPECT_THAT(why, HasSubstr("does not export the NVML entry points"));
}

}  // namespace
}  // namespace gpusmoke
