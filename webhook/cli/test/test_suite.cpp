#include "webhook/cli/test/test_suite.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "engine/capacity/cluster_model.h"
#include "engine/input_limits.h"
#include "engine/k8s/json_fields.h"
#include "engine/manifests.h"

namespace gpuadmit::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where a suite's relative paths (config, resources) start: the suite file's folder.
fs::path base_dir(const Suite& suite) { return fs::path(suite.file).parent_path(); }

std::string resolve(const Suite& suite, const std::string& path) {
  fs::path p(path);
  return p.is_absolute() ? path : (base_dir(suite) / p).lexically_normal().string();
}

std::string line_of(const ConfigNode& node) {
  return node.file() + ":" + std::to_string(node.yaml().Mark().line + 1);
}

std::string object_id(const json& object) {
  const json& metadata = object.contains("metadata") ? object["metadata"] : json::object();
  return k8s::json_fields::string_or(object, "kind", "?") + "/" + k8s::json_fields::string_or(metadata, "name", "?");
}

std::vector<json> case_objects(const Suite& suite, const ConfigNode& node) {
  std::vector<ManifestDocument> documents;
  if (node.has("resource")) {
    const ConfigNode resource = node.child("resource");
    try {
      documents = load_manifests({resolve(suite, resource.as_string())});
    } catch (const ManifestError& error) {
      resource.fail(error.what());
    }
  } else {
    const ConfigNode manifest = node.child("manifest");
    if (!manifest.yaml().IsMap()) manifest.fail("expected a Kubernetes object (a map)");
    try {
      documents.push_back({node.file(), 0, 0, yaml_to_json(manifest.yaml(), node.file())});
    } catch (const ManifestError& error) {
      manifest.fail(error.what());
    }
  }
  std::vector<json> objects;
  if (node.has("object")) {
    const std::string wanted = node.string("object", "");
    std::string found;
    for (const ManifestDocument& document : documents) {
      if (object_id(document.object) == wanted) objects.push_back(document.object);
      found += (found.empty() ? "" : ", ") + object_id(document.object);
    }
    if (objects.empty()) node.child("object").fail("no object " + wanted + " here (found: " + found + ")");
    return objects;
  }
  for (const ManifestDocument& document : documents)
    if (locate_workload(document.object, suite.engine->config().kinds).supported) objects.push_back(document.object);
  if (objects.empty())
    node.fail("no Pod, pod controller or declared workload kind to review; name another object with object: Kind/name");
  return objects;
}

SuiteCase parse_case(const Suite& suite, const ConfigNode& node) {
  if (!node.yaml().IsMap()) node.fail("each case is a map with name, resource (or manifest) and expect");
  node.allow_only({"name", "resource", "manifest", "object", "namespace", "expect", "policies", "messages", "fields"});
  SuiteCase c;
  c.name = node.string("name", "");
  if (c.name.empty()) node.fail("name is required");
  c.where = line_of(node);
  if (node.has("resource") == node.has("manifest")) node.fail("give exactly one of resource (a file) or manifest (inline)");
  c.objects = case_objects(suite, node);
  c.namespace_ = node.string("namespace", "");
  const ConfigNode expect = node.child("expect");
  if (!expect.present()) node.fail("expect is required: allow, deny or warn");
  const std::string result = expect.as_string();
  if (result == "allow") c.expect = ExpectedResult::Allow;
  else if (result == "deny") c.expect = ExpectedResult::Deny;
  else if (result == "warn") c.expect = ExpectedResult::Warn;
  else expect.fail("expected allow, deny or warn, got '" + result + "'");
  for (const ConfigNode& item : node.child("policies").items()) {
    if (!find_policy(item.as_string())) item.fail("unknown policy '" + item.as_string() + "'");
    c.policies.push_back(item.as_string());
  }
  c.messages = node.strings("messages");
  for (const auto& [pointer, value] : node.child("fields").entries()) {
    try {
      json::json_pointer check(pointer);
    } catch (const json::exception&) {
      value.fail("'" + pointer + "' is not a JSON pointer (/spec/containers/0/image; write ~1 for / in a key)");
    }
    try {
      c.fields.emplace_back(pointer, yaml_to_json(value.yaml(), node.file()));
    } catch (const ManifestError& error) {  // a value JSON cannot hold (a map key that is a map)
      value.fail(std::string("the expected value is not JSON: ") + error.what());
    }
  }
  return c;
}

