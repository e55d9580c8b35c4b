// The command line: each subcommand declares its options once (name, value, default, one line
// of help), and that declaration drives parsing, defaults and the usage text, so they cannot
// drift apart. `--name value`, `--name=value`, switches, and aliases (-o for --output).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gpuadmit::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Flag {
  std::string name;      // "--workers"
  std::string value;     // what it takes ("N", "F", "text|json"); empty for a switch
  std::string fallback;  // the default as text; empty when there is none
  std::string help;      // one line
  std::string alias{};   // "-o" for "--output"
  bool required = false;  // shown without brackets; the command checks it
};

struct CommandSpec {
  std::string name;      // "check"
  std::string operands;  // "PATH..."; empty when it takes none
  std::string summary;   // what it does, exit codes: lines printed under the synopsis
  std::vector<Flag> flags;

  const Flag* find(std::string_view name_or_alias) const;
  // "<prefix>gpu-admit check [--config F] ... PATH...", wrapped under its first word.
  std::string synopsis(std::string_view prefix = "") const;
  std::string help() const;      // synopsis, summary and one line per option with its default
};

// `text` after `lead`, in lines of at most 100 columns, each after the first indented by
// `indent` spaces: the usage text's and `explain`'s layout.
std::string wrap_text(const std::string& lead, const std::string& text, std::size_t indent);

struct Args {
  const CommandSpec* spec = nullptr;
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // by canonical name, every occurrence in order
  std::set<std::string> switches;

  std::optional<std::string> value(const std::string& name) const;  // the last one given
  std::string text(const std::string& name) const;  // the value given, else the declared default
  // The value given, else the declared default, as a whole number in [min, max]; UsageError otherwise.
  long long whole(const std::string& name, long long min, long long max) const;
  bool flag(const std::string& name) const { return switches.count(name) > 0; }
};

// The options every command takes: the limits on its input (engine/input_limits.h).
std::vector<Flag> input_limit_flags();

// Parses argv[first..] against `spec` (which must outlive the Args) and applies the input
// limits. "-" alone is positional (stdin). Throws UsageError for an unknown option or a
// missing value.
Args parse_args(int argc, char** argv, int first, const CommandSpec& spec);

}  // namespace gpuadmit::cli
