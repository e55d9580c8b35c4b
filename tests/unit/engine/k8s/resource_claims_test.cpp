// ResourceClaim and ResourceClaimTemplate specs as each resource.k8s.io version writes them,
// and how many GPU devices a claim takes whichever alternative the scheduler picks.
#include <gtest/gtest.h>

#include "engine/k8s/json_fields.h"
#include "engine/k8s/resource_claims.h"

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

bool is_gpu(std::string_view c) { return c == "gpu.nvidia.com" || c == "mig.nvidia.com"; }

ClaimSpec::Devices devices_of(const json& spec) { return parse_claim_spec(spec, "spec").devices(is_gpu); }

TEST(ResourceClaims, V1beta1RequestCountsItsDevices) {
  auto d = devices_of(json::parse(R"({"devices":{"requests":[
      {"name":"gpus","deviceClassName":"gpu.nvidia.com","allocationMode":"ExactCount","count":4}]}})"));
  EXPECT_TRUE(d.any);
  EXPECT_TRUE(d.exact);
  EXPECT_EQ(d.devices, 4);
}

TEST(ResourceClaims, V1ExactlyDefaultsToOneDevice) {
  auto d = devices_of(json::parse(R"({"devices":{"requests":[
      {"name":"gpu","exactly":{"deviceClassName":"gpu.nvidia.com"}},
      {"name":"nic","exactly":{"deviceClassName":"rdma.example.com","count":2}}]}})"));
  EXPECT_TRUE(d.any);
  EXPECT_EQ(d.devices, 1);  // the NIC is not a GPU
}

TEST(ResourceClaims, AllModeCountsOneAndIsNotExact) {
  auto d = devices_of(json::parse(R"({"devices":{"requests":[
      {"name":"all","exactly":{"deviceClassName":"gpu.nvidia.com","allocationMode":"All"}}]}})"));
  EXPECT_TRUE(d.any);
  EXPECT_FALSE(d.exact);
  EXPECT_EQ(d.devices, 1);
}

TEST(ResourceClaims, FirstAvailableTakesTheLeastOfItsAlternatives) {
  auto d = devices_of(json::parse(R"({"devices":{"requests":[{"name":"gpu","firstAvailable":[
      {"name":"big","deviceClassName":"gpu.nvidia.com","count":2},
      {"name":"slices","deviceClassName":"mig.nvidia.com","count":3}]}]}})"));
  EXPECT_EQ(d.devices, 2);
  EXPECT_FALSE(d.exact);
  // A non-GPU alternative means the claim may take no GPU at all.
  d = devices_of(json::parse(R"({"devices":{"requests":[{"name":"x","firstAvailable":[
      {"name":"gpu","deviceClassName":"gpu.nvidia.com","count":2},
      {"name":"cpu","deviceClassName":"cpu.example.com"}]}]}})"));
  EXPECT_TRUE(d.any);
  EXPECT_EQ(d.devices, 0);
}

TEST(ResourceClaims, OtherClassesAreNotGpus) {
  auto d = devices_of(json::parse(R"({"devices":{"requests":[{"name":"n","deviceClassName":"rdma.example.com"}]}})"));
  EXPECT_FALSE(d.any);
  EXPECT_EQ(d.devices, 0);
  EXPECT_FALSE(devices_of(json::object()).any);
}

