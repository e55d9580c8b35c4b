#include "webhook/args.h"

namespace gpuadmit::cli {

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::value_or(const std::string& name, std::string fallback) const {
  return value(name).value_or(std::move(fallback));
}

Args parse_args(int argc, char** argv, int first, const std::set<std::string>& with_value,
                const std::set<std::string>& flags) {
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
  return args;
}

}  // namespace gpuadmit::cli
