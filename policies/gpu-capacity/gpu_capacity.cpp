// gpu-capacity: answers at apply time whether the pod can ever run in this cluster, whether it
// would strand GPUs behind it, and whether there is room for it now, using the capacity model.
// Without a cluster (no --cluster, no watch) it has nothing to consult and reports nothing.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "engine/capacity/gang.h"
#include "engine/capacity/placement.h"
#include "engine/k8s/glob.h"
#include "engine/k8s/json_fields.h"
#include "engine/text.h"
#include "engine/resources.h"
#include "policies/policies.h"
#include "policies/priority.h"
#include "policies/rollout.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
using capacity::Placement;
using capacity::PoolVerdict;

constexpr std::string_view kGpuMemoryAnnotation = "gpu-admit.io/gpu-memory";
constexpr std::string_view kCudaVersionAnnotation = "gpu-admit.io/cuda-version";
constexpr std::string_view kCudaArchAnnotation = "gpu-admit.io/cuda-arch";
constexpr std::size_t kPoolsInMessage = 6;

struct PoolRuleConfig {
  std::string pool_glob;     // matched against the pool name; empty: any
  k8s::Labels node_labels;   // every label must be on the pool's nodes
  capacity::PoolRules rules;
};

enum class SurgeCheck { Off, Warn, Deny };

struct CapacityConfig {
  SurgeCheck rollout_surge = SurgeCheck::Warn;
  std::int64_t deny_stranded = 2;
  std::int64_t warn_stranded = 1;
  bool current_capacity = true;
  bool default_autoscaled = true;
  std::vector<PoolRuleConfig> pools;
};

std::string describe_shape(const capacity::PodShape& shape, const GpuResources& gpu) {
  std::vector<std::string> parts;
  for (const auto& [resource, amount] : shape.requests.extended)
    if (gpu.is_gpu(resource))
      parts.push_back(resource == "nvidia.com/gpu" ? std::to_string(amount) + (amount == 1 ? " GPU" : " GPUs")
                                                   : std::to_string(amount) + " " + resource);
  if (shape.requests.cpu_milli) parts.push_back(capacity::format_amount("cpu", shape.requests.cpu_milli) + " cpu");
  if (shape.requests.memory) parts.push_back(capacity::format_amount("memory", shape.requests.memory) + " memory");
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "nothing" : out;
}

std::string pool_label(const capacity::Pool& pool) {
  return "pool " + pool.name + " (" + std::to_string(pool.nodes.size()) + (pool.nodes.size() == 1 ? " node)" : " nodes)");
}

// "pool A (3 nodes): reason; pool B (1 node): reason; 2 more pools"
std::string why_not(const Placement& placement, const std::function<bool(const PoolVerdict&)>& include) {
  std::string out;
  std::size_t listed = 0, left = 0;
  for (const PoolVerdict& v : placement.pools) {
    if (!include(v)) continue;
    if (listed == kPoolsInMessage) {
      ++left;
      continue;
    }
    out += (out.empty() ? "" : "; ") + pool_label(*v.pool) + ": " + v.reason;
    ++listed;
  }
  if (left) out += "; " + std::to_string(left) + " more pool" + (left == 1 ? "" : "s");
  return out;
}

std::string selector_text(const json& spec) {
  std::string out;
  if (auto it = spec.find("nodeSelector"); it != spec.end() && it->is_object())
    for (const auto& [key, value] : it->items())
      out += (out.empty() ? "" : ", ") + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  if (spec.contains("affinity") && spec["affinity"].is_object() && spec["affinity"].contains("nodeAffinity"))
    out += std::string(out.empty() ? "" : " and ") + "its required node affinity";
  return out.empty() ? "its node selection" : out;
}

