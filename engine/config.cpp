#include "gpuadmit/config.h"

#include "engine/k8s/glob.h"


#include <algorithm>
#include <sstream>
#include <unordered_set>

namespace gpuadmit {

ConfigNode::ConfigNode(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  if (node_.IsDefined()) mark_ = node_.Mark();
}

std::string ConfigNode::where() const {
  std::ostringstream out;
  out << file_;
  // yaml-cpp marks are 0-based; an absent node has no position of its own.
  if (mark_.line >= 0) out << ':' << (mark_.line + 1) << ':' << (mark_.column + 1);
  out << ": " << (path_.empty() ? "<top level>" : path_);
  return out.str();
}

void ConfigNode::fail(const std::string& message) const {
  throw ConfigError(where() + ": " + message);
}

bool ConfigNode::has(std::string_view key) const {
  return node_.IsMap() && node_[std::string(key)].IsDefined();
}

ConfigNode ConfigNode::child(std::string_view key) const {
  std::string path = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  if (!present()) return ConfigNode(YAML::Node(YAML::NodeType::Undefined), file_, path);
  if (!node_.IsMap()) fail("expected a map with key '" + std::string(key) + "'");
  ConfigNode result(node_[std::string(key)], file_, path);
  if (!result.node_.IsDefined()) result.mark_ = mark_;  // report absent keys at their parent
  return result;
}

std::vector<ConfigNode> ConfigNode::items() const {
  std::vector<ConfigNode> out;
  if (!present()) return out;
  if (!node_.IsSequence()) fail("expected a list");
  for (std::size_t i = 0; i < node_.size(); ++i)
    out.emplace_back(node_[i], file_, path_ + "[" + std::to_string(i) + "]");
  return out;
}

std::vector<std::pair<std::string, ConfigNode>> ConfigNode::entries() const {
  std::vector<std::pair<std::string, ConfigNode>> out;
  if (!present()) return out;
  if (!node_.IsMap()) fail("expected a map");
  std::unordered_set<std::string> seen;  // a set: a config of 100,000 keys is read in linear time
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) ConfigNode(entry.first, file_, path_).fail("map keys must be strings");
    std::string key = entry.first.Scalar();
    if (!seen.insert(key).second) ConfigNode(entry.first, file_, path_).fail("duplicate key '" + key + "'");
    out.emplace_back(key, ConfigNode(entry.second, file_, path_.empty() ? key : path_ + "." + key));
  }
  return out;
}

std::string ConfigNode::as_string() const {
  if (!node_.IsScalar()) fail("expected a string");
  return node_.Scalar();
}

double ConfigNode::as_number() const {
  if (!node_.IsScalar()) fail("expected a number");
  const std::string& text = node_.Scalar();
  try {
    std::size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  fail("expected a number, got '" + text + "'");
}

std::int64_t ConfigNode::as_integer() const {
  if (!node_.IsScalar()) fail("expected an integer");
  const std::string& text = node_.Scalar();
  try {
    std::size_t used = 0;
    long long value = std::stoll(text, &used, 10);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  fail("expected an integer, got '" + text + "'");
}

bool ConfigNode::as_bool() const {
  if (!node_.IsScalar()) fail("expected true or false");
  const std::string& text = node_.Scalar();
  if (text == "true") return true;
  if (text == "false") return false;
  fail("expected true or false, got '" + text + "'");
}

std::string ConfigNode::string(std::string_view key, std::string fallback) const {
  ConfigNode node = child(key);
  return node.present() ? node.as_string() : fallback;
}
double ConfigNode::number(std::string_view key, double fallback) const {
  ConfigNode node = child(key);
  return node.present() ? node.as_number() : fallback;
}
std::int64_t ConfigNode::integer(std::string_view key, std::int64_t fallback) const {
  ConfigNode node = child(key);
  return node.present() ? node.as_integer() : fallback;
}
bool ConfigNode::boolean(std::string_view key, bool fallback) const {
  ConfigNode node = child(key);
  return node.present() ? node.as_bool() : fallback;
}
std::vector<std::string> ConfigNode::strings(std::string_view key) const {
  std::vector<std::string> out;
  for (const ConfigNode& item : child(key).items()) out.push_back(item.as_string());
  return out;
}

void ConfigNode::allow_only(std::initializer_list<std::string_view> allowed) const {
  allow_only(std::vector<std::string_view>(allowed));
}

void ConfigNode::allow_only(const std::vector<std::string_view>& allowed) const {
  for (const auto& [key, node] : entries()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string list;
    for (auto name : allowed) list += (list.empty() ? "" : ", ") + std::string(name);
    node.fail("unknown key '" + key + "' (known keys: " + list + ")");
  }
}

Mode parse_mode(const ConfigNode& node) {
  std::string text = node.as_string();
  if (text == "enforce") return Mode::Enforce;
  if (text == "warn") return Mode::Warn;
  if (text == "audit") return Mode::Audit;
  if (text == "off") return Mode::Off;
  node.fail("unknown mode '" + text + "' (use enforce, warn, audit or off)");
}

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::Enforce: return "enforce";
    case Mode::Warn: return "warn";
    case Mode::Audit: return "audit";
    case Mode::Off: return "off";
  }
  return "off";
}

// The same glob dialect as image patterns (k8s::glob_match): `*` and `?`; namespaces hold no '/'.
// It compares bytes, so a name with a NUL inside ("kube-system\0x") is not "kube-system".
bool namespace_matches(std::string_view pattern, std::string_view ns) { return k8s::glob_match(pattern, ns); }

Mode PolicySettings::mode_for(std::string_view ns) const {
  for (const auto& [pattern, mode] : namespace_modes)
    if (namespace_matches(pattern, ns)) return mode;
  return mode;
}

bool PolicySettings::exempt_namespace(std::string_view ns) const {
  return std::any_of(exempt_namespaces.begin(), exempt_namespaces.end(),
                     [&](const std::string& pattern) { return namespace_matches(pattern, ns); });
}

const std::vector<PolicyKey>& PolicySettings::keys() {
  static const std::vector<PolicyKey> keys = {
      {"mode", "enforce, warn, audit, off", "enforce", "see Modes"},
      {"namespaceModes", "map: namespace glob → mode", "",
       "overrides `mode` in matching namespaces; the first match wins"},
      {"exemptNamespaces", "list of globs", "", "namespaces this policy skips (recorded in an audit annotation)"},
      {"exemptibleByAnnotation", "bool", "false",
       "whether `gpu-admit.io/exempt: <policy>[,<policy>]` on the object or its pod template turns this policy off "
       "for it. When false the annotation is ignored, with a warning, so users cannot switch off what the platform "
       "team will not allow"}};
  return keys;
}

PolicySettings PolicySettings::parse(const std::string& name, const ConfigNode& node) {
  PolicySettings settings;
  settings.name = name;
  if (node.has("mode")) settings.mode = parse_mode(node.child("mode"));
  for (const auto& [pattern, mode] : node.child("namespaceModes").entries())
    settings.namespace_modes.emplace_back(pattern, parse_mode(mode));
  settings.exempt_namespaces = node.strings("exemptNamespaces");
  settings.exemptible_by_annotation = node.boolean("exemptibleByAnnotation", false);
  return settings;
}

}  // namespace gpuadmit
