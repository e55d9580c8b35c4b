// serving-args: what a model server is told on its command line decides whether it can use the
// GPUs it holds. vLLM, SGLang and TGI shard a model over tensor-parallel × pipeline-parallel
// GPUs; more than the container got crash-loops while holding them (vllm #5450), fewer leaves
// the rest idle. Tokens passed as flags are as readable as literal env values. A model pulled by
// name without a revision changes under a running service, and one with no cache volume is
// downloaded again on every restart. Messages name flags, never their values.
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "engine/k8s/json_fields.h"
#include "engine/resources.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct Server {
  std::string name;
  std::vector<std::shared_ptr<const RE2>> images;    // matched anywhere in the image reference
  std::vector<std::shared_ptr<const RE2>> commands;  // matched anywhere in the joined command and args
  // Factors whose product is the GPUs the server shards over; each factor is a group of
  // alternative flags (--tensor-parallel-size or -tp). A factor not given is 1.
  std::vector<std::vector<std::string>> parallel;
  bool unset_means_all = false;      // no factor given: the server takes every GPU it sees (TGI)
  std::vector<std::string> unknown_with;  // flags that make the count unknowable here (multi-node)
  std::vector<std::string> model;         // flags naming the model
  std::vector<std::string> model_after;   // words followed by the model ("vllm serve <model>")
  std::vector<std::string> revision;      // flags pinning its revision
  std::vector<std::string> caps;          // context-length and concurrency caps
};

std::vector<std::shared_ptr<const RE2>> regexes(std::initializer_list<const char*> texts) {
  std::vector<std::shared_ptr<const RE2>> out;
  for (const char* text : texts) out.push_back(std::make_shared<const RE2>(text));
  return out;
}

std::vector<Server> default_servers() {
  std::vector<Server> servers(3);
  servers[0] = {"vllm", regexes({R"((^|/)vllm-openai([:@]|$))"}), regexes({R"(\bvllm\s+serve\b)", R"(vllm\.entrypoints)"}),
                {{"--tensor-parallel-size", "-tp"}, {"--pipeline-parallel-size", "-pp"},
                 {"--data-parallel-size-local", "--data-parallel-size", "-dp"}},
                false, {"--data-parallel-address", "--headless"}, {"--model"}, {"serve"}, {"--revision"},
                {"--max-model-len", "--max-num-seqs"}};
  servers[1] = {"sglang", regexes({R"((^|/)lmsysorg/sglang([:@]|$))"}), regexes({R"(sglang\.launch_server)"}),
                {{"--tp-size", "--tp", "--tensor-parallel-size"}, {"--pp-size", "--pipeline-parallel-size"}},
                false, {"--dp-size", "--dp", "--data-parallel-size", "--nnodes"}, {"--model-path", "--model"}, {},
                {"--revision"}, {"--context-length", "--max-running-requests"}};
  servers[2] = {"tgi", regexes({R"((^|/)text-generation-inference([:@]|$))"}), regexes({R"(\btext-generation-launcher\b)"}),
                {{"--num-shard"}}, true, {}, {"--model-id"}, {}, {"--revision"},
                {"--max-total-tokens", "--max-concurrent-requests"}};
  return servers;
}

struct ServingArgsConfig {
  std::vector<Server> servers = default_servers();
  CheckLevel parallelism = CheckLevel::Violation;
  CheckLevel secret_arguments = CheckLevel::Violation;
  CheckLevel unpinned_models = CheckLevel::Warning;
  CheckLevel model_cache = CheckLevel::Warning;
  CheckLevel token_caps = CheckLevel::Off;
  std::vector<std::string> secret_flags = {"--api-key", "--hf-token", "--token", "--huggingface-token",
                                           "--hub-token", "--openai-api-key"};
  // Access tokens by their published shapes (Hugging Face, OpenAI, GitHub, AWS, Slack): one
  // pattern, so each word is matched once.
  std::shared_ptr<const RE2> secret_values = std::make_shared<const RE2>(
      R"(hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,})");
};

