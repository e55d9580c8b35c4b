#include "engine/k8s/resource_claims.h"

#include <algorithm>

#include "engine/k8s/json_fields.h"

namespace gpuadmit::k8s {
namespace {

namespace jf = json_fields;
using nlohmann::json;

// deviceClassName, allocationMode and count of an exact request (v1beta2/v1 `exactly`, the
// request itself in v1beta1, or one firstAvailable entry).
DeviceRequest::Alternative parse_exact(const json& request, const std::string& path) {
  DeviceRequest::Alternative alternative;
  alternative.device_class = jf::string_or_empty(request, path, "deviceClassName");
  const std::string mode = jf::string_or_empty(request, path, "allocationMode");
  if (mode == "All") return alternative;  // count stays unknown
  if (!mode.empty() && mode != "ExactCount")
    throw JsonFieldError(jf::join(path, "allocationMode") + ": must be ExactCount or All, got \"" + mode + "\"");
  alternative.count = 1;
  if (const json* count = jf::member(request, path, "count")) {
    alternative.count = jf::int64_at(*count, jf::join(path, "count"));
    if (*alternative.count < 1) throw JsonFieldError(jf::join(path, "count") + ": must be at least 1");
  }
  return alternative;
}

}  // namespace

ClaimDevices DeviceRequest::devices(const std::function<bool(std::string_view)>& is_gpu_class) const {
  ClaimDevices out;
  std::optional<std::int64_t> least;  // over the alternatives; a non-GPU one takes none
  for (const Alternative& alternative : alternatives) {
    std::int64_t taken = 0;
    if (is_gpu_class(alternative.device_class)) {
      out.any = true;
      if (!alternative.count) out.exact = false;
      taken = alternative.count.value_or(1);
    }
    if (alternatives.size() > 1 && taken != (least ? *least : taken)) out.exact = false;
    least = std::min(least.value_or(taken), taken);
  }
  out.devices = least.value_or(0);
  return out;
}

ClaimSpec::Devices ClaimSpec::devices(const std::function<bool(std::string_view)>& is_gpu_class) const {
  Devices out;
  for (const DeviceRequest& request : requests) {
    const Devices one = request.devices(is_gpu_class);
    out.any |= one.any;
    out.exact &= one.exact;
    out.devices += one.devices;  // at most 32 × 2^40: counts are capped when parsed
  }
  return out;
}

ClaimSpec parse_claim_spec(const json& spec, std::string_view path_view) {
  const std::string path(path_view);
  ClaimSpec claim;
  const json* devices = jf::member(spec, path, "devices");
  if (!devices) return claim;
  const std::string devices_path = jf::join(path, "devices");
  const json* requests = jf::array_or_null(*devices, devices_path, "requests");
  if (!requests) return claim;
  const std::string requests_path = jf::join(devices_path, "requests");
  if (requests->size() > kMaxDeviceRequests)
    throw JsonFieldError(requests_path + ": more than " + std::to_string(kMaxDeviceRequests) + " requests");
  for (std::size_t i = 0; i < requests->size(); ++i) {
    const std::string at = jf::index(requests_path, i);
    const json& entry = (*requests)[i];
    if (!entry.is_object()) jf::fail(at, "an object", entry);
    DeviceRequest request;
    request.name = jf::string_or_empty(entry, at, "name");
    if (const json* alternatives = jf::array_or_null(entry, at, "firstAvailable"); alternatives && !alternatives->empty()) {
      const std::string list = jf::join(at, "firstAvailable");
      if (alternatives->size() > kMaxDeviceRequests)
        throw JsonFieldError(list + ": more than " + std::to_string(kMaxDeviceRequests) + " alternatives");
      for (std::size_t j = 0; j < alternatives->size(); ++j) {
        const json& alternative = (*alternatives)[j];
        if (!alternative.is_object()) jf::fail(jf::index(list, j), "an object", alternative);
        request.alternatives.push_back(parse_exact(alternative, jf::index(list, j)));
      }
    } else if (const json* exactly = jf::member(entry, at, "exactly")) {
      request.alternatives.push_back(parse_exact(*exactly, jf::join(at, "exactly")));
    } else {
      request.alternatives.push_back(parse_exact(entry, at));
    }
    // Counts beyond any node's devices are as good as infinite; capping keeps sums exact.
    for (DeviceRequest::Alternative& alternative : request.alternatives)
      if (alternative.count) alternative.count = std::min<std::int64_t>(*alternative.count, std::int64_t{1} << 40);
    claim.requests.push_back(std::move(request));
  }
  return claim;
}

std::optional<ClaimCatalog::Kind> ClaimCatalog::kind_of(std::string_view kind) {
  if (kind == "ResourceClaim") return Kind::Claim;
  if (kind == "ResourceClaimTemplate") return Kind::Template;
  return std::nullopt;
}

void ClaimCatalog::upsert(const json& object) {
  const std::string kind_name = jf::string_or(object, "kind");
  const std::optional<Kind> kind = kind_of(kind_name);
  if (!kind) throw JsonFieldError("kind: expected ResourceClaim or ResourceClaimTemplate, got \"" + kind_name + "\"");
  const json* metadata = jf::member(object, "", "metadata");
  const std::string name = metadata ? jf::string_or_empty(*metadata, "metadata", "name") : "";
  if (name.empty()) throw JsonFieldError("metadata.name: a " + kind_name + " needs a name");
  std::string ns = metadata ? jf::string_or_empty(*metadata, "metadata", "namespace") : "";
  if (ns.empty()) ns = "default";
  const json* spec = jf::member(object, "", "spec");
  ClaimSpec parsed;
  if (spec && *kind == Kind::Template) {
    if (const json* claim_spec = jf::member(*spec, "spec", "spec")) parsed = parse_claim_spec(*claim_spec, "spec.spec");
  } else if (spec) {
    parsed = parse_claim_spec(*spec, "spec");
  }
  (*kind == Kind::Claim ? claims_ : templates_)[ns + "/" + name] = std::move(parsed);
}

bool ClaimCatalog::remove(Kind kind, std::string_view namespace_, std::string_view name) {
  auto& map = kind == Kind::Claim ? claims_ : templates_;
  auto it = map.find(std::string(namespace_) + "/" + std::string(name));
  if (it == map.end()) return false;
  map.erase(it);
  return true;
}

const ClaimSpec* ClaimCatalog::find(Kind kind, std::string_view namespace_, std::string_view name) const {
  const auto& map = kind == Kind::Claim ? claims_ : templates_;
  auto it = map.find(std::string(namespace_) + "/" + std::string(name));
  return it == map.end() ? nullptr : &it->second;
}

void ClaimCatalog::for_each_claim(std::string_view namespace_, const std::function<void(const ClaimSpec&)>& visit) const {
  const std::string prefix = std::string(namespace_) + "/";
  for (auto it = claims_.lower_bound(prefix); it != claims_.end() && it->first.starts_with(prefix); ++it)
    visit(it->second);
}

std::size_t ClaimCatalog::remove_except(Kind kind, const std::unordered_set<std::string>& keys) {
  auto& map = kind == Kind::Claim ? claims_ : templates_;
  return std::erase_if(map, [&](const auto& entry) { return !keys.count(entry.first); });
}

}  // namespace gpuadmit::k8s