std::int64_t nearest(const std::vector<std::int64_t>& allowed, std::int64_t wanted) {
  std::int64_t best = allowed.front();
  for (std::int64_t a : allowed)
    if (std::llabs(a - wanted) < std::llabs(best - wanted) || (std::llabs(a - wanted) == std::llabs(best - wanted) && a > best))
      best = a;
  return best;
}

class GpuCapacity final : public Policy {
 public:
  GpuCapacity(CapacityConfig config, const WorkloadKinds& kinds) : config_(std::move(config)), kinds_(kinds) {}

  void run(PolicyContext& context) const override {
    // Where a partial pod spec's pods may run (taints, affinity) is in its operator's runtime.
    if (!context.cluster || context.workload.partial_pod_spec) return;
    // One read of the model for the whole object: a gang is placed on the state its pods were.
    const capacity::ClusterModel::View view = context.cluster->read();
    std::vector<GangPod> gang;
    bool every_pod_can_run = true;
    std::optional<Workload> old;
    if (context.request.operation == "UPDATE") old = locate_workload(context.request.old_object, kinds_);
    for (const PodTarget& pod : context.workload.pods) {
      std::optional<RolloutDemand> rollout;
      if (old) {
        auto same = std::find_if(old->pods.begin(), old->pods.end(), [&](const PodTarget& p) { return p.field == pod.field; });
        rollout = rollout_demand(context, pod, same == old->pods.end() ? nullptr : &*same);
      }
      every_pod_can_run &= check_pod(context, view, pod, rollout, context.workload.gang ? &gang : nullptr);
    }
    if (context.workload.gang && every_pod_can_run) check_gang(context, gang);
  }

 private:
  capacity::PoolRules rules_for(const capacity::Pool& pool) const {
    for (const PoolRuleConfig& rule : config_.pools) {
      if (!rule.pool_glob.empty() && !k8s::glob_match(rule.pool_glob, pool.name)) continue;
      if (!k8s::matches_node_selector_map(rule.node_labels, pool.representative().selection.labels)) continue;
      return rule.rules;
    }
    capacity::PoolRules rules;
    rules.autoscaled = config_.default_autoscaled;
    return rules;
  }

  // A gang member as check_pod placed it: one pod's requests and the nodes it could ever run on.
  struct GangPod {
    const PodTarget* pod;
    capacity::Amounts requests;
    std::vector<const capacity::NodeState*> nodes;
  };

  // Whether the pod could ever run, and its requirements could be read. A gang member that can
  // is added to `gang`.
  // `rollout`: on UPDATE, the pods it adds at once (its running pods already hold their room).
  bool check_pod(PolicyContext& context, const capacity::ClusterModel::View& view, const PodTarget& pod,
                 const std::optional<RolloutDemand>& rollout, std::vector<GangPod>* gang) const {
    const json& spec = context.pod_spec(pod);
    const std::string& field = pod.field;
    capacity::GpuRequirements requirements;
    if (!read_requirements(context, pod, requirements)) return false;
    const capacity::PodShape shape = capacity::PodShape::from_pod_spec(spec, context.gpu);
    // Room now is for the pods created at once: all replicas on CREATE, an UPDATE's new ones,
    // none for a stored object (an audit), whose pods hold theirs.
    std::int64_t now_pods = context.request.stored ? 0 : pod.replicas;
    if (rollout) now_pods = rollout->added_pods + (rollout->surge_must_fit ? rollout->surge_pods : 0);
    const Placement placement = capacity::place(view, spec, shape, requirements, std::max<std::int64_t>(1, now_pods),
                                                [this](const capacity::Pool& p) { return rules_for(p); });
    const std::string asks = "the pod asks for " + describe_shape(shape, context.gpu);

    if (!placement.can_ever_run()) {
      std::string message = unschedulable_message(placement, spec, shape, requirements, asks);
      if (placement.eligible_nodes == 0 && requirements.memory_mib > 0)
        message = gpu_memory_message_anywhere(view, spec, shape, requirements, pod.replicas)
                      .value_or(message);
      context.violation(field, message);
      return false;
    }
    // Which nodes could hold it does not depend on its replicas: the gang reuses them.
    if (gang && pod.gang_replicas > 0) gang->push_back({&pod, shape.requests, capacity::capable_nodes(placement)});
    const PodGpuUse& other_ways = context.gpu_use(pod);
    if (shape.gpu_devices > 0 || other_ways.any()) check_runtime_class(context, pod, spec, placement);
    // A GPU from a claim or a KAI share is not in the model's node accounting: what it strands
    // is not known, and it is no "pod without GPUs".
    if (shape.gpu_devices > 0 || !other_ways.any()) check_stranding(context, field, placement, shape);
    if (!check_claimed_devices(context, pod, placement)) return false;
    if (config_.current_capacity && now_pods > 0 && !placement.fits_now()) {
      if (rollout && rollout->added_pods == 0)
        check_surge(context, placement, *rollout);
      else
        check_current(context, view, spec, field, placement, shape);
    }
    return true;
  }

