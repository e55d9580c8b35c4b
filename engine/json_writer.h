// Writing JSON text: what json::dump() writes, byte for byte, at less cost per byte.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace gpuadmit {

// Appends `value` to `out` exactly as value.dump(-1, ' ', false, handler) writes it (compact, keys
// in the object's order, UTF-8 kept as is). nlohmann's serializer escapes strings a byte at a time
// through a UTF-8 decoder; a string with nothing to escape and valid UTF-8, nearly every string of
// a review, is copied whole. Every other string, every float and anything unusual is written by
// nlohmann's serializer itself, so its escapes, its number format and its handling of invalid
// UTF-8 (strict: json::type_error 316) stay the only ones.
void append_json(std::string& out, const nlohmann::json& value,
                 nlohmann::json::error_handler_t handler = nlohmann::json::error_handler_t::strict);

// append_json into a new string.
std::string write_json(const nlohmann::json& value,
                       nlohmann::json::error_handler_t handler = nlohmann::json::error_handler_t::strict);

}  // namespace gpuadmit
