#include "webhook/cli/args.h"

#include <algorithm>
#include <charconv>

#include "engine/input_limits.h"

namespace gpuadmit::cli {

const Flag* CommandSpec::find(std::string_view name_or_alias) const {
  for (const Flag& flag : flags)
    if (flag.name == name_or_alias || (!flag.alias.empty() && flag.alias == name_or_alias)) return &flag;
  return nullptr;
}

namespace {

constexpr std::size_t kWidth = 100;

// `words` after `lead`, wrapped at kWidth with continuation lines indented to `indent`. A lead
// of only the indentation is a line start: no space before its first word.
std::string wrap(const std::string& lead, const std::vector<std::string>& words, std::size_t indent) {
  std::string out = lead, line = lead;
  bool line_start = lead == std::string(indent, ' ');
  for (const std::string& word : words) {
    if (line.size() + 1 + word.size() > kWidth && line.size() > indent) {
      out += "\n" + std::string(indent, ' ');
      line = std::string(indent, ' ');
    } else if (!line_start) {
      out += " ";
      line += " ";
    }
    out += word;
    line += word;
    line_start = false;
  }
  return out;
}

std::string label(const Flag& flag) {
  std::string name = flag.alias.empty() ? flag.name : flag.alias + "|" + flag.name;
  return flag.value.empty() ? name : name + " " + flag.value;
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) words.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

}  // namespace

std::string wrap_text(const std::string& lead, const std::string& text, std::size_t indent) {
  return wrap(lead, words_of(text), indent);
}

std::string CommandSpec::synopsis(std::string_view prefix) const {
  std::vector<std::string> words;
  for (const Flag& flag : flags) {
    if (flag.name == "--max-depth" || flag.name == "--max-file-bytes") continue;  // every command's
    words.push_back(flag.required ? label(flag) : "[" + label(flag) + "]");
  }
  if (!operands.empty()) words.push_back(operands);
  const std::string lead = std::string(prefix) + "gpu-admit " + name;
  return wrap(lead, words, lead.size() + 1);
}

std::string CommandSpec::help() const {
  std::string out = synopsis("usage: ") + "\n" + summary + "\n\noptions:\n";
  std::size_t column = 0;
  for (const Flag& flag : flags) column = std::max(column, label(flag).size());
  for (const Flag& flag : flags) {
    std::string help = flag.help + (flag.fallback.empty() ? "" : " (default " + flag.fallback + ")");
    const std::string lead = "  " + label(flag) + std::string(column - label(flag).size() + 1, ' ');
    out += wrap(lead, words_of(help), lead.size() + 1) + "\n";
  }
  return out;
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::text(const std::string& name) const {
  if (auto given = value(name)) return *given;
  const Flag* declared = spec ? spec->find(name) : nullptr;
  return declared ? declared->fallback : std::string();
}

long long Args::whole(const std::string& name, long long min, long long max) const {
  const std::string given = text(name);
  long long number = 0;
  auto [end, error] = std::from_chars(given.data(), given.data() + given.size(), number);
  if (given.empty() || error != std::errc() || end != given.data() + given.size() || number < min || number > max)
    throw UsageError(name + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", not '" + given + "'");
  return number;
}

std::vector<Flag> input_limit_flags() {
  const InputLimits defaults;
  return {{"--max-depth", "N", std::to_string(defaults.max_depth), "JSON and YAML nesting deeper than this is refused"},
          {"--max-file-bytes", "N", std::to_string(defaults.max_file_bytes),
           "a manifest, config, suite or kubeconfig file larger than this is refused"}};
}

Args parse_args(int argc, char** argv, int first, const CommandSpec& spec) {
  Args args;
  args.spec = &spec;
  for (int i = first; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "-" || word.empty() || word[0] != '-') {
      args.positional.push_back(word);
      continue;
    }
    if (word == "--") {
      for (++i; i < argc; ++i) args.positional.push_back(argv[i]);
      break;
    }
    std::string name = word, value;
    bool inline_value = false;
    if (auto eq = word.find('='); eq != std::string::npos) {
      name = word.substr(0, eq);
      value = word.substr(eq + 1);
      inline_value = true;
    }
    const Flag* flag = spec.find(name);
    if (!flag) throw UsageError("unknown option " + word + " (gpu-admit " + spec.name + " --help lists them)");
    if (flag->value.empty()) {
      if (inline_value) throw UsageError(flag->name + " takes no value");
      args.switches.insert(flag->name);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError(flag->name + " needs a value (" + flag->value + ")");
      value = argv[++i];
    }
    args.values[flag->name].push_back(value);
  }
  // 5,000 levels still fit the 8 MiB stacks the threads run on.
  InputLimits limits = input_limits();
  if (spec.find("--max-depth")) limits.max_depth = static_cast<std::size_t>(args.whole("--max-depth", 16, 5000));
  if (spec.find("--max-file-bytes"))
    limits.max_file_bytes = static_cast<std::size_t>(args.whole("--max-file-bytes", 1024, 1LL << 34));
  set_input_limits(limits);
  return args;
}

}  // namespace gpuadmit::cli
