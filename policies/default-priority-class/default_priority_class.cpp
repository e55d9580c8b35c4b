// default-priority-class: GPU pods of a namespace get its PriorityClass when they name none, so
// production inference can preempt best-effort batch work without every manifest saying so.
//
// A Pod reaches the webhook after the API server's Priority admission plugin has set
// spec.priority (and spec.priorityClassName to the global default class, when one exists: such
// a Pod already names a class and is left alone). Naming another class without the matching
// priority would leave the Pod inconsistent, and the plugin refuses a priority that differs
// from its class when it runs again; so a Pod gets the class's value and preemptionPolicy too,
// and only when gpu-admit knows the class. A pod template gets only the name: its pods meet the
// plugin when the controller creates them.
#include "engine/k8s/json_fields.h"
#include "policies/policies.h"
#include "policies/priority.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

// A DNS-1123 subdomain, what the API server requires of a PriorityClass's name.
bool is_dns_subdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !((c == '-' || c == '.') && i > 0 && i + 1 < name.size())) return false;
  }
  return true;
}

struct NamespaceDefault {
  std::string namespace_glob;
  std::string class_name;
};

class DefaultPriorityClass final : public Policy {
 public:
  explicit DefaultPriorityClass(std::vector<NamespaceDefault> defaults) : defaults_(std::move(defaults)) {}

  void run(PolicyContext& context) const override {
    const NamespaceDefault* rule = nullptr;
    for (const NamespaceDefault& d : defaults_)
      if (namespace_matches(d.namespace_glob, context.workload.namespace_)) {
        rule = &d;
        break;
      }
    if (!rule) return;
    std::optional<capacity::ClusterModel::View> view;
    if (context.cluster) view.emplace(context.cluster->read());
    const capacity::ClusterModel::View* cluster = view ? &*view : nullptr;
    const k8s::PriorityClass* pc = find_priority_class(context, cluster, rule->class_name);
    for (const PodTarget& pod : context.workload.pods) {
      if (!context.pod_uses_gpu(pod)) continue;
      json& spec = context.pod_spec(pod);
      if (!k8s::json_fields::string_or(spec, "priorityClassName").empty()) continue;
      const std::string field = field_path(pod.field, "priorityClassName");
      if (!pc && knows_priority_classes(context, cluster)) {
        context.advise(field, "namespace " + context.workload.namespace_ + "'s default PriorityClass " + rule->class_name +
                                  " does not exist in the cluster; the pod keeps its priority");
        continue;
      }
      const bool has_priority = spec.contains("priority") && !spec["priority"].is_null();
      if (has_priority && !pc) {
        context.advise(field, "gpu-admit does not know PriorityClass " + rule->class_name +
                                  "'s value, and the pod's priority is already set; it keeps it");
        continue;
      }
      if (has_priority && context.workload.kind != "Pod") {
        context.advise(field_path(pod.field, "priority"),
                       "the template sets priority, which its pods' PriorityClass would contradict; "
                       "not setting " + rule->class_name);
        continue;
      }
      spec["priorityClassName"] = rule->class_name;
      context.changed(field, "set to " + rule->class_name + ", namespace " + context.workload.namespace_ + "'s default for GPU pods");
      if (has_priority) {  // a Pod past the Priority admission plugin
        spec["priority"] = pc->value;
        spec["preemptionPolicy"] = pc->preempts ? "PreemptLowerPriority" : "Never";
        context.changed(field_path(pod.field, "priority"), "set to " + std::to_string(pc->value) + ", the value of " + pc->name);
      }
    }
  }

 private:
  std::vector<NamespaceDefault> defaults_;
};

}  // namespace

PolicyInfo default_priority_class_info() {
  return {"default-priority-class", PolicyKind::Mutating,
          "gives GPU pods that name no PriorityClass their namespace's default class",
          {{"defaults", "list of {namespace, class}", "`[]`",
            "first matching entry wins: `namespace` (name or glob) and `class` (a PriorityClass name) set on GPU pods and "
            "pod templates that name none"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            std::vector<NamespaceDefault> defaults;
            for (const ConfigNode& item : node.child("defaults").items()) {
              item.allow_only({"namespace", "class"});
              NamespaceDefault d{item.string("namespace", ""), item.string("class", "")};
              if (d.namespace_glob.empty()) item.fail("namespace (a name or glob) is required");
              if (d.class_name.empty()) item.fail("class (a PriorityClass name) is required");
              if (!is_dns_subdomain(d.class_name)) item.child("class").fail("must be a PriorityClass name (a DNS subdomain)");
              defaults.push_back(std::move(d));
            }
            return std::make_unique<DefaultPriorityClass>(std::move(defaults));
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