// Python's argparse in these servers takes --max_model_len for --max-model-len.
std::string normalized(std::string word) {
  if (!word.starts_with("--")) return word;
  const std::size_t name_end = std::min(word.find('='), word.size());
  std::replace(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(name_end), '_', '-');
  return word;
}

// command then args, a word each; a word with spaces (an `sh -c` script) is split on them.
std::vector<std::string> words_of(const json& container) {
  std::vector<std::string> words;
  for (const char* key : {"command", "args"}) {
    auto list = container.find(key);
    if (list == container.end() || !list->is_array()) continue;
    for (const json& item : *list) {
      if (!item.is_string()) continue;
      const std::string& text = item.get_ref<const std::string&>();
      std::size_t start = 0;
      while (start < text.size()) {
        const std::size_t space = text.find_first_of(" \t\n", start);
        const std::size_t end = space == std::string::npos ? text.size() : space;
        if (end > start) words.push_back(normalized(text.substr(start, end - start)));
        start = end + 1;
      }
    }
  }
  return words;
}

// The value of the first of `flags` in `words` ("--flag value" or "--flag=value"), and where.
std::optional<std::string> flag_value(const std::vector<std::string>& words, const std::vector<std::string>& flags,
                                      std::string* which = nullptr) {
  for (std::size_t i = 0; i < words.size(); ++i)
    for (const std::string& flag : flags) {
      std::string value;
      if (words[i] == flag && i + 1 < words.size()) value = words[i + 1];
      else if (words[i].size() > flag.size() && words[i].starts_with(flag) && words[i][flag.size()] == '=')
        value = words[i].substr(flag.size() + 1);
      else continue;
      if (which) *which = flag;
      // A quoted shell word keeps its quotes once split.
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
        value = value.substr(1, value.size() - 2);
      return value;
    }
  return std::nullopt;
}

bool has_flag(const std::vector<std::string>& words, const std::vector<std::string>& flags) {
  for (const std::string& word : words)
    for (const std::string& flag : flags)
      if (word == flag || (word.starts_with(flag) && word.size() > flag.size() && word[flag.size()] == '=')) return true;
  return false;
}

// Kubernetes $(VAR), or a shell $VAR / ${VAR}: not known until the container starts.
bool is_variable(const std::string& value) { return value.find('$') != std::string::npos; }

std::optional<std::int64_t> small_count(const std::string& text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > 1'000'000) return std::nullopt;
  return value;
}

// $(VAR) in command and args, as the kubelet expands it from the container's env: literal
// values only (one pass; $$ escapes). "--model=$(MODEL_ID)" is how most manifests name the model.
void expand_variables(const json& container, std::vector<std::string>& words) {
  auto env = container.find("env");
  if (env == container.end() || !env->is_array()) return;
  std::map<std::string, std::string> values;
  for (const json& var : *env)
    if (var.is_object() && var.contains("value") && var["value"].is_string())
      values[k8s::json_fields::string_or(var, "name")] = var["value"].get<std::string>();
  for (std::string& word : words) {
    if (word.find("$(") == std::string::npos) continue;
    std::string out;
    for (std::size_t i = 0; i < word.size(); ++i) {
      if (word.compare(i, 2, "$$") == 0) {
        out += "$$";
        ++i;
        continue;
      }
      const std::size_t close = word.compare(i, 2, "$(") == 0 ? word.find(')', i) : std::string::npos;
      auto value = close == std::string::npos ? values.end() : values.find(word.substr(i + 2, close - i - 2));
      if (value == values.end()) {
        out += word[i];
        continue;
      }
      out += value->second;
      i = close;
    }
    word = normalized(std::move(out));
  }
}