  // DRA devices are allocated on one node: a pod whose claims take more GPU devices than any node
  // it could run on has can never start. A node's devices are its GPU resources of every kind
  // (MIG slices each count: a claim may be for mig.nvidia.com), else its GFD nvidia.com/gpu.count
  // (a node under the DRA driver alone advertises no nvidia.com/gpu); with neither anywhere, the
  // model knows nothing to compare and says nothing.
  bool check_claimed_devices(PolicyContext& context, const PodTarget& pod, const Placement& placement) const {
    const PodGpuUse& use = context.gpu_use(pod);
    const std::int64_t claimed = use.template_claim_devices + use.named_claim_devices;
    if (claimed == 0) return true;
    std::int64_t most = 0;
    std::string pools;
    for (const PoolVerdict& v : placement.pools) {
      if (v.outcome != PoolVerdict::Outcome::Capable) continue;
      const capacity::NodeState& node = v.pool->representative();
      const std::int64_t gpus = std::max(node.gpu_devices, node.gpu.count);
      if (gpus == 0) continue;
      most = std::max(most, gpus);
      pools += (pools.empty() ? "" : ", ") + v.pool->name + " (" + std::to_string(gpus) + ")";
    }
    if (most == 0 || claimed <= most) return true;
    context.violation(field_path(pod.field, "resourceClaims"),
                      "the pod's resource claims take at least " + std::to_string(claimed) +
                          " GPU devices, all on one node, but the GPU nodes it could run on have at most " +
                          std::to_string(most) + ": " + pools + ". Claim at most " + std::to_string(most) +
                          " per pod, or split the work across pods");
    return false;
  }

  // Pools whose nodes expose GPUs only through a RuntimeClass (the NVIDIA runtime is not their
  // default): a GPU pod that names another class, or none, gets no GPU there. A violation when no
  // pool it could run on would give it its GPUs, a warning when only some would not.
  void check_runtime_class(PolicyContext& context, const PodTarget& pod, const json& spec,
                           const Placement& placement) const {
    const std::string wanted = k8s::json_fields::string_or(spec, "runtimeClassName");
    std::vector<std::string> missing;
    std::size_t capable = 0;
    for (const PoolVerdict& v : placement.pools) {
      if (v.outcome != PoolVerdict::Outcome::Capable) continue;
      ++capable;
      if (!v.rules.runtime_class.empty() && v.rules.runtime_class != wanted)
        missing.push_back(v.pool->name + " needs " + v.rules.runtime_class);
    }
    if (missing.empty()) return;
    const std::string field = field_path(pod.field, "runtimeClassName");
    const std::string has = wanted.empty() ? "names no runtimeClassName" : "names runtimeClassName " + wanted;
    const std::string pools = join(missing, "; ");
    if (missing.size() == capable)
      context.violation(field, "the pod " + has + ", and every pool it could run on gives GPUs only through "
                                   "another RuntimeClass (" + pools + "); its containers would start without GPUs");
    else
      context.advise(field, "the pod " + has + ", so it gets no GPU on some pools it could land on (" + pools +
                                "); set runtimeClassName or pin it to the other pools");
  }

