#include "policies/validation.h"

namespace gpuadmit::policies {

CheckLevel parse_check_level(const ConfigNode& node, CheckLevel fallback) {
  if (!node.present()) return fallback;
  const std::string text = node.as_string();
  if (text == "violation") return CheckLevel::Violation;
  if (text == "warning") return CheckLevel::Warning;
  if (text == "off") return CheckLevel::Off;
  node.fail("expected violation, warning or off, got '" + text + "'");
}

void report(PolicyContext& context, CheckLevel level, std::string field, std::string message) {
  if (level == CheckLevel::Violation) context.violation(std::move(field), std::move(message));
  if (level == CheckLevel::Warning) context.advise(std::move(field), std::move(message));
}

std::vector<std::shared_ptr<const RE2>> compile_regexes(const ConfigNode& list) {
  std::vector<std::shared_ptr<const RE2>> patterns;
  for (const ConfigNode& item : list.items()) {
    auto pattern = std::make_shared<const RE2>(item.as_string(), RE2::Quiet);
    if (!pattern->ok()) item.fail("bad regular expression: " + pattern->error());
    patterns.push_back(std::move(pattern));
  }
  return patterns;
}

bool full_match_any(const std::vector<std::shared_ptr<const RE2>>& patterns, const std::string& text) {
  for (const auto& pattern : patterns)
    if (RE2::FullMatch(text, *pattern)) return true;
  return false;
}

bool partial_match_any(const std::vector<std::shared_ptr<const RE2>>& patterns, const std::string& text) {
  for (const auto& pattern : patterns)
    if (RE2::PartialMatch(text, *pattern)) return true;
  return false;
}

}  // namespace gpuadmit::policies
