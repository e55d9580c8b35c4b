// The parts of a workload kind's declaration (gpuadmit/workload.h: WorkloadKinds): paths into an
// object, with wildcards, and pod counts computed from its fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gpuadmit/workload.h"

namespace gpuadmit {

// "spec.workerGroupSpecs[*].template": keys, [*] for every item of a list, * for every value of
// a map.
struct FieldPath {
  struct Step {
    enum Type { Key, EachItem, EachValue } type = Key;
    std::string key;
  };
  std::vector<Step> steps;
  std::string text;
};

// A pod count: the product of its factors, each a constant or an integer field. A field path's
// wildcards take the items the pod template was found in (`bindings`, pointers from the root).
struct Count {
  struct Factor {
    std::optional<std::int64_t> constant;
    FieldPath path;
    std::optional<std::int64_t> fallback;  // when the field is absent
    std::int64_t minus = 0;                // subtracted (not below 0) ...
    FieldPath minus_when;                  // ... only when this field is present, if given
  };
  std::vector<Factor> factors;
  bool declared = false;
  // An absent field without a declared default counts as `fallback`, and clears `complete`.
  std::int64_t evaluate(const nlohmann::json& object, const std::vector<nlohmann::json::json_pointer>& bindings,
                        std::int64_t fallback, bool* complete = nullptr) const;
};

struct WorkloadKinds::Declaration {
  std::string group, kind, plural;
  std::vector<std::string> versions;  // empty: every version
  bool batch = false;
  bool gang = false;
  bool operator_probes = false;
  bool partial_pod_spec = false;
  bool builtin_controller = false;  // Kubernetes' own (Deployment, Job, ...)
  struct Pods {
    FieldPath path;
    bool inline_spec = false;  // a PodSpec written inline (KServe), not a PodTemplateSpec
    std::vector<std::string> shorthand;
    std::vector<std::string> shorthand_resources;  // per shorthand container; empty: `resources`
    Count replicas;
    Count gang;  // not declared: all of `replicas`
  };
  std::vector<Pods> pods;
};

}  // namespace gpuadmit
