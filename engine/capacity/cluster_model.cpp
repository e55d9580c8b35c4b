#include "engine/capacity/cluster_model.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <type_traits>

#include "engine/gpu_use.h"
#include "engine/input_limits.h"
#include "engine/k8s/json_fields.h"
#include "engine/k8s/model_load.h"
#include "engine/manifests.h"
#include "engine/resources.h"
#include "gpuadmit/workload.h"

namespace gpuadmit::capacity {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Labels that name a node pool in the common managed offerings, plus our own: nodes in
// different node pools stay in different pools even when their GPUs look alike.
constexpr std::string_view kPoolLabels[] = {
    "gpu-admit.io/pool",          "node.kubernetes.io/instance-type", "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup", "karpenter.sh/nodepool",           "kubernetes.azure.com/agentpool",
};

std::string object_name(const json& object) {
  if (!object.is_object()) return "<not an object>";
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "<no metadata>";
  std::string name = meta->contains("name") && (*meta)["name"].is_string() ? (*meta)["name"].get<std::string>() : "<unnamed>";
  if (meta->contains("namespace") && (*meta)["namespace"].is_string())
    name = (*meta)["namespace"].get<std::string>() + "/" + name;
  return name;
}

std::string describe(const json& object) {
  std::string kind = object.is_object() && object.contains("kind") && object["kind"].is_string()
                         ? object["kind"].get<std::string>() : "object";
  return kind + " " + object_name(object);
}

// `where` gives the object's name for the error: a string, or a function that builds it.
template <typename Where>
std::string required_name(const json& object, const Where& where) {
  const json* meta = k8s::json_fields::member(object, "", "metadata");
  std::string name = meta ? k8s::json_fields::string_or_empty(*meta, "metadata", "name") : "";
  if (name.empty()) {
    if constexpr (std::is_invocable_v<Where>) throw SnapshotError(where() + ": metadata.name is missing");
    else throw SnapshotError(where + ": metadata.name is missing");
  }
  return name;
}

void insert_sorted(std::vector<std::pair<std::string, std::int64_t>>& list, std::string_view name,
                   std::int64_t delta) {
  auto it = std::lower_bound(list.begin(), list.end(), name,
                             [](const auto& entry, std::string_view n) { return entry.first < n; });
  if (it != list.end() && it->first == name) {
    it->second = saturating_add(it->second, delta);
    if (it->second == 0) list.erase(it);
  } else if (delta != 0) {
    list.insert(it, {std::string(name), delta});
  }
}

std::string signature_of(const NodeState& node, const GpuResources& gpu) {
  const GpuFacts& g = node.gpu;
  std::string s = "product=" + g.product + ";count=" + std::to_string(g.count) + ";mem=" +
                  std::to_string(g.memory_mib) + ";replicas=" + std::to_string(g.replicas) +
                  ";sharing=" + std::string(to_string(g.sharing)) + ";mig=" + std::string(to_string(g.mig));
  for (const MigProfile& p : g.mig_profiles)
    s += ";mig-" + p.name + "=" + std::to_string(p.count) + "/" + std::to_string(p.memory_mib);
  if (g.compute) s += ";cc=" + std::to_string(g.compute->first) + "." + std::to_string(g.compute->second);
  if (g.driver) s += ";driver=" + g.driver->to_string();
  if (g.cuda) s += ";cuda=" + g.cuda->to_string();
  for (const auto& [resource, amount] : node.allocatable.extended)
    if (gpu.is_gpu(resource)) s += ";alloc " + resource + "=" + std::to_string(amount);
  std::vector<std::string> taints;
  for (const k8s::Taint& t : node.taints) taints.push_back(k8s::to_string(t));
  std::sort(taints.begin(), taints.end());
  for (const std::string& t : taints) s += ";taint " + t;
  s += node.unschedulable ? ";cordoned" : "";
  s += node.ready ? "" : ";not-ready";
  for (std::string_view key : kPoolLabels)
    if (auto it = node.selection.labels.find(key); it != node.selection.labels.end())
      s += ";" + std::string(key) + "=" + it->second;
  return s;
}

// A name people recognise in messages: the pool label, else the product and GPUs per node.
std::string pool_base_name(const NodeState& node) {
  if (auto it = node.selection.labels.find(std::string_view("gpu-admit.io/pool")); it != node.selection.labels.end())
    return it->second;
  const GpuFacts& g = node.gpu;
  std::string name;
  if (node.gpu_devices == 0 && g.product.empty()) {
    name = "cpu-only";
  } else {
    name = g.product.empty() ? "gpu" : g.product;
    if (g.mig == MigStrategy::Mixed) {
      name += "×" + std::to_string(g.count) + " MIG mixed";
    } else {
      name += "×" + std::to_string(g.count ? g.count : node.gpu_devices);
    }
    if (g.sharing != Sharing::None) name += " " + std::string(to_string(g.sharing)) + "×" + std::to_string(g.replicas);
  }
  if (node.unschedulable) name += " (cordoned)";
  if (!node.ready) name += " (NotReady)";
  return name;
}

void recompute_pool(Pool& pool) {
  pool.free.clear();
  for (std::size_t i = 0; i < pool.nodes.size(); ++i) {
    pool.nodes[i]->pool_index = i;
    pool.free.push_back(free_slot_of(*pool.nodes[i]));
  }
  pool.min_allocatable = pool.max_allocatable = pool.nodes.front()->allocatable;
  auto fold = [](Amounts& into, const Amounts& a, bool take_min) {
    auto pick = [&](std::int64_t x, std::int64_t y) { return take_min ? std::min(x, y) : std::max(x, y); };
    into.cpu_milli = pick(into.cpu_milli, a.cpu_milli);
    into.memory = pick(into.memory, a.memory);
    into.ephemeral_storage = pick(into.ephemeral_storage, a.ephemeral_storage);
    into.pods = pick(into.pods, a.pods);
    // A resource missing on one side counts as 0 there.
    std::set<std::string> names;
    for (const auto& [n, v] : into.extended) names.insert(n);
    for (const auto& [n, v] : a.extended) names.insert(n);
    std::vector<std::pair<std::string, std::int64_t>> merged;
    for (const std::string& n : names) {
      std::int64_t v = pick(into.get(n), a.get(n));
      if (v != 0) merged.emplace_back(n, v);
    }
    into.extended = std::move(merged);
  };
  for (const NodeState* node : pool.nodes) {
    fold(pool.min_allocatable, node->allocatable, true);
    fold(pool.max_allocatable, node->allocatable, false);
  }
}

void add_usage(NamespaceUsage& usage, const ClusterModel::PodRecord& pod, std::int64_t sign,
               const GpuResources& gpu) {
  usage.pods += sign;
  usage.shares.add(pod.shares, sign);
  std::int64_t devices = 0;
  for (const auto& [resource, amount] : pod.requests.extended)
    if (gpu.is_gpu(resource)) {
      devices = saturating_add(devices, amount);
      std::int64_t& total = usage.by_resource[resource];
      if ((total = saturating_add(total, sign * amount)) == 0) usage.by_resource.erase(resource);
    }
  if (devices) {
    std::int64_t& on_node = usage.devices_by_node[pod.node];
    if ((on_node = saturating_add(on_node, sign * devices)) == 0) usage.devices_by_node.erase(pod.node);
  }
}

}  // namespace

