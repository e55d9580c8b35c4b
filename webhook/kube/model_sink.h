// The adapter from the watch to the capacity model: the model never learns where its objects
// come from, and the watch never learns what consumes them.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>

#include "engine/capacity/cluster_model.h"
#include "webhook/kube/sink.h"

namespace gpuadmit::webhook {

// Feeds a ClusterModel from the watch, converting each object into the model's own structs (the
// model keeps no JSON, so memory follows the cluster's GPU-relevant size). An object the model
// cannot read is logged, counted and skipped: one bad object must not stop the watch.
class ClusterModelSink final : public kube::ClusterObjectSink {
 public:
  ClusterModelSink(capacity::ClusterModel& model, std::shared_ptr<spdlog::logger> logger)
      : model_(model), logger_(std::move(logger)) {}
  void upsert(kube::ObjectKind kind, const nlohmann::json& object) override;
  // A page of nodes goes to the model at once (ClusterModel::upsert_nodes).
  void upsert_page(kube::ObjectKind kind, const std::vector<nlohmann::json>& objects) override;
  void remove(kube::ObjectKind kind, const nlohmann::json& object) override;
  void list_complete(kube::ObjectKind kind, const std::unordered_set<std::string>& listed_keys) override;
  std::uint64_t rejected_objects() const { return rejected_.load(); }

 private:
  void reject(kube::ObjectKind kind, const std::string& error);
  capacity::ClusterModel& model_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace gpuadmit::webhook
