#include "engine/capacity/placement.h"

#include <algorithm>
#include <set>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::capacity {
namespace {

using nlohmann::json;

constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kGiB = 1024 * kMiB;

// The label keys a pod's nodeSelector and required node affinity look at; nullopt when it also
// uses matchFields (node names) or has a shape we do not read, so every node is checked.
std::optional<std::vector<std::string>> selector_keys(const json& pod_spec) {
  std::vector<std::string> keys;
  if (auto it = pod_spec.find("nodeSelector"); it != pod_spec.end() && it->is_object())
    for (const auto& [key, value] : it->items()) keys.push_back(key);
  const json* required = nullptr;
  if (auto a = pod_spec.find("affinity"); a != pod_spec.end() && a->is_object())
    if (auto n = a->find("nodeAffinity"); n != a->end() && n->is_object())
      if (auto r = n->find("requiredDuringSchedulingIgnoredDuringExecution"); r != n->end() && !r->is_null())
        required = &*r;
  if (!required) return keys;
  if (!required->is_object()) return std::nullopt;
  auto terms = required->find("nodeSelectorTerms");
  if (terms == required->end() || terms->is_null()) return keys;
  if (!terms->is_array()) return std::nullopt;
  for (const json& term : *terms) {
    if (!term.is_object()) return std::nullopt;
    if (auto f = term.find("matchFields"); f != term.end() && !f->is_null() && !(f->is_array() && f->empty()))
      return std::nullopt;
    auto e = term.find("matchExpressions");
    if (e == term.end() || e->is_null()) continue;
    if (!e->is_array()) return std::nullopt;
    for (const json& expression : *e) {
      if (!expression.is_object() || !expression.contains("key") || !expression["key"].is_string()) return std::nullopt;
      keys.push_back(expression["key"].get<std::string>());
    }
  }
  return keys;
}

bool fits(const Amounts& room, std::int64_t pods_room, const Amounts& want) {
  if (want.cpu_milli > 0 && want.cpu_milli > room.cpu_milli) return false;
  if (want.memory > 0 && want.memory > room.memory) return false;
  if (want.ephemeral_storage > 0 && want.ephemeral_storage > room.ephemeral_storage) return false;
  if (pods_room < 1) return false;
  for (const auto& [resource, amount] : want.extended)
    if (amount > 0 && amount > room.get(resource)) return false;
  return true;
}

// How many copies of `want` fit in what the node has free (at most `limit`). Reads allocatable
// and used in place: this runs for every candidate node.
std::int64_t copies_that_fit(const NodeState& node, const Amounts& want, std::int64_t limit) {
  std::int64_t n = std::min(limit, node.allocatable.pods - node.bound_pods);
  auto bound = [&](std::int64_t have, std::int64_t need) {
    if (need > 0) n = std::min(n, have > 0 ? have / need : 0);
  };
  bound(node.allocatable.cpu_milli - node.used.cpu_milli, want.cpu_milli);
  bound(node.allocatable.memory - node.used.memory, want.memory);
  bound(node.allocatable.ephemeral_storage - node.used.ephemeral_storage, want.ephemeral_storage);
  for (const auto& [resource, amount] : want.extended)
    if (n > 0) bound(node.allocatable.get(resource) - node.used.get(resource), amount);
  return std::max<std::int64_t>(n, 0);
}

std::string resource_phrase(std::string_view resource, std::int64_t amount) {
  if (resource == "nvidia.com/gpu") return std::to_string(amount) + (amount == 1 ? " GPU" : " GPUs");
  if (resource == "cpu") return format_amount(resource, amount) + " cpu";
  if (resource == "memory" || resource == "ephemeral-storage")
    return format_amount(resource, amount) + " " + std::string(resource);
  return std::to_string(amount) + " " + std::string(resource);
}

// The first resource an empty node with `allocatable` lacks, in words.
std::string too_small_reason(const Amounts& allocatable, const Amounts& want) {
  auto explain = [&](std::string_view resource, std::int64_t have, std::int64_t need) {
    std::string per_node = resource == "nvidia.com/gpu" ? std::to_string(have) + (have == 1 ? " GPU" : " GPUs")
                                                        : resource_phrase(resource, have);
    std::string asked = resource == "nvidia.com/gpu" ? std::to_string(need) : resource_phrase(resource, need);
    return per_node + " per node, " + asked + " requested";
  };
  for (const auto& [resource, amount] : want.extended)
    if (amount > allocatable.get(resource)) return explain(resource, allocatable.get(resource), amount);
  if (want.cpu_milli > allocatable.cpu_milli) return explain("cpu", allocatable.cpu_milli, want.cpu_milli);
  if (want.memory > allocatable.memory) return explain("memory", allocatable.memory, want.memory);
  if (want.ephemeral_storage > allocatable.ephemeral_storage)
    return explain("ephemeral-storage", allocatable.ephemeral_storage, want.ephemeral_storage);
  return "no room for another pod (allocatable pods is " + std::to_string(allocatable.pods) + ")";
}

// The GPU resource a pod asks for most of, for "largest free block" messages.
std::string main_gpu_resource(const PodShape& shape, const GpuResources& gpu) {
  std::string best;
  std::int64_t most = 0;
  for (const auto& [resource, amount] : shape.requests.extended)
    if (gpu.is_gpu(resource) && amount > most) {
      best = resource;
      most = amount;
    }
  return best;
}

std::string join_counts(const std::vector<std::int64_t>& counts) {
  std::string out;
  for (std::size_t i = 0; i < counts.size(); ++i)
    out += (i == 0 ? "" : i + 1 == counts.size() ? " or " : ", ") + std::to_string(counts[i]);
  return out;
}

}  // namespace

