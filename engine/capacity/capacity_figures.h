// The capacity model's figures per pool, as a platform team watches them over time: GPUs total,
// allocated, free and stranded, and the largest free block. `gpu-admit inventory` prints them
// and the webhook's /metrics exports them (webhook/server/capacity_metrics.h), from one
// computation so the two never disagree.
#pragma once

#include <cstdint>
#include <string>

#include "engine/capacity/cluster_model.h"

namespace gpuadmit::capacity {

struct PoolGpuFigures {
  std::int64_t nodes = 0;
  std::int64_t total = 0;      // allocatable GPU devices of every kind the config counts
  std::int64_t allocated = 0;  // requested by the pods bound to the pool's nodes
  std::int64_t stranded = 0;   // free, but their node's free cpu or memory cannot serve them
  std::int64_t largest_free_block = 0;  // most free GPUs on one node
  std::string largest_free_node;        // the first node with that many ("" for an empty pool)
  std::int64_t free() const { return total - allocated; }
};

// GPU devices in `amounts`: the resources `gpu` counts as GPUs, summed (saturating).
std::int64_t gpu_devices_in(const Amounts& amounts, const GpuResources& gpu);

// O(nodes in the pool); call under a View.
PoolGpuFigures pool_gpu_figures(const Pool& pool, const GpuResources& gpu);

}  // namespace gpuadmit::capacity