std::int64_t Amounts::get(std::string_view resource) const {
  if (resource == "cpu") return cpu_milli;
  if (resource == "memory") return memory;
  if (resource == "ephemeral-storage") return ephemeral_storage;
  if (resource == "pods") return pods;
  auto it = std::lower_bound(extended.begin(), extended.end(), resource,
                             [](const auto& entry, std::string_view n) { return entry.first < n; });
  return it != extended.end() && it->first == resource ? it->second : 0;
}

void Amounts::add(const Amounts& other, std::int64_t sign) {
  cpu_milli = saturating_add(cpu_milli, sign * other.cpu_milli);
  memory = saturating_add(memory, sign * other.memory);
  ephemeral_storage = saturating_add(ephemeral_storage, sign * other.ephemeral_storage);
  pods = saturating_add(pods, sign * other.pods);
  for (const auto& [name, amount] : other.extended) insert_sorted(extended, name, sign * amount);
}

Amounts Amounts::from_resource_list(const k8s::ResourceList& list) {
  Amounts a;
  for (const auto& [name, quantity] : list) {
    if (quantity.sign() < 0) throw std::invalid_argument(name + " must not be negative, got " + quantity.to_string());
    if (name == "cpu") a.cpu_milli = quantity.milli_value();
    else if (name == "memory") a.memory = quantity.value();
    else if (name == "ephemeral-storage") a.ephemeral_storage = quantity.value();
    else if (name == "pods") a.pods = quantity.value();
    else if (std::int64_t v = quantity.value(); v != 0) insert_sorted(a.extended, name, v);
  }
  return a;
}

FreeSlot free_slot_of(const NodeState& node) {
  return {node.allocatable.cpu_milli - node.used.cpu_milli, node.allocatable.memory - node.used.memory,
          node.allocatable.get("nvidia.com/gpu") - node.used.get("nvidia.com/gpu"), node.allocatable.pods - node.bound_pods};
}

Amounts NodeState::free() const {
  Amounts f = allocatable;
  f.add(used, -1);
  return f;
}

bool Pool::label_uniform(std::string_view key) const {
  auto it = label_values.find(key);
  if (it == label_values.end()) return true;  // no member has it
  return it->second.size() == 1 && it->second.begin()->second == static_cast<int>(nodes.size());
}

