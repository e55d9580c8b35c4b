// gpu-shape: GPU requests the device plugin and the scheduler can serve well. Whole GPUs only,
// bounded per container and per pod, with cpu and memory set; no GPU nodes taken by pods that
// use no GPU; MIG slices and shared (time-sliced or MPS) GPUs only where the platform allows them.
#include "engine/k8s/glob.h"
#include "engine/k8s/json_fields.h"
#include "engine/resources.h"
#include "policies/gpu_nodes.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
using k8s::Quantity;

constexpr std::string_view kMigPrefix = "nvidia.com/mig-";
constexpr std::string_view kSharingStrategyLabel = "nvidia.com/gpu.sharing-strategy";
constexpr std::string_view kProductLabel = "nvidia.com/gpu.product";
constexpr std::string_view kSharedProductSuffix = "-SHARED";

struct GpuShapeConfig {
  std::int64_t max_gpus_per_pod = 0;  // 0: no limit
  std::int64_t max_gpus_per_container = 0;
  CheckLevel require_cpu_and_memory = CheckLevel::Violation;
  CheckLevel gpu_nodes_without_gpu = CheckLevel::Violation;
  GpuNodes gpu_nodes;
  bool mig_restricted = false;  // migResources was given
  std::vector<std::pair<std::string, std::vector<std::string>>> mig_resources;  // namespace glob -> resource globs
  std::vector<std::string> shared_resources;
  std::vector<std::string> sharing_namespaces;
};

bool is_mig(std::string_view resource) { return resource.starts_with(kMigPrefix); }

// A GPU container's amount of one resource: the limit, else the request (for extended resources
// the API server makes them equal when both are set).
std::optional<Quantity> amount(const json& container, const std::string& resource, const std::string& field) {
  if (auto limit = container_resource(container, "limits", resource, field)) return limit;
  return container_resource(container, "requests", resource, field);
}

// GPU resource names a container mentions in requests or limits, in order.
std::vector<std::string> gpu_resource_names(const GpuResources& gpu, const json& container) {
  std::vector<std::string> names;
  auto resources = container.find("resources");
  if (resources == container.end() || !resources->is_object()) return names;
  for (const char* section : {"limits", "requests"}) {
    auto list = resources->find(section);
    if (list == resources->end() || !list->is_object()) continue;
    for (auto it = list->begin(); it != list->end(); ++it)
      if (gpu.is_gpu(it.key()) && std::find(names.begin(), names.end(), it.key()) == names.end())
        names.push_back(it.key());
  }
  return names;
}

bool sets_resource(const json& container, const char* resource) {
  auto resources = container.find("resources");
  if (resources == container.end() || !resources->is_object()) return false;
  for (const char* section : {"limits", "requests"}) {
    auto list = resources->find(section);
    if (list != resources->end() && list->is_object() && list->contains(resource)) return true;
  }
  return false;
}

bool selects_sharing(std::string_view key, const std::string& value) {
  if (key == kSharingStrategyLabel) return value != "none";
  return key == kProductLabel && value.size() > kSharedProductSuffix.size() && value.ends_with(kSharedProductSuffix);
}

