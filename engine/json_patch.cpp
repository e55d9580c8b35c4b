#include "engine/json_patch.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

void diff(const json& from, const json& to, const std::string& path, json& ops) {
  if (from == to) return;
  if (from.type() != to.type()) {
    ops.push_back({{"op", "replace"}, {"path", path}, {"value", to}});
    return;
  }
  if (from.is_object()) {
    for (auto it = from.begin(); it != from.end(); ++it)
      if (!to.contains(it.key()))
        ops.push_back({{"op", "remove"}, {"path", path + "/" + escape_pointer_token(it.key())}});
    for (auto it = to.begin(); it != to.end(); ++it) {
      std::string child = path + "/" + escape_pointer_token(it.key());
      auto old = from.find(it.key());
      if (old == from.end())
        ops.push_back({{"op", "add"}, {"path", child}, {"value", it.value()}});
      else
        diff(*old, it.value(), child, ops);
    }
    return;
  }
  if (from.is_array()) {
    std::size_t common = std::min(from.size(), to.size());
    for (std::size_t i = 0; i < common; ++i) diff(from[i], to[i], path + "/" + std::to_string(i), ops);
    // Remove from the end so every index stays valid while the ops apply in order.
    for (std::size_t i = from.size(); i > common; --i)
      ops.push_back({{"op", "remove"}, {"path", path + "/" + std::to_string(i - 1)}});
    for (std::size_t i = common; i < to.size(); ++i)
      ops.push_back({{"op", "add"}, {"path", path + "/" + std::to_string(i)}, {"value", to[i]}});
    return;
  }
  ops.push_back({{"op", "replace"}, {"path", path}, {"value", to}});
}

}  // namespace

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

json json_patch_diff(const json& from, const json& to) {
  json ops = json::array();
  diff(from, to, "", ops);
  return ops;
}

}  // namespace gpuadmit