const LabelPartition* Pool::partition(const std::vector<std::string>& keys) const {
  // Key sets a pool remembers: selectors in one cluster use a handful; an unbounded number of
  // distinct ones (crafted pods) would only cost the node-by-node match they replace.
  constexpr std::size_t kMaxPartitions = 32;
  std::lock_guard lock(partitions_mutex_);
  for (const auto& [cached_keys, partition] : partitions_)
    if (cached_keys == keys) return partition.get();
  if (partitions_.size() >= kMaxPartitions) return nullptr;
  auto partition = std::make_unique<LabelPartition>();
  partition->keys = keys;
  // A member's values for the keys, absent ones as nullopt: a selector tells "no label" from
  // every value (NotIn and DoesNotExist match it, In and Exists do not).
  std::map<std::vector<std::optional<std::string_view>>, std::size_t> group_of;
  std::vector<std::optional<std::string_view>> values(keys.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const k8s::Labels& labels = nodes[i]->selection.labels;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      auto it = labels.find(keys[k]);
      values[k] = it == labels.end() ? std::nullopt : std::optional<std::string_view>(it->second);
    }
    auto [it, added] = group_of.try_emplace(values, partition->groups.size());
    if (added) {
      partition->groups.push_back({nodes[i], {}});
      // Grouping pays only while groups stay few.
      if (partition->groups.size() * 2 > nodes.size()) {
        partitions_.emplace_back(keys, nullptr);
        return nullptr;
      }
    }
    partition->groups[it->second].members.push_back(static_cast<std::uint32_t>(i));
  }
  partitions_.emplace_back(keys, std::move(partition));
  return partitions_.back().second.get();
}

void Pool::forget_partitions() {
  std::lock_guard lock(partitions_mutex_);
  partitions_.clear();
}

std::int64_t NamespaceUsage::devices() const {
  std::int64_t total = 0;
  for (const auto& [resource, amount] : by_resource) total = saturating_add(total, amount);
  return total;
}

std::unique_ptr<NodeState> node_state_from_json(const json& object, const std::string& where,
                                                const GpuResources& gpu) {
  namespace jf = k8s::json_fields;
  auto node = std::make_unique<NodeState>();
  try {
    node->name = required_name(object, where);
    node->selection = k8s::node_from_json(object);
    const json* spec = jf::member(object, "", "spec");
    if (spec) {
      if (const json* taints = jf::array_or_null(*spec, "spec", "taints")) node->taints = k8s::taints_from_json(*taints);
      if (const json* cordon = jf::member(*spec, "spec", "unschedulable")) {
        if (!cordon->is_boolean()) jf::fail("spec.unschedulable", "a boolean", *cordon);
        node->unschedulable = cordon->get<bool>();
      }
    }
    const json* status = jf::member(object, "", "status");
    if (status) {
      if (const json* conditions = jf::array_or_null(*status, "status", "conditions"))
        for (const json& condition : *conditions)
          if (jf::string_or_empty(condition, "status.conditions[]", "type") == "Ready")
            node->ready = jf::string_or_empty(condition, "status.conditions[]", "status") == "True";
      if (const json* allocatable = jf::member(*status, "status", "allocatable")) {
        if (!allocatable->is_object()) jf::fail("status.allocatable", "an object", *allocatable);
        k8s::ResourceList list;
        for (const auto& [resource, value] : allocatable->items())
          list[resource] = quantity_from_json(value, "status.allocatable." + resource);
        node->allocatable = Amounts::from_resource_list(list);
      }
    }
  } catch (const SnapshotError&) {
    throw;
  } catch (const std::exception& error) {
    throw SnapshotError(where + ": " + error.what());
  }
  node->gpu = gpu_facts_from_labels(node->selection.labels);
  for (const auto& [resource, amount] : node->allocatable.extended)
    if (gpu.is_gpu(resource)) node->gpu_devices = saturating_add(node->gpu_devices, amount);
  return node;
}

void ClusterModel::insert_node_locked(std::unique_ptr<NodeState> node) {
  // Pods that named this node before it appeared are counted on it now.
  if (auto it = state_.unknown_nodes.find(node->name); it != state_.unknown_nodes.end()) {
    node->used = std::move(it->second.used);
    node->daemon_used = std::move(it->second.daemon_used);
    node->bound_pods = it->second.pods;
    node->by_priority = std::move(it->second.by_priority);
    state_.unknown_nodes.erase(it);
  }
  const std::string signature = signature_of(*node, gpu_);
  auto& slot = state_.pools[signature];
  bool new_pool = !slot;
  if (new_pool) {
    slot = std::make_unique<Pool>();
    slot->signature = signature;
    name_pool_locked(*slot, pool_base_name(*node));
  }
  Pool& pool = *slot;
  NodeState* raw = node.get();
  raw->pool = &pool;
  if (bulk_) {
    raw->pool_index = pool.nodes.size();
    pool.nodes.push_back(raw);
    pool.stale = true;
    stale_pools_.insert(&pool);
  } else {
    pool.nodes.insert(std::lower_bound(pool.nodes.begin(), pool.nodes.end(), raw,
                                       [](const NodeState* a, const NodeState* b) { return a->name < b->name; }),
                      raw);
    recompute_pool(pool);
  }
  for (const auto& [key, value] : raw->selection.labels) ++pool.label_values[key][value];
  pool.forget_partitions();  // positions moved, and the new member may start a group
  state_.nodes[raw->name] = std::move(node);
  if (new_pool && !bulk_) refresh_pool_list_locked();
}

