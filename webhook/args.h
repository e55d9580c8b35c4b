// A small command-line parser shared by the subcommands: `--name value`, `--name=value`, flags.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpuadmit::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // every occurrence, in order
  std::set<std::string> flags;

  std::optional<std::string> value(const std::string& name) const;
  std::string value_or(const std::string& name, std::string fallback) const;
  bool flag(const std::string& name) const { return flags.count(name) > 0; }
};

// `with_value`: options that take a value (e.g. "--config", "-o"); `flags`: options that do not.
// "-" alone is positional (stdin). Throws UsageError for an unknown option or a missing value.
Args parse_args(int argc, char** argv, int first, const std::set<std::string>& with_value,
                const std::set<std::string>& flags);

}  // namespace gpuadmit::cli