// The suite's top-level keys, each read by its own function, so one more key is one more entry.
struct SuiteKey {
  std::string_view name;
  std::function<void(const ConfigNode&, Suite&)> read;
};

const std::vector<SuiteKey>& suite_keys() {
  static const std::vector<SuiteKey> keys = {
      {"config",
       [](const ConfigNode& node, Suite& suite) {
         const std::string path = node.as_string();
         suite.engine = path == "default" ? Engine::from_default() : Engine::from_file(resolve(suite, path));
       }},
      {"namespace", [](const ConfigNode& node, Suite& suite) { suite.namespace_ = node.as_string(); }},
      // A cluster snapshot (a file or a list of files/directories) for gpu-capacity and gpu-quota.
      {"cluster",
       [](const ConfigNode& node, Suite& suite) {
         std::vector<std::string> paths;
         if (node.yaml().IsSequence())
           for (const ConfigNode& item : node.items()) paths.push_back(resolve(suite, item.as_string()));
         else
           paths.push_back(resolve(suite, node.as_string()));
         // `config` is read first (its entry comes first): the model counts its gpuResources.
         if (!suite.engine) suite.engine = Engine::from_default();
         try {
           suite.cluster = capacity::ClusterModel::load(paths, suite.engine->config().gpu);
         } catch (const std::exception& error) {
           node.fail(std::string("cannot load the cluster snapshot: ") + error.what());
         }
       }},
      {"cases",
       [](const ConfigNode& node, Suite& suite) {
         // The cases find their objects' pod templates with the engine's workload kinds.
         if (!suite.engine) suite.engine = Engine::from_default();
         for (const ConfigNode& item : node.items()) suite.cases.push_back(parse_case(suite, item));
         if (suite.cases.empty()) node.fail("a suite needs at least one case");
       }},
  };
  return keys;
}

// What the user sees: the denial and the warnings; with the audit annotations when `audit`.
std::string said(const Response& response, bool audit) {
  std::vector<std::string> parts;
  if (!response.status_message.empty()) parts.push_back(response.status_message);
  parts.insert(parts.end(), response.warnings.begin(), response.warnings.end());
  if (audit)
    for (const auto& [key, value] : response.audit_annotations) parts.push_back(key + ": " + value);
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : "\n    ") + part;
  return text;
}

std::string_view result_name(const Response& response) {
  if (!response.allowed) return "deny";
  return response.warnings.empty() ? "allow" : "warn";
}

std::vector<std::string> check(const SuiteCase& c, const ReviewOutcome& outcome) {
  std::vector<std::string> failures;
  const Response& response = outcome.response;
  static constexpr std::string_view kNames[] = {"allow", "deny", "warn"};
  const std::string_view wanted = kNames[static_cast<int>(c.expect)];
  if (result_name(response) != wanted) {
    std::string detail = said(response, false);
    failures.push_back("expected " + std::string(wanted) + ", got " + std::string(result_name(response)) +
                       (detail.empty() ? "" : ": " + detail));
  }
  std::set<std::string> fired, denied;
  for (const PolicyOutcome& p : outcome.policies) {
    if (p.fired) fired.insert(p.policy);
    if (p.denied) denied.insert(p.policy);
  }
  for (const std::string& policy : c.policies)
    if (!fired.count(policy)) failures.push_back("policy " + policy + " did not report anything");
  if (c.expect == ExpectedResult::Deny)
    for (const std::string& policy : denied)
      if (std::find(c.policies.begin(), c.policies.end(), policy) == c.policies.end() && !c.policies.empty())
        failures.push_back("policy " + policy + " denied too, but is not in the case's policies");
  const std::string text = said(response, true);
  for (const std::string& message : c.messages)
    if (text.find(message) == std::string::npos) failures.push_back("no message contains '" + message + "'");
  for (const auto& [pointer, expected] : c.fields) {
    const json::json_pointer at(pointer);
    const json actual = outcome.mutated.is_object() && outcome.mutated.contains(at) ? outcome.mutated.at(at) : json();
    if (actual != expected)
      failures.push_back("field " + pointer + " is " + (actual.is_null() ? "absent" : actual.dump()) + ", expected " +
                         (expected.is_null() ? "absent" : expected.dump()));
  }
  return failures;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no control characters besides tab, newline and carriage return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') out += ' ';
        else out += c;
    }
  }
  return out;
}

}  // namespace