  // A gang's pods must all run at once (engine/capacity/gang.h): if they never can, a violation
  // with the numbers that prove it; if they cannot now, a warning. Each member's own checks
  // (allowedGpuCounts, stranding) ran in check_pod.
  void check_gang(PolicyContext& context, const std::vector<GangPod>& pods) const {
    if (pods.size() > capacity::kMaxGangMembers * 4) return;  // bounded: far past any operator's shape
    std::vector<capacity::GangMember> members;
    std::vector<const PodTarget*> targets;
    std::vector<const capacity::NodeState*> nodes;
    std::map<const capacity::NodeState*, std::size_t> index;
    std::int64_t total = 0;
    for (const GangPod& pod : pods) {
      capacity::GangMember member{pod.requests, pod.pod->gang_replicas, {}};
      for (const capacity::NodeState* node : pod.nodes) {
        auto [it, added] = index.try_emplace(node, nodes.size());
        if (added) nodes.push_back(node);
        member.nodes.push_back(it->second);
      }
      total = capacity::saturating_add(total, member.count);
      members.push_back(std::move(member));
      targets.push_back(pod.pod);
    }
    if (total < 2) return;  // a gang of one pod is that pod's own check
    std::vector<capacity::Amounts> ever, now;
    for (const capacity::NodeState* node : nodes) {
      capacity::Amounts room = node->allocatable;
      room.add(node->daemon_used, -1);  // DaemonSet pods hold their share on every node
      ever.push_back(std::move(room));
      capacity::Amounts free = node->allocatable;
      free.add(node->used, -1);
      free.pods = node->allocatable.pods - node->bound_pods;
      now.push_back(std::move(free));
    }
    const std::string gang = "the " + std::to_string(total) + " pods of this " + context.workload.kind +
                             " must run at the same time (" + members_text(members, targets) + ")";
    const capacity::GangFit fit = capacity::fit_gang(ever, members);
    if (fit.answer == capacity::GangFit::Answer::Never) {
      std::map<std::string, std::size_t> pools;  // of the nodes the proving members may use
      std::set<std::size_t> used;
      for (std::size_t i : fit.members) used.insert(members[i].nodes.begin(), members[i].nodes.end());
      for (std::size_t n : used) ++pools[nodes[n]->pool->name];
      std::string where;
      for (const auto& [pool, count] : pools)
        where += (where.empty() ? "" : "; ") + ("pool " + pool + ": ") + std::to_string(count) + (count == 1 ? " node" : " nodes");
      const std::string who = fit.members.size() < members.size()
                                  ? "of them, " + members_text(members, targets, fit.members) + " ask for "
                                  : "they ask for ";
      context.violation("", gang + ", and never can: " + who +
                                amount_text(fit.resource, fit.demand) + ", and the nodes they may use give them at most " +
                                amount_text(fit.resource, fit.supply) + (where.empty() ? "" : " (" + where + ")") +
                                ". Make the gang smaller, or its pods' requests, or add nodes");
      return;
    }
    // On UPDATE the gang's own running pods hold the free capacity it would be measured against.
    if (!config_.current_capacity || context.request.operation != "CREATE" || context.request.stored) return;
    const capacity::GangFit fit_now = capacity::fit_gang(now, members);
    if (fit_now.answer == capacity::GangFit::Answer::Fits) return;
    context.advise("", gang + ", and gpu-admit finds room for " + std::to_string(fit_now.placed) + " of them right now" +
                           (fit.answer == capacity::GangFit::Answer::Unknown
                                ? " (nor a way to place them all on empty nodes)"
                                : "") +
                           "; without a gang scheduler (Kueue, Volcano, KAI) the ones placed hold their GPUs while "
                           "the rest stay Pending");
  }