class ServingArgs final : public Policy {
 public:
  explicit ServingArgs(ServingArgsConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for_each_pod_container(context, false, [&](const PodTarget& pod, const json& spec, const json& container,
                                               const std::string& field) {
      std::vector<std::string> words = words_of(container);
      check_secrets(context, words, field);  // before $(VAR) is expanded: a Secret's value is not known here
      const Server* server = server_of(container, words);
      if (!server) return;
      expand_variables(container, words);
      if (context.uses_gpu(pod, container)) check_parallelism(context, container, words, *server, field);
      check_model(context, spec, container, words, *server, field);
    });
  }

 private:
  const Server* server_of(const json& container, const std::vector<std::string>& words) const {
    const std::string image = k8s::json_fields::string_or(container, "image");
    std::string joined;
    for (const std::string& word : words) joined += (joined.empty() ? "" : " ") + word;
    for (const Server& server : config_.servers)
      if (partial_match_any(server.images, image) || partial_match_any(server.commands, joined)) return &server;
    return nullptr;
  }

  void check_secrets(PolicyContext& context, const std::vector<std::string>& words, const std::string& field) const {
    if (config_.secret_arguments == CheckLevel::Off) return;
    std::string flag;
    if (auto value = flag_value(words, config_.secret_flags, &flag); value && !value->empty() && !is_variable(*value)) {
      report(context, config_.secret_arguments, field,
             flag + " is given a literal value on the command line, readable by anyone who can read this object "
             "and in the process list; pass it from a Secret (env valueFrom.secretKeyRef, then " + flag + " $(VAR))");
      return;
    }
    for (const std::string& word : words) {
      const std::size_t equals = word.find('=');
      const std::string value = equals == std::string::npos ? word : word.substr(equals + 1);
      if (RE2::FullMatch(value, *config_.secret_values)) {
        report(context, config_.secret_arguments, field,
               "an argument looks like an access token (not shown), readable by anyone who can read this object; "
               "pass it from a Secret (env valueFrom.secretKeyRef)");
        return;
      }
    }
  }

  // The GPUs the container holds, when it holds one kind of whole GPU and says how many.
  static std::optional<std::int64_t> gpus_held(const PolicyContext& context, const json& container,
                                               const std::string& field) {
    std::optional<std::int64_t> gpus;
    for (const char* section : {"limits", "requests"}) {
      auto list = container.find("resources");
      if (list == container.end() || !list->is_object() || !list->contains(section) || !(*list)[section].is_object()) continue;
      for (auto it = (*list)[section].begin(); it != (*list)[section].end(); ++it) {
        if (!context.gpu.is_gpu(it.key())) continue;
        if (it.key() != "nvidia.com/gpu") return std::nullopt;  // MIG slices and shared GPUs: not whole devices
        try {
          const k8s::Quantity amount = quantity_from_json(it.value(), field);
          if (!amount.is_integer()) return std::nullopt;
          gpus = amount.value();
        } catch (const std::exception&) {
          return std::nullopt;  // gpu-shape reports the bad quantity
        }
      }
      if (gpus) return gpus;
    }
    return gpus;
  }

