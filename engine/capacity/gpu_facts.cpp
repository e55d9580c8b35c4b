#include "engine/capacity/gpu_facts.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace gpuadmit::capacity {
namespace {

constexpr std::int64_t kMaxVersionPart = 999999;
// More architectures than any fat binary carries; each one is an alternative gpu-affinity writes.
constexpr std::size_t kMaxArchs = 64;

std::optional<std::int64_t> to_int(std::string_view text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

const std::string* label(const k8s::Labels& labels, std::string_view key) {
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

std::optional<std::int64_t> int_label(const k8s::Labels& labels, std::string_view key) {
  const std::string* value = label(labels, key);
  return value ? to_int(*value) : std::nullopt;
}

// major.minor[.rev] from three labels; the revision may be absent.
std::optional<Version> version_from(const k8s::Labels& labels, std::string_view major,
                                    std::string_view minor, std::string_view rev) {
  auto a = int_label(labels, major), b = int_label(labels, minor);
  if (!a || !b) return std::nullopt;
  Version v{{*a, *b}};
  if (auto c = int_label(labels, rev)) v.parts.push_back(*c);
  return v;
}

// CUDA toolkit -> minimum Linux x86_64 driver, from the "CUDA Toolkit and Corresponding Driver
// Versions" table of the CUDA release notes (the GA release of each minor version).
struct CudaDriver {
  Version cuda, driver;
};
const std::vector<CudaDriver>& cuda_driver_table() {
  static const std::vector<CudaDriver> table = {
      {{{11, 0}}, {{450, 51, 5}}},  {{{11, 1}}, {{455, 23}}},     {{{11, 2}}, {{460, 27, 3}}},
      {{{11, 3}}, {{465, 19, 1}}},  {{{11, 4}}, {{470, 42, 1}}},  {{{11, 5}}, {{495, 29, 5}}},
      {{{11, 6}}, {{510, 39, 1}}},  {{{11, 7}}, {{515, 43, 4}}},  {{{11, 8}}, {{520, 61, 5}}},
      {{{12, 0}}, {{525, 60, 13}}}, {{{12, 1}}, {{530, 30, 2}}},  {{{12, 2}}, {{535, 54, 3}}},
      {{{12, 3}}, {{545, 23, 6}}},  {{{12, 4}}, {{550, 54, 14}}}, {{{12, 5}}, {{555, 42, 2}}},
      {{{12, 6}}, {{560, 28, 3}}},  {{{12, 8}}, {{570, 26}}},     {{{12, 9}}, {{575, 51, 3}}},
      {{{13, 0}}, {{580, 65, 6}}},
  };
  return table;
}

}  // namespace

std::string_view to_string(Sharing sharing) {
  switch (sharing) {
    case Sharing::Mps: return "mps";
    case Sharing::TimeSlicing: return "time-slicing";
    case Sharing::None: break;
  }
  return "none";
}

std::string_view to_string(MigStrategy strategy) {
  switch (strategy) {
    case MigStrategy::Single: return "single";
    case MigStrategy::Mixed: return "mixed";
    case MigStrategy::None: break;
  }
  return "none";
}

std::optional<Version> Version::parse(std::string_view text) {
  Version v;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    auto part = to_int(text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    // No CUDA or driver version has a part anywhere near this; larger ones would overflow the
    // arithmetic that walks versions (and are no version anyone can run).
    if (!part || *part < 0 || *part > kMaxVersionPart || v.parts.size() >= 4) return std::nullopt;
    v.parts.push_back(*part);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return v;
}

std::string Version::to_string() const {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '.';
    // Driver revisions are written with two digits ("550.54.03").
    if (i == 2 && parts[i] < 10) out += '0';
    out += std::to_string(parts[i]);
  }
  return out;
}

std::int64_t GpuFacts::device_memory_mib(std::string_view resource) const {
  constexpr std::string_view kMig = "nvidia.com/mig-";
  if (!resource.starts_with(kMig)) return memory_mib;
  std::string_view profile = resource.substr(kMig.size());
  for (const MigProfile& p : mig_profiles)
    if (p.name == profile && p.memory_mib > 0) return p.memory_mib;
  // "3g.20gb": the number before "gb" after the dot.
  auto dot = profile.find('.');
  if (dot != std::string_view::npos && profile.ends_with("gb"))
    if (auto gb = to_int(profile.substr(dot + 1, profile.size() - dot - 3))) return *gb * 1024;
  return 0;
}

GpuFacts gpu_facts_from_labels(const k8s::Labels& labels) {
  GpuFacts facts;
  for (auto it = labels.lower_bound(std::string_view("nvidia.com/"));
       it != labels.end() && it->first.starts_with("nvidia.com/"); ++it)
    facts.labelled = true;
  if (const std::string* product = label(labels, "nvidia.com/gpu.product")) facts.product = *product;
  facts.count = int_label(labels, "nvidia.com/gpu.count").value_or(0);
  facts.memory_mib = int_label(labels, "nvidia.com/gpu.memory").value_or(0);
  facts.replicas = std::max<std::int64_t>(1, int_label(labels, "nvidia.com/gpu.replicas").value_or(1));
  if (const std::string* sharing = label(labels, "nvidia.com/gpu.sharing-strategy")) {
    if (*sharing == "mps") facts.sharing = Sharing::Mps;
    if (*sharing == "time-slicing") facts.sharing = Sharing::TimeSlicing;
  } else if (facts.product.ends_with("-SHARED")) {
    // Older device plugins rename the product but do not label the strategy.
    facts.sharing = Sharing::TimeSlicing;
  }
  if (const std::string* strategy = label(labels, "nvidia.com/mig.strategy")) {
    if (*strategy == "single") facts.mig = MigStrategy::Single;
    if (*strategy == "mixed") facts.mig = MigStrategy::Mixed;
  }
  // nvidia.com/mig-<profile>.count and .memory
  constexpr std::string_view kMig = "nvidia.com/mig-";
  for (auto it = labels.lower_bound(kMig); it != labels.end() && it->first.starts_with(kMig); ++it) {
    std::string_view rest = std::string_view(it->first).substr(kMig.size());
    if (!rest.ends_with(".count")) continue;
    MigProfile profile;
    profile.name = std::string(rest.substr(0, rest.size() - 6));
    profile.count = to_int(it->second).value_or(0);
    profile.memory_mib = int_label(labels, "nvidia.com/mig-" + profile.name + ".memory").value_or(0);
    facts.mig_profiles.push_back(std::move(profile));
  }
  auto cc_major = int_label(labels, "nvidia.com/gpu.compute.major");
  auto cc_minor = int_label(labels, "nvidia.com/gpu.compute.minor");
  if (cc_major && cc_minor) facts.compute = {static_cast<int>(*cc_major), static_cast<int>(*cc_minor)};
  facts.driver = version_from(labels, "nvidia.com/cuda.driver-version.major",
                              "nvidia.com/cuda.driver-version.minor", "nvidia.com/cuda.driver-version.revision");
  if (!facts.driver)
    facts.driver = version_from(labels, "nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor",
                                "nvidia.com/cuda.driver.rev");
  facts.cuda = version_from(labels, "nvidia.com/cuda.runtime-version.major",
                            "nvidia.com/cuda.runtime-version.minor", "");
  if (!facts.cuda)
    facts.cuda = version_from(labels, "nvidia.com/cuda.runtime.major", "nvidia.com/cuda.runtime.minor", "");
  if (!facts.cuda && facts.driver) facts.cuda = cuda_supported_by_driver(*facts.driver);
  return facts;
}

std::optional<Version> minimum_driver_for_cuda(const Version& cuda) {
  Version wanted{{cuda.parts.empty() ? 0 : cuda.parts[0], cuda.parts.size() > 1 ? cuda.parts[1] : 0}};
  for (const CudaDriver& row : cuda_driver_table())
    if (row.cuda == wanted) return row.driver;
  return std::nullopt;
}

std::optional<Version> cuda_supported_by_driver(const Version& driver) {
  std::optional<Version> best;
  for (const CudaDriver& row : cuda_driver_table())
    if (driver >= row.driver) best = row.cuda;
  return best;
}

bool CudaArch::runs_on(std::pair<int, int> capability) const {
  switch (kind) {
    case Kind::Cubin: return capability.first == major && capability.second >= minor;
    case Kind::ArchSpecific: return capability.first == major && capability.second == minor;
    case Kind::Ptx: return capability >= std::pair<int, int>(major, minor);
  }
  return false;
}

std::vector<CudaArch> parse_cuda_archs(std::string_view text) {
  std::vector<CudaArch> archs;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view entry = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (!entry.empty()) {
      CudaArch arch;
      arch.text = std::string(entry);
      std::string_view digits;
      if (entry.starts_with("sm_")) {
        digits = entry.substr(3);
      } else if (entry.starts_with("compute_")) {
        arch.kind = CudaArch::Kind::Ptx;
        digits = entry.substr(8);
      }
      if (arch.kind == CudaArch::Kind::Cubin && digits.ends_with('a')) {
        arch.kind = CudaArch::Kind::ArchSpecific;
        digits.remove_suffix(1);
      }
      auto number = to_int(digits);
      if (digits.size() < 2 || digits.size() > 4 || !number || *number < 0)
        throw std::invalid_argument("'" + arch.text + "' is not a CUDA architecture (sm_80, sm_90a, compute_90)");
      arch.major = static_cast<int>(*number / 10);
      arch.minor = static_cast<int>(*number % 10);
      archs.push_back(std::move(arch));
      if (archs.size() > kMaxArchs)
        throw std::invalid_argument("more than " + std::to_string(kMaxArchs) + " CUDA architectures");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (archs.empty()) throw std::invalid_argument("no CUDA architecture given");
  return archs;
}

}  // namespace gpuadmit::capacity