void ClusterModel::name_pool_locked(Pool& pool, const std::string& base) {
  int& hint = state_.pool_name_hint.try_emplace(base, 1).first->second;
  auto name_of = [&](int n) { return n == 1 ? base : base + " #" + std::to_string(n); };
  int n = hint;
  while (state_.pool_names.count(name_of(n))) ++n;
  hint = n + 1;
  pool.name_base = base;
  pool.name_number = n;
  pool.name = name_of(n);
  state_.pool_names.insert(pool.name);
}

void ClusterModel::release_pool_name_locked(const Pool& pool) {
  state_.pool_names.erase(pool.name);
  int& hint = state_.pool_name_hint[pool.name_base];
  hint = std::min(hint, pool.name_number);
}

void ClusterModel::begin_bulk_load() {
  std::unique_lock lock(mutex_);
  bulk_ = true;
}

void ClusterModel::end_bulk_load() {
  std::unique_lock lock(mutex_);
  end_bulk_load_locked();
}

void ClusterModel::end_bulk_load_locked() {
  for (Pool* pool : stale_pools_) {
    std::sort(pool->nodes.begin(), pool->nodes.end(),
              [](const NodeState* a, const NodeState* b) { return a->name < b->name; });
    recompute_pool(*pool);
    pool->forget_partitions();
    pool->stale = false;
  }
  stale_pools_.clear();
  bulk_ = false;
  refresh_pool_list_locked();
}

std::unique_ptr<NodeState> ClusterModel::remove_node_locked(const std::string& name) {
  auto it = state_.nodes.find(name);
  if (it == state_.nodes.end()) return nullptr;
  std::unique_ptr<NodeState> node = std::move(it->second);
  state_.nodes.erase(it);
  Pool& pool = *node->pool;
  if (pool.stale) {  // a bulk load: order does not matter until its end
    pool.nodes[node->pool_index] = pool.nodes.back();
    pool.nodes[node->pool_index]->pool_index = node->pool_index;
    pool.nodes.pop_back();
  } else {
    pool.nodes.erase(pool.nodes.begin() + static_cast<std::ptrdiff_t>(node->pool_index));
  }
  for (const auto& [key, value] : node->selection.labels) {
    auto& values = pool.label_values[key];
    if (--values[value] == 0) values.erase(value);
    if (values.empty()) pool.label_values.erase(key);
  }
  if (pool.nodes.empty()) {
    release_pool_name_locked(pool);
    stale_pools_.erase(&pool);
    state_.pools.erase(pool.signature);
    if (!bulk_) refresh_pool_list_locked();
  } else {
    if (!pool.stale) recompute_pool(pool);
    pool.forget_partitions();
  }
  node->pool = nullptr;
  return node;
}

void ClusterModel::refresh_pool_list_locked() {
  state_.pool_list.clear();
  for (auto& [signature, pool] : state_.pools) state_.pool_list.push_back(pool.get());
  std::sort(state_.pool_list.begin(), state_.pool_list.end(),
            [](const Pool* a, const Pool* b) { return a->name < b->name; });
}

void ClusterModel::upsert_node(const json& object) {
  std::unique_ptr<NodeState> node = node_state_from_json(object, describe(object), gpu_);
  std::unique_lock lock(mutex_);
  upsert_node_locked(std::move(node));
}

void ClusterModel::upsert_nodes(const std::vector<json>& objects,
                                const std::function<void(const json&, const std::exception&)>& rejected) {
  std::vector<std::unique_ptr<NodeState>> nodes;
  nodes.reserve(objects.size());
  for (const json& object : objects) {
    try {
      nodes.push_back(node_state_from_json(object, describe(object), gpu_));
    } catch (const std::exception& error) {
      rejected(object, error);
    }
  }
  // One lock for the page: readers see the pools before it or after it, never stale ones.
  std::unique_lock lock(mutex_);
  bulk_ = true;
  for (auto& node : nodes) upsert_node_locked(std::move(node));
  end_bulk_load_locked();
}

void ClusterModel::upsert_node_locked(std::unique_ptr<NodeState> node) {
  auto existing = state_.nodes.find(node->name);
  if (existing != state_.nodes.end()) {
    NodeState& old = *existing->second;
    // A heartbeat: same pool, same allocatable, same labels: update in place.
    if (old.allocatable == node->allocatable && old.selection.labels == node->selection.labels &&
        signature_of(*node, gpu_) == old.pool->signature) {
      old.taints = std::move(node->taints);
      return;
    }
    std::unique_ptr<NodeState> removed = remove_node_locked(node->name);
    node->used = std::move(removed->used);
    node->daemon_used = std::move(removed->daemon_used);
    node->bound_pods = removed->bound_pods;
    node->by_priority = std::move(removed->by_priority);
  }
  insert_node_locked(std::move(node));
}

bool ClusterModel::delete_node(std::string_view name) {
  std::unique_lock lock(mutex_);
  return delete_node_locked(std::string(name));
}