  void check_parallelism(PolicyContext& context, const json& container,
                         const std::vector<std::string>& words, const Server& server, const std::string& field) const {
    if (config_.parallelism == CheckLevel::Off || has_flag(words, server.unknown_with)) return;
    const std::optional<std::int64_t> gpus = gpus_held(context, container, field);
    if (!gpus || *gpus < 1) return;
    std::int64_t product = 1;
    std::string how;
    bool any = false;
    for (const std::vector<std::string>& factor : server.parallel) {
      std::string flag;
      const std::optional<std::string> value = flag_value(words, factor, &flag);
      if (!value) continue;
      if (is_variable(*value)) return;
      const std::optional<std::int64_t> count = small_count(*value);
      if (!count) {
        report(context, config_.parallelism, field, flag + " " + shorten(*value, 40) + " is not a whole number of GPUs, 1 or more");
        return;
      }
      any = true;
      product *= *count;
      how += (how.empty() ? "" : " × ") + flag + " " + std::to_string(*count);
    }
    // Several pods of one gang (an LWS group, a Ray cluster) shard one model across nodes: each
    // holds a part of the product, and the workers get their part from the leader's flags.
    std::int64_t gang_pods = 0;
    for (const PodTarget& member : context.workload.pods) gang_pods += member.gang_replicas;
    const bool across_pods = context.workload.gang && gang_pods > 1;
    if (!any) {
      if (server.unset_means_all || across_pods) return;
      how = "no " + server.parallel.front().front() + " (1)";
    }
    if (across_pods ? product % *gpus == 0 : product == *gpus) return;
    const std::string held = std::to_string(*gpus) + (*gpus == 1 ? " GPU" : " GPUs");
    if (product > *gpus)
      report(context, config_.parallelism, field,
             server.name + " shards the model over " + std::to_string(product) + " GPUs (" + how + ") but the container "
             "holds " + held + ": it fails at start and restarts while holding them. Make the product equal the "
             "nvidia.com/gpu limit");
    else
      report(context, config_.parallelism, field,
             server.name + " shards the model over " + std::to_string(product) + (product == 1 ? " GPU" : " GPUs") +
                 " (" + how + ") but the container holds " + held + ": the rest sit idle. Make the product equal "
                 "the nvidia.com/gpu limit, or request fewer GPUs");
  }

  void check_model(PolicyContext& context, const json& spec, const json& container, const std::vector<std::string>& words,
                   const Server& server, const std::string& field) const {
    std::optional<std::string> model = flag_value(words, server.model);
    for (std::size_t i = 0; !model && i + 1 < words.size(); ++i)
      for (const std::string& word : server.model_after)
        if (words[i] == word && !words[i + 1].starts_with("-")) model = words[i + 1];
    // A hub id ("org/name"); a path, a URL or a variable is not pulled by name.
    const bool from_hub = model && !model->empty() && !is_variable(*model) && model->front() != '/' &&
                          model->front() != '.' && model->find("://") == std::string::npos &&
                          model->find('/') != std::string::npos;
    if (from_hub && !has_flag(words, server.revision))
      report(context, config_.unpinned_models, field,
             server.name + " loads " + shorten(*model, 120) + " from the model hub without " + server.revision.front() +
                 ": a new upload changes what the service runs at its next restart; pin a commit");
    if (from_hub && !mounts_cache(spec, container))
      report(context, config_.model_cache, field,
             server.name + " downloads " + shorten(*model, 120) + " on every start: no persistent volume (PVC, hostPath, CSI) is "
             "mounted; mount one as its model cache (HF_HOME)");
    if (config_.token_caps != CheckLevel::Off && !server.caps.empty() && !has_flag(words, server.caps))
      report(context, config_.token_caps, field,
             server.name + " runs without " + server.caps.front() + " (or another cap): one long request can take "
             "the GPU memory every other request needs");
  }

  // Whether a volume that outlives the pod is mounted: anything but emptyDir, configMap, secret,
  // downwardAPI and projected.
  static bool mounts_cache(const json& spec, const json& container) {
    auto mounts = container.find("volumeMounts");
    auto volumes = spec.find("volumes");
    if (mounts == container.end() || !mounts->is_array() || volumes == spec.end() || !volumes->is_array()) return false;
    for (const json& mount : *mounts) {
      const std::string name = k8s::json_fields::string_or(mount, "name");
      for (const json& volume : *volumes) {
        if (!volume.is_object() || k8s::json_fields::string_or(volume, "name") != name) continue;
        for (auto it = volume.begin(); it != volume.end(); ++it)
          if (it.key() != "name" && it.key() != "emptyDir" && it.key() != "configMap" && it.key() != "secret" &&
              it.key() != "downwardAPI" && it.key() != "projected")
            return true;
      }
    }
    return false;
  }