Suite load_suite(const std::string& path) {
  YAML::Node root;
  try {
    root = load_yaml(read_input_file(path));
  } catch (const InputError& error) {
    // read_input_file names the file itself; YAML errors start with line:column.
    const std::string what = error.what();
    throw ConfigError(what.starts_with(path) ? what : path + ":" + what);
  }
  ConfigNode top(root, path, "");
  if (!root.IsMap()) top.fail("a suite is a map with config, namespace and cases");
  std::vector<std::string_view> names;
  for (const SuiteKey& key : suite_keys()) names.push_back(key.name);
  top.allow_only(names);
  Suite suite;
  suite.file = path;
  for (const SuiteKey& key : suite_keys())
    if (top.has(key.name)) key.read(top.child(key.name), suite);
  if (suite.cases.empty()) top.fail("cases is required: the manifests to review and what each must give");
  if (!suite.engine) suite.engine = Engine::from_default();
  return suite;
}

std::vector<CaseResult> run_suite(const Suite& suite) {
  std::vector<CaseResult> results;
  for (const SuiteCase& c : suite.cases)
    for (const json& object : c.objects) {
      CaseResult result{suite.file, c.name + (c.objects.size() > 1 ? " (" + object_id(object) + ")" : ""), {}};
      const ReviewOutcome outcome =
          suite.engine->review(request_for_manifest(object, c.namespace_.empty() ? suite.namespace_ : c.namespace_, suite.engine->config().kinds),
                              suite.cluster.get());
      result.failures = check(c, outcome);
      for (std::string& failure : result.failures) failure = c.where + ": " + failure;
      results.push_back(std::move(result));
    }
  return results;
}

std::string junit_xml(const std::vector<CaseResult>& results) {
  std::vector<std::string> suites;
  for (const CaseResult& r : results)
    if (std::find(suites.begin(), suites.end(), r.suite) == suites.end()) suites.push_back(r.suite);
  std::ostringstream out;
  std::size_t failed_total = 0;
  for (const CaseResult& r : results) failed_total += r.passed() ? 0 : 1;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"gpu-admit\" tests=\"" << results.size() << "\" failures=\"" << failed_total << "\">\n";
  for (const std::string& suite : suites) {
    std::size_t tests = 0, failures = 0;
    for (const CaseResult& r : results)
      if (r.suite == suite) ++tests, failures += r.passed() ? 0 : 1;
    out << "  <testsuite name=\"" << xml_escape(suite) << "\" tests=\"" << tests << "\" failures=\"" << failures
        << "\">\n";
    for (const CaseResult& r : results) {
      if (r.suite != suite) continue;
      out << "    <testcase classname=\"" << xml_escape(suite) << "\" name=\"" << xml_escape(r.name) << "\"";
      if (r.passed()) {
        out << "/>\n";
        continue;
      }
      std::string all;
      for (const std::string& failure : r.failures) all += failure + "\n";
      out << ">\n      <failure message=\"" << xml_escape(r.failures.front()) << "\">" << xml_escape(all)
          << "</failure>\n    </testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
  return out.str();
}

}  // namespace gpuadmit::cli
