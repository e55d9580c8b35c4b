#include "engine/capacity/capacity_figures.h"

#include <algorithm>

#include "engine/capacity/placement.h"

namespace gpuadmit::capacity {

std::int64_t gpu_devices_in(const Amounts& amounts, const GpuResources& gpu) {
  std::int64_t n = 0;
  for (const auto& [resource, amount] : amounts.extended)
    if (gpu.is_gpu(resource)) n = saturating_add(n, amount);
  return n;
}

PoolGpuFigures pool_gpu_figures(const Pool& pool, const GpuResources& gpu) {
  PoolGpuFigures figures;
  figures.nodes = static_cast<std::int64_t>(pool.nodes.size());
  std::int64_t largest = -1;
  for (const NodeState* node : pool.nodes) {
    const std::int64_t node_total = node->gpu_devices, node_used = gpu_devices_in(node->used, gpu);
    figures.total = saturating_add(figures.total, node_total);
    figures.allocated = saturating_add(figures.allocated, node_used);
    figures.stranded = saturating_add(figures.stranded, stranded_now(*node, gpu));
    if (node_total - node_used > largest) {
      largest = node_total - node_used;
      figures.largest_free_node = node->name;
    }
  }
  figures.largest_free_block = std::max<std::int64_t>(largest, 0);
  return figures;
}

}  // namespace gpuadmit::capacity