std::string format_amount(std::string_view resource, std::int64_t amount) {
  if (resource == "cpu") return amount % 1000 == 0 ? std::to_string(amount / 1000) : std::to_string(amount) + "m";
  if (resource == "memory" || resource == "ephemeral-storage" || resource.starts_with("hugepages-")) {
    if (amount != 0 && amount % kGiB == 0) return std::to_string(amount / kGiB) + "Gi";
    if (amount != 0 && amount % kMiB == 0) return std::to_string(amount / kMiB) + "Mi";
    if (amount >= kGiB) {
      // Not a whole number of GiB: one decimal, rounded down so it never overstates.
      std::int64_t tenths = amount / kGiB * 10 + amount % kGiB * 10 / kGiB;  // no overflow near 2^63
      return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "Gi";
    }
    return std::to_string(amount);
  }
  return std::to_string(amount);
}

PodShape PodShape::from_pod_spec(const json& pod_spec, const GpuResources& gpu) {
  PodShape shape;
  const auto defaulted = k8s::with_requests_defaulted_from_limits(pod_spec);
  shape.requests = Amounts::from_resource_list(k8s::pod_requests(defaulted ? *defaulted : pod_spec));
  shape.requests.pods = 1;
  std::erase_if(shape.requests.extended, [](const auto& entry) { return GpuResources::is_share_dimension(entry.first); });
  for (const auto& [resource, amount] : shape.requests.extended)
    if (gpu.is_gpu(resource)) shape.gpu_devices = saturating_add(shape.gpu_devices, amount);
  return shape;
}

std::optional<std::string> GpuRequirements::unmet_by(const GpuFacts& gpu, const Amounts& requests,
                                                     const GpuResources& resources) const {
  if (memory_mib > 0) {
    for (const auto& [resource, amount] : requests.extended) {
      if (!resources.is_gpu(resource) || amount <= 0) continue;
      std::int64_t have = gpu.device_memory_mib(resource);
      if (have == 0) return "GPU memory is not labelled (nvidia.com/gpu.memory)";
      if (have < memory_mib)
        return "GPU memory " + std::to_string(have) + " MiB, " + std::to_string(memory_mib) + " MiB needed";
    }
  }
  if (cuda) {
    if (!gpu.cuda) return "the driver's CUDA version is not labelled (nvidia.com/cuda.driver-version.*)";
    if (*gpu.cuda < *cuda) {
      std::string driver = gpu.driver ? "driver " + gpu.driver->to_string() + " runs" : "the driver runs";
      return driver + " CUDA up to " + gpu.cuda->to_string() + ", " + cuda->to_string() + " needed";
    }
  }
  if (!archs.empty()) {
    if (!gpu.compute) return "compute capability is not labelled (nvidia.com/gpu.compute.major/minor)";
    bool ok = std::any_of(archs.begin(), archs.end(), [&](const CudaArch& a) { return a.runs_on(*gpu.compute); });
    if (!ok) {
      std::string list;
      for (const CudaArch& a : archs) list += (list.empty() ? "" : ",") + a.text;
      return "compute capability " + std::to_string(gpu.compute->first) + "." + std::to_string(gpu.compute->second) +
             " runs none of " + list;
    }
  }
  return std::nullopt;
}

