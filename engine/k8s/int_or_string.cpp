#include "engine/k8s/int_or_string.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace gpuadmit::k8s {

std::optional<std::int64_t> scaled_percent(std::string_view text, std::int64_t total, bool round_up) {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  const std::string_view digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  std::int64_t percent = 0;  // past int64, strconv.Atoi fails upstream: so here
  if (std::from_chars(digits.data(), digits.data() + digits.size(), percent).ec != std::errc()) return std::nullopt;
  std::int64_t product = 0;
  if (__builtin_mul_overflow(percent, std::max<std::int64_t>(total, 0), &product))
    product = std::numeric_limits<std::int64_t>::max();
  return round_up ? product / 100 + (product % 100 != 0) : product / 100;
}

std::optional<std::int64_t> scaled_int_or_percent(const nlohmann::json& value, std::int64_t total, bool round_up) {
  if (value.is_number_integer()) {
    const std::int64_t n = value.get<std::int64_t>();
    return n < 0 ? std::nullopt : std::optional<std::int64_t>(n);
  }
  if (!value.is_string()) return std::nullopt;
  return scaled_percent(value.get_ref<const std::string&>(), total, round_up);
}

}  // namespace gpuadmit::k8s
