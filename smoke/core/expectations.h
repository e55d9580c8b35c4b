#pragma once
// Per-product expectations: documented peak memory bandwidth and host interface, used to
// turn measured bandwidth into pass/fail. Figures are NVIDIA's published datasheet peaks,
// not measurements; see the `source` of each entry.

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace gpusmoke {

struct ProductExpectation {
  std::string_view key;           // stable id used by --product, e.g. "h100-sxm"
  std::string_view display_name;  // e.g. "NVIDIA H100 SXM5 80GB"
  // The nvidia.com/gpu.product node label that GPU feature discovery publishes for it
  // (the driver's product name with spaces replaced by '-').
  std::string_view gpu_product_label;
  // Words that must all appear in the device name (see product_name_words); the table is
  // ordered so that the first matching entry is the most specific one.
  std::array<std::string_view, 3> match_words;
  std::string_view memory_type;  // HBM3, GDDR6, ...
  int memory_gb;                 // marketed capacity
  double memory_bandwidth_gbps;  // datasheet peak, GB/s (10^9 bytes/s)
  int pcie_gen;                  // host interface generation
  int pcie_lanes;                // host interface width
  int cc_major;                  // compute capability
  int cc_minor;
  std::string_view source;       // where the figures come from
};

const std::vector<ProductExpectation>& product_table();

// Upper-cased words of a device name or node label: "NVIDIA A100-SXM4-80GB" and
// "NVIDIA-A100-SXM4-80GB" both give {NVIDIA, A100, SXM4, 80GB}.
std::vector<std::string> product_name_words(std::string_view name);

// The entry whose match words all appear in `device_name`, or nullptr.
const ProductExpectation* match_product(std::string_view device_name);
// The entry with this key, or nullptr.
const ProductExpectation* find_product(std::string_view key);

// Theoretical payload bandwidth of one direction of a PCIe link in GB/s: transfer rate x
// lanes x line-code efficiency (8b/10b for Gen1-2, 128b/130b for Gen3-5). 0 if unknown.
double pcie_gbps_per_direction(int gen, int lanes);

// The table as text, for --list-products.
std::string format_product_table();

}  // namespace gpusmoke
