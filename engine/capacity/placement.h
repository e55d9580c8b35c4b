// Where could a pod ever run, and where could it run now? Decided per pool first (taints,
// cordons, GPU facts and uniform labels are the same on every member), then per node only where
// the pool cannot answer for all its members (labels that differ, allocatable that differs,
// free capacity), so a decision costs O(pools + candidate nodes).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/capacity/cluster_model.h"

namespace gpuadmit::capacity {

// What one pod asks of a node: effective requests as the scheduler computes them.
struct PodShape {
  Amounts requests;               // pods = 1; without HAMi's share dimensions (GpuResources)
  std::int64_t gpu_devices = 0;   // GPU devices of every kind that `gpu` names
  // Throws k8s::QuantityError / JsonFieldError naming the field.
  static PodShape from_pod_spec(const nlohmann::json& pod_spec, const GpuResources& gpu);
};

// What the workload's annotations say its GPUs must offer.
struct GpuRequirements {
  std::int64_t memory_mib = 0;       // gpu-admit.io/gpu-memory, per GPU; 0: none
  std::optional<Version> cuda;       // gpu-admit.io/cuda-version
  std::vector<CudaArch> archs;       // gpu-admit.io/cuda-arch
  bool any() const { return memory_mib > 0 || cuda || !archs.empty(); }
  // Whether a pool's GPUs meet the requirements for the GPU resources the pod asks for; else
  // why not, for a person.
  std::optional<std::string> unmet_by(const GpuFacts& gpu, const Amounts& requests,
                                      const GpuResources& resources) const;
};

// Per-pool rules from the policy configuration.
struct PoolRules {
  std::vector<std::int64_t> allowed_gpu_counts;  // empty: any count
  bool autoscaled = true;
  std::string runtime_class;  // the RuntimeClass GPU pods need on this pool; empty: the node's default
};

struct PoolVerdict {
  enum class Outcome {
    Ineligible,       // taints, cordon, node selector / affinity
    TooSmall,         // even an empty node cannot hold the pod
    GpuUnsuitable,    // GPU memory, CUDA version or architecture
    CountNotAllowed,  // allowedGpuCounts
    Capable,
  };
  const Pool* pool = nullptr;
  Outcome outcome = Outcome::Ineligible;
  std::string reason;  // why not, for a person (empty when capable)
  std::size_t eligible_nodes = 0;
  std::size_t capable_nodes = 0;
  // When some members are not capable: the capable ones, as nodes and as whole groups of the
  // pool's label partition (positions in pool->nodes); together, each capable member once.
  std::vector<const NodeState*> capable;
  std::vector<std::span<const std::uint32_t>> capable_groups;
  bool all_capable = false;               // every member is capable
  std::int64_t stranded_gpus = 0;         // GPUs a node of this pool is left unable to use
  PoolRules rules;
};

struct Placement {
  std::vector<PoolVerdict> pools;  // one per pool, in pool order
  std::size_t eligible_nodes = 0;  // tolerated, schedulable, selected
  std::size_t capable_nodes = 0;   // ... and could hold the pod when empty, with suitable GPUs
  // Now: copies of the pod that fit the free capacity of capable nodes (counted up to `replicas`).
  std::int64_t fit_now = 0;
  std::int64_t replicas = 1;
  // The capable node with the most free GPU devices of the kind the pod asks (most free cpu for
  // a pod without GPUs), and that amount; null when there is no capable node.
  const NodeState* largest_free_node = nullptr;
  std::int64_t largest_free_gpus = 0;
  // Among eligible GPU nodes: the largest GPU memory, for messages.
  std::int64_t largest_gpu_memory_mib = 0;
  std::string largest_gpu_product;

  bool can_ever_run() const { return capable_nodes > 0; }
  bool fits_now() const { return fit_now >= replicas; }
};

using PoolRulesLookup = std::function<PoolRules(const Pool&)>;

// Throws k8s::QuantityError / JsonFieldError for a malformed pod spec.
Placement place(const ClusterModel::View& cluster, const nlohmann::json& pod_spec, const PodShape& shape,
                const GpuRequirements& requirements, std::int64_t replicas = 1,
                const PoolRulesLookup& rules = {});

// The nodes that could ever hold one pod of the placement, each once, in pool order.
std::vector<const NodeState*> capable_nodes(const Placement& placement);

// Room a pod of `priority` could make by preemption: the scheduler may evict pods of lower
// priority (NodeState::by_priority) from a node to fit it. Counted per capable node, taking the
// lowest levels first and only as many levels as the copies need.
struct PreemptionFit {
  std::int64_t fit = 0;      // copies that fit free capacity plus what lower-priority pods hold
  std::int64_t victims = 0;  // pods of the levels taken: at most this many are preempted
  std::int32_t highest_victim_priority = INT32_MIN;  // of the pods taken (when victims > 0)
  std::vector<std::string> namespaces;  // of those pods, sorted
};
PreemptionFit fit_with_preemption(const Placement& placement, const PodShape& shape, std::int32_t priority);

// GPUs a pod of `shape` leaves without their share of cpu or memory on a node with `allocatable`
// and `gpu_devices` GPUs: (G - g) - min(G - g, ⌊left cpu × G / cpu⌋, ⌊left memory × G / memory⌋).
std::int64_t stranded_gpus(const Amounts& allocatable, std::int64_t gpu_devices, const PodShape& shape);
// GPUs free on the node that its free cpu or memory cannot serve (one share each), right now.
std::int64_t stranded_now(const NodeState& node, const GpuResources& gpu);

// For messages: "1500m"/"4" cpu, "16Gi"/"512Mi" memory, plain integers for the rest.
std::string format_amount(std::string_view resource, std::int64_t amount);

}  // namespace gpuadmit::capacity