  static std::string members_text(const std::vector<capacity::GangMember>& members,
                                  const std::vector<const PodTarget*>& targets,
                                  std::optional<std::vector<std::size_t>> only = std::nullopt) {
    std::string out;
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (only && std::find(only->begin(), only->end(), i) == only->end()) continue;
      out += (out.empty() ? "" : ", ") + std::to_string(members[i].count) + " × " + targets[i]->field;
    }
    return out;
  }

  static std::string amount_text(const std::string& resource, std::int64_t amount) {
    if (resource == "nvidia.com/gpu") return std::to_string(amount) + (amount == 1 ? " GPU" : " GPUs");
    if (resource == "pods") return std::to_string(amount) + (amount == 1 ? " pod slot" : " pod slots");
    if (resource == "cpu" || resource == "memory" || resource == "ephemeral-storage")
      return capacity::format_amount(resource, amount) + " " + resource;
    return std::to_string(amount) + " " + resource;
  }

  bool read_requirements(PolicyContext& context, const PodTarget& pod, capacity::GpuRequirements& out) const {
    const std::string annotations = field_path(pod.metadata_field, "annotations");
    if (std::string memory = context.annotation(pod, kGpuMemoryAnnotation); !memory.empty()) {
      k8s::Quantity q;
      std::string error;
      if (!k8s::Quantity::try_parse(memory, q, &error) || q.sign() <= 0) {
        context.violation(annotations, std::string(kGpuMemoryAnnotation) + ": '" + memory +
                                           "' is not a positive quantity such as 40Gi");
        return false;
      }
      const std::int64_t bytes = q.value();  // saturates at 2^63-1: no rounding up past it
      out.memory_mib = bytes / (1024 * 1024) + (bytes % (1024 * 1024) != 0);
    }
    if (std::string cuda = context.annotation(pod, kCudaVersionAnnotation); !cuda.empty()) {
      out.cuda = capacity::Version::parse(cuda);
      if (!out.cuda || out.cuda->parts.size() < 2) {
        context.violation(annotations, std::string(kCudaVersionAnnotation) + ": '" + cuda +
                                           "' is not a CUDA version such as 12.4");
        return false;
      }
    }
    if (std::string arch = context.annotation(pod, kCudaArchAnnotation); !arch.empty()) {
      try {
        out.archs = capacity::parse_cuda_archs(arch);
      } catch (const std::invalid_argument& error) {
        context.violation(annotations, std::string(kCudaArchAnnotation) + ": " + error.what());
        return false;
      }
    }
    return true;
  }

  // When the node selection excludes every node and the pod also asks for more GPU memory than any
  // GPU has, the memory is what to act on: gpu-affinity turns the annotation into node affinity,
  // so the selection alone would hide it. Placement again with the node selection left out.
  std::optional<std::string> gpu_memory_message_anywhere(const capacity::ClusterModel::View& view, const json& spec,
                                                         const capacity::PodShape& shape,
                                                         const capacity::GpuRequirements& requirements,
                                                         std::int64_t replicas) const {
    json unselected = spec;
    unselected.erase("nodeSelector");
    if (auto affinity = unselected.find("affinity"); affinity != unselected.end() && affinity->is_object())
      affinity->erase("nodeAffinity");
    const Placement anywhere = capacity::place(view, unselected, shape, requirements, replicas,
                                               [this](const capacity::Pool& p) { return rules_for(p); });
    if (anywhere.largest_gpu_memory_mib == 0 || anywhere.largest_gpu_memory_mib >= requirements.memory_mib)
      return std::nullopt;
    return "no node matches " + selector_text(spec) + ", and no GPU on a node it tolerates has " +
           std::to_string(requirements.memory_mib) + " MiB (" + std::string(kGpuMemoryAnnotation) +
           "); the largest is " + anywhere.largest_gpu_product + " with " +
           std::to_string(anywhere.largest_gpu_memory_mib) +
           " MiB. Use a smaller model, shard it over more GPUs, or add nodes with larger GPUs";
  }

  std::string unschedulable_message(const Placement& placement, const json& spec, const capacity::PodShape& shape,
                                    const capacity::GpuRequirements& requirements, const std::string& asks) const {
    using Outcome = PoolVerdict::Outcome;
    if (placement.pools.empty()) return "the cluster has no nodes, so this pod can never be scheduled";
    if (placement.eligible_nodes == 0) {
      std::string pools;
      for (const PoolVerdict& v : placement.pools) pools += (pools.empty() ? "" : ", ") + v.pool->name;
      bool selection = std::any_of(placement.pools.begin(), placement.pools.end(), [](const PoolVerdict& v) {
        return v.reason.starts_with("node selector");
      });
      if (selection && std::all_of(placement.pools.begin(), placement.pools.end(), [](const PoolVerdict& v) {
            return v.reason.starts_with("node selector");
          }))
        return "no node matches " + selector_text(spec) + "; pools: " + pools +
               ". Select labels these nodes have, or add nodes that carry them";
      return "no node accepts this pod: " + why_not(placement, [](const PoolVerdict&) { return true; }) +
             ". Add the missing tolerations or change the node selection";
    }
    // No eligible GPU is big enough: that, not the other pools' reasons, is what to act on.
    if (requirements.memory_mib > 0 && placement.largest_gpu_memory_mib > 0 &&
        placement.largest_gpu_memory_mib < requirements.memory_mib)
      return "no eligible node has a GPU with " + std::to_string(requirements.memory_mib) + " MiB (" +
             std::string(kGpuMemoryAnnotation) + "); the largest is " + placement.largest_gpu_product + " with " +
             std::to_string(placement.largest_gpu_memory_mib) + " MiB. Use a smaller model, shard it over more GPUs, "
             "or add nodes with larger GPUs";
    std::string message = "no node can ever run this pod (" + asks + "): " +
                          why_not(placement, [](const PoolVerdict& v) { return v.outcome != Outcome::Ineligible; });
    for (const PoolVerdict& v : placement.pools)
      if (v.outcome == Outcome::CountNotAllowed) {
        message += ". Ask for " + std::to_string(nearest(v.rules.allowed_gpu_counts, shape.gpu_devices)) +
                   " GPUs per pod on " + v.pool->name;
        return message;
      }
    return message + ". Ask for less per pod or add larger nodes";
  }

  void check_stranding(PolicyContext& context, const std::string& field, const Placement& placement,
                       const capacity::PodShape& shape) const {
    std::int64_t least = -1, most = 0;
    const PoolVerdict* worst = nullptr;
    for (const PoolVerdict& v : placement.pools) {
      if (v.outcome != PoolVerdict::Outcome::Capable) continue;
      least = least < 0 ? v.stranded_gpus : std::min(least, v.stranded_gpus);
      if (v.stranded_gpus > most) {
        most = v.stranded_gpus;
        worst = &v;
      }
    }
    if (!worst) return;
    const capacity::NodeState& node = worst->pool->representative();
    const std::int64_t gpus = node.gpu_devices;
    const std::string share = capacity::format_amount("cpu", worst->pool->max_allocatable.cpu_milli / gpus) + " cpu and " +
                              capacity::format_amount("memory", worst->pool->max_allocatable.memory / gpus) + " memory";
    std::string what = shape.gpu_devices == 0 ? "a pod without GPUs" : "a pod with " + std::to_string(shape.gpu_devices) +
                                                                          (shape.gpu_devices == 1 ? " GPU" : " GPUs");
    std::string message = what + " asking for " + describe_shape(shape, context.gpu) + " strands " + std::to_string(most) +
                          " of the " + std::to_string(gpus) + " GPUs of a " + worst->pool->name + " node (each GPU's share is " +
                          share + ")";
    if (config_.deny_stranded > 0 && least >= config_.deny_stranded) {
      context.violation(field, message + " and strands at least " + std::to_string(least) +
                                   " GPUs wherever it runs. Request at most the share per GPU, or more GPUs");
    } else if (config_.warn_stranded > 0 && most >= config_.warn_stranded) {
      context.advise(field, message + ". Request at most the share per GPU");
    }
  }

  void check_current(PolicyContext& context, const capacity::ClusterModel::View& view, const json& spec,
                     const std::string& field, const Placement& placement, const capacity::PodShape& shape) const {
    std::string where;
    if (placement.largest_free_node) {
      const bool gpu = shape.gpu_devices > 0;
      where = "; largest free block: " +
              (gpu ? std::to_string(placement.largest_free_gpus) + (placement.largest_free_gpus == 1 ? " GPU" : " GPUs")
                   : capacity::format_amount("cpu", placement.largest_free_gpus) + " cpu") +
              " on " + placement.largest_free_node->name;
    }
    std::string room = placement.replicas > 1 ? "room for " + std::to_string(placement.fit_now) + " of " +
                                                    std::to_string(placement.replicas) + " replicas right now"
                                              : "no eligible node has room for it right now";
    // The scheduler makes room by evicting pods of lower priority: capacity they hold is
    // reclaimable for this pod, so it would not stay Pending.
    const PodPriority priority = pod_priority(context, &view, spec);
    if (priority.preempts && priority.resolved) {
      const capacity::PreemptionFit preemption = capacity::fit_with_preemption(placement, shape, priority.value);
      if (preemption.fit >= placement.replicas && preemption.victims > 0) {
        std::vector<std::string> namespaces(preemption.namespaces.begin(),
                                            preemption.namespaces.begin() + std::min<std::size_t>(preemption.namespaces.size(), 5));
        if (preemption.namespaces.size() > 5) namespaces.push_back(std::to_string(preemption.namespaces.size() - 5) + " more");
        // What to know first (warnings are cut short): it will run, by evicting whom.
        context.advise(field, "fits after preempting up to " + std::to_string(preemption.victims) +
                                  (preemption.victims == 1 ? " pod" : " pods") + " of priority " +
                                  std::to_string(preemption.highest_victim_priority) + " or lower in " +
                                  join(namespaces, ", ") + " (its priority is " + std::to_string(priority.value) +
                                  "): " + room + where);
        return;
      }
    }
    bool autoscaled = std::any_of(placement.pools.begin(), placement.pools.end(), [](const PoolVerdict& v) {
      return v.outcome == PoolVerdict::Outcome::Capable && v.rules.autoscaled;
    });
    if (autoscaled) {
      context.advise(field, room + where + "; it stays Pending until pods finish or the cluster scales up");
    } else {
      context.violation(field, room + where + ", and none of its pools is autoscaled, so it would stay Pending");
    }
  }

  // A template change whose surge pods must start before any old pod stops (maxUnavailable 0):
  // without room for them the rollout stalls with the old pods still serving.
  void check_surge(PolicyContext& context, const Placement& placement,
                   const RolloutDemand& rollout) const {
    if (config_.rollout_surge == SurgeCheck::Off) return;
    const std::string message =
        "this rollout (" + rollout.surge_text + ", maxUnavailable 0) starts " + std::to_string(rollout.surge_pods) +
        (rollout.surge_pods == 1 ? " new pod" : " new pods") + " beside the old ones before any old pod stops, and "
        "there is room for " + std::to_string(placement.fit_now) + " right now; the rollout stalls until room frees up. "
        "Allow maxUnavailable 1, or free capacity first";
    if (config_.rollout_surge == SurgeCheck::Deny)
      context.violation("spec.strategy", message);
    else
      context.advise("spec.strategy", message);
  }

  CapacityConfig config_;
  WorkloadKinds kinds_;  // a copy (shared declarations): the config it came from is moved
};

