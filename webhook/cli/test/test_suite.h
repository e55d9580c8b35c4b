// `gpu-admit test`: policy test suites for CI. A suite names a policy config and, per case, a
// manifest and what reviewing it must give: allow, deny or warn, which policies, which words,
// and field values after mutation.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpuadmit/engine.h"

namespace gpuadmit::cli {

enum class ExpectedResult { Allow, Deny, Warn };

struct SuiteCase {
  std::string name;
  std::string where;  // file:line of the case, for failure reports
  std::string namespace_;
  std::vector<nlohmann::json> objects;  // each must meet the expectations
  ExpectedResult expect = ExpectedResult::Allow;
  std::vector<std::string> policies;  // must have fired; for deny, exactly the denying ones
  std::vector<std::string> messages;  // substrings of the denial, a warning or an audit annotation
  std::vector<std::pair<std::string, nlohmann::json>> fields;  // JSON pointer -> value after mutation (null: absent)
};

struct Suite {
  std::string file;
  std::shared_ptr<const Engine> engine;
  std::shared_ptr<const capacity::ClusterModel> cluster;  // `cluster:` snapshot files; may be null
  std::string namespace_ = "default";
  std::vector<SuiteCase> cases;
};

// Reads and checks a suite file; throws ConfigError naming the file, line and key (a bad
// suite, a bad referenced config, an unreadable manifest).
Suite load_suite(const std::string& path);

struct CaseResult {
  std::string suite, name;
  std::vector<std::string> failures;  // empty: passed
  bool passed() const { return failures.empty(); }
};

// One result per object of each case.
std::vector<CaseResult> run_suite(const Suite& suite);

std::string junit_xml(const std::vector<CaseResult>& results);

}  // namespace gpuadmit::cli