std::int64_t stranded_gpus(const Amounts& allocatable, std::int64_t gpu_devices, const PodShape& shape) {
  const std::int64_t g = std::min(shape.gpu_devices, gpu_devices);
  const std::int64_t left = gpu_devices - g;
  if (left <= 0) return 0;
  std::int64_t usable = left;
  // left × share ≤ remaining  ⇔  GPUs usable = ⌊remaining × G / allocatable⌋ (exact integers).
  auto limit = [&](std::int64_t have, std::int64_t want) {
    if (have <= 0 || want <= 0) return;
    std::int64_t remaining = std::max<std::int64_t>(0, have - want);
    usable = std::min(usable, static_cast<std::int64_t>(static_cast<__int128>(remaining) * gpu_devices / have));
  };
  limit(allocatable.cpu_milli, shape.requests.cpu_milli);
  limit(allocatable.memory, shape.requests.memory);
  return left - usable;
}

std::int64_t stranded_now(const NodeState& node, const GpuResources& gpu) {
  const std::int64_t total = node.gpu_devices;
  if (total <= 0) return 0;
  std::int64_t free_gpus = 0;
  for (const auto& [resource, amount] : node.allocatable.extended)
    if (gpu.is_gpu(resource)) free_gpus = saturating_add(free_gpus, amount - node.used.get(resource));
  if (free_gpus <= 0) return 0;
  std::int64_t usable = free_gpus;
  // A GPU's share is counted from what the node's DaemonSet pods leave.
  auto limit = [&](std::int64_t alloc, std::int64_t daemon, std::int64_t used) {
    const std::int64_t base = alloc - daemon;
    if (base <= 0) return;
    std::int64_t left = std::max<std::int64_t>(0, alloc - used);
    usable = std::min(usable, static_cast<std::int64_t>(static_cast<__int128>(left) * total / base));
  };
  limit(node.allocatable.cpu_milli, node.daemon_used.cpu_milli, node.used.cpu_milli);
  limit(node.allocatable.memory, node.daemon_used.memory, node.used.memory);
  return free_gpus - usable;
}