bool ClusterModel::delete_node_locked(const std::string& name) {
  std::unique_ptr<NodeState> removed = remove_node_locked(name);
  if (!removed) return false;
  // Its pods still exist until the watch deletes them: keep their usage for a returning node.
  if (removed->bound_pods)
    state_.unknown_nodes[removed->name] = {std::move(removed->used), std::move(removed->daemon_used), removed->bound_pods,
                                           std::move(removed->by_priority)};
  return true;
}

namespace {

// DaemonSet pods are left out: preempted, they come back on the same node, and the scheduler
// rarely needs them gone.
void add_to_level(PriorityLevels& levels, const ClusterModel::PodRecord& record, int sign) {
  auto level = levels.try_emplace(record.priority).first;
  level->second.used.add(record.requests, sign);
  level->second.pods += sign;
  auto ns = level->second.namespaces.try_emplace(record.namespace_).first;
  if ((ns->second += sign) <= 0) level->second.namespaces.erase(ns);
  if (level->second.pods <= 0) levels.erase(level);
}

}  // namespace

void ClusterModel::add_pod_locked(const std::string& key, PodRecord record) {
  if (!record.node.empty()) {
    auto it = state_.nodes.find(record.node);
    if (it != state_.nodes.end()) {
      NodeState& node = *it->second;
      node.used.add(record.requests);
      if (record.daemon) node.daemon_used.add(record.requests);
      ++node.bound_pods;
      if (!record.daemon) add_to_level(node.by_priority, record, 1);
      if (!node.pool->stale) node.pool->free[node.pool_index] = free_slot_of(node);
    } else {
      UnknownNodeUsage& usage = state_.unknown_nodes[record.node];
      usage.used.add(record.requests);
      if (record.daemon) usage.daemon_used.add(record.requests);
      ++usage.pods;
      if (!record.daemon) add_to_level(usage.by_priority, record, 1);
    }
  }
  add_usage(state_.usage[record.namespace_], record, 1, gpu_);
  if (!record.workload.empty()) {
    WorkloadPods& pods = state_.workloads[record.workload];
    ++pods.pods;
    ++pods.by_gpus[record.gpu_devices];
    if (record.model_load_seconds) ++pods.by_load[*record.model_load_seconds];
    pods.with_claims += record.dra_claims;
  }
  state_.pods.emplace(key, std::move(record));
}

void ClusterModel::remove_pod_locked(const std::string& key) {
  auto it = state_.pods.find(key);
  if (it == state_.pods.end()) return;
  const PodRecord& record = it->second;
  if (!record.node.empty()) {
    auto node = state_.nodes.find(record.node);
    if (node != state_.nodes.end()) {
      NodeState& known = *node->second;
      known.used.add(record.requests, -1);
      if (record.daemon) known.daemon_used.add(record.requests, -1);
      --known.bound_pods;
      if (!record.daemon) add_to_level(known.by_priority, record, -1);
      if (!known.pool->stale) known.pool->free[known.pool_index] = free_slot_of(known);
    } else {
      auto usage = state_.unknown_nodes.find(record.node);
      usage->second.used.add(record.requests, -1);
      if (record.daemon) usage->second.daemon_used.add(record.requests, -1);
      if (!record.daemon) add_to_level(usage->second.by_priority, record, -1);
      if (--usage->second.pods == 0) state_.unknown_nodes.erase(usage);
    }
  }
  if (!record.workload.empty()) {
    auto pods = state_.workloads.find(record.workload);
    auto drop = [](std::map<std::int64_t, std::int64_t>& counts, std::int64_t value) {
      auto it = counts.find(value);
      if (--it->second == 0) counts.erase(it);
    };
    drop(pods->second.by_gpus, record.gpu_devices);
    if (record.model_load_seconds) drop(pods->second.by_load, *record.model_load_seconds);
    pods->second.with_claims -= record.dra_claims;
    if (--pods->second.pods == 0) state_.workloads.erase(pods);
  }
  auto usage = state_.usage.find(record.namespace_);
  add_usage(usage->second, record, -1, gpu_);
  if (usage->second.pods == 0) state_.usage.erase(usage);
  state_.pods.erase(it);
}

