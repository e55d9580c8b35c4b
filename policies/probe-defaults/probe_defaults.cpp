// probe-defaults: loading a model takes minutes, and a liveness probe that starts before the
// model is loaded kills the pod in a restart loop. Give GPU containers a startupProbe that
// covers the model-load budget, and known model servers the probes their images document.
#include <re2/re2.h>

#include <charconv>

#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
constexpr std::string_view kLoadAnnotation = "gpu-admit.io/model-load-seconds";
constexpr const char* kHandlers[] = {"exec", "httpGet", "tcpSocket", "grpc"};

struct RuntimeProfile {
  std::string name;
  std::vector<std::shared_ptr<RE2>> images;
  int port = 0;
  std::vector<std::string> port_arguments;  // e.g. --port; "--port 9000" and "--port=9000"
  // The probes this profile adds, built once: a review copies them and sets the port (and the
  // startup probe's budget). Built from initializer lists per review, they were 4 % of one.
  json startup, readiness, liveness;
};

struct ProbeConfig {
  std::int64_t model_load_seconds = 600;
  std::int64_t startup_period_seconds = 10;
  bool warn_without_probes = true;
  std::vector<RuntimeProfile> profiles;
};

std::optional<int> parse_port(std::string_view text) {
  int port = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) return std::nullopt;
  return port;
}

// The port the server was told to listen on in command/args, if any.
std::optional<std::string> port_from_arguments(const json& container, const RuntimeProfile& profile) {
  std::vector<std::string> words;
  for (const char* key : {"command", "args"})
    if (container.contains(key) && container[key].is_array())
      for (const json& word : container[key])
        if (word.is_string()) words.push_back(word.get<std::string>());
  for (std::size_t i = 0; i < words.size(); ++i)
    for (const std::string& flag : profile.port_arguments) {
      if (words[i] == flag && i + 1 < words.size()) return words[i + 1];
      if (words[i].starts_with(flag + "=")) return words[i].substr(flag.size() + 1);
    }
  return std::nullopt;
}

bool has_probe(const json& container, const char* probe) {
  return container.contains(probe) && container[probe].is_object();
}

class ProbeDefaults final : public Policy {
 public:
  explicit ProbeDefaults(ProbeConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      const std::int64_t budget = load_budget(context, pod);
      for_each_container(spec, pod.field, "containers", [&](json& container, const std::string& field) {
        if (context.uses_gpu(pod, container)) fix(context, container, field, budget);
      });
    }
  }

 private:
  std::int64_t load_budget(PolicyContext& context, const PodTarget& pod) const {
    std::string text = context.annotation(pod, kLoadAnnotation);
    if (text.empty()) return config_.model_load_seconds;
    std::int64_t seconds = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error == std::errc() && end == text.data() + text.size() && seconds > 0 && seconds <= 86400)
      return seconds;
    context.advise("metadata.annotations." + std::string(kLoadAnnotation),
                   "'" + text + "' is not a whole number of seconds from 1 to 86400; using " +
                       std::to_string(config_.model_load_seconds));
    return config_.model_load_seconds;
  }

  json startup_probe(json handler, std::int64_t budget) const {
    handler["periodSeconds"] = config_.startup_period_seconds;
    // Ceiling: periodSeconds × failureThreshold must cover the whole budget.
    handler["failureThreshold"] = (budget + config_.startup_period_seconds - 1) / config_.startup_period_seconds;
    return handler;
  }

  void fix(PolicyContext& context, json& container, const std::string& field, std::int64_t budget) const {
    const bool readiness = has_probe(container, "readinessProbe");
    const bool liveness = has_probe(container, "livenessProbe");
    if (has_probe(container, "startupProbe")) return;
    if (readiness || liveness) {
      const json& source = container[readiness ? "readinessProbe" : "livenessProbe"];
      json handler = json::object();
      for (const char* key : kHandlers)
        if (source.contains(key)) handler[key] = source[key];
      if (handler.empty()) return;  // a probe without a handler is the API server's to reject
      container["startupProbe"] = startup_probe(std::move(handler), budget);
      context.changed(field_path(field, "startupProbe"),
                      std::string("added, copied from the ") + (readiness ? "readiness" : "liveness") +
                          " probe, allowing " + std::to_string(budget) + "s for model loading");
      return;
    }
    if (context.workload.batch) return;  // Jobs finish; they need no probes
    if (context.workload.operator_probes) return;  // KubeRay gives its pods their probes
    const std::string image = container.value("image", "");
    // No image here: another object chooses it (a KServe ServingRuntime), and its probes too.
    if (image.empty()) return;
    const RuntimeProfile* profile = nullptr;
    for (const RuntimeProfile& candidate : config_.profiles)
      for (const auto& pattern : candidate.images)
        if (!profile && RE2::PartialMatch(image, *pattern)) profile = &candidate;
    if (!profile) {
      if (config_.warn_without_probes)
        context.advise(field, "no probes, and no runtime profile matches the image; add a readinessProbe");
      return;
    }
    int port = profile->port;
    if (auto text = port_from_arguments(container, *profile)) {
      auto parsed = parse_port(*text);
      if (!parsed) {
        context.advise(field, "cannot tell the " + profile->name + " port from '" + *text + "'; add probes yourself");
        return;
      }
      port = *parsed;
    }
    if (!declares_port(container, port)) {
      context.advise(field, profile->name + " image, but port " + std::to_string(port) +
                                " is not among its containerPorts; add probes yourself");
      return;
    }
    auto on_port = [port](json probe) {
      probe["httpGet"]["port"] = port;
      return probe;
    };
    container["startupProbe"] = startup_probe(on_port(profile->startup), budget);
    container["readinessProbe"] = on_port(profile->readiness);
    container["livenessProbe"] = on_port(profile->liveness);
    context.changed(field, "added " + profile->name + " startup, readiness and liveness probes on port " +
                               std::to_string(port) + ", allowing " + std::to_string(budget) + "s for model loading");
  }

  // With no containerPorts declared any port may be served; with some, the probe must hit one.
  static bool declares_port(const json& container, int port) {
    if (!container.contains("ports") || !container["ports"].is_array() || container["ports"].empty()) return true;
    for (const json& entry : container["ports"])
      // Compared as JSON: a containerPort of 8e33 is no port, and converting it to int would be UB.
      if (entry.is_object() && entry.value("containerPort", nlohmann::json()) == port) return true;
    return false;
  }

  ProbeConfig config_;
};

