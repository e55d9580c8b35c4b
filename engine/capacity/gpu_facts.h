// What a node's NVIDIA gpu-feature-discovery (GFD) labels say about its GPUs, and the CUDA
// compatibility rules the capacity model applies to them. Label keys as GFD documents them
// (NVIDIA/k8s-device-plugin docs/gpu-feature-discovery "Generated Labels"):
//   nvidia.com/gpu.product        model; "-SHARED" suffix under sharing, "<product>-MIG-<profile>"
//                                 under the MIG single strategy
//   nvidia.com/gpu.memory         MiB per GPU (per MIG device under the single strategy)
//   nvidia.com/gpu.count          physical GPUs (MIG devices under the single strategy)
//   nvidia.com/gpu.replicas       replicas per GPU under time-slicing or MPS
//   nvidia.com/gpu.sharing-strategy  none, mps, time-slicing
//   nvidia.com/gpu.compute.major/minor  compute capability
//   nvidia.com/cuda.driver-version.major/minor/revision  driver (deprecated: cuda.driver.major/minor/rev)
//   nvidia.com/cuda.runtime-version.major/minor  highest CUDA the driver supports
//                                 (deprecated: cuda.runtime.major/minor)
//   nvidia.com/mig.strategy       none, single, mixed
//   nvidia.com/mig-<profile>.count / .memory   per MIG profile (mixed strategy)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/k8s/node_affinity.h"

namespace gpuadmit::capacity {

enum class Sharing { None, Mps, TimeSlicing };
enum class MigStrategy { None, Single, Mixed };
std::string_view to_string(Sharing sharing);
std::string_view to_string(MigStrategy strategy);

// A dotted version compared numerically part by part ("12.4" < "12.10").
struct Version {
  std::vector<std::int64_t> parts;
  static std::optional<Version> parse(std::string_view text);  // digits separated by dots
  std::string to_string() const;
  friend auto operator<=>(const Version& a, const Version& b) {
    const std::size_t n = std::max(a.parts.size(), b.parts.size());
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t x = i < a.parts.size() ? a.parts[i] : 0, y = i < b.parts.size() ? b.parts[i] : 0;
      if (x != y) return x <=> y;
    }
    return std::strong_ordering::equal;
  }
  friend bool operator==(const Version& a, const Version& b) { return (a <=> b) == 0; }
};

struct MigProfile {
  std::string name;            // "3g.20gb"; the resource is nvidia.com/mig-3g.20gb
  std::int64_t count = 0;      // nvidia.com/mig-<profile>.count
  std::int64_t memory_mib = 0; // nvidia.com/mig-<profile>.memory (0: not labelled)
};

struct GpuFacts {
  bool labelled = false;        // any GFD label present
  std::string product;          // nvidia.com/gpu.product as labelled
  std::int64_t count = 0;       // nvidia.com/gpu.count
  std::int64_t memory_mib = 0;  // nvidia.com/gpu.memory (0: not labelled)
  std::int64_t replicas = 1;    // nvidia.com/gpu.replicas (0 or absent: 1)
  Sharing sharing = Sharing::None;
  MigStrategy mig = MigStrategy::None;
  std::vector<MigProfile> mig_profiles;  // sorted by name
  std::optional<std::pair<int, int>> compute;  // compute capability
  std::optional<Version> driver;
  // The highest CUDA version the driver runs: the runtime-version labels, else derived from the
  // driver version with the CUDA toolkit's minimum-driver table.
  std::optional<Version> cuda;

  // Memory of one device of `resource` (nvidia.com/gpu, nvidia.com/mig-<profile>): the
  // per-profile label, else the size in the profile name ("20gb" = 20480 MiB), else gpu.memory.
  std::int64_t device_memory_mib(std::string_view resource) const;
};

// Reads the GFD labels; a malformed number is ignored (treated as unlabelled), since a label
// value is not ours to reject. Sharing is also inferred from a "-SHARED" product suffix.
GpuFacts gpu_facts_from_labels(const k8s::Labels& labels);

// The minimum Linux driver that runs CUDA `cuda` (toolkit driver table of the CUDA release
// notes, major.minor granularity); nullopt for a version the table does not know.
std::optional<Version> minimum_driver_for_cuda(const Version& cuda);
// The highest CUDA major.minor the table says `driver` runs; nullopt below CUDA 11.0's driver.
std::optional<Version> cuda_supported_by_driver(const Version& driver);

// One entry of gpu-admit.io/cuda-arch: sm_XY (a cubin: runs on compute capability X.Z with
// Z >= Y), sm_XYa (arch-specific: exactly X.Y) or compute_XY (PTX: any capability >= X.Y).
struct CudaArch {
  enum class Kind { Cubin, ArchSpecific, Ptx };
  Kind kind = Kind::Cubin;
  int major = 0, minor = 0;
  std::string text;
  bool runs_on(std::pair<int, int> capability) const;
};
// "sm_80,sm_90" -> entries; throws std::invalid_argument naming the bad entry.
std::vector<CudaArch> parse_cuda_archs(std::string_view text);

}  // namespace gpuadmit::capacity