namespace {

struct ParsedPod {
  std::string name, uid, phase;
  ClusterModel::PodRecord record;
};

ParsedPod parse_pod(const json& object, const GpuResources& gpu) {
  namespace jf = k8s::json_fields;
  // Named in errors only: a snapshot holds 150,000 pods, so the name is not built for each.
  const auto where = [&] { return describe(object); };
  ParsedPod pod;
  ClusterModel::PodRecord& record = pod.record;
  try {
    pod.name = required_name(object, where);
    record.namespace_ = jf::string_or_empty(object["metadata"], "metadata", "namespace");
    if (record.namespace_.empty()) record.namespace_ = "default";
    pod.uid = jf::string_or_empty(object["metadata"], "metadata", "uid");
    const json* spec = jf::member(object, "", "spec");
    if (!spec) throw SnapshotError(where() + ": spec is missing");
    record.node = jf::string_or_empty(*spec, "spec", "nodeName");
    if (const json* owners = jf::array_or_null(object["metadata"], "metadata", "ownerReferences"))
      for (const json& owner : *owners) {
        if (!owner.is_object() || owner.value("controller", false) != true) continue;
        const std::string kind = jf::string_or(owner, "kind"), name = jf::string_or(owner, "name");
        if (kind == "DaemonSet") record.daemon = true;
        if (kind.empty() || name.empty()) continue;
        record.workload = workload_key(record.namespace_, kind, name);
        // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>, the hash also the
        // pod's label: the autoscaler names the Deployment.
        if (kind == "ReplicaSet") {
          const json* labels = jf::member(object["metadata"], "metadata", "labels");
          const std::string hash = labels ? jf::string_or(*labels, "pod-template-hash") : std::string();
          if (!hash.empty() && name.size() > hash.size() + 1 && name.ends_with("-" + hash))
            record.workload = workload_key(record.namespace_, "Deployment", name.substr(0, name.size() - hash.size() - 1));
        }
      }
    if (const json* status = jf::member(object, "", "status")) pod.phase = jf::string_or_empty(*status, "status", "phase");
    const auto defaulted = k8s::with_requests_defaulted_from_limits(*spec);
    record.requests = Amounts::from_resource_list(k8s::pod_requests(defaulted ? *defaulted : *spec));
    record.requests.pods = 1;
    record.shares = pod_gpu_shares(*spec, jf::member(object["metadata"], "metadata", "annotations"));
    if (auto priority = spec->find("priority"); priority != spec->end() && !priority->is_null()) {
      const std::int64_t value = jf::int64_at(*priority, "spec.priority");
      if (value < INT32_MIN || value > INT32_MAX) jf::fail("spec.priority", "a 32-bit integer", *priority);
      record.priority = static_cast<std::int32_t>(value);
    }
    if (!record.workload.empty()) {
      for (const auto& [resource, amount] : record.requests.extended)
        if (gpu.is_gpu(resource)) record.gpu_devices = saturating_add(record.gpu_devices, amount);
      record.model_load_seconds =
          k8s::model_load_seconds(*spec, jf::member(object["metadata"], "metadata", "annotations"));
      const json* claims = spec->is_object() ? jf::member(*spec, "spec", "resourceClaims") : nullptr;
      record.dra_claims = claims && claims->is_array() && !claims->empty();
    }
  } catch (const SnapshotError&) {
    throw;
  } catch (const std::exception& error) {
    throw SnapshotError(where() + ": " + error.what());
  }
  return pod;
}

}  // namespace

void ClusterModel::upsert_pod(const json& object) {
  ParsedPod pod = parse_pod(object, gpu_);
  const std::string key = pod.record.namespace_ + "/" + pod.name;
  std::unique_lock lock(mutex_);
  remove_pod_locked(key);
  // The watch shows the pod: the cache counts it from now on, not the admission record (in the
  // same critical section, so a reader never sees it twice or not at all).
  if (pending_.enabled()) {
    if (!pod.uid.empty()) pending_.confirm(pod.record.namespace_, pod.uid);
    pending_.confirm(pod.record.namespace_, "name:" + pod.name);
  }
  // Finished pods hold nothing, as the scheduler and ResourceQuota see it.
  if (pod.phase == "Succeeded" || pod.phase == "Failed") return;
  add_pod_locked(key, std::move(pod.record));
}

void ClusterModel::record_admission(const json& object) {
  if (!pending_.enabled()) return;
  ParsedPod pod = parse_pod(object, gpu_);
  PendingAdmissions::Devices devices;
  for (const auto& [resource, amount] : pod.record.requests.extended)
    if (gpu_.is_gpu(resource) && amount > 0) devices[resource] = amount;
  if (devices.empty()) return;
  // Without a uid (a request that did not come from the API server) the name stands in.
  pending_.record(pod.record.namespace_, pod.uid.empty() ? "name:" + pod.name : pod.uid, std::move(devices));
}

namespace {

// Removes every entry of `map` whose key `keep` does not hold, with `remove(key)`; how many.
template <typename Map, typename Remove>
std::size_t remove_except(const Map& map, const std::unordered_set<std::string>& keep, Remove remove) {
  std::vector<std::string> gone;
  for (const auto& [key, value] : map)
    if (!keep.count(key)) gone.push_back(key);
  for (const std::string& key : gone) remove(key);
  return gone.size();
}

}  // namespace

std::size_t ClusterModel::remove_nodes_except(const std::unordered_set<std::string>& names) {
  std::unique_lock lock(mutex_);
  return remove_except(state_.nodes, names, [&](const std::string& name) { delete_node_locked(name); });
}

std::size_t ClusterModel::remove_pods_except(const std::unordered_set<std::string>& keys) {
  std::unique_lock lock(mutex_);
  return remove_except(state_.pods, keys, [&](const std::string& key) { remove_pod_locked(key); });
}

std::size_t ClusterModel::remove_namespaces_except(const std::unordered_set<std::string>& names) {
  std::unique_lock lock(mutex_);
  return remove_except(state_.namespaces, names, [&](const std::string& name) { state_.namespaces.erase(name); });
}

bool ClusterModel::delete_pod(std::string_view namespace_, std::string_view name) {
  std::unique_lock lock(mutex_);
  const std::string key = std::string(namespace_) + "/" + std::string(name);
  if (!state_.pods.count(key)) return false;
  remove_pod_locked(key);
  return true;
}

