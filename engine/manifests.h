// Reading Kubernetes manifests: YAML (multi-document) or JSON files, directories, stdin.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace gpuadmit {

class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ManifestDocument {
  std::string file;
  int document = 0;  // index of the YAML document in the file
  int line = 0;      // 1-based line where it starts
  nlohmann::json object;
};

// Converts YAML to JSON the way kubectl does (YAML 1.1 scalars: yes/no/on/off are booleans,
// unquoted numbers are numbers, quoted scalars stay strings). Throws ManifestError naming
// `source` and the line for bad YAML.
std::vector<ManifestDocument> parse_manifests(const std::string& text, const std::string& source);
// The same, handing each document to `visit` as it is read and then dropping it: YAML is read
// one document at a time, so a large file is never held whole as a tree or as JSON. Documents
// before a bad one have been visited when the ManifestError is thrown.
using ManifestVisitor = std::function<void(ManifestDocument&&)>;
void parse_manifests(std::string text, const std::string& source, const ManifestVisitor& visit);

// Each path is a file, a directory (read recursively: *.yaml, *.yml, *.json, in name order) or
// "-" for stdin. `kind: List` objects are expanded into their items. Empty documents are
// dropped. Throws ManifestError naming the file for unreadable input (over the limits of
// engine/input_limits.h included).
std::vector<ManifestDocument> load_manifests(const std::vector<std::string>& paths);
// The same in two steps, for readers that go file by file and carry on past a bad one: the files
// the paths name (directories expanded, "-" kept), then one file's documents.
std::vector<std::string> manifest_files(const std::vector<std::string>& paths);
std::vector<ManifestDocument> load_manifest_file(const std::string& path);
void for_each_manifest(const std::string& path, const ManifestVisitor& visit);

// One YAML node as parse_manifests reads documents (kubectl's scalar rules), for files that
// embed manifests or values. Throws ManifestError naming `source`.
nlohmann::json yaml_to_json(const YAML::Node& node, const std::string& source);

// JSON to YAML for people to read (`check --show-mutated`); strings that YAML would read back
// as another type are quoted.
std::string to_yaml(const nlohmann::json& value);

}  // namespace gpuadmit
