// Configuration: the YAML file a platform team writes, checked when it is loaded.
// Every error names the file, line, column and key, so a bad ConfigMap is fixed in one go.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gpuadmit {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A YAML node plus where it came from: file, dotted key path, line and column.
class ConfigNode {
 public:
  ConfigNode(YAML::Node node, std::string file, std::string path);

  const YAML::Node& yaml() const { return node_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool has(std::string_view key) const;

  ConfigNode child(std::string_view key) const;  // an absent key gives a node that is not present()
  std::vector<ConfigNode> items() const;         // a sequence's elements (error if not a sequence)
  // A map's entries in document order (error if not a map).
  std::vector<std::pair<std::string, ConfigNode>> entries() const;

  std::string as_string() const;
  double as_number() const;
  std::int64_t as_integer() const;
  bool as_bool() const;

  std::string string(std::string_view key, std::string fallback) const;
  double number(std::string_view key, double fallback) const;
  std::int64_t integer(std::string_view key, std::int64_t fallback) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::vector<std::string> strings(std::string_view key) const;  // absent: empty

  // Every key of this map must be one of `allowed`: a typo is an error, not a silent default.
  void allow_only(std::initializer_list<std::string_view> allowed) const;
  void allow_only(const std::vector<std::string_view>& allowed) const;

  // Throws ConfigError "FILE:LINE:COL: PATH: message".
  [[noreturn]] void fail(const std::string& message) const;
  std::string where() const;

 private:
  YAML::Node node_;
  std::string file_;
  std::string path_;
  YAML::Mark mark_;
};

// One configuration key, declared once where it is read: the unknown-key check, `gpu-admit
// explain` and the README's key tables (checked by a test) all come from the declaration.
struct PolicyKey {
  std::string_view name;
  std::string_view type;      // "bool", "integer", "list of globs", ...
  std::string_view fallback;  // the default, as the README states it (markdown); empty: none
  std::string_view doc;       // what it does, one paragraph (markdown)
};

// How a policy's findings reach the user.
enum class Mode { Enforce, Warn, Audit, Off };
Mode parse_mode(const ConfigNode& node);
std::string_view to_string(Mode mode);

// Settings every policy has, besides its own typed config.
struct PolicySettings {
  std::string name;
  Mode mode = Mode::Enforce;
  std::vector<std::pair<std::string, Mode>> namespace_modes;  // glob -> mode, first match wins
  std::vector<std::string> exempt_namespaces;                  // globs
  bool exemptible_by_annotation = false;  // `gpu-admit.io/exempt: <policy>` honoured only when true

  Mode mode_for(std::string_view ns) const;
  bool exempt_namespace(std::string_view ns) const;
  // Keys the settings consume, so each policy's allow_only() can include them.
  static const std::vector<PolicyKey>& keys();
  static PolicySettings parse(const std::string& name, const ConfigNode& node);
};

// Namespace glob match (`*` and `?`, as in shell patterns; namespaces contain no '/').
bool namespace_matches(std::string_view pattern, std::string_view ns);

}  // namespace gpuadmit
