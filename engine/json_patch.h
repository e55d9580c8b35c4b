// RFC 6902 JSON Patch between two documents.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace gpuadmit {

// The operations that turn `from` into `to`. Unlike nlohmann::json::diff, appends use explicit
// array indices rather than "-", so every path names an element that exists after the op, which
// strict appliers and readers of audit logs both handle.
nlohmann::json json_patch_diff(const nlohmann::json& from, const nlohmann::json& to);

}  // namespace gpuadmit
