// The GPU-aware capacity model: nodes grouped into pools, the requests of the pods bound to
// them, and per-namespace GPU usage. It does not know where objects come from: a snapshot file
// (`kubectl get nodes,pods,namespaces -A -o json`) and a live watch both feed it through the
// same mutation API.
//
// Concurrency: one writer (a watch thread) and many readers (reviews) may use one model at
// once. Every mutation takes the model's lock exclusively; a reader takes it shared for as long
// as it holds a View, so a decision sees one consistent state. Mutations are O(1) per pod and
// O(labels) per node, plus O(pool size) when a node joins, leaves or changes its pool or its
// allocatable (a heartbeat that changes neither is O(labels)).
//
// Mutation API (for the watch; each takes the object as the API server sends it):
//   upsert_node(json)              add or replace a v1 Node
//   delete_node(name)              false when unknown
//   upsert_pod(json)               add or replace a v1 Pod; Succeeded/Failed pods are removed
//   delete_pod(namespace, name)    false when unknown
//   upsert_namespace(json)         add or replace a v1 Namespace
//   delete_namespace(name)         false when unknown
//   upsert_claim(json)             add or replace a resource.k8s.io ResourceClaim or
//                                  ResourceClaimTemplate (any version)
//   delete_claim(kind, ns, name)   false when unknown
//   upsert_disruption_budget(json) add or replace a policy/v1 (or v1beta1) PodDisruptionBudget
//   delete_disruption_budget(ns, name)  false when unknown
//   upsert_priority_class(json)    add or replace a scheduling.k8s.io PriorityClass
//   delete_priority_class(name)    false when unknown
//   apply(json)                    one of the above by kind; a v1 List applies its items
// Each throws SnapshotError naming the object and field and leaves the model unchanged.
//   remove_*_except(keys)          after a full list: what it did not name is gone
// Burst admission (a live watch only): record_admission(pod) counts an allowed pod in its
// namespace's usage until the watch shows it (upsert_pod with its uid) or a TTL passes.
// Read API: read() gives a View (shared lock held until it is destroyed).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/capacity/gpu_facts.h"
#include "engine/capacity/pending_admissions.h"
#include "engine/k8s/node_affinity.h"
#include "engine/k8s/pod_resources.h"
#include "engine/k8s/taints.h"
#include "engine/k8s/resource_claims.h"
#include "engine/k8s/scheduling_objects.h"
#include "gpuadmit/gpu_resources.h"
#include "gpuadmit/gpu_use.h"

namespace gpuadmit::capacity {

class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Sums and products of amounts saturate at the int64 range instead of wrapping: two containers
// asking for 2^63-1 GPUs each must make a namespace's usage huge, never negative (a wrapped sum
// would let a quota-breaking workload through).
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}
inline std::int64_t saturating_mul(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return (a < 0) == (b < 0) ? INT64_MAX : INT64_MIN;
  return product;
}

// Integer resource amounts: cpu in milli-units, memory and storage in bytes, everything else
// (pods, GPUs, MIG devices, hugepages bytes, other extended resources) as integers. No floating
// point anywhere a decision is made.
struct Amounts {
  std::int64_t cpu_milli = 0;
  std::int64_t memory = 0;
  std::int64_t ephemeral_storage = 0;
  std::int64_t pods = 0;
  std::vector<std::pair<std::string, std::int64_t>> extended;  // sorted by name

  std::int64_t get(std::string_view resource) const;  // any resource by its Kubernetes name
  void add(const Amounts& other, std::int64_t sign = 1);
  // cpu as milli-units, everything else as Value() (rounded up, as the scheduler does). Throws
  // std::invalid_argument for a negative amount (the API server accepts none).
  static Amounts from_resource_list(const k8s::ResourceList& list);
  friend bool operator==(const Amounts&, const Amounts&) = default;
};

struct Pool;

// The pods bound to a node at one priority (spec.priority), DaemonSet pods aside: what
// preempting them would free.
struct PriorityLevel {
  Amounts used;
  std::int64_t pods = 0;
  std::map<std::string, std::int64_t, std::less<>> namespaces;  // pods per namespace
};
using PriorityLevels = std::map<std::int32_t, PriorityLevel>;  // by priority, ascending

