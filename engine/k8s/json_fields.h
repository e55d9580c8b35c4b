// Reading Kubernetes objects field by field, the way Go's JSON decoding fills a struct:
// a missing or null field is the zero value; a field of the wrong JSON type is an error
// whose message names the field path.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

class JsonFieldError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace json_fields {

inline std::string join(std::string_view path, std::string_view name) {
  return path.empty() ? std::string(name) : std::string(path) + "." + std::string(name);
}

inline std::string index(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

[[noreturn]] inline void fail(std::string_view path, std::string_view expected,
                              const nlohmann::json& got) {
  throw JsonFieldError(std::string(path) + ": expected " + std::string(expected) + ", got " +
                       got.type_name());
}

// The member `name` of `obj`, or nullptr when obj is null or lacks it (or it is null).
inline const nlohmann::json* member(const nlohmann::json& obj, std::string_view path,
                                    std::string_view name) {
  if (obj.is_null()) return nullptr;
  if (!obj.is_object()) fail(path, "an object", obj);
  auto it = obj.find(std::string(name));  // nlohmann 3.10 lacks string_view lookup
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// The two ways to read a string field. For input that must be well-formed (a node, a pod spec):
// string_or_empty, which names the field when it is not a string. For what only labels a
// message or a log line (a name, a kind): string_or, which takes anything that is not a string
// as absent.
inline std::string string_or(const nlohmann::json& obj, std::string_view name, std::string fallback = {}) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(std::string(name));
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

inline std::string string_or_empty(const nlohmann::json& obj, std::string_view path,
                                   std::string_view name) {
  const nlohmann::json* v = member(obj, path, name);
  if (!v) return {};
  if (!v->is_string()) fail(join(path, name), "a string", *v);
  return v->get<std::string>();
}

// An array member; null when missing. Throws when present but not an array.
inline const nlohmann::json* array_or_null(const nlohmann::json& obj, std::string_view path,
                                           std::string_view name) {
  const nlohmann::json* v = member(obj, path, name);
  if (v && !v->is_array()) fail(join(path, name), "an array", *v);
  return v;
}

inline std::int64_t int64_at(const nlohmann::json& v, std::string_view path) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  fail(path, "an int64 integer", v);
}

}  // namespace json_fields
}  // namespace gpuadmit::k8s
