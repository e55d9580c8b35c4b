#include "engine/manifests.h"

#include "engine/input_limits.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <re2/re2.h>

namespace gpuadmit {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Plain (unquoted) scalars resolved as YAML 1.1 resolvers in Kubernetes tooling do.
json resolve_plain_scalar(const std::string& text) {
  static const std::vector<std::string> kTrue = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static const std::vector<std::string> kFalse = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  static const RE2 kInt(R"([-+]?(0|[1-9][0-9_]*))");
  static const RE2 kFloat(R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?)");
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (std::find(kTrue.begin(), kTrue.end(), text) != kTrue.end()) return true;
  if (std::find(kFalse.begin(), kFalse.end(), text) != kFalse.end()) return false;
  std::string digits = text;
  digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
  if (RE2::FullMatch(text, kInt)) {
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(digits.c_str(), &end, 10);
    if (errno == 0 && *end == '\0') return value;
  }
  if (RE2::FullMatch(text, kFloat)) {
    double value = std::strtod(digits.c_str(), nullptr);
    if (std::isfinite(value)) return value;
  }
  return text;  // everything else, including 0x and 0o forms, stays a string
}

// A scalar by its tag: "?" (or none) is plain and resolved; "!" marks a quoted scalar, always a
// string; an explicit int, float, bool or null tag resolves the text, any other tag keeps it.
json scalar_to_json(const std::string& tag, const std::string& text) {
  if (tag == "?" || tag.empty() || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
      tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null")
    return resolve_plain_scalar(text);
  return text;
}

// Recursive, but only ever over documents load_yaml checked: at most
// max_depth levels and a bounded number of values, aliases followed.
json to_json(const YAML::Node& node, const std::string& source, std::size_t depth = 0) {
  if (depth > input_limits().max_depth)
    throw ManifestError(source + ":" + std::to_string(node.Mark().line + 1) + ": nesting deeper than " +
                        std::to_string(input_limits().max_depth) + " levels (the limit, --max-depth)");
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node.Tag(), node.Scalar());
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) array.push_back(to_json(item, source, depth + 1));
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar())
          throw ManifestError(source + ":" + std::to_string(entry.first.Mark().line + 1) +
                              ": map keys must be strings");
        object[entry.first.Scalar()] = to_json(entry.second, source, depth + 1);
      }
      return object;
    }
  }
  return nullptr;
}

void expand(ManifestDocument document, std::vector<ManifestDocument>& out) {
  const json& object = document.object;
  if (object.is_object() && object.contains("kind") && object["kind"].is_string() &&
      object["kind"].get<std::string>().ends_with("List") && object.contains("items") &&
      object["items"].is_array()) {
    for (const json& item : object["items"]) out.push_back({document.file, document.document, document.line, item});
    return;
  }
  out.push_back(std::move(document));
}

void emit(YAML::Emitter& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (auto it = value.begin(); it != value.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        emit(out, it.value());
      }
      out << YAML::EndMap;
      return;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const json& item : value) emit(out, item);
      out << YAML::EndSeq;
      return;
    case json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      if (!resolve_plain_scalar(text).is_string()) out << YAML::DoubleQuoted;
      out << text;
      return;
    }
    case json::value_t::null:
      out << YAML::Null;
      return;
    default:
      out << value.dump();  // numbers and booleans print the same in YAML
  }
}

}  // namespace

json yaml_to_json(const YAML::Node& node, const std::string& source) { return to_json(node, source); }

std::string to_yaml(const json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

void parse_manifests(std::string text, const std::string& source, const ManifestVisitor& visit) {
  std::vector<ManifestDocument> expanded;
  auto hand_on = [&](ManifestDocument document) {
    expanded.clear();
    expand(std::move(document), expanded);
    for (ManifestDocument& each : expanded) visit(std::move(each));
  };
  // JSON (an AdmissionReview, a `kubectl get -o json` dump) goes through the JSON parser: it is
  // exact for numbers and much faster on large cluster snapshots.
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    json parsed;
    try {
      parsed = parse_json(text);
    } catch (const InputError& error) {
      throw ManifestError(source + ": invalid JSON: " + error.what());
    }
    text = std::string();  // the parsed copy is all that is needed from here
    if (parsed.is_array()) {
      for (json& item : parsed) hand_on({source, 0, 1, std::move(item)});
    } else {
      hand_on({source, 0, 1, std::move(parsed)});
    }
    return;
  }
  // YAML one document at a time, so a large file is never held as a tree or as JSON whole.
  try {
    YamlJsonReader reader(std::move(text), scalar_to_json);
    json object;
    int line = 0;
    for (int index = 0; reader.next(object, line); ++index) {
      if (object.is_null()) continue;  // an empty document
      if (!object.is_object())
        throw ManifestError(source + ":" + std::to_string(line) + ": document " + std::to_string(index) +
                            " is not a Kubernetes object (expected a map with apiVersion and kind)");
      hand_on({source, index, line, std::move(object)});
    }
  } catch (const InputError& error) {
    throw ManifestError(source + ":" + error.what());  // "line:column: ..."
  }
}

std::vector<ManifestDocument> parse_manifests(const std::string& text, const std::string& source) {
  std::vector<ManifestDocument> out;
  parse_manifests(text, source, [&](ManifestDocument&& document) { out.push_back(std::move(document)); });
  return out;
}

std::vector<std::string> manifest_files(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& path : paths) {
    std::error_code error;
    if (path == "-" || !fs::is_directory(path, error)) {
      out.push_back(path);  // a missing file is reported when it is read
      continue;
    }
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(path, error); !error && it != fs::recursive_directory_iterator();
         it.increment(error)) {
      const std::string ext = it->path().extension().string();
      if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
        files.push_back(it->path().string());
    }
    if (error) throw ManifestError(path + ": cannot read the directory: " + error.message());
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

void for_each_manifest(const std::string& path, const ManifestVisitor& visit) {
  if (path == "-") {
    std::string text;
    try {
      text = read_standard_input();
    } catch (const InputError& error) {
      throw ManifestError(std::string("<stdin>: ") + error.what());
    }
    return parse_manifests(std::move(text), "<stdin>", visit);
  }
  std::error_code error;
  if (!fs::exists(path, error)) throw ManifestError(path + ": no such file or directory");
  std::string text;
  try {
    text = read_input_file(path);
  } catch (const InputError& error) {
    throw ManifestError(error.what());
  }
  parse_manifests(std::move(text), path, visit);
}

std::vector<ManifestDocument> load_manifest_file(const std::string& path) {
  std::vector<ManifestDocument> out;
  for_each_manifest(path, [&](ManifestDocument&& document) { out.push_back(std::move(document)); });
  return out;
}

std::vector<ManifestDocument> load_manifests(const std::vector<std::string>& paths) {
  std::vector<ManifestDocument> out;
  for (const std::string& file : manifest_files(paths))
    for (auto& document : load_manifest_file(file)) out.push_back(std::move(document));
  return out;
}

}  // namespace gpuadmit
