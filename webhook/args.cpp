#include "webhook/args.h"

#include <charconv>

#include "engine/input_limits.h"

namespace gpuadmit::cli {

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::value_or(const std::string& name, std::string fallback) const {
  return value(name).value_or(std::move(fallback));
}

namespace {

// The limits on input (engine/input_limits.h) apply to every command alike, so every command
// takes them: --max-depth N and --max-file-bytes N.
std::size_t limit_value(const Args& args, const std::string& name, std::size_t fallback, std::size_t min,
                        std::size_t max) {
  auto text = args.value(name);
  if (!text) return fallback;
  std::size_t value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value < min || value > max)
    throw UsageError(name + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", not '" + *text + "'");
  return value;
}

void apply_input_limits(const Args& args) {
  InputLimits limits = input_limits();
  // 5,000 levels still fit the 8 MiB stacks the threads run on; the default is 1,000.
  limits.max_depth = limit_value(args, "--max-depth", limits.max_depth, 16, 5000);
  limits.max_file_bytes = limit_value(args, "--max-file-bytes", limits.max_file_bytes, 1024, std::size_t{1} << 34);
  set_input_limits(limits);
}

}  // namespace

Args parse_args(int argc, char** argv, int first, const std::set<std::string>& with_value_in,
                const std::set<std::string>& flags) {
  std::set<std::string> with_value = with_value_in;
  with_value.insert({"--max-depth", "--max-file-bytes"});
  Args args;
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
    if (with_value.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError(name + " needs a value");
        value = argv[++i];
      }
      args.values[name].push_back(value);
    } else if (flags.count(name) && !inline_value) {
      args.flags.insert(name);
    } else {
      throw UsageError("unknown option " + word);
    }
  }
  apply_input_limits(args);
  return args;
}

}  // namespace gpuadmit::cli