class GpuShape final : public Policy {
 public:
  explicit GpuShape(GpuShapeConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      const json& spec = context.pod_spec(pod);
      if (!spec.is_object()) continue;
      if (context.pod_uses_gpu(pod))
        check_gpu_pod(context, pod, spec);
      else if (context.workload.kind != "DaemonSet")  // node agents run on every node by design
        check_pod_without_gpu(context, pod, spec);
    }
  }

 private:
  struct ContainerGpus {
    std::string name, field;
    bool init = false;
    std::vector<std::pair<std::string, Quantity>> amounts;  // GPU resource -> amount
  };

  void check_gpu_pod(PolicyContext& context, const PodTarget& pod, const json& spec) const {
    std::vector<ContainerGpus> containers;
    for (const char* list : {"initContainers", "containers"})
      for_each_container(spec, pod.field, list, [&](const json& container, const std::string& field) {
        ContainerGpus gpus{k8s::json_fields::string_or(container, "name"), field, list == std::string("initContainers"), {}};
        read_amounts(context, container, gpus);
        if (context.uses_gpu(pod, container)) check_gpu_container(context, container, gpus);
        containers.push_back(std::move(gpus));
      });
    check_pod_totals(context, pod, containers);
    check_mig(context, containers);
    check_sharing(context, pod, spec, containers);
    check_other_ways(context, pod);
  }

  bool may_share(const std::string& ns) const {
    return std::any_of(config_.sharing_namespaces.begin(), config_.sharing_namespaces.end(),
                       [&](const std::string& glob) { return namespace_matches(glob, ns); });
  }

  // GPUs asked for besides resources: KAI's annotations as its admission plugin checks them, a
  // KAI fraction as sharing, and the devices of DRA claims against maxGpusPerPod.
  void check_other_ways(PolicyContext& context, const PodTarget& pod) const {
    const PodGpuUse& use = context.gpu_use(pod);
    for (const PodGpuUse::Problem& problem : use.problems) context.violation(problem.field, problem.message);
    if (use.kai && !may_share(context.workload.namespace_))
      context.violation(field_path(pod.metadata_field, "annotations"),
                        "namespace " + context.workload.namespace_ + " may not use shared GPUs, but the pod asks the KAI "
                        "scheduler for a GPU fraction; a fraction gives no fault isolation between tenants. Request a "
                        "whole nvidia.com/gpu, or ask the platform team to allow sharing here");
    const std::int64_t claimed = use.template_claim_devices + use.named_claim_devices;  // each capped far below overflow
    if (config_.max_gpus_per_pod > 0 && claimed > config_.max_gpus_per_pod)
      context.violation(field_path(pod.field, "resourceClaims"),
                        "the pod's resource claims take at least " + std::to_string(claimed) + " GPU devices, more than the " +
                            std::to_string(config_.max_gpus_per_pod) + " a pod may have; split the work across pods");
  }

  // Reads each GPU amount once and reports one that is not a whole number. Only the first bad
  // side (limits, else requests) is reported: requests-equal-limits copies the limit into the
  // request before validation, and one mistake should read as one message.
  void read_amounts(PolicyContext& context, const json& container, ContainerGpus& gpus) const {
    for (const std::string& resource : gpu_resource_names(context.gpu, container)) {
      bool whole = true;
      for (const char* section : {"limits", "requests"}) {
        std::optional<Quantity> value;
        const std::string field = field_path(gpus.field, std::string("resources.") + section) + "." + resource;
        try {
          value = container_resource(container, section, resource, gpus.field);
        } catch (const k8s::QuantityError& error) {
          context.violation(field, std::string("is not a quantity: ") + error.what());
          whole = false;
          break;
        }
        if (value && !value->is_integer()) {
          context.violation(field, value->to_string() + " is not a whole number: a GPU cannot be split by a request; "
                                   "ask for a MIG slice (nvidia.com/mig-1g.10gb) or a shared GPU instead");
          whole = false;
          break;
        }
      }
      // Counts and limits are judged on whole amounts only; a bad amount is reported above.
      if (whole)
        if (auto value = amount(container, resource, gpus.field)) gpus.amounts.emplace_back(resource, *value);
    }
  }

  void check_gpu_container(PolicyContext& context, const json& container, const ContainerGpus& gpus) const {
    if (config_.max_gpus_per_container > 0)
      for (const auto& [resource, value] : gpus.amounts)
        if (!is_mig(resource) && value > Quantity::from_int(config_.max_gpus_per_container, k8s::QuantityFormat::DecimalSI))
          context.violation(field_path(gpus.field, "resources.limits") + "." + resource,
                            value.to_string() + " " + resource + " is more than the " +
                                std::to_string(config_.max_gpus_per_container) +
                                " a container may have; split the work across containers or pods");
    std::vector<std::string> missing;
    for (const char* resource : {"cpu", "memory"})
      if (!sets_resource(container, resource)) missing.push_back(resource);
    if (!missing.empty())
      report(context, config_.require_cpu_and_memory, field_path(gpus.field, "resources"),
             "a GPU container must set " + join(missing, " and ") +
                 " too (resources.requests and limits): without them it can be starved or evicted, "
                 "losing the model it loaded onto the GPU");
  }

  // The device plugin serves each container separately, so a pod needs the sum over its app
  // containers on one node; an init container's GPUs are handed on to the app containers after
  // it ends, so init containers count with their largest request, as the scheduler counts them.
  void check_pod_totals(PolicyContext& context, const PodTarget& pod, const std::vector<ContainerGpus>& containers) const {
    if (config_.max_gpus_per_pod <= 0) return;
    const Quantity limit = Quantity::from_int(config_.max_gpus_per_pod, k8s::QuantityFormat::DecimalSI);
    std::vector<std::string> resources;
    for (const ContainerGpus& c : containers)
      for (const auto& entry : c.amounts)
        if (!is_mig(entry.first) && std::find(resources.begin(), resources.end(), entry.first) == resources.end())
          resources.push_back(entry.first);
    for (const std::string& resource : resources) {
      Quantity sum, largest_init;
      std::vector<std::string> parts;
      for (const ContainerGpus& c : containers)
        for (const auto& [name, value] : c.amounts) {
          if (name != resource) continue;
          if (c.init) {
            if (value > largest_init) largest_init = value;
          } else {
            sum += value;
            parts.push_back((c.name.empty() ? c.field : c.name) + ": " + value.to_string());
          }
        }
      const Quantity needed = sum > largest_init ? sum : largest_init;
      if (needed <= limit) continue;
      context.violation(field_path(pod.field, "containers"),
                        "the pod needs " + needed.to_string() + " " + resource + " on one node (the device plugin sums "
                        "the requests of its containers: " + join(parts) + "), more than the " +
                            std::to_string(config_.max_gpus_per_pod) +
                            " a pod may have; split the work across pods (a multi-node job)");
    }
  }

  void check_mig(PolicyContext& context, const std::vector<ContainerGpus>& containers) const {
    if (!config_.mig_restricted) return;
    const std::string& ns = context.workload.namespace_;
    const std::vector<std::string>* allowed = nullptr;
    for (const auto& [pattern, resources] : config_.mig_resources)
      if (namespace_matches(pattern, ns)) {
        allowed = &resources;
        break;
      }
    for (const ContainerGpus& c : containers)
      for (const auto& [resource, value] : c.amounts) {
        if (!is_mig(resource) || value.sign() <= 0) continue;
        if (allowed && std::any_of(allowed->begin(), allowed->end(),
                                   [&name = resource](const std::string& glob) { return k8s::glob_match(glob, name); }))
          continue;
        context.violation(field_path(c.field, "resources.limits") + "." + resource,
                          "namespace " + ns + " may not use " + resource +
                              (allowed && !allowed->empty() ? "; MIG resources it may use: " + join(*allowed)
                                                            : "; it has no MIG resources allowed") +
                              ". Ask the platform team, or request a MIG profile from that list");
      }
  }

  void check_sharing(PolicyContext& context, const PodTarget& pod, const json& spec,
                     const std::vector<ContainerGpus>& containers) const {
    std::optional<NodeChoice> pool;
    for (const NodeChoice& choice : node_choices(spec, pod.field))
      for (const std::string& value : choice.values)
        if (!pool && selects_sharing(choice.key, value)) pool = choice;
    const bool ns_may_share = may_share(context.workload.namespace_);
    for (const ContainerGpus& c : containers) {
      Quantity shared;
      std::string resource;
      for (const auto& [name, value] : c.amounts) {
        const bool shared_resource = std::find(config_.shared_resources.begin(), config_.shared_resources.end(),
                                               name) != config_.shared_resources.end();
        if (shared_resource || (pool && name == "nvidia.com/gpu")) {
          shared += value;
          resource = name;
        }
      }
      if (shared.sign() <= 0) continue;
      const std::string how = pool ? "it selects a shared GPU pool (" + pool->key + " " + join(pool->values) + ")"
                                   : "it requests " + resource;
      if (!ns_may_share) {
        context.violation(pool ? pool->field : field_path(c.field, "resources.limits") + "." + resource,
                          "namespace " + context.workload.namespace_ +
                              " may not use shared GPUs (time-slicing or MPS), but " + how +
                              "; shared GPUs give no memory or fault isolation between tenants. Request a whole "
                              "nvidia.com/gpu on a dedicated node, or ask the platform team to allow sharing here");
        return;
      }
      if (shared > Quantity::from_int(1, k8s::QuantityFormat::DecimalSI))
        context.violation(field_path(c.field, "resources.limits") + "." + resource,
                          shared.to_string() + " shared GPUs: on a time-sliced or MPS GPU more than 1 buys no more "
                          "compute (the replicas may be the same physical GPU); request 1, or whole GPUs on a "
                          "dedicated node");
    }
  }

  void check_pod_without_gpu(PolicyContext& context, const PodTarget& pod, const json& spec) const {
    if (config_.gpu_nodes_without_gpu == CheckLevel::Off) return;
    // A toleration with no key tolerates every taint: a node agent, not a pod aiming at GPU nodes.
    const auto aim = config_.gpu_nodes.aim(spec, pod.field, /*keyless=*/false);
    if (!aim) return;
    report(context, config_.gpu_nodes_without_gpu, aim->field,
           "the pod " + aim->what + " but requests no GPU, so it would take room on a GPU node that GPU jobs need; "
           "request nvidia.com/gpu, or remove the toleration/selector to run it on CPU nodes");
  }

  GpuShapeConfig config_;
};

}  // namespace

