#include "webhook/server/capacity_metrics.h"

#include <prometheus/metric_family.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/capacity/capacity_figures.h"

namespace gpuadmit::webhook {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void add_gauge(MetricFamily& family, const char* label, const std::string& value, std::int64_t amount) {
  ClientMetric metric;
  metric.label = {{label, value}};
  metric.gauge.value = static_cast<double>(amount);
  family.metric.push_back(std::move(metric));
}

}  // namespace

CapacityMetrics::CapacityMetrics(std::shared_ptr<const capacity::ClusterModel> model,
                                 std::function<std::shared_ptr<const Engine>()> engine)
    : model_(std::move(model)), engine_(std::move(engine)) {}

std::vector<MetricFamily> CapacityMetrics::Collect() const {
  std::vector<std::pair<std::string, capacity::PoolGpuFigures>> pools;
  std::vector<std::pair<std::string, std::int64_t>> used;  // namespaces with GPU devices in use
  std::vector<std::string> namespaces;                     // every namespace the cluster has
  {
    const capacity::ClusterModel::View view = model_->read();
    pools.reserve(view.pools().size());
    for (const capacity::Pool* pool : view.pools())
      pools.emplace_back(pool->name, capacity::pool_gpu_figures(*pool, view.gpu()));
    for (const std::string& ns : view.namespaces_with_usage())
      used.emplace_back(ns, view.namespace_usage(ns).devices());
    namespaces.reserve(view.namespaces().size());
    for (const auto& entry : view.namespaces()) namespaces.push_back(entry.first);
  }  // the model's lock is released here

  MetricFamily nodes{"gpuadmit_pool_nodes", "Nodes in the capacity model's pool", MetricType::Gauge, {}};
  MetricFamily total{"gpuadmit_pool_gpus", "GPU devices the pool's nodes can allocate", MetricType::Gauge, {}};
  MetricFamily allocated{"gpuadmit_pool_gpus_allocated", "GPU devices requested by the pods bound to the pool's nodes",
                         MetricType::Gauge, {}};
  MetricFamily free_gpus{"gpuadmit_pool_gpus_free", "GPU devices free in the pool (total minus allocated)",
                    MetricType::Gauge, {}};
  MetricFamily stranded{"gpuadmit_pool_gpus_stranded",
                        "Free GPU devices that their node's free cpu or memory cannot serve (one share each)",
                        MetricType::Gauge, {}};
  MetricFamily largest{"gpuadmit_pool_largest_free_block_gpus",
                       "Most free GPU devices on one node of the pool: the largest pod that fits now",
                       MetricType::Gauge, {}};
  for (const auto& [name, figures] : pools) {
    add_gauge(nodes, "pool", name, figures.nodes);
    add_gauge(total, "pool", name, figures.total);
    add_gauge(allocated, "pool", name, figures.allocated);
    add_gauge(free_gpus, "pool", name, figures.free());
    add_gauge(stranded, "pool", name, figures.stranded);
    add_gauge(largest, "pool", name, figures.largest_free_block);
  }

  MetricFamily in_use{"gpuadmit_namespace_gpus_used",
                      "GPU devices the namespace's pods request, bound or not (as gpu-quota counts them)",
                      MetricType::Gauge, {}};
  MetricFamily budget{"gpuadmit_namespace_gpu_budget", "The namespace's `gpus` budget in gpu-quota's config",
                      MetricType::Gauge, {}};
  const std::shared_ptr<const Engine> engine = engine_ ? engine_() : nullptr;
  auto budget_of = [&](const std::string& ns) -> std::optional<std::int64_t> {
    return engine ? engine->namespace_gpu_budget(ns) : std::nullopt;
  };
  std::set<std::string> listed;
  for (const auto& [ns, devices] : used) {
    listed.insert(ns);
    add_gauge(in_use, "namespace", ns, devices);
    if (auto gpus = budget_of(ns)) add_gauge(budget, "namespace", ns, *gpus);
  }
  // A namespace with a budget and nothing running yet: 0 of its budget, so use/budget reads 0.
  for (const std::string& ns : namespaces) {
    if (listed.count(ns)) continue;
    if (auto gpus = budget_of(ns)) {
      add_gauge(in_use, "namespace", ns, 0);
      add_gauge(budget, "namespace", ns, *gpus);
    }
  }
  return {nodes, total, allocated, free_gpus, stranded, largest, in_use, budget};
}

}  // namespace gpuadmit::webhook
