// pod-security: GPU nodes are the most expensive nodes in the cluster and hold other tenants'
// models and data; a GPU pod gets no way out of its container (privileged, host namespaces,
// host paths) and should not run as root.
#include "engine/k8s/glob.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct PodSecurityConfig {
  std::vector<std::string> allowed_host_paths;  // globs over the volume's path
  CheckLevel run_as_non_root = CheckLevel::Violation;
  bool gpu_pods_only = true;
};

const json* find_object(const json& parent, const char* key) {
  auto it = parent.find(key);
  return it != parent.end() && it->is_object() ? &*it : nullptr;
}

// A field that is literally true; a wrong type is for the API server's validation to reject.
bool is_true(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && *it == true;
}

// The container's securityContext field, else the pod's, as the kubelet resolves it.
const json* effective(const json* container_context, const json* pod_context, const char* key) {
  for (const json* context : {container_context, pod_context})
    if (context && context->contains(key) && !(*context)[key].is_null()) return &(*context)[key];
  return nullptr;
}

class PodSecurity final : public Policy {
 public:
  explicit PodSecurity(PodSecurityConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    // A partial pod spec's security context, volumes and host namespaces are its runtime's.
    if (context.workload.partial_pod_spec) return;
    for (const PodTarget& pod : context.workload.pods) {
      const json& spec = context.pod_spec(pod);
      if (!spec.is_object() || (config_.gpu_pods_only && !context.pod_uses_gpu(pod))) continue;
      check_pod(context, pod, spec);
    }
    for_each_pod_container(context, config_.gpu_pods_only, [&](const PodTarget& pod, const json& spec,
                                                                const json& container, const std::string& field) {
      check_container(context, pod, spec, container, field);
    });
  }

 private:
  void check_pod(PolicyContext& context, const PodTarget& pod, const json& spec) const {
    if (is_true(spec, "hostPID"))
      context.violation(field_path(pod.field, "hostPID"),
                        "hostPID lets this pod see and signal every process on the node, other tenants' GPU jobs "
                        "included; remove it");
    if (is_true(spec, "hostNetwork"))
      context.violation(field_path(pod.field, "hostNetwork"),
                        "hostNetwork puts this pod on the node's network, beside node-local services and other "
                        "tenants' traffic; remove it and expose ports through a Service");
    auto volumes = spec.find("volumes");
    if (volumes == spec.end() || !volumes->is_array()) return;
    for (std::size_t i = 0; i < volumes->size(); ++i) {
      const json* host_path = find_object((*volumes)[i], "hostPath");
      if (!host_path) continue;
      auto path_field = host_path->find("path");
      const std::string path = path_field != host_path->end() && path_field->is_string() ? path_field->get<std::string>() : "";
      const bool allowed = std::any_of(config_.allowed_host_paths.begin(), config_.allowed_host_paths.end(),
                                       [&](const std::string& glob) { return k8s::glob_match(glob, path); });
      if (!allowed)
        context.violation(field_path(field_path(pod.field, "volumes", i), "hostPath"),
                          "hostPath volume " + path + " exposes the node's files to this pod; use a "
                          "persistentVolumeClaim, an emptyDir or a CSI volume" +
                              (config_.allowed_host_paths.empty() ? std::string()
                                                                  : " (allowed host paths: " +
                                                                        join(config_.allowed_host_paths) + ")"));
    }
  }

  void check_container(PolicyContext& context, const PodTarget&, const json& spec, const json& container,
                       const std::string& field) const {
    const json* own = find_object(container, "securityContext");
    const json* pod_context = find_object(spec, "securityContext");
    if (own && is_true(*own, "privileged"))
      context.violation(field_path(field, "securityContext.privileged"),
                        "a privileged container controls the whole node, its GPUs and other tenants' pods; "
                        "remove privileged: true (GPUs are reachable without it through the device plugin)");
    if (config_.run_as_non_root == CheckLevel::Off) return;
    const json* user = effective(own, pod_context, "runAsUser");
    if (user && user->is_number_integer() && user->get<std::int64_t>() == 0) {
      report(context, config_.run_as_non_root, field_path(field, "securityContext.runAsUser"),
             "runAsUser 0 runs the container as root; use a non-zero user id");
      return;
    }
    const json* non_root = effective(own, pod_context, "runAsNonRoot");
    const bool has_user = user && user->is_number_integer() && user->get<std::int64_t>() > 0;
    if (has_user || (non_root && *non_root == true)) return;
    report(context, config_.run_as_non_root, field_path(field, "securityContext"),
           "may run as root; set runAsNonRoot: true");
  }

  PodSecurityConfig config_;
};

}  // namespace

PolicyInfo pod_security_info() {
  return {"pod-security", PolicyKind::Validating,
          "GPU pods: no privileged containers, hostPath volumes (unless allowed), hostPID or hostNetwork; "
          "runAsNonRoot",
          {
           {"allowedHostPaths", "list of globs", "none",
            "globs of host paths a `hostPath` volume may mount (`/data/models/**`)"},
           {"runAsNonRoot", "level", "violation",
            "level for a container that may run as root"},
           {"gpuPodsOnly", "bool", "true",
            "check only pod specs that use GPUs (leave other pods to Pod Security admission)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            PodSecurityConfig config;
            config.allowed_host_paths = node.strings("allowedHostPaths");
            for (const ConfigNode& item : node.child("allowedHostPaths").items())
              if (!item.as_string().starts_with("/")) item.fail("host paths are absolute: start the pattern with /");
            config.run_as_non_root = parse_check_level(node.child("runAsNonRoot"), CheckLevel::Violation);
            config.gpu_pods_only = node.boolean("gpuPodsOnly", true);
            return std::make_unique<PodSecurity>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