CapacityConfig parse_config(const ConfigNode& node) {
  CapacityConfig config;
  config.deny_stranded = node.integer("denyStrandedGpus", 2);
  config.warn_stranded = node.integer("warnStrandedGpus", 1);
  if (config.deny_stranded < 0) node.child("denyStrandedGpus").fail("must be 0 (never deny) or more");
  if (config.warn_stranded < 0) node.child("warnStrandedGpus").fail("must be 0 (never warn) or more");
  config.current_capacity = node.boolean("checkCurrentCapacity", true);
  const std::string surge = node.string("rolloutSurge", "warn");
  if (surge == "off") config.rollout_surge = SurgeCheck::Off;
  else if (surge == "warn") config.rollout_surge = SurgeCheck::Warn;
  else if (surge == "deny") config.rollout_surge = SurgeCheck::Deny;
  else node.child("rolloutSurge").fail("must be off, warn or deny");
  config.default_autoscaled = node.boolean("autoscaled", true);
  for (const ConfigNode& item : node.child("pools").items()) {
    item.allow_only({"pool", "nodeLabels", "allowedGpuCounts", "autoscaled", "runtimeClassName"});
    PoolRuleConfig rule;
    rule.pool_glob = item.string("pool", "");
    for (auto& [key, value] : item.child("nodeLabels").entries()) rule.node_labels[key] = value.as_string();
    if (rule.pool_glob.empty() && rule.node_labels.empty())
      item.fail("a pool rule needs `pool` (a pool name glob) or `nodeLabels`");
    for (const ConfigNode& count : item.child("allowedGpuCounts").items()) {
      std::int64_t n = count.as_integer();
      if (n < 1) count.fail("GPU counts must be at least 1");
      rule.rules.allowed_gpu_counts.push_back(n);
    }
    std::sort(rule.rules.allowed_gpu_counts.begin(), rule.rules.allowed_gpu_counts.end());
    rule.rules.autoscaled = item.boolean("autoscaled", config.default_autoscaled);
    rule.rules.runtime_class = item.string("runtimeClassName", "");
    if (item.has("runtimeClassName") && rule.rules.runtime_class.empty())
      item.child("runtimeClassName").fail("name the RuntimeClass, or leave the key out");
    config.pools.push_back(std::move(rule));
  }
  return config;
}

}  // namespace