RuntimeProfile parse_profile(const ConfigNode& node) {
  node.allow_only({"name", "images", "port", "portArguments", "startupPath", "readinessPath", "livenessPath"});
  RuntimeProfile profile;
  profile.name = node.string("name", "");
  if (profile.name.empty()) node.fail("name is required");
  for (const ConfigNode& item : node.child("images").items()) {
    auto pattern = std::make_shared<RE2>(item.as_string(), RE2::Quiet);
    if (!pattern->ok()) item.fail("bad regular expression: " + pattern->error());
    profile.images.push_back(std::move(pattern));
  }
  if (profile.images.empty()) node.fail("images: at least one image pattern is required");
  profile.port = static_cast<int>(node.integer("port", 0));
  if (profile.port < 1 || profile.port > 65535) node.child("port").fail("port must be 1 to 65535");
  profile.port_arguments = node.strings("portArguments");
  const std::string startup_path = node.string("startupPath", "");
  const std::string readiness_path = node.string("readinessPath", startup_path);
  const std::string liveness_path = node.string("livenessPath", startup_path);
  for (const std::string* path : {&startup_path, &readiness_path, &liveness_path})
    if (path->empty() || path->front() != '/') node.fail("startupPath, readinessPath and livenessPath must be absolute paths");
  auto http = [](const std::string& path) { return json{{"httpGet", {{"path", path}, {"port", 0}}}}; };
  profile.startup = http(startup_path);
  profile.readiness = http(readiness_path);
  profile.readiness["periodSeconds"] = 10;
  profile.readiness["failureThreshold"] = 3;
  profile.liveness = http(liveness_path);
  // A server busy with a long batch answers health checks late: give it 5 s, not the 1 s default.
  profile.liveness["periodSeconds"] = 10;
  profile.liveness["timeoutSeconds"] = 5;
  profile.liveness["failureThreshold"] = 3;
  return profile;
}

}  // namespace

PolicyInfo probe_defaults_info() {
  return {"probe-defaults", PolicyKind::Mutating,
          "adds startup probes sized for model loading, and probes for known model servers",
          {
           {"modelLoadSeconds", "integer", "600",
            "the model-load budget the startup probe allows; per pod, the annotation `gpu-admit.io/model-load-seconds` (1–86400) overrides it"},
           {"startupPeriodSeconds", "integer", "10",
            "`periodSeconds` of added startup probes; `failureThreshold` = ⌈budget / period⌉"},
           {"warnWithoutProbes", "bool", "true",
            "warn about a GPU container of a long-running workload with no probes and no matching profile"},
           {"profiles", "list of profiles", "vllm, triton, tgi, ollama",
            "runtime profiles: `name`, `images` (RE2 patterns matched anywhere in the image reference), `port`, `portArguments` (flags such as `--port` whose value overrides the port), `startupPath`, `readinessPath` and `livenessPath` (default: `startupPath`)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            ProbeConfig config;
            config.model_load_seconds = node.integer("modelLoadSeconds", config.model_load_seconds);
            if (config.model_load_seconds < 1 || config.model_load_seconds > 86400)
              node.child("modelLoadSeconds").fail("must be 1 to 86400 seconds");
            config.startup_period_seconds = node.integer("startupPeriodSeconds", config.startup_period_seconds);
            if (config.startup_period_seconds < 1 || config.startup_period_seconds > 300)
              node.child("startupPeriodSeconds").fail("must be 1 to 300 seconds");
            config.warn_without_probes = node.boolean("warnWithoutProbes", config.warn_without_probes);
            for (const ConfigNode& item : node.child("profiles").items()) config.profiles.push_back(parse_profile(item));
            return std::make_unique<ProbeDefaults>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