PolicyInfo gpu_shape_info() {
  return {"gpu-shape", PolicyKind::Validating,
          "GPU requests are whole, bounded, with cpu and memory; no GPU nodes for pods without GPUs; MIG and "
          "shared GPUs only where allowed",
          {
           {"maxGpusPerPod", "integer", "0 (no limit)",
            "most GPUs of one resource (MIG slices excepted) a pod may need on one node"},
           {"maxGpusPerContainer", "integer", "0 (no limit)",
            "most GPUs of one resource (MIG slices excepted) per container"},
           {"requireCpuAndMemory", "level", "violation",
            "level for a GPU container that sets no cpu or no memory (request or limit)"},
           {"podsOnGpuNodesWithoutGpu", "level", "violation",
            "level for a pod (not a DaemonSet) that tolerates a GPU taint or selects GPU nodes but requests no GPU"},
           kGpuTaintKeysKey,
           kGpuNodeLabelsKey,
           {"migResources", "map: namespace glob → list of globs", "absent: all allowed",
            "map: namespace glob → MIG resource globs it may use (`nvidia.com/mig-1g.*`); first match wins; a namespace matching none may use no MIG"},
           {"sharedGpuResources", "list of resource names", "`[nvidia.com/gpu.shared]`",
            "resources that are shares of a GPU; each must be in `gpuResources`"},
           {"sharingNamespaces", "list of globs", "none",
            "namespace globs allowed to use shared (time-sliced or MPS) GPUs"}},
          [](const ConfigNode& node, const PolicyBuildContext& build) -> std::unique_ptr<Policy> {
            GpuShapeConfig config;
            config.max_gpus_per_pod = node.integer("maxGpusPerPod", 0);
            config.max_gpus_per_container = node.integer("maxGpusPerContainer", 0);
            if (config.max_gpus_per_pod < 0) node.child("maxGpusPerPod").fail("must be 0 (no limit) or more");
            if (config.max_gpus_per_container < 0) node.child("maxGpusPerContainer").fail("must be 0 (no limit) or more");
            config.require_cpu_and_memory = parse_check_level(node.child("requireCpuAndMemory"), CheckLevel::Violation);
            config.gpu_nodes_without_gpu = parse_check_level(node.child("podsOnGpuNodesWithoutGpu"), CheckLevel::Violation);
            config.gpu_nodes = GpuNodes::parse(node);
            config.mig_restricted = node.has("migResources");
            for (auto& [pattern, list] : node.child("migResources").entries()) {
              std::vector<std::string> resources;
              for (const ConfigNode& item : list.items()) {
                std::string resource = item.as_string();
                if (!resource.starts_with(kMigPrefix))
                  item.fail("MIG resources are named nvidia.com/mig-<profile> (globs allowed, e.g. nvidia.com/mig-1g.*)");
                resources.push_back(std::move(resource));
              }
              config.mig_resources.emplace_back(pattern, std::move(resources));
            }
            config.shared_resources = node.has("sharedGpuResources") ? node.strings("sharedGpuResources")
                                                                     : std::vector<std::string>{"nvidia.com/gpu.shared"};
            for (const ConfigNode& item : node.child("sharedGpuResources").items())
              if (!build.gpu.is_gpu(item.as_string()))
                item.fail("'" + item.as_string() + "' is not a GPU resource; add it to the top-level gpuResources too");
            config.sharing_namespaces = node.strings("sharingNamespaces");
            return std::make_unique<GpuShape>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