void ClusterModel::upsert_namespace(const json& object) {
  const std::string where = describe(object);
  std::string name;
  k8s::Labels labels;
  try {
    name = required_name(object, where);
    labels = k8s::node_from_json(object).labels;  // metadata.labels, read the same way
  } catch (const SnapshotError&) {
    throw;
  } catch (const std::exception& error) {
    throw SnapshotError(where + ": " + error.what());
  }
  std::unique_lock lock(mutex_);
  state_.namespaces[name] = std::move(labels);
}

bool ClusterModel::delete_namespace(std::string_view name) {
  std::unique_lock lock(mutex_);
  auto it = state_.namespaces.find(name);
  if (it == state_.namespaces.end()) return false;
  state_.namespaces.erase(it);
  return true;
}

void ClusterModel::upsert_claim(const json& object) {
  // ClaimCatalog::upsert reads the whole claim before it stores it: one that cannot be read
  // leaves the model unchanged.
  std::unique_lock lock(mutex_);
  try {
    state_.claims.upsert(object);
  } catch (const std::exception& error) {
    throw SnapshotError(describe(object) + ": " + error.what());
  }
}

bool ClusterModel::delete_claim(k8s::ClaimCatalog::Kind kind, std::string_view namespace_, std::string_view name) {
  std::unique_lock lock(mutex_);
  return state_.claims.remove(kind, namespace_, name);
}

std::size_t ClusterModel::remove_claims_except(k8s::ClaimCatalog::Kind kind, const std::unordered_set<std::string>& keys) {
  std::unique_lock lock(mutex_);
  return state_.claims.remove_except(kind, keys);
}

void ClusterModel::upsert_disruption_budget(const json& object) {
  std::unique_lock lock(mutex_);
  try {
    state_.disruption_budgets.upsert(object);
  } catch (const std::exception& error) {
    throw SnapshotError(describe(object) + ": " + error.what());
  }
}

bool ClusterModel::delete_disruption_budget(std::string_view namespace_, std::string_view name) {
  std::unique_lock lock(mutex_);
  return state_.disruption_budgets.remove(namespace_, name);
}

std::size_t ClusterModel::remove_disruption_budgets_except(const std::unordered_set<std::string>& keys) {
  std::unique_lock lock(mutex_);
  return state_.disruption_budgets.remove_except(keys);
}

void ClusterModel::upsert_priority_class(const json& object) {
  std::unique_lock lock(mutex_);
  try {
    state_.priority_classes.upsert(object);
  } catch (const std::exception& error) {
    throw SnapshotError(describe(object) + ": " + error.what());
  }
}

bool ClusterModel::delete_priority_class(std::string_view name) {
  std::unique_lock lock(mutex_);
  return state_.priority_classes.remove(name);
}

std::size_t ClusterModel::remove_priority_classes_except(const std::unordered_set<std::string>& names) {
  std::unique_lock lock(mutex_);
  return state_.priority_classes.remove_except(names);
}

void ClusterModel::apply(const json& object) {
  if (!object.is_object()) throw SnapshotError("expected a Kubernetes object, got " + std::string(object.type_name()));
  const std::string kind = object.contains("kind") && object["kind"].is_string() ? object["kind"].get<std::string>() : "";
  if (kind == "Node") return upsert_node(object);
  if (kind == "Pod") return upsert_pod(object);
  if (kind == "Namespace") return upsert_namespace(object);
  if (k8s::ClaimCatalog::kind_of(kind)) return upsert_claim(object);
  if (kind == "PodDisruptionBudget") return upsert_disruption_budget(object);
  if (kind == "PriorityClass") return upsert_priority_class(object);
  if (kind.ends_with("List") && object.contains("items")) {
    if (!object["items"].is_array()) throw SnapshotError(kind + ": items must be a list");
    for (std::size_t i = 0; i < object["items"].size(); ++i) {
      try {
        apply(object["items"][i]);
      } catch (const SnapshotError& error) {
        throw SnapshotError("items[" + std::to_string(i) + "]: " + error.what());
      }
    }
  }
  // Other kinds (Services, ConfigMaps, ...) in a snapshot carry no capacity.
}

const NodeState* ClusterModel::View::node(std::string_view name) const {
  auto it = state_.nodes.find(std::string(name));
  return it == state_.nodes.end() ? nullptr : it->second.get();
}

std::optional<k8s::WorkloadSummary> ClusterModel::View::workload(std::string_view key) const {
  auto it = state_.workloads.find(std::string(key));
  if (it == state_.workloads.end()) return std::nullopt;
  const WorkloadPods& pods = it->second;
  k8s::WorkloadSummary summary;
  summary.pods = pods.pods;
  if (!pods.by_gpus.empty()) summary.gpus_per_pod = pods.by_gpus.rbegin()->first;
  for (const auto& [gpus, count] : pods.by_gpus)
    summary.gpus_in_use = saturating_add(summary.gpus_in_use, saturating_mul(gpus, count));
  if (!pods.by_load.empty()) summary.model_load_seconds = pods.by_load.rbegin()->first;
  summary.gpus_unresolved = pods.with_claims > 0;
  return summary;
}

