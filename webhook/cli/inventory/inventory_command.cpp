// `gpu-admit inventory`: what the capacity model sees in a cluster snapshot, pool by pool.
#include <iomanip>
#include <iostream>

#include "engine/capacity/capacity_figures.h"
#include "webhook/cli/commands.h"

namespace gpuadmit::cli {
namespace {

using nlohmann::json;

json pool_json(const capacity::Pool& pool, const GpuResources& gpu) {
  const capacity::NodeState& rep = pool.representative();
  // The same figures /metrics exports (gpuadmit_pool_*).
  const capacity::PoolGpuFigures figures = capacity::pool_gpu_figures(pool, gpu);
  json profiles = json::array();
  for (const capacity::MigProfile& p : rep.gpu.mig_profiles)
    profiles.push_back({{"profile", p.name}, {"count", p.count}, {"memoryMiB", p.memory_mib}});
  json taints = json::array();
  for (const k8s::Taint& t : rep.taints) taints.push_back(k8s::to_string(t));
  return {{"name", pool.name},
          {"nodes", pool.nodes.size()},
          {"product", rep.gpu.product},
          {"gpuMemoryMiB", rep.gpu.memory_mib},
          {"gpusPerNode", rep.gpu_devices},
          {"gpus", {{"total", figures.total}, {"allocated", figures.allocated}, {"free", figures.free()}}},
          {"largestFreeBlock", {{"gpus", figures.largest_free_block}, {"node", figures.largest_free_node}}},
          {"strandedGpus", figures.stranded},
          {"sharing", std::string(capacity::to_string(rep.gpu.sharing))},
          {"replicas", rep.gpu.replicas},
          {"migStrategy", std::string(capacity::to_string(rep.gpu.mig))},
          {"migProfiles", profiles},
          {"cordoned", rep.unschedulable},
          {"ready", rep.ready},
          {"taints", taints}};
}

int inventory(const Args& args) {
  const std::string format = args.text("--output");
  if (format != "text" && format != "json") throw UsageError("-o must be text or json");
  if (!args.positional.empty()) throw UsageError("inventory takes no positional arguments");
  // The config says which resources are GPUs (gpuResources), as it does for check and serve.
  auto engine = load_engine(args);
  auto cluster = load_cluster(args, *engine);
  if (!cluster) throw UsageError("inventory needs --cluster F");
  const capacity::ClusterModel::View view = cluster->read();

  json pools = json::array();
  for (const capacity::Pool* pool : view.pools()) pools.push_back(pool_json(*pool, view.gpu()));
  json namespaces = json::array();
  for (const std::string& ns : view.namespaces_with_usage()) {
    capacity::NamespaceUsage usage = view.namespace_usage(ns);
    namespaces.push_back({{"namespace", ns}, {"gpus", usage.devices()}, {"byResource", usage.by_resource}});
  }
  if (format == "json") {
    std::cout << json{{"nodes", view.node_count()}, {"pods", view.pod_count()}, {"pools", pools},
                      {"namespaces", namespaces}}
                     .dump(2)
              << "\n";
    return kExitOk;
  }
  std::cout << view.node_count() << " nodes in " << pools.size() << " pools, " << view.pod_count()
            << " pods holding resources\n\n";
  std::cout << std::left << std::setw(40) << "POOL" << std::right << std::setw(6) << "NODES" << std::setw(6) << "GPUS"
            << std::setw(7) << "ALLOC" << std::setw(6) << "FREE" << std::setw(9) << "STRANDED" << "  LARGEST FREE BLOCK\n";
  for (const json& p : pools) {
    std::string name = p["name"].get<std::string>();
    // × is two bytes but one column.
    int pad = 40 + static_cast<int>(name.size()) - static_cast<int>(std::count_if(name.begin(), name.end(), [](char c) {
                return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
              }));
    std::cout << std::left << std::setw(pad) << name << std::right << std::setw(6) << p["nodes"].get<std::int64_t>()
              << std::setw(6) << p["gpus"]["total"].get<std::int64_t>() << std::setw(7)
              << p["gpus"]["allocated"].get<std::int64_t>() << std::setw(6) << p["gpus"]["free"].get<std::int64_t>()
              << std::setw(9) << p["strandedGpus"].get<std::int64_t>() << "  ";
    if (p["gpusPerNode"].get<std::int64_t>() > 0)
      std::cout << p["largestFreeBlock"]["gpus"].get<std::int64_t>() << " on " << p["largestFreeBlock"]["node"].get<std::string>();
    std::cout << "\n";
    std::string details;
    if (p["sharing"] != "none") details += "sharing " + p["sharing"].get<std::string>() + " ×" + std::to_string(p["replicas"].get<std::int64_t>());
    if (!p["migProfiles"].empty()) {
      details += std::string(details.empty() ? "" : "; ") + "MIG " + p["migStrategy"].get<std::string>() + ":";
      for (const json& m : p["migProfiles"])
        details += " " + m["profile"].get<std::string>() + "×" + std::to_string(m["count"].get<std::int64_t>());
    }
    for (const json& t : p["taints"]) details += std::string(details.empty() ? "" : "; ") + "taint " + t.get<std::string>();
    if (!details.empty()) std::cout << "    " << details << "\n";
  }
  std::cout << "\nGPU usage by namespace:\n";
  if (namespaces.empty()) std::cout << "  (none)\n";
  for (const json& n : namespaces) {
    std::cout << "  " << std::left << std::setw(24) << n["namespace"].get<std::string>() << std::right << std::setw(4)
              << n["gpus"].get<std::int64_t>() << "  ";
    std::string parts;
    for (const auto& [resource, amount] : n["byResource"].items())
      parts += (parts.empty() ? "" : ", ") + resource + "=" + std::to_string(amount.get<std::int64_t>());
    std::cout << parts << "\n";
  }
  return kExitOk;
}

}  // namespace

Command inventory_command() {
  return {command_spec("inventory", "",
                       "    Pools, GPUs total/allocated/free, largest free block, stranded GPUs, usage per namespace.",
                       {[] {
                          Flag cluster = cluster_flag();
                          cluster.required = true;
                          return cluster;
                        }(),
                        config_flag(), {"--output", "text|json", "text", "the report's format", "-o"}}),
          inventory};
}

}  // namespace gpuadmit::cli
