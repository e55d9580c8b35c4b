#include "engine/json_patch.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

// RFC 6901 escaping of `token`, appended to `out`: most keys need none, and none allocates.
void append_escaped(std::string& out, std::string_view token) {
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
}

json operation(const char* op, const std::string& path) {
  json out = json::object();
  out.emplace("op", op);
  out.emplace("path", path);
  return out;
}

// `path` is the pointer of `from`/`to`; it is extended in place for children and restored before
// returning, so a walk over an unchanged document builds no strings. Containers are not compared
// as a whole first: the walk itself finds equal subtrees equal (comparing first would re-walk every
// subtree once per level above it). Scalars compare with json's ==, so 1 and 1u stay equal.
// Objects are std::maps, both in key order: their members are paired by walking the two in step,
// without a lookup per key. The operations come in the order a lookup per key would give: every
// removal first (in `from`'s order), then the additions and changes in `to`'s order.
void diff(const json& from, const json& to, std::string& path, json& ops) {
  const bool container = from.is_object() || from.is_array();
  if (!container || from.type() != to.type()) {
    if (from == to) return;
    json op = operation("replace", path);
    op.emplace("value", to);
    ops.push_back(std::move(op));
    return;
  }
  const std::size_t length = path.size();
  auto child_key = [&](std::string_view key) -> std::string& {
    path.resize(length);
    path += '/';
    append_escaped(path, key);
    return path;
  };
  auto child_index = [&](std::size_t index) -> std::string& {
    path.resize(length);
    path += '/';
    path += std::to_string(index);
    return path;
  };
  if (from.is_object()) {
    const auto& old_members = from.get_ref<const json::object_t&>();
    const auto& new_members = to.get_ref<const json::object_t&>();
    // One compare() per step: the maps order their keys by it, and a key matched in one map is
    // passed in the other too (keys are unique), so an unchanged object costs one comparison
    // of each key, where `<` both ways cost three.
    auto theirs = new_members.begin();
    for (auto mine = old_members.begin(); mine != old_members.end(); ++mine) {
      int order = 1;
      while (theirs != new_members.end() && (order = theirs->first.compare(mine->first)) < 0) ++theirs;
      if (theirs == new_members.end() || order != 0)
        ops.push_back(operation("remove", child_key(mine->first)));
      else
        ++theirs;
    }
    auto mine = old_members.begin();
    for (theirs = new_members.begin(); theirs != new_members.end(); ++theirs) {
      int order = 1;
      while (mine != old_members.end() && (order = mine->first.compare(theirs->first)) < 0) ++mine;
      if (mine == old_members.end() || order != 0) {
        json op = operation("add", child_key(theirs->first));
        op.emplace("value", theirs->second);
        ops.push_back(std::move(op));
      } else {
        diff(mine->second, theirs->second, child_key(theirs->first), ops);
        ++mine;
      }
    }
  } else {
    std::size_t common = std::min(from.size(), to.size());
    for (std::size_t i = 0; i < common; ++i) diff(from[i], to[i], child_index(i), ops);
    // Remove from the end so every index stays valid while the ops apply in order.
    for (std::size_t i = from.size(); i > common; --i) ops.push_back(operation("remove", child_index(i - 1)));
    for (std::size_t i = common; i < to.size(); ++i) {
      json op = operation("add", child_index(i));
      op.emplace("value", to[i]);
      ops.push_back(std::move(op));
    }
  }
  path.resize(length);
}

}  // namespace

json json_patch_diff(const json& from, const json& to) {
  json ops = json::array();
  std::string path;
  diff(from, to, path, ops);
  return ops;
}

}  // namespace gpuadmit
