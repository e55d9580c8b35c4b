// env-secrets: a token written as a literal env value is readable by everyone who can read the
// workload, and lands in Git, CI logs and `kubectl get -o yaml`. Secrets belong in a Secret,
// referenced with valueFrom.secretKeyRef. Messages name the variable, never its value.
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

// Names that hold secrets in GPU workloads: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, WANDB_API_KEY,
// AWS_SECRET_ACCESS_KEY, ... Matched as whole `_`-separated words, so MAX_INPUT_TOKENS and
// TOKENIZERS_PARALLELISM (common in LLM servers, and not secrets) are left alone.
const std::vector<std::string> kDefaultNames = {
    "(?i)(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)(_|$)"};

// `$(OTHER_VAR)`: Kubernetes expands it from another variable, so the manifest holds no secret.
const RE2& variable_reference() {
  static const RE2 pattern(R"(\$\([A-Za-z_][A-Za-z0-9_.-]*\))");
  return pattern;
}

struct EnvSecretsConfig {
  std::vector<std::shared_ptr<const RE2>> names;
  std::vector<std::shared_ptr<const RE2>> ignored;
  CheckLevel config_map_refs = CheckLevel::Warning;
  bool gpu_pods_only = false;
};

class EnvSecrets final : public Policy {
 public:
  explicit EnvSecrets(EnvSecretsConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for_each_pod_container(context, config_.gpu_pods_only, [&](const PodTarget&, const json&, const json& container,
                                                                const std::string& field) {
      auto env = container.find("env");
      if (env == container.end() || !env->is_array()) return;
      for (std::size_t i = 0; i < env->size(); ++i) check(context, (*env)[i], field_path(field, "env", i));
    });
  }

 private:
  void check(PolicyContext& context, const json& var, const std::string& field) const {
    if (!var.is_object() || !var.contains("name") || !var["name"].is_string()) return;
    const std::string name = var["name"].get<std::string>();
    if (!partial_match_any(config_.names, name) || full_match_any(config_.ignored, name)) return;
    auto value = var.find("value");
    if (value != var.end() && value->is_string() && !value->get<std::string>().empty() &&
        !RE2::FullMatch(value->get<std::string>(), variable_reference())) {
      context.violation(field_path(field, "value"),
                        "env " + name + " looks like a secret but has a literal value, readable by anyone who "
                        "can read this object; put it in a Secret and use valueFrom.secretKeyRef "
                        "(kubectl create secret generic <name> --from-literal=" + name + "=...)");
      return;
    }
    auto from = var.find("valueFrom");
    if (from != var.end() && from->is_object() && from->contains("configMapKeyRef"))
      report(context, config_.config_map_refs, field_path(field, "valueFrom.configMapKeyRef"),
             "env " + name + " looks like a secret but comes from a ConfigMap, which is not access-controlled "
             "like a Secret; use valueFrom.secretKeyRef");
  }

  EnvSecretsConfig config_;
};

}  // namespace

PolicyInfo env_secrets_info() {
  return {"env-secrets", PolicyKind::Validating,
          "env vars named like secrets must come from valueFrom.secretKeyRef, not a literal value",
          {
           {"names", "list of RE2 patterns", "TOKEN, SECRET, PASSWORD, PASSWD, API_KEY, APIKEY, ACCESS_KEY, PRIVATE_KEY, CREDENTIAL(S) as whole `_`-separated words, any case",
            "RE2 patterns found anywhere in a variable's name mark it as a secret"},
           {"ignoredNames", "list of RE2 patterns", "",
            "RE2 patterns matching whole names that are never secrets"},
           {"configMapRefs", "level", "warning",
            "level for a secret-named variable taken from `valueFrom.configMapKeyRef`"},
           {"gpuPodsOnly", "bool", "false",
            "check only pod specs that use GPUs"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            EnvSecretsConfig config;
            if (node.has("names")) {
              config.names = compile_regexes(node.child("names"));
              if (config.names.empty()) node.child("names").fail("list at least one name pattern (or use mode: off)");
            } else {
              for (const std::string& text : kDefaultNames) config.names.push_back(std::make_shared<const RE2>(text));
            }
            config.ignored = compile_regexes(node.child("ignoredNames"));
            config.config_map_refs = parse_check_level(node.child("configMapRefs"), CheckLevel::Warning);
            config.gpu_pods_only = node.boolean("gpuPodsOnly", false);
            return std::make_unique<EnvSecrets>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
