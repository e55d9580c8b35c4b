#include "smoke/core/expectations.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

namespace gpusmoke {

namespace {

// Datasheet peaks. Names in the comments are what the driver reports (cudaDeviceProp::name,
// nvidia-smi), from which GPU feature discovery derives the nvidia.com/gpu.product label.
const std::vector<ProductExpectation>& table() {
  static const std::vector<ProductExpectation> t = {
      // "NVIDIA H100 80GB HBM3"
      {"h100-sxm", "NVIDIA H100 SXM5 80GB", "NVIDIA-H100-80GB-HBM3", {"H100", "HBM3"}, "HBM3", 80,
       3350, 5, 16, 9, 0, "NVIDIA H100 Tensor Core GPU datasheet (SXM: 3.35 TB/s)"},
      // "NVIDIA H100 NVL"
      {"h100-nvl", "NVIDIA H100 NVL 94GB", "NVIDIA-H100-NVL", {"H100", "NVL"}, "HBM3", 94, 3900, 5,
       16, 9, 0, "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL: 3.9 TB/s)"},
      // "NVIDIA H100 PCIe"
      {"h100-pcie", "NVIDIA H100 PCIe 80GB", "NVIDIA-H100-PCIe", {"H100", "PCIE"}, "HBM2e", 80, 2000,
       5, 16, 9, 0, "NVIDIA H100 Tensor Core GPU datasheet (PCIe: 2 TB/s)"},
      // "NVIDIA H200 NVL"
      {"h200-nvl", "NVIDIA H200 NVL 141GB", "NVIDIA-H200-NVL", {"H200", "NVL"}, "HBM3e", 141, 4800,
       5, 16, 9, 0, "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL: 4.8 TB/s)"},
      // "NVIDIA H200"
      {"h200-sxm", "NVIDIA H200 SXM 141GB", "NVIDIA-H200", {"H200"}, "HBM3e", 141, 4800, 5, 16, 9,
       0, "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM: 4.8 TB/s)"},
      // "NVIDIA A100-SXM4-80GB"
      {"a100-sxm-80gb", "NVIDIA A100 SXM4 80GB", "NVIDIA-A100-SXM4-80GB", {"A100", "SXM4", "80GB"},
       "HBM2e", 80, 2039, 4, 16, 8, 0,
       "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM: 2,039 GB/s)"},
      // "NVIDIA A100-SXM4-40GB"
      {"a100-sxm-40gb", "NVIDIA A100 SXM4 40GB", "NVIDIA-A100-SXM4-40GB", {"A100", "SXM4", "40GB"},
       "HBM2", 40, 1555, 4, 16, 8, 0,
       "NVIDIA A100 Tensor Core GPU datasheet (40GB SXM: 1,555 GB/s)"},
      // "NVIDIA A100 80GB PCIe"
      {"a100-pcie-80gb", "NVIDIA A100 PCIe 80GB", "NVIDIA-A100-80GB-PCIe", {"A100", "PCIE", "80GB"},
       "HBM2e", 80, 1935, 4, 16, 8, 0,
       "NVIDIA A100 Tensor Core GPU datasheet (80GB PCIe: 1,935 GB/s)"},
      // "NVIDIA A100-PCIE-40GB"
      {"a100-pcie-40gb", "NVIDIA A100 PCIe 40GB", "NVIDIA-A100-PCIE-40GB", {"A100", "PCIE", "40GB"},
       "HBM2", 40, 1555, 4, 16, 8, 0,
       "NVIDIA A100 Tensor Core GPU datasheet (40GB PCIe: 1,555 GB/s)"},
      // "NVIDIA A30"
      {"a30", "NVIDIA A30 24GB", "NVIDIA-A30", {"A30"}, "HBM2", 24, 933, 4, 16, 8, 0,
       "NVIDIA A30 Tensor Core GPU datasheet (933 GB/s)"},
      // "NVIDIA L40S"
      {"l40s", "NVIDIA L40S 48GB", "NVIDIA-L40S", {"L40S"}, "GDDR6", 48, 864, 4, 16, 8, 9,
       "NVIDIA L40S datasheet (864 GB/s)"},
      // "NVIDIA L40"
      {"l40", "NVIDIA L40 48GB", "NVIDIA-L40", {"L40"}, "GDDR6", 48, 864, 4, 16, 8, 9,
       "NVIDIA L40 datasheet (864 GB/s)"},
      // "NVIDIA L4"
      {"l4", "NVIDIA L4 24GB", "NVIDIA-L4", {"L4"}, "GDDR6", 24, 300, 4, 16, 8, 9,
       "NVIDIA L4 Tensor Core GPU datasheet (300 GB/s)"},
      // "NVIDIA A10G" (AWS EC2 G5)
      {"a10g", "NVIDIA A10G 24GB", "NVIDIA-A10G", {"A10G"}, "GDDR6", 24, 600, 4, 16, 8, 6,
       "no NVIDIA datasheet (AWS-only part); taken as the A10's 600 GB/s GA102 memory system"},
      // "NVIDIA A10"
      {"a10", "NVIDIA A10 24GB", "NVIDIA-A10", {"A10"}, "GDDR6", 24, 600, 4, 16, 8, 6,
       "NVIDIA A10 Tensor Core GPU datasheet (600 GB/s)"},
      // "Tesla T4"
      {"t4", "NVIDIA T4 16GB", "Tesla-T4", {"T4"}, "GDDR6", 16, 320, 3, 16, 7, 5,
       "NVIDIA T4 Tensor Core GPU datasheet (320+ GB/s)"},
  };
  return t;
}

}  // namespace

const std::vector<ProductExpectation>& product_table() { return table(); }

std::vector<std::string> product_name_words(std::string_view name) {
  std::vector<std::string> words;
  std::string current;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_' || c == '\t') {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

const ProductExpectation* match_product(std::string_view device_name) {
  const std::vector<std::string> words = product_name_words(device_name);
  for (const ProductExpectation& p : table()) {
    bool all = true;
    for (std::string_view w : p.match_words) {
      if (w.empty()) continue;
      if (std::find(words.begin(), words.end(), w) == words.end()) {
        all = false;
        break;
      }
    }
    if (all) return &p;
  }
  return nullptr;
}

const ProductExpectation* find_product(std::string_view key) {
  for (const ProductExpectation& p : table()) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

double pcie_gbps_per_direction(int gen, int lanes) {
  if (lanes <= 0) return 0;
  double gtps = 0;        // transfers per second per lane, 10^9
  double efficiency = 0;  // line code
  switch (gen) {
    case 1: gtps = 2.5, efficiency = 8.0 / 10.0; break;
    case 2: gtps = 5.0, efficiency = 8.0 / 10.0; break;
    case 3: gtps = 8.0, efficiency = 128.0 / 130.0; break;
    case 4: gtps = 16.0, efficiency = 128.0 / 130.0; break;
    case 5: gtps = 32.0, efficiency = 128.0 / 130.0; break;
    default: return 0;
  }
  return gtps * efficiency * lanes / 8.0;
}

std::string format_product_table() {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-15s %-24s %-24s %-6s %6s %9s %-9s %-4s\n", "KEY", "PRODUCT",
                "nvidia.com/gpu.product", "MEMORY", "GB", "PEAK GB/s", "HOST LINK", "CC");
  out << line;
  for (const ProductExpectation& p : table()) {
    const std::string link = "Gen" + std::to_string(p.pcie_gen) + " x" + std::to_string(p.pcie_lanes);
    const std::string cc = std::to_string(p.cc_major) + "." + std::to_string(p.cc_minor);
    std::snprintf(line, sizeof line, "%-15.*s %-24.*s %-24.*s %-6.*s %6d %9.0f %-9s %-4s\n",
                  static_cast<int>(p.key.size()), p.key.data(), static_cast<int>(p.display_name.size()),
                  p.display_name.data(), static_cast<int>(p.gpu_product_label.size()),
                  p.gpu_product_label.data(), static_cast<int>(p.memory_type.size()),
                  p.memory_type.data(), p.memory_gb, p.memory_bandwidth_gbps, link.c_str(), cc.c_str());
    out << line;
  }
  out << "Peak figures are NVIDIA datasheet values (GB/s = 10^9 bytes/s); host link bandwidth per\n"
         "direction is derived from the PCIe generation and width (Gen3 x16 15.8, Gen4 x16 31.5,\n"
         "Gen5 x16 63.0 GB/s).\n";
  return out.str();
}

}  // namespace gpusmoke