namespace {

// What of the pod spec placement reads, parsed once per decision.
struct PodTerms {
  explicit PodTerms(const json& pod_spec) : affinity(pod_spec), keys(selector_keys(pod_spec)) {
    namespace jf = k8s::json_fields;
    if (const json* t = jf::array_or_null(pod_spec, "spec", "tolerations")) tolerations = k8s::tolerations_from_json(*t);
  }
  k8s::RequiredNodeAffinity affinity;
  std::optional<std::vector<std::string>> keys;  // the labels node selection reads; none: unknown
  std::vector<k8s::Toleration> tolerations;
};

// Taints, cordons and readiness are part of the pool signature: one check for all members.
// Why the pool is ineligible, or nothing.
std::optional<std::string> untolerated(const NodeState& rep, const std::vector<k8s::Toleration>& tolerations) {
  const auto blocking = [](const k8s::Taint& taint) { return taint.effect == "NoSchedule" || taint.effect == "NoExecute"; };
  if (auto taint = k8s::find_matching_untolerated_taint(rep.taints, tolerations, blocking))
    return "taint " + k8s::to_string(*taint) + " not tolerated";
  // The scheduler's NodeUnschedulable filter, and the not-ready taint the node controller adds.
  if (rep.unschedulable && !k8s::tolerated_by_any(tolerations, {"node.kubernetes.io/unschedulable", "", "NoSchedule"}))
    return "cordoned (spec.unschedulable)";
  if (!rep.ready && !k8s::tolerated_by_any(tolerations, {"node.kubernetes.io/not-ready", "", "NoSchedule"}))
    return "node not Ready";
  return std::nullopt;
}

// The members a pod's node selection picks in one pool: all of them, whole groups of the pool's
// label partition, or single nodes.
struct Selection {
  bool all = false;
  std::vector<const LabelPartition::Group*> groups;
  std::vector<const NodeState*> nodes;
  std::size_t count = 0;
};

// Once for the pool when every label the pod looks at is uniform there; else once per group of
// members that share the values of the labels that differ (the pool's label partition); node by
// node only where grouping does not pay.
// `varying` is scratch space, kept by the caller across pools.
Selection select_members(const Pool& pool, const PodTerms& pod, std::vector<std::string>& varying) {
  Selection selection;
  const LabelPartition* partition = nullptr;
  varying.clear();  // the selector's keys that differ inside the pool
  if (pod.keys) {
    for (const std::string& k : *pod.keys)
      if (!pool.label_uniform(k)) varying.push_back(k);
    std::sort(varying.begin(), varying.end());
    varying.erase(std::unique(varying.begin(), varying.end()), varying.end());
    if (!varying.empty()) partition = pool.partition(varying);
  }
  if (pod.keys && varying.empty()) {
    selection.all = pod.affinity.matches(pool.representative().selection);
    selection.count = selection.all ? pool.nodes.size() : 0;
  } else if (partition) {
    for (const LabelPartition::Group& group : partition->groups)
      if (pod.affinity.matches(group.representative->selection)) {
        selection.groups.push_back(&group);
        selection.count += group.members.size();
      }
    selection.all = selection.count == pool.nodes.size();
  } else {
    for (const NodeState* node : pool.nodes)
      if (pod.affinity.matches(node->selection)) selection.nodes.push_back(node);
    selection.count = selection.nodes.size();
    selection.all = selection.count == pool.nodes.size();
  }
  return selection;
}

// Which selected members could hold the pod when empty, into `verdict` (all_capable,
// capable_groups or capable); why none can, or nothing. The pool's smallest and largest
// allocatable usually answer without looking at a node.
std::optional<std::string> find_capable(const Pool& pool, Selection selection, const PodShape& shape,
                                        PoolVerdict& verdict) {
  const bool all_fit = fits(pool.min_allocatable, pool.min_allocatable.pods, shape.requests);
  if (!fits(pool.max_allocatable, pool.max_allocatable.pods, shape.requests))
    return too_small_reason(pool.max_allocatable, shape.requests);
  if (all_fit && selection.all) {
    verdict.all_capable = true;
    return std::nullopt;
  }
  if (all_fit && !selection.groups.empty()) {
    // Every selected member fits: whole groups, no node looked at.
    for (const LabelPartition::Group* group : selection.groups) verdict.capable_groups.emplace_back(group->members);
    return std::nullopt;
  }
  std::vector<const NodeState*>& selected = selection.nodes;
  if (selection.all) {
    selected = std::vector<const NodeState*>(pool.nodes.begin(), pool.nodes.end());
  } else if (!selection.groups.empty()) {
    // Allocatable differs inside the pool: each selected member is checked, in pool order.
    std::vector<std::uint32_t> positions;
    positions.reserve(selection.count);
    for (const LabelPartition::Group* group : selection.groups)
      positions.insert(positions.end(), group->members.begin(), group->members.end());
    std::sort(positions.begin(), positions.end());
    for (std::uint32_t i : positions) selected.push_back(pool.nodes[i]);
  }
  for (const NodeState* node : selected)
    if (all_fit || fits(node->allocatable, node->allocatable.pods, shape.requests)) verdict.capable.push_back(node);
  if (verdict.capable.empty())
    return "the selected nodes are too small: " + too_small_reason(selected.front()->allocatable, shape.requests);
  return std::nullopt;
}

// The verdict on one pool, taken step by step: tolerated, selected, big enough, suitable GPUs,
// an allowed GPU count.
PoolVerdict judge_pool(const ClusterModel::View& cluster, const Pool& pool, const PodTerms& pod, const PodShape& shape,
                       const std::string& gpu_resource, const GpuRequirements& requirements,
                       const PoolRulesLookup& rules, std::vector<std::string>& varying, Placement& placement) {
  PoolVerdict verdict;
  verdict.pool = &pool;
  if (rules) verdict.rules = rules(pool);
  const NodeState& rep = pool.representative();
  auto decided = [&](PoolVerdict::Outcome outcome, std::string reason) {
    verdict.outcome = outcome;
    verdict.reason = std::move(reason);
    return std::move(verdict);
  };
  if (auto reason = untolerated(rep, pod.tolerations)) return decided(PoolVerdict::Outcome::Ineligible, *reason);
  Selection selection = select_members(pool, pod, varying);
  verdict.eligible_nodes = selection.count;
  if (verdict.eligible_nodes == 0)
    return decided(PoolVerdict::Outcome::Ineligible, "node selector / required node affinity does not match");
  placement.eligible_nodes += verdict.eligible_nodes;
  const bool uses_gpu = shape.gpu_devices > 0;
  if (uses_gpu && rep.gpu.memory_mib > 0) {
    const std::int64_t memory = gpu_resource.empty() ? rep.gpu.memory_mib : rep.gpu.device_memory_mib(gpu_resource);
    if (memory > placement.largest_gpu_memory_mib) {
      placement.largest_gpu_memory_mib = memory;
      placement.largest_gpu_product = rep.gpu.product;
    }
  }
  if (auto reason = find_capable(pool, std::move(selection), shape, verdict))
    return decided(PoolVerdict::Outcome::TooSmall, *reason);
  if (uses_gpu && requirements.any())
    if (auto unmet = requirements.unmet_by(rep.gpu, shape.requests, cluster.gpu()))
      return decided(PoolVerdict::Outcome::GpuUnsuitable, *unmet);
  const auto& allowed = verdict.rules.allowed_gpu_counts;
  if (uses_gpu && !allowed.empty() && std::find(allowed.begin(), allowed.end(), shape.gpu_devices) == allowed.end())
    return decided(PoolVerdict::Outcome::CountNotAllowed, "takes " + join_counts(allowed) + " GPUs per pod");
  verdict.capable_nodes = verdict.all_capable ? pool.nodes.size() : verdict.capable.size();
  for (std::span<const std::uint32_t> group : verdict.capable_groups) verdict.capable_nodes += group.size();
  placement.capable_nodes += verdict.capable_nodes;
  if (rep.gpu_devices > 0) verdict.stranded_gpus = stranded_gpus(pool.max_allocatable, rep.gpu_devices, shape);
  return decided(PoolVerdict::Outcome::Capable, "");
}

// Visits each capable node once, with its pool and its position there, until `visit` returns
// false; within a pool, groups of a partition come one after the other, not in pool order.
template <typename Visit>
void for_each_capable(const Placement& placement, Visit visit) {
  for (const PoolVerdict& verdict : placement.pools) {
    if (verdict.outcome != PoolVerdict::Outcome::Capable) continue;
    const Pool& pool = *verdict.pool;
    if (verdict.all_capable) {
      for (std::size_t i = 0; i < pool.nodes.size(); ++i)
        if (!visit(pool, i)) return;
    } else {
      for (const NodeState* node : verdict.capable)
        if (!visit(pool, node->pool_index)) return;
      for (std::span<const std::uint32_t> group : verdict.capable_groups)
        for (std::uint32_t i : group)
          if (!visit(pool, i)) return;
    }
  }
}

// Free capacity now, over the capable nodes only: the pool's contiguous free slots rule most
// nodes out; the full check runs only for those that pass.
void count_fit_now(const PodShape& shape, Placement& placement) {
  const std::int64_t want_gpus = shape.requests.get("nvidia.com/gpu");
  // Only what the pod asks for counts: an over-committed resource it does not need is no obstacle.
  const auto may_fit = [&](const FreeSlot& slot) {
    return slot.pods >= 1 && (shape.requests.cpu_milli <= 0 || slot.cpu_milli >= shape.requests.cpu_milli) &&
           (shape.requests.memory <= 0 || slot.memory >= shape.requests.memory) &&
           (want_gpus <= 0 || slot.gpus >= want_gpus);
  };
  for_each_capable(placement, [&](const Pool& pool, std::size_t i) {
    if (may_fit(pool.free[i]))
      placement.fit_now += copies_that_fit(*pool.nodes[i], shape.requests, placement.replicas - placement.fit_now);
    return placement.fit_now < placement.replicas;
  });
}

// The largest free block of `gpu_resource` (cpu for a pod without GPUs); on a tie the first in
// pool order, whatever order the groups came in. Reads only the free slots (no NodeState) for
// cpu and nvidia.com/gpu: most nodes tie.
void find_largest_free(const std::string& gpu_resource, Placement& placement) {
  const bool plain_gpu = gpu_resource.empty() || gpu_resource == "nvidia.com/gpu";
  const Pool* largest_pool = nullptr;
  std::size_t largest_position = 0;
  for_each_capable(placement, [&](const Pool& pool, std::size_t i) {
    const FreeSlot& slot = pool.free[i];
    std::int64_t block;
    if (gpu_resource.empty()) {
      block = slot.cpu_milli;
    } else if (plain_gpu) {
      block = slot.gpus;
    } else {
      const NodeState& node = *pool.nodes[i];
      block = node.allocatable.get(gpu_resource) - node.used.get(gpu_resource);
    }
    if (!largest_pool || block > placement.largest_free_gpus ||
        (block == placement.largest_free_gpus && largest_pool == &pool && i < largest_position)) {
      largest_pool = &pool;
      largest_position = i;
      placement.largest_free_gpus = block;
    }
    return true;
  });
  if (largest_pool) placement.largest_free_node = largest_pool->nodes[largest_position];
}

}  // namespace