  ServingArgsConfig config_;
};

Server parse_server(const ConfigNode& node) {
  node.allow_only({"name", "images", "commands", "parallel", "parallelUnsetMeansAll", "unknownWith", "model",
                   "modelAfter", "revision", "caps"});
  Server server;
  server.name = node.string("name", "");
  if (server.name.empty()) node.fail("name is required");
  server.images = compile_regexes(node.child("images"));
  server.commands = compile_regexes(node.child("commands"));
  if (server.images.empty() && server.commands.empty()) node.fail("give images or commands (RE2 patterns) to recognise it by");
  for (const ConfigNode& factor : node.child("parallel").items()) {
    std::vector<std::string> flags;
    for (const ConfigNode& flag : factor.items()) flags.push_back(flag.as_string());
    if (flags.empty()) factor.fail("a factor lists at least one flag");
    server.parallel.push_back(std::move(flags));
  }
  server.unset_means_all = node.boolean("parallelUnsetMeansAll", false);
  if (server.parallel.empty() && node.has("parallelUnsetMeansAll")) node.child("parallel").fail("parallel lists no factor");
  server.unknown_with = node.strings("unknownWith");
  server.model = node.strings("model");
  server.model_after = node.strings("modelAfter");
  server.revision = node.strings("revision");
  if ((!server.model.empty() || !server.model_after.empty()) && server.revision.empty())
    node.child("revision").fail("name the flag that pins a model revision");
  server.caps = node.strings("caps");
  return server;
}

}  // namespace

PolicyInfo serving_args_info() {
  return {"serving-args", PolicyKind::Validating,
          "checks model servers' command lines: parallelism against the GPUs held, tokens in flags, unpinned and uncached models",
          {
           {"parallelism", "level", "violation",
            "a GPU container's tensor × pipeline (× data) parallel size differs from its nvidia.com/gpu; in a gang of several pods, is not a multiple of it"},
           {"secretArguments", "level", "violation",
            "a literal value for a secret flag (`secretFlags`), or an argument shaped like a known access token (hf_, sk-, ghp_, AKIA, xox), in any container"},
           {"unpinnedModels", "level", "warning", "a model loaded from the hub by name without the server's revision flag"},
           {"modelCache", "level", "warning", "a model loaded from the hub with no persistent volume mounted to cache it"},
           {"tokenCaps", "level", "off", "a server run without any of its context-length or concurrency caps"},
           {"secretFlags", "list of flags", "--api-key, --hf-token, --token, --huggingface-token, --hub-token, --openai-api-key",
            "flags whose value is a secret (`_` in a flag's name reads as `-`, as the servers' parsers take it)"},
           {"servers", "list of servers", "vllm, sglang, tgi",
            "`name`, `images` and `commands` (RE2 patterns for the image reference and the joined command line), `parallel` (list of factors, each a list of alternative flags), `parallelUnsetMeansAll`, `unknownWith` (flags that make the GPU count unknowable, such as multi-node ones), `model`, `modelAfter` (words the model follows), `revision`, `caps`"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            ServingArgsConfig config;
            config.parallelism = parse_check_level(node.child("parallelism"), CheckLevel::Violation);
            config.secret_arguments = parse_check_level(node.child("secretArguments"), CheckLevel::Violation);
            config.unpinned_models = parse_check_level(node.child("unpinnedModels"), CheckLevel::Warning);
            config.model_cache = parse_check_level(node.child("modelCache"), CheckLevel::Warning);
            config.token_caps = parse_check_level(node.child("tokenCaps"), CheckLevel::Off);
            if (node.has("secretFlags")) config.secret_flags = node.strings("secretFlags");
            if (node.has("servers")) {
              config.servers.clear();
              for (const ConfigNode& item : node.child("servers").items()) config.servers.push_back(parse_server(item));
            }
            return std::make_unique<ServingArgs>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