struct NodeState {
  std::string name;
  k8s::Node selection;  // name and labels, for node affinity
  std::vector<k8s::Taint> taints;
  bool unschedulable = false;
  bool ready = true;
  Amounts allocatable;
  GpuFacts gpu;
  std::int64_t gpu_devices = 0;  // allocatable GPU devices of every kind (the model's GpuResources)
  Amounts used;                  // requests of the non-terminal pods bound to it
  // The part of `used` that DaemonSet pods hold: they run on every node of the pool whatever
  // gets scheduled, so a GPU's share is counted from what they leave.
  Amounts daemon_used;
  std::int64_t bound_pods = 0;
  // `used` by the priority of its pods, for "fits after preemption": a handful of levels per
  // node in practice (the PriorityClasses in use), kept O(log levels) per pod.
  PriorityLevels by_priority;
  Pool* pool = nullptr;
  std::size_t pool_index = 0;  // position in pool->nodes and pool->free

  Amounts free() const;
};

// Nodes with the same GPU signature: product, GPU count and memory, MIG layout, sharing,
// compute capability, driver, allocatable GPU resources, taints, schedulability and the
// node-pool labels (instance type, cloud node pool). Everything a pod's tolerations and GPU
// requirements look at is the same on every member, so those are decided once per pool.
// What a node has free now, in the few integers most decisions need; kept contiguous per pool so
// that a scan of thousands of candidate nodes stays in cache.
struct FreeSlot {
  std::int64_t cpu_milli = 0, memory = 0, gpus = 0, pods = 0;  // gpus: nvidia.com/gpu
};
FreeSlot free_slot_of(const NodeState& node);

// A pool's members grouped by their values of some label keys that differ inside the pool
// (topology.kubernetes.io/zone, a rack label): members of one group carry the same value, or
// none, for each of those keys. A selector that reads only these keys and the pool's uniform
// labels answers alike for every member of a group, so matching one member per group decides
// for all of them.
struct LabelPartition {
  struct Group {
    const NodeState* representative = nullptr;  // its first member
    std::vector<std::uint32_t> members;         // positions in pool->nodes, ascending
  };
  std::vector<std::string> keys;  // sorted, unique
  std::vector<Group> groups;      // in the order of their first members
};

struct Pool {
  std::string name;       // e.g. "NVIDIA-A100-SXM4-80GB×8", unique in the model
  std::string signature;
  std::vector<NodeState*> nodes;              // sorted by name
  std::vector<FreeSlot> free;                 // free[i] is what nodes[i] has free now
  Amounts min_allocatable, max_allocatable;   // per resource over the members
  // label key -> value -> members with it: a label is uniform when one value covers them all.
  std::map<std::string, std::map<std::string, int>, std::less<>> label_values;

  // The pool's name is name_base, or name_base + " #N" (N = name_number) when another pool has it.
  std::string name_base;
  int name_number = 1;
  // A bulk load appended members without keeping `nodes` sorted, `free` or the allocatable
  // bounds; it recomputes them once at its end.
  bool stale = false;

  const NodeState& representative() const { return *nodes.front(); }
  bool label_uniform(std::string_view key) const;
  std::int64_t gpu_devices_per_node() const { return representative().gpu_devices; }

  // The members grouped by `keys` (sorted, unique, each differing inside the pool), built on
  // first use by a reader and kept until the membership changes (a writer calls
  // forget_partitions() under the model's exclusive lock, so a partition stays valid for as long
  // as the View that got it). Null when grouping does not pay: more than half as many groups
  // as members (a per-node label such as kubernetes.io/hostname), or too many key sets cached.
  const LabelPartition* partition(const std::vector<std::string>& keys) const;
  void forget_partitions();

 private:
  mutable std::mutex partitions_mutex_;
  // A null entry remembers a key set that does not pay.
  mutable std::vector<std::pair<std::vector<std::string>, std::unique_ptr<LabelPartition>>> partitions_;
};

// GPU devices a namespace's non-terminal pods request, bound or not yet bound.
struct NamespaceUsage {
  // nvidia.com/gpu, nvidia.com/mig-1g.10gb, ...; DRA devices of each GPU device class under
  // "<class> (DRA)", from the namespace's ResourceClaims (counted once each, as Kubernetes'
  // own quota counts them, however many pods share a claim).
  std::map<std::string, std::int64_t> by_resource;
  GpuShares shares;  // KAI fractions and memory, HAMi memory and cores
  // node name ("" for pods not bound yet) -> GPU devices requested there, for per-product usage.
  std::map<std::string, std::int64_t> devices_by_node;
  std::int64_t pods = 0;
  std::int64_t devices() const;
};

