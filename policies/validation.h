// What the validating policies share: walking every container of every pod spec, RE2 and glob
// patterns compiled once at load, and checks whose weight the config chooses.
#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/text.h"
#include "policies/policies.h"

namespace gpuadmit::policies {

// How one check inside a policy reports: as a violation (the policy's mode decides deny, warn or
// audit), as a warning that never denies, or not at all. Config values: violation, warning, off.
enum class CheckLevel { Violation, Warning, Off };
CheckLevel parse_check_level(const ConfigNode& node, CheckLevel fallback);
void report(PolicyContext& context, CheckLevel level, std::string field, std::string message);

// Calls `visit(pod, spec, container, field)` for every container, init container and ephemeral
// container of every pod spec in the object; with `gpu_pods_only`, only in pod specs that use GPUs.
template <typename Visit>
void for_each_pod_container(const PolicyContext& context, bool gpu_pods_only, Visit visit) {
  for (const PodTarget& pod : context.workload.pods) {
    const nlohmann::json& spec = context.pod_spec(pod);
    if (!spec.is_object() || (gpu_pods_only && !context.pod_uses_gpu(pod))) continue;
    for (const char* list : {"containers", "initContainers", "ephemeralContainers"})
      for_each_container(spec, pod.field, list, [&](const nlohmann::json& container, const std::string& field) {
        visit(pod, spec, container, field);
      });
  }
}

// A list of RE2 patterns from the config, each compiled once; a bad one is a config error
// naming its list entry. Matching is against the whole text unless the pattern says otherwise.
std::vector<std::shared_ptr<const RE2>> compile_regexes(const ConfigNode& list);
bool full_match_any(const std::vector<std::shared_ptr<const RE2>>& patterns, const std::string& text);
bool partial_match_any(const std::vector<std::shared_ptr<const RE2>>& patterns, const std::string& text);

// `list, of, words` for messages.

}  // namespace gpuadmit::policies
