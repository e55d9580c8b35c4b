// parse_json, the parser of every JSON input (simdjson, with nlohmann's parser for what simdjson
// refuses), against nlohmann's parser alone (parse_json_nlohmann), the reference: both refuse the
// same texts with the same message, or both build the same tree, types included, except the one
// documented difference ("-0" is an unsigned 0; engine/json_from_simdjson.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "engine/input_limits.h"
#include "tests/fuzz/fuzz_common.h"

using nlohmann::json;

namespace {

bool same_tree(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer() && a == 0 && b == 0) return true;
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y)
      if (x.key() != y.key() || !same_tree(x.value(), y.value())) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same_tree(a[i], b[i])) return false;
    return true;
  }
  if (a.is_number_float()) return a.dump() == b.dump();
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<json> reference, parsed;
  std::string reference_error, parsed_error;
  try {
    reference = gpuadmit::parse_json_nlohmann(text);
  } catch (const gpuadmit::InputError& error) {
    reference_error = error.what();
  }
  try {
    parsed = gpuadmit::parse_json(text);
  } catch (const gpuadmit::InputError& error) {
    parsed_error = error.what();
  }
  if (reference_error != parsed_error) std::abort();
  if (reference && !same_tree(*reference, *parsed)) std::abort();
  return 0;
}