TEST(ResourceClaims, BadSpecsNameTheField) {
  auto error_of = [](const char* text) {
    try {
      parse_claim_spec(json::parse(text), "spec");
    } catch (const JsonFieldError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"({"devices":{"requests":[{"deviceClassName":"gpu.nvidia.com","count":0}]}})"),
            "spec.devices.requests[0].count: must be at least 1");
  EXPECT_EQ(error_of(R"({"devices":{"requests":[{"exactly":{"allocationMode":"Some"}}]}})"),
            "spec.devices.requests[0].exactly.allocationMode: must be ExactCount or All, got \"Some\"");
  EXPECT_EQ(error_of(R"({"devices":{"requests":{"a":1}}})"), "spec.devices.requests: expected an array, got object");
  EXPECT_EQ(error_of(R"({"devices":{"requests":[{"count":"2"}]}})"), "spec.devices.requests[0].count: expected an int64 integer, got string");
  json many = {{"devices", {{"requests", json::array()}}}};
  for (int i = 0; i < 33; ++i) many["devices"]["requests"].push_back({{"deviceClassName", "gpu.nvidia.com"}});
  EXPECT_EQ(error_of(many.dump().c_str()), "spec.devices.requests: more than 32 requests");
}

TEST(ResourceClaims, HugeCountsAreCappedNotWrapped) {
  json spec = {{"devices", {{"requests", json::array()}}}};
  for (int i = 0; i < 32; ++i)
    spec["devices"]["requests"].push_back({{"deviceClassName", "gpu.nvidia.com"}, {"count", INT64_MAX}});
  auto d = devices_of(spec);
  EXPECT_GT(d.devices, 0);
  EXPECT_EQ(d.devices, 32 * (std::int64_t{1} << 40));
}

TEST(ResourceClaims, CatalogKeepsClaimsAndTemplatesApart) {
  ClaimCatalog catalog;
  catalog.upsert(json::parse(R"({"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaimTemplate",
      "metadata":{"name":"one-gpu","namespace":"ml"},
      "spec":{"spec":{"devices":{"requests":[{"name":"g","exactly":{"deviceClassName":"gpu.nvidia.com"}}]}}}})"));
  catalog.upsert(json::parse(R"({"apiVersion":"resource.k8s.io/v1beta1","kind":"ResourceClaim",
      "metadata":{"name":"shared","namespace":"ml"},
      "spec":{"devices":{"requests":[{"name":"g","deviceClassName":"gpu.nvidia.com","count":2}]}}})"));
  catalog.upsert(json::parse(R"({"kind":"ResourceClaim","metadata":{"name":"other"},"spec":{}})"));
  ASSERT_NE(catalog.find(ClaimCatalog::Kind::Template, "ml", "one-gpu"), nullptr);
  EXPECT_EQ(catalog.find(ClaimCatalog::Kind::Claim, "ml", "one-gpu"), nullptr);
  EXPECT_NE(catalog.find(ClaimCatalog::Kind::Claim, "default", "other"), nullptr);  // no namespace: default
  int claims = 0;
  catalog.for_each_claim("ml", [&](const ClaimSpec& claim) { claims += claim.devices(is_gpu).devices; });
  EXPECT_EQ(claims, 2);  // templates are not claims
  EXPECT_EQ(catalog.remove_except(ClaimCatalog::Kind::Claim, {"ml/shared"}), 1u);
  EXPECT_TRUE(catalog.remove(ClaimCatalog::Kind::Template, "ml", "one-gpu"));
  EXPECT_FALSE(catalog.remove(ClaimCatalog::Kind::Template, "ml", "one-gpu"));
  EXPECT_EQ(catalog.size(), 1u);
  // An unreadable claim is refused whole, and what was stored stays.
  EXPECT_THROW(catalog.upsert(json::parse(R"({"kind":"ResourceClaim","metadata":{"name":"shared","namespace":"ml"},
      "spec":{"devices":{"requests":[{"count":-1}]}}})")), JsonFieldError);
  EXPECT_NE(catalog.find(ClaimCatalog::Kind::Claim, "ml", "shared"), nullptr);
  EXPECT_THROW(catalog.upsert(json::parse(R"({"kind":"ResourceClaim","metadata":{}})")), JsonFieldError);
  EXPECT_THROW(catalog.upsert(json::parse(R"({"kind":"Pod","metadata":{"name":"p"}})")), JsonFieldError);
}

}  // namespace
}  // namespace gpuadmit::k8s
