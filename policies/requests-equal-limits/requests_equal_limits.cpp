// requests-equal-limits: GPUs cannot be overcommitted, so Kubernetes requires request == limit
// for them; and a GPU pod evicted for memory pressure loses minutes of model loading, so cpu and
// memory get Guaranteed QoS where the user gave one side of the pair.
#include "engine/resources.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

class RequestsEqualLimits final : public Policy {
 public:
  explicit RequestsEqualLimits(std::vector<std::string> others) : others_(std::move(others)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      for (const char* list : {"initContainers", "containers"})
        for_each_container(spec, pod.field, list, [&](json& container, const std::string& field) {
          if (context.uses_gpu(pod, container)) fix(context, container, field);
        });
    }
  }

 private:
  void fix(PolicyContext& context, json& container, const std::string& field) const {
    json& resources = container["resources"];
    std::vector<std::string> gpu_names;
    for (const char* section : {"limits", "requests"})
      if (resources.contains(section) && resources[section].is_object())
        for (auto it = resources[section].begin(); it != resources[section].end(); ++it)
          if (context.gpu.is_gpu(it.key()) &&
              std::find(gpu_names.begin(), gpu_names.end(), it.key()) == gpu_names.end())
            gpu_names.push_back(it.key());

    for (const std::string& name : gpu_names) {
      auto request = container_resource(container, "requests", name, field);
      auto limit = container_resource(container, "limits", name, field);
      if (request && limit && *request != *limit) {
        resources["requests"][name] = resources["limits"][name];
        context.changed(field_path(field, "resources.requests") + "." + name,
                        "set to the limit " + limit->to_string());
        context.advise(field_path(field, "resources.requests") + "." + name,
                       "request " + request->to_string() + " replaced by the limit " + limit->to_string() +
                           ": GPUs cannot be overcommitted, request must equal limit");
      } else {
        complete_pair(context, container, field, name, request.has_value(), limit.has_value());
      }
    }
    for (const std::string& name : others_) {
      auto request = container_resource(container, "requests", name, field);
      auto limit = container_resource(container, "limits", name, field);
      complete_pair(context, container, field, name, request.has_value(), limit.has_value());
    }
  }

  // Copies the side that is present into the side that is missing; invents nothing.
  static void complete_pair(PolicyContext& context, json& container, const std::string& field,
                            const std::string& name, bool has_request, bool has_limit) {
    if (has_request == has_limit) return;
    json& resources = container["resources"];
    const char* from = has_request ? "requests" : "limits";
    const char* to = has_request ? "limits" : "requests";
    resources[to][name] = resources[from][name];
    context.changed(field_path(field, std::string("resources.") + to) + "." + name,
                    std::string("set to the ") + (has_request ? "request " : "limit ") +
                        quantity_from_json(resources[from][name], field).to_string());
  }

  std::vector<std::string> others_;
};

}  // namespace

PolicyInfo requests_equal_limits_info() {
  return {"requests-equal-limits", PolicyKind::Mutating,
          "makes GPU containers' requests equal their limits (GPUs always; cpu and memory when one side is set)",
          {
           {"resources", "list of resource names", "`[cpu, memory]`",
            "non-GPU resources whose missing request or limit is copied from the other side in GPU containers"}},
          [](const ConfigNode& node, const PolicyBuildContext& build) -> std::unique_ptr<Policy> {
            std::vector<std::string> others = node.has("resources") ? node.strings("resources")
                                                                    : std::vector<std::string>{"cpu", "memory"};
            for (const ConfigNode& item : node.child("resources").items())
              if (build.gpu.is_gpu(item.as_string()))
                item.fail("GPU resources are always handled; list only other resources here");
            return std::make_unique<RequestsEqualLimits>(std::move(others));
          }};
}

}  // namespace gpuadmit::policies
