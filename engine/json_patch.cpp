#include "engine/json_patch.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

// `path` is the pointer of `from`/`to`; it is extended in place for children and restored before
// returning, so a walk over an unchanged document builds no strings. Containers are not compared
// as a whole first: the walk itself finds equal subtrees equal (comparing first would re-walk every
// subtree once per level above it). Scalars compare with json's ==, so 1 and 1u stay equal.
void diff(const json& from, const json& to, std::string& path, json& ops) {
  const bool container = from.is_object() || from.is_array();
  if (!container || from.type() != to.type()) {
    if (from == to) return;
    ops.push_back({{"op", "replace"}, {"path", path}, {"value", to}});
    return;
  }
  const std::size_t length = path.size();
  auto child = [&](std::string_view token) -> std::string& {
    path.resize(length);
    path += '/';
    path += token;
    return path;
  };
  if (from.is_object()) {
    for (auto it = from.begin(); it != from.end(); ++it)
      if (!to.contains(it.key()))
        ops.push_back({{"op", "remove"}, {"path", child(escape_pointer_token(it.key()))}});
    for (auto it = to.begin(); it != to.end(); ++it) {
      auto old = from.find(it.key());
      if (old == from.end())
        ops.push_back({{"op", "add"}, {"path", child(escape_pointer_token(it.key()))}, {"value", it.value()}});
      else
        diff(*old, it.value(), child(escape_pointer_token(it.key())), ops);
    }
  } else {
    std::size_t common = std::min(from.size(), to.size());
    for (std::size_t i = 0; i < common; ++i) diff(from[i], to[i], child(std::to_string(i)), ops);
    // Remove from the end so every index stays valid while the ops apply in order.
    for (std::size_t i = from.size(); i > common; --i)
      ops.push_back({{"op", "remove"}, {"path", child(std::to_string(i - 1))}});
    for (std::size_t i = common; i < to.size(); ++i)
      ops.push_back({{"op", "add"}, {"path", child(std::to_string(i))}, {"value", to[i]}});
  }
  path.resize(length);
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
  std::string path;
  diff(from, to, path, ops);
  return ops;
}

}  // namespace gpuadmit
