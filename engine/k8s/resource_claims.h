// Dynamic Resource Allocation (resource.k8s.io): what a ResourceClaim or ResourceClaimTemplate
// asks for, and the catalog of the claims and templates a review can resolve a pod's
// spec.resourceClaims against. Read the way the API server's versions write it:
//   v1beta1 (1.32), v1alpha3:  spec.devices.requests[] {deviceClassName, allocationMode, count,
//                              firstAvailable[]}
//   v1beta2 (1.33), v1 (1.34): spec.devices.requests[] {exactly {deviceClassName, allocationMode,
//                              count}, firstAvailable[]}
// A template holds the claim's spec under spec.spec. allocationMode defaults to ExactCount and
// count to 1; `All` takes every matching device of a node, a number nobody knows in advance.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpuadmit::k8s {

// One device request: the alternatives it may be satisfied with, in order (one unless
// firstAvailable). count nullopt: allocationMode All.
// What a request or a claim takes of the device classes `is_gpu_class` names, whichever
// alternative the scheduler picks: `devices` is the least it can take (an All request counts
// one), `exact` whether that number is certain, `any` whether any alternative asks for such a
// device.
struct ClaimDevices {
  bool any = false;
  bool exact = true;
  std::int64_t devices = 0;
};

struct DeviceRequest {
  struct Alternative {
    std::string device_class;
    std::optional<std::int64_t> count;
  };
  std::string name;
  std::vector<Alternative> alternatives;
  ClaimDevices devices(const std::function<bool(std::string_view)>& is_gpu_class) const;
};

struct ClaimSpec {
  std::vector<DeviceRequest> requests;
  using Devices = ClaimDevices;
  Devices devices(const std::function<bool(std::string_view)>& is_gpu_class) const;  // the sum over requests
};

// Throws JsonFieldError naming the field. `spec` is a claim's spec (a template's spec.spec);
// `path` names it in errors. At most kMaxDeviceRequests requests of kMaxDeviceRequests
// alternatives each, as the API server's validation allows (32 and 8): more is an error.
inline constexpr std::size_t kMaxDeviceRequests = 32;
ClaimSpec parse_claim_spec(const nlohmann::json& spec, std::string_view path);

// ResourceClaims and ResourceClaimTemplates by namespace and name. Not thread-safe: the cluster
// model guards its own, `check` builds one from the manifests it reads.
class ClaimCatalog {
 public:
  enum class Kind { Claim, Template };
  static std::optional<Kind> kind_of(std::string_view kind);  // "ResourceClaim", "ResourceClaimTemplate"

  // A ResourceClaim or ResourceClaimTemplate object of any resource.k8s.io version. Throws
  // JsonFieldError naming the field when its spec cannot be read.
  void upsert(const nlohmann::json& object);
  bool remove(Kind kind, std::string_view namespace_, std::string_view name);
  const ClaimSpec* find(Kind kind, std::string_view namespace_, std::string_view name) const;
  // Every ResourceClaim of a namespace (claims, not templates: a template holds no device until
  // a pod's claim is made from it, and that claim is a ResourceClaim of its own).
  void for_each_claim(std::string_view namespace_, const std::function<void(const ClaimSpec&)>& visit) const;
  std::size_t size() const { return claims_.size() + templates_.size(); }
  // After a full list of one kind: what `keys` ("namespace/name") does not hold is gone.
  std::size_t remove_except(Kind kind, const std::unordered_set<std::string>& keys);
  bool empty() const { return claims_.empty() && templates_.empty(); }

 private:
  std::map<std::string, ClaimSpec, std::less<>> claims_, templates_;  // "namespace/name"
};

}  // namespace gpuadmit::k8s
