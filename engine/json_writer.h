// Writing JSON text: what json::dump() writes, byte for byte, at less cost per byte.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace gpuadmit {

// Appends `value` to `out` exactly as value.dump(-1, ' ', false, handler) writes it (compact, keys
// in the object's order, UTF-8 kept as is). nlohmann's serializer escapes strings a byte at a time
// through a UTF-8 decoder; here a string with nothing to escape, nearly every string of a review,
// is copied whole, and one with escapes is copied in runs between them. Floats are written by
// nlohmann's own to_chars, the serializer's. Invalid UTF-8 is handed to the serializer itself, so
// its handling (strict: json::type_error 316; replace; ignore) stays the only one.
void append_json(std::string& out, const nlohmann::json& value,
                 nlohmann::json::error_handler_t handler = nlohmann::json::error_handler_t::strict);

// Appends `text` as append_json(out, json(text), handler) would, without copying it into a json.
void append_json_string(std::string& out, const std::string& text,
                        nlohmann::json::error_handler_t handler = nlohmann::json::error_handler_t::strict);

// append_json into a new string.
std::string write_json(const nlohmann::json& value,
                       nlohmann::json::error_handler_t handler = nlohmann::json::error_handler_t::strict);

}  // namespace gpuadmit