class ClusterModel {
 public:
  // `gpu` decides which resources are GPU devices (node GPU counts, pools, namespace usage): the
  // engine's, so that the policies and the model count the same resources.
  explicit ClusterModel(GpuResources gpu = {}) : gpu_(std::move(gpu)) {}
  ClusterModel(const ClusterModel&) = delete;
  ClusterModel& operator=(const ClusterModel&) = delete;

  // Reads files and directories (JSON, YAML, multi-document, `kind: List`); objects of other
  // kinds are ignored. Throws SnapshotError naming the file and the object.
  static std::unique_ptr<ClusterModel> load(const std::vector<std::string>& paths, GpuResources gpu);
  const GpuResources& gpu_resources() const { return gpu_; }

  void upsert_node(const nlohmann::json& node);
  // Many nodes at once (a page of a list), with each pool's order, free slots and allocatable
  // range recomputed once at the end rather than after every node: upserting the 5,000 nodes of
  // one pool one by one is quadratic. Readers see the model before or after the whole batch. A
  // node that does not parse is handed to `rejected` and the others are applied.
  void upsert_nodes(const std::vector<nlohmann::json>& nodes,
                    const std::function<void(const nlohmann::json&, const std::exception&)>& rejected);
  bool delete_node(std::string_view name);
  void upsert_pod(const nlohmann::json& pod);
  bool delete_pod(std::string_view namespace_, std::string_view name);
  void upsert_namespace(const nlohmann::json& ns);
  bool delete_namespace(std::string_view name);
  void upsert_claim(const nlohmann::json& claim);
  bool delete_claim(k8s::ClaimCatalog::Kind kind, std::string_view namespace_, std::string_view name);
  std::size_t remove_claims_except(k8s::ClaimCatalog::Kind kind, const std::unordered_set<std::string>& keys);
  void upsert_disruption_budget(const nlohmann::json& pdb);
  bool delete_disruption_budget(std::string_view namespace_, std::string_view name);
  std::size_t remove_disruption_budgets_except(const std::unordered_set<std::string>& keys);  // "namespace/name"
  void upsert_priority_class(const nlohmann::json& priority_class);
  bool delete_priority_class(std::string_view name);
  std::size_t remove_priority_classes_except(const std::unordered_set<std::string>& names);
  void apply(const nlohmann::json& object);

  // After a full list from the API server (its objects upserted one by one): everything of the
  // kind that the list did not name is gone. Keys: node and namespace names, pods'
  // "namespace/name". Returns how many were removed.
  std::size_t remove_nodes_except(const std::unordered_set<std::string>& names);
  std::size_t remove_pods_except(const std::unordered_set<std::string>& keys);
  std::size_t remove_namespaces_except(const std::unordered_set<std::string>& names);

  // Pods this replica allowed count in namespace_usage() until the watch shows them or `ttl`
  // passes. Off (0) unless a live watch feeds the model: a snapshot never shows them.
  void track_admissions(std::chrono::milliseconds ttl) { pending_.set_ttl(ttl); }
  // An allowed Pod CREATE as admitted (metadata.uid set by then). Pods without GPU devices are
  // not recorded. Throws SnapshotError when the pod cannot be read.
  void record_admission(const nlohmann::json& pod);
  // The watch showed the pod, or its deletion: the cache counts it from now on.
  bool confirm_admission(std::string_view namespace_, std::string_view uid) { return pending_.confirm(namespace_, uid); }
  std::size_t pending_admissions() const { return pending_.size(); }

