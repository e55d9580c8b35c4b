// Whether two parses of the same text built the same tree: parse_json (simdjson) against
// parse_json_nlohmann, in the unit test and the fuzz target (tests/fuzz/fuzz_json.cpp).
#pragma once

#include <nlohmann/json.hpp>

namespace gpuadmit::testing {

// Types and values, numbers by their JSON type too (1 and 1u are == in nlohmann), floats by
// their text (so -0.0 and 0.0 differ). The one designed exception, "-0": nlohmann keeps a
// signed 0, parse_json an unsigned one (engine/json_from_simdjson.h).
inline bool same_tree(const nlohmann::json& a, const nlohmann::json& b) {
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

}  // namespace gpuadmit::testing
