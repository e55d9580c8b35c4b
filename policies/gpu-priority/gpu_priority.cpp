// gpu-priority: which PriorityClasses a namespace's GPU pods may use, and that the class they
// name exists. A high class lets a pod preempt others' GPUs, so it is the platform team's to
// hand out; and a Deployment naming a class that does not exist is accepted while every pod it
// creates is rejected, which nobody sees until the rollout stalls.
#include "engine/k8s/json_fields.h"
#include "engine/text.h"
#include "policies/policies.h"
#include "policies/priority.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct Allowed {
  std::string namespace_glob;
  std::vector<std::string> classes;
};

class GpuPriority final : public Policy {
 public:
  GpuPriority(std::vector<Allowed> allowed, bool require_existing)
      : allowed_(std::move(allowed)), require_existing_(require_existing) {}

  void run(PolicyContext& context) const override {
    const std::string& ns = context.workload.namespace_;
    const Allowed* rule = nullptr;
    for (const Allowed& a : allowed_)
      if (namespace_matches(a.namespace_glob, ns)) {
        rule = &a;
        break;
      }
    if (!rule && !require_existing_) return;
    std::optional<capacity::ClusterModel::View> view;
    if (context.cluster) view.emplace(context.cluster->read());
    const capacity::ClusterModel::View* cluster = view ? &*view : nullptr;
    for (const PodTarget& pod : context.workload.pods) {
      if (!context.pod_uses_gpu(pod)) continue;
      const json& spec = context.pod_spec(pod);
      const std::string field = field_path(pod.field, "priorityClassName");
      const std::string written = k8s::json_fields::string_or(spec, "priorityClassName");
      if (!written.empty() && require_existing_ && knows_priority_classes(context, cluster) &&
          !find_priority_class(context, cluster, written)) {
        context.violation(field, "PriorityClass " + quoted_short(written) +
                                     " does not exist in the cluster, so the API server rejects every pod that names it; "
                                     "create the class or name an existing one");
        continue;
      }
      if (!rule) continue;
      // No class written: the pod gets the global default class, which must be allowed too.
      const std::string effective = written.empty() ? pod_priority(context, cluster, spec).class_name : written;
      if (effective.empty()) continue;  // priority 0: the lowest, nothing to guard
      if (std::find(rule->classes.begin(), rule->classes.end(), effective) != rule->classes.end()) continue;
      const std::string allowed = rule->classes.empty() ? "none" : join(rule->classes, ", ");
      context.violation(field, "GPU pods in namespace " + ns + " may use the PriorityClasses " + allowed + "; " +
                                   (written.empty() ? "this pod would get the global default " : "this names ") +
                                   quoted_short(effective) + ". Ask the platform team for a higher class");
    }
  }

 private:
  // Names are DNS subdomains, but a manifest may write anything: at most a short piece of it.
  static std::string quoted_short(const std::string& name) { return shorten(name, 64); }

  std::vector<Allowed> allowed_;
  bool require_existing_;
};

}  // namespace

PolicyInfo gpu_priority_info() {
  return {"gpu-priority", PolicyKind::Validating,
          "limits the PriorityClasses a namespace's GPU pods may use, and denies a class that does not exist",
          {{"allowed", "list of {namespace, classes}", "`[]`",
            "first matching entry wins: `namespace` (name or glob) and `classes`, the PriorityClasses its GPU pods may "
            "name (a pod naming none is checked with the global default class); namespaces no entry matches may use any"},
           {"requireExistingClass", "bool", "`true`",
            "deny a GPU workload naming a PriorityClass the cluster does not have (decided only when gpu-admit knows "
            "the cluster's classes: from the live watch, a snapshot, or the files `check` reads)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            std::vector<Allowed> allowed;
            for (const ConfigNode& item : node.child("allowed").items()) {
              item.allow_only({"namespace", "classes"});
              Allowed a{item.string("namespace", ""), item.strings("classes")};
              if (a.namespace_glob.empty()) item.fail("namespace (a name or glob) is required");
              if (!item.has("classes")) item.fail("classes (a list of PriorityClass names, may be empty) is required");
              allowed.push_back(std::move(a));
            }
            return std::make_unique<GpuPriority>(std::move(allowed), node.boolean("requireExistingClass", true));
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