std::vector<const NodeState*> capable_nodes(const Placement& placement) {
  std::vector<const NodeState*> nodes;
  for_each_capable(placement, [&](const Pool& pool, std::size_t i) {
    nodes.push_back(pool.nodes[i]);
    return true;
  });
  std::sort(nodes.begin(), nodes.end(), [](const NodeState* a, const NodeState* b) {
    return a->pool != b->pool ? a->pool->name < b->pool->name : a->pool_index < b->pool_index;
  });
  return nodes;
}

namespace {

// Copies of `want` that `room` holds (its pods counts slots), at most `limit`.
std::int64_t copies_in(const Amounts& room, const Amounts& want, std::int64_t limit) {
  std::int64_t n = std::min(limit, room.pods);
  auto bound = [&](std::int64_t have, std::int64_t need) {
    if (need > 0) n = std::min(n, have > 0 ? have / need : 0);
  };
  bound(room.cpu_milli, want.cpu_milli);
  bound(room.memory, want.memory);
  bound(room.ephemeral_storage, want.ephemeral_storage);
  for (const auto& [resource, amount] : want.extended)
    if (n > 0) bound(room.get(resource), amount);
  return std::max<std::int64_t>(n, 0);
}

}  // namespace

PreemptionFit fit_with_preemption(const Placement& placement, const PodShape& shape, std::int32_t priority) {
  PreemptionFit out;
  std::set<std::string> namespaces;
  for (const NodeState* node : capable_nodes(placement)) {
    if (out.fit >= placement.replicas) break;
    Amounts room = node->allocatable;
    room.add(node->used, -1);
    room.pods = node->allocatable.pods - node->bound_pods;
    const std::int64_t wanted = placement.replicas - out.fit;
    std::int64_t copies = copies_in(room, shape.requests, wanted);
    auto counted = node->by_priority.begin();  // levels before it are counted as victims
    for (auto level = node->by_priority.begin();
         copies < wanted && level != node->by_priority.end() && level->first < priority; ++level) {
      room.add(level->second.used);  // its cpu, memory, GPUs and pod slots
      const std::int64_t more = copies_in(room, shape.requests, wanted);
      if (more == copies) continue;  // this level alone frees too little; a higher one may add to it
      copies = more;
      // Every level up to this one is taken: the scheduler evicts the lowest priorities first.
      for (; counted != std::next(level); ++counted) {
        out.victims = saturating_add(out.victims, counted->second.pods);
        out.highest_victim_priority = std::max(out.highest_victim_priority, counted->first);
        for (const auto& [ns, pods] : counted->second.namespaces) namespaces.insert(ns);
      }
    }
    out.fit += copies;
  }
  out.namespaces.assign(namespaces.begin(), namespaces.end());
  return out;
}

Placement place(const ClusterModel::View& cluster, const json& pod_spec, const PodShape& shape,
                const GpuRequirements& requirements, std::int64_t replicas, const PoolRulesLookup& rules) {
  Placement placement;
  placement.replicas = std::max<std::int64_t>(1, replicas);
  const PodTerms pod(pod_spec);
  const std::string gpu_resource = main_gpu_resource(shape, cluster.gpu());
  std::vector<std::string> varying;
  for (const Pool* pool : cluster.pools())
    placement.pools.push_back(
        judge_pool(cluster, *pool, pod, shape, gpu_resource, requirements, rules, varying, placement));
  count_fit_now(shape, placement);
  // The scan for the largest free block runs only when the pod does not fit.
  if (!placement.fits_now()) find_largest_free(gpu_resource, placement);
  return placement;
}

}  // namespace gpuadmit::capacity
