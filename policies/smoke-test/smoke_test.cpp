// smoke-test: prove the GPU a pod landed on works before the model starts loading. Adds an init
// container running gpu-smoke with the same GPU resources as the pod's largest GPU container.
// Init containers run one at a time and the pod's effective request is the max of init and app
// needs, so this adds no GPU demand.
#include "engine/resources.h"
#include "engine/k8s/json_fields.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
constexpr std::string_view kAnnotation = "gpu-admit.io/smoke-test";

struct SmokeConfig {
  std::string image;
  std::vector<std::string> args;
  std::vector<std::string> namespaces;  // globs where every GPU pod gets the check
  std::string container_name = "gpu-smoke-test";
  json resources = {{"cpu", "1"}, {"memory", "2Gi"}};
};

class SmokeTest final : public Policy {
 public:
  explicit SmokeTest(SmokeConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      if (!wanted(context, pod) || already_added(spec)) continue;
      const json* largest = largest_gpu_container(context, pod, spec);
      if (!largest) continue;
      json resources = {{"requests", config_.resources}, {"limits", config_.resources}};
      // Requests equal limits for GPUs; a side the container left out is the other side.
      for (const char* section : {"requests", "limits"}) {
        const json& list = (*largest)["resources"].value(section, json::object());
        for (auto it = list.begin(); it != list.end(); ++it)
          if (context.gpu.is_gpu(it.key())) {
            resources["requests"][it.key()] = it.value();
            resources["limits"][it.key()] = it.value();
          }
      }
      json container = {{"name", config_.container_name},
                        {"image", config_.image},
                        {"resources", resources},
                        {"securityContext",
                         {{"allowPrivilegeEscalation", false},
                          {"runAsNonRoot", true},
                          {"capabilities", {{"drop", {"ALL"}}}}}}};
      if (!config_.args.empty()) container["args"] = config_.args;
      if (spec.contains("initContainers") && !spec["initContainers"].is_array())
        throw std::invalid_argument(field_path(pod.field, "initContainers") + " must be a list");
      spec["initContainers"].push_back(std::move(container));
      context.changed(field_path(pod.field, "initContainers"),
                      "added init container " + config_.container_name + " running " + config_.image +
                          " on the same GPUs as " + k8s::json_fields::string_or(*largest, "name", "the GPU container"));
    }
  }

 private:
  bool wanted(const PolicyContext& context, const PodTarget& pod) const {
    if (context.annotation(pod, kAnnotation) == "true") return true;
    return std::any_of(config_.namespaces.begin(), config_.namespaces.end(),
                       [&](const std::string& glob) { return namespace_matches(glob, context.workload.namespace_); });
  }

  bool already_added(const json& spec) const {
    auto it = spec.find("initContainers");
    if (it == spec.end() || !it->is_array()) return false;
    return std::any_of(it->begin(), it->end(), [&](const json& c) {
      return c.is_object() && k8s::json_fields::string_or(c, "name") == config_.container_name;
    });
  }

  // The app container with the most GPUs (summed over GPU resource limits, else requests).
  // A container given its GPU by a DRA claim or KAI's annotations counts none here.
  static const json* largest_gpu_container(const PolicyContext& context, const PodTarget& pod, const json& spec) {
    const json* best = nullptr;
    k8s::Quantity best_count;
    for_each_container(spec, pod.field, "containers", [&](const json& container, const std::string& field) {
      if (!context.uses_gpu(pod, container)) return;
      k8s::Quantity count;
      static const json kNone = json::object();
      auto found = container.find("resources");
      const json& resources = found != container.end() && found->is_object() ? *found : kNone;
      for (const char* section : {"limits", "requests"}) {
        if (!resources.contains(section) || !resources[section].is_object()) continue;
        k8s::Quantity sum;
        for (auto it = resources[section].begin(); it != resources[section].end(); ++it)
          if (context.gpu.is_gpu(it.key())) sum += quantity_from_json(it.value(), field + ".resources." + section);
        if (sum > count) count = sum;
      }
      if (!best || count > best_count) {
        best = &container;
        best_count = count;
      }
    });
    return best;
  }

  SmokeConfig config_;
};

}  // namespace

PolicyInfo smoke_test_info() {
  return {"smoke-test", PolicyKind::Mutating,
          "adds a gpu-smoke init container on the pod's GPUs (annotation gpu-admit.io/smoke-test or namespaces)",
          {
           {"image", "string", "required",
            "the gpu-smoke image built from `smoke/Dockerfile`, in your registry"},
           {"args", "list of strings", "`[]`",
            "arguments for gpu-smoke (e.g. `--json`)"},
           {"namespaces", "list of globs", "`[]`",
            "namespace globs where every GPU pod gets the check; elsewhere only annotated pods"},
           {"containerName", "string", "gpu-smoke-test",
            "name of the added init container"},
           {"resources", "map: resource → quantity", "`{cpu: \"1\", memory: 2Gi}`",
            "its cpu/memory requests and limits (the GPU resources are copied)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            SmokeConfig config;
            config.image = node.string("image", "");
            if (config.image.empty()) node.fail("image is required: the gpu-smoke image built from smoke/Dockerfile");
            config.args = node.strings("args");
            config.namespaces = node.strings("namespaces");
            config.container_name = node.string("containerName", config.container_name);
            if (node.has("resources")) {
              config.resources = json::object();
              for (const auto& [name, value] : node.child("resources").entries()) {
                k8s::Quantity quantity;
                std::string error;
                if (!k8s::Quantity::try_parse(value.as_string(), quantity, &error)) value.fail(error);
                config.resources[name] = value.as_string();
              }
            }
            return std::make_unique<SmokeTest>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