NamespaceUsage ClusterModel::View::namespace_usage(std::string_view ns) const {
  auto it = state_.usage.find(ns);
  NamespaceUsage usage = it == state_.usage.end() ? NamespaceUsage{} : it->second;
  state_.claims.for_each_claim(ns, [&](const k8s::ClaimSpec& claim) {
    for (const k8s::DeviceRequest& request : claim.requests) {
      const auto devices = request.devices([&](std::string_view c) { return gpu_.is_gpu_device_class(c); });
      if (!devices.devices) continue;
      // The class of its first GPU alternative names it.
      for (const auto& alternative : request.alternatives)
        if (gpu_.is_gpu_device_class(alternative.device_class)) {
          std::int64_t& total = usage.by_resource[alternative.device_class + " (DRA)"];
          total = saturating_add(total, devices.devices);
          break;
        }
    }
  });
  if (pending_.enabled())
    pending_.for_each(ns, PendingAdmissions::Clock::now(), [&](const PendingAdmissions::Devices& devices) {
      ++usage.pods;
      for (const auto& [resource, count] : devices) {
        usage.by_resource[resource] = saturating_add(usage.by_resource[resource], count);
        usage.devices_by_node[""] = saturating_add(usage.devices_by_node[""], count);
      }
    });
  return usage;
}

std::vector<std::string> ClusterModel::View::namespaces_with_usage() const {
  std::vector<std::string> names;
  for (const auto& [name, usage] : state_.usage)
    if (usage.devices()) names.push_back(name);
  return names;
}

namespace {

// A JSON file item by item: the items of a List are applied as soon as each is parsed and then
// dropped, so a 150,000-pod snapshot never sits in memory as one document.
void load_json_file(ClusterModel& model, const std::string& file) {
  // A stream buffer, not a FILE*: the parser reads one character at a time, and in a process
  // with threads (the webhook) fgetc() takes the FILE's lock for each one, 60 million times
  // for a 5,000-node snapshot. sbumpc() on a 1 MiB buffer takes none.
  // A FIFO or a device would block or never end: a snapshot is a regular file. Its size is not
  // limited: it is read item by item, each one bounded by the parser's depth limit.
  std::error_code error;
  if (!fs::is_regular_file(file, error)) throw SnapshotError(file + ": is not a regular file");
  std::vector<char> buffer(1 << 20);
  std::ifstream in;
  in.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  in.open(file, std::ios::binary);
  if (!in) throw SnapshotError(file + ": cannot read the file");
  std::string top_key;
  std::size_t index = 0;
  std::string failure;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) top_key = parsed.is_string() ? parsed.get<std::string>() : "";
    if (event != json::parse_event_t::object_end || depth != 2 || top_key != "items") return true;
    if (failure.empty()) {
      try {
        model.apply(parsed);
      } catch (const SnapshotError& error) {
        failure = file + ": items[" + std::to_string(index) + "]: " + error.what();
      }
    }
    ++index;
    return false;  // applied: drop it from the document
  };
  json rest;
  try {
    rest = parse_json(in, callback);
  } catch (const InputError& error) {
    throw SnapshotError(file + ": not valid JSON: " + error.what());
  }
  if (!failure.empty()) throw SnapshotError(failure);
  // A single object, or a List whose items were all consumed above.
  if (!(rest.is_object() && rest.contains("items") && rest["items"].is_array() && rest["items"].empty())) {
    try {
      model.apply(rest);
    } catch (const SnapshotError& error) {
      throw SnapshotError(file + ": " + error.what());
    }
  }
}

void load_path(ClusterModel& model, const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(path, ec)) entries.push_back(entry.path());
    std::sort(entries.begin(), entries.end());
    for (const fs::path& entry : entries) {
      const std::string ext = entry.extension().string();
      if (fs::is_directory(entry) || ext == ".json" || ext == ".yaml" || ext == ".yml") load_path(model, entry);
    }
    return;
  }
  if (!fs::exists(path, ec)) throw SnapshotError(path.string() + ": no such file or directory");
  if (path.extension() == ".json") return load_json_file(model, path.string());
  std::vector<ManifestDocument> documents;
  try {
    documents = load_manifests({path.string()});
  } catch (const ManifestError& error) {
    throw SnapshotError(error.what());
  }
  for (const ManifestDocument& document : documents) {
    try {
      model.apply(document.object);
    } catch (const SnapshotError& error) {
      throw SnapshotError(document.file + ":" + std::to_string(document.line) + ": " + error.what());
    }
  }
}

}  // namespace

std::unique_ptr<ClusterModel> ClusterModel::load(const std::vector<std::string>& paths, GpuResources gpu) {
  auto model = std::make_unique<ClusterModel>(std::move(gpu));
  model->begin_bulk_load();
  for (const std::string& path : paths) load_path(*model, path);
  model->end_bulk_load();
  return model;
}

}  // namespace gpuadmit::capacity
