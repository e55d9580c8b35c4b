// The capacity model's figures on /metrics, computed at scrape time: per pool GPUs total,
// allocated, free and stranded and the largest free block; per namespace the GPU devices in use
// and, where the config's gpu-quota gives it one, its `gpus` budget. A platform team watches
// fragmentation over time from these.
//
// Bounded: one series per pool and per namespace the model holds (namespaces with GPU use, and
// the cluster's namespaces that have a budget), never per request. A scrape holds the model's
// shared lock only while it copies the numbers out (O(nodes + namespaces with usage)); the
// budget lookups and the text run after it is released.
#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <memory>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"

namespace gpuadmit::webhook {

class CapacityMetrics final : public prometheus::Collectable {
 public:
  // `engine`: the config serving now (it changes on reload), for the namespaces' budgets.
  CapacityMetrics(std::shared_ptr<const capacity::ClusterModel> model,
                  std::function<std::shared_ptr<const Engine>()> engine);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<const capacity::ClusterModel> model_;
  std::function<std::shared_ptr<const Engine>()> engine_;
};

}  // namespace gpuadmit::webhook