PolicyInfo gpu_capacity_info() {
  return {"gpu-capacity", PolicyKind::Validating,
          "denies pods no node could ever hold, that strand GPUs, or (for fixed pools) that find no room now",
          {
           {"denyStrandedGpus", "integer", "2",
            "deny when the pod strands at least this many GPUs wherever it can run; 0: never"},
           {"warnStrandedGpus", "integer", "1",
            "warn when it strands at least this many GPUs in some pool; 0: never"},
           {"checkCurrentCapacity", "bool", "true",
            "check the free capacity now (step 6)"},
           {"rolloutSurge", "off, warn or deny", "`warn`",
            "on UPDATE of a Deployment's pod template with maxUnavailable 0: what to do when its maxSurge pods find no room now (the rollout would stall)"},
           {"autoscaled", "bool", "true",
            "whether pools grow on demand (then step 6 only warns)"},
           {"pools", "list of pool rules", "",
            "rules for some pools, first match wins: `pool` (a glob on the pool name shown by `inventory`) and/or `nodeLabels` (labels the pool's nodes carry), with `allowedGpuCounts`, `autoscaled` and `runtimeClassName` (the RuntimeClass GPU pods must name to run there, where the NVIDIA runtime is not the nodes' default)"}},
          [](const ConfigNode& node, const PolicyBuildContext& build) -> std::unique_ptr<Policy> {
            return std::make_unique<GpuCapacity>(parse_config(node), build.kinds);
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
