// What gpu-availability and gpu-spread share: which objects are long-running GPU workloads with
// replicas, the labels their pods carry, and whether a pod template spreads its replicas across
// nodes (policies/availability.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/k8s/node_affinity.h"
#include "policies/policies.h"

namespace gpuadmit::policies {

inline constexpr std::string_view kHostnameKey = "kubernetes.io/hostname";

// The replicas of a Deployment, StatefulSet or LeaderWorkerSet (its groups) that uses a GPU in
// any pod template: spec.replicas, 1 when unset (the API default). nullopt for every other kind
// (Jobs, CronJobs, Pods and DaemonSets do not keep a replica count up), for a workload without
// GPUs, and for a spec.replicas that is not a non-negative integer (the API server refuses it).
std::optional<std::int64_t> long_running_gpu_replicas(const PolicyContext& context);

// The labels every pod of the template gets: the template's metadata.labels, plus the label the
// LeaderWorkerSet controller puts on each of its pods (leaderworkerset.sigs.k8s.io/name).
// nullopt when the labels are not a map of strings (the API server refuses them).
std::optional<k8s::Labels> pod_labels(const PolicyContext& context, const PodTarget& pod);

// Whether the pod spec keeps its own replicas off one node: a topologySpreadConstraint or a
// required or preferred podAntiAffinity term on kubernetes.io/hostname whose labelSelector
// matches `labels` (an anti-affinity term only counts where it looks at the pod's own
// namespace). A LeaderWorkerSet's exclusive-topology annotation puts each group in its own
// topology domain, so on other nodes: that counts too.
bool spreads_across_nodes(const PolicyContext& context, const nlohmann::json& spec, const k8s::Labels& labels);

}  // namespace gpuadmit::policies
