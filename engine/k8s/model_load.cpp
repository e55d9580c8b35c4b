#include "engine/k8s/model_load.h"

#include <algorithm>
#include <charconv>

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

std::int64_t probe_field(const json& probe, const char* key, std::int64_t fallback) {
  auto it = probe.find(key);
  if (it == probe.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned()) return static_cast<std::int64_t>(std::min<std::uint64_t>(it->get<std::uint64_t>(), INT64_MAX));
  return std::max<std::int64_t>(0, it->get<std::int64_t>());
}

std::int64_t add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? INT64_MAX : sum;
}
std::int64_t mul(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? INT64_MAX : product;
}

std::optional<std::int64_t> annotated(const json* annotations) {
  if (!annotations || !annotations->is_object()) return std::nullopt;
  auto it = annotations->find(std::string(kModelLoadAnnotation));
  if (it == annotations->end() || !it->is_string()) return std::nullopt;
  return parse_model_load_seconds(it->get_ref<const std::string&>());
}

}  // namespace

std::optional<std::int64_t> parse_model_load_seconds(std::string_view text) {
  std::int64_t seconds = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc() || end != text.data() + text.size() || seconds < 1 || seconds > kMaxModelLoadSeconds)
    return std::nullopt;
  return seconds;
}

std::optional<std::int64_t> model_load_seconds(const json& spec, const json* annotations, const json* fallback_annotations) {
  if (auto seconds = annotated(annotations)) return seconds;
  if (auto seconds = annotated(fallback_annotations)) return seconds;
  if (!spec.is_object()) return std::nullopt;
  auto containers = spec.find("containers");
  if (containers == spec.end() || !containers->is_array()) return std::nullopt;
  std::optional<std::int64_t> longest;
  for (const json& container : *containers) {
    if (!container.is_object()) continue;
    auto probe = container.find("startupProbe");
    if (probe == container.end() || !probe->is_object()) continue;
    const std::int64_t budget = add(probe_field(*probe, "initialDelaySeconds", 0),
                                    mul(probe_field(*probe, "failureThreshold", 3), probe_field(*probe, "periodSeconds", 10)));
    longest = std::max(longest.value_or(0), budget);
  }
  return longest;
}

}  // namespace gpuadmit::k8s
