#include "engine/json_from_simdjson.h"

namespace gpuadmit {

using nlohmann::json;
using simdjson::dom::element_type;

json json_from_simdjson(simdjson::dom::element value) {
  switch (value.type()) {
    case element_type::OBJECT: {
      json out = json::object();
      auto& members = out.get_ref<json::object_t&>();
      // Held by value: a range-for over get_object().value_unsafe() would outlive the temporary.
      const simdjson::dom::object object = value.get_object().value_unsafe();
      for (auto [key, child] : object) members.insert_or_assign(std::string(key), json_from_simdjson(child));
      return out;
    }
    case element_type::ARRAY: {
      json out = json::array();
      auto& elements = out.get_ref<json::array_t&>();
      const simdjson::dom::array array = value.get_array().value_unsafe();
      elements.reserve(array.size());  // the tape's count, exact below 2^24 elements
      for (simdjson::dom::element child : array) elements.push_back(json_from_simdjson(child));
      return out;
    }
    case element_type::STRING:
      return std::string(value.get_string().value_unsafe());
    case element_type::INT64: {
      // nlohmann reads a non-negative integer as unsigned: the same type, so the same JSON.
      const int64_t number = value.get_int64().value_unsafe();
      return number >= 0 ? json(static_cast<uint64_t>(number)) : json(number);
    }
    case element_type::UINT64:
      return value.get_uint64().value_unsafe();
    case element_type::DOUBLE:
      return value.get_double().value_unsafe();
    case element_type::BOOL:
      return value.get_bool().value_unsafe();
    case element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

}  // namespace gpuadmit