  struct PodRecord {
    std::string namespace_, node;  // node "" when not bound yet
    Amounts requests;
    GpuShares shares;
    bool daemon = false;  // owned by a DaemonSet
    std::int32_t priority = 0;  // spec.priority, which the API server sets from the PriorityClass
    // The workload its controller owner stands for ("namespace/Kind/name": a ReplicaSet named
    // <deployment>-<pod-template-hash> is its Deployment); "" when it has no controller.
    std::string workload;
    std::int64_t gpu_devices = 0;  // GPU devices of every kind in its requests
    std::optional<std::int64_t> model_load_seconds;  // k8s/model_load.h
    bool dra_claims = false;  // spec.resourceClaims: GPUs the model does not count per pod
  };
  // Per workload, what its pods hold, kept per pod upsert and delete: counts by value, so that a
  // pod's removal takes away exactly what it added (a handful of values per workload).
  struct WorkloadPods {
    std::int64_t pods = 0;
    std::map<std::int64_t, std::int64_t> by_gpus;        // GPU devices per pod -> pods
    std::map<std::int64_t, std::int64_t> by_load;        // model-load seconds -> pods that have one
    std::int64_t with_claims = 0;                        // pods with DRA claims
  };
  struct UnknownNodeUsage {
    Amounts used, daemon_used;
    std::int64_t pods = 0;
    PriorityLevels by_priority;
  };
  struct State {
    std::unordered_map<std::string, std::unique_ptr<NodeState>> nodes;
    std::unordered_map<std::string, PodRecord> pods;  // "namespace/name"
    std::unordered_map<std::string, UnknownNodeUsage> unknown_nodes;  // pods bound before their node appears
    std::map<std::string, NamespaceUsage, std::less<>> usage;
    std::unordered_map<std::string, WorkloadPods> workloads;  // "namespace/Kind/name"
    std::map<std::string, k8s::Labels, std::less<>> namespaces;
    k8s::ClaimCatalog claims;
    k8s::DisruptionBudgetCatalog disruption_budgets;
    k8s::PriorityClassCatalog priority_classes;
    std::map<std::string, std::unique_ptr<Pool>> pools;  // by signature
    std::vector<Pool*> pool_list;                        // sorted by name
    std::unordered_set<std::string> pool_names;
    // Base name -> the lowest number that may be free: every lower one is taken.
    std::unordered_map<std::string, int> pool_name_hint;
  };


  class View {
   public:
    const std::vector<Pool*>& pools() const { return state_.pool_list; }  // sorted by name
    const NodeState* node(std::string_view name) const;
    std::size_t node_count() const { return state_.nodes.size(); }
    std::size_t pod_count() const { return state_.pods.size(); }
    // The one query quota decisions go through: the pods the cache holds plus the pods this
    // replica allowed that the watch has not shown yet (unbound, under node "").
    NamespaceUsage namespace_usage(std::string_view ns) const;
    std::vector<std::string> namespaces_with_usage() const;
    const std::map<std::string, k8s::Labels, std::less<>>& namespaces() const { return state_.namespaces; }
    const GpuResources& gpu() const { return gpu_; }
    const k8s::ClaimCatalog& claims() const { return state_.claims; }
    const k8s::DisruptionBudgetCatalog& disruption_budgets() const { return state_.disruption_budgets; }
    const k8s::PriorityClassCatalog& priority_classes() const { return state_.priority_classes; }
    // The pods of a workload ("namespace/Kind/name", workload_key) that the model holds; nullopt
    // when it holds none.
    std::optional<k8s::WorkloadSummary> workload(std::string_view key) const;
    std::size_t workload_count() const { return state_.workloads.size(); }

   private:
    friend class ClusterModel;
    View(const ClusterModel& model)
        : lock_(model.mutex_), state_(model.state_), pending_(model.pending_), gpu_(model.gpu_) {}
    std::shared_lock<std::shared_mutex> lock_;
    const State& state_;
    const PendingAdmissions& pending_;
    const GpuResources& gpu_;
  };
  View read() const { return View(*this); }

 private:
  void insert_node_locked(std::unique_ptr<NodeState> node);
  std::unique_ptr<NodeState> remove_node_locked(const std::string& name);
  bool delete_node_locked(const std::string& name);  // delete_node under the caller's lock
  void add_pod_locked(const std::string& key, PodRecord record);
  void remove_pod_locked(const std::string& key);
  void refresh_pool_list_locked();
  void name_pool_locked(Pool& pool, const std::string& base);
  void release_pool_name_locked(const Pool& pool);
  // Loading a snapshot inserts every node before anyone reads, and upsert_nodes a page under one
  // lock: pools are sorted and summed once at the end instead of after each insert, which made a
  // large pool's load quadratic.
  void begin_bulk_load();
  void end_bulk_load();
  void end_bulk_load_locked();
  void upsert_node_locked(std::unique_ptr<NodeState> node);

  const GpuResources gpu_;
  bool bulk_ = false;
  std::unordered_set<Pool*> stale_pools_;

  mutable std::shared_mutex mutex_;
  State state_;
  PendingAdmissions pending_;  // its own lock: recorded by reviews, read under a View
};

// Parses a v1 Node into the model's form; `where` names it in errors (file and object).
// `gpu` counts the node's GPU devices.
std::unique_ptr<NodeState> node_state_from_json(const nlohmann::json& node, const std::string& where,
                                                const GpuResources& gpu);

}  // namespace gpuadmit::capacity
