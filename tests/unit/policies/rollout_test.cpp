// The Deployment controller's arithmetic for a rollout (policies/rollout.h): which UPDATEs add
// pods at once (maxSurge and maxUnavailable are scaled by engine/k8s/int_or_string.h, tested
// in tests/unit/engine/k8s/int_or_string_test.cpp).
#include <gtest/gtest.h>

#include "gpuadmit/engine.h"
#include "policies/rollout.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

json deployment(const std::string& image, int replicas, json strategy = nullptr) {
  json d = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "d"}, {"namespace", "ns"}}},
            {"spec", {{"replicas", replicas},
                      {"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
  if (!strategy.is_null()) d["spec"]["strategy"] = strategy;
  return d;
}

RolloutDemand demand_of(const json& object, const json& old) {
  Request request;
  request.operation = "UPDATE";
  request.object = object;
  request.old_object = old;
  const Workload workload = locate_workload(object);
  const Workload old_workload = locate_workload(old);
  json working = object;
  PolicyContext context(request, workload, GpuResources{}, working);
  return rollout_demand(context, workload.pods.at(0), old_workload.pods.empty() ? nullptr : &old_workload.pods[0]);
}

TEST(Rollout, ATemplateChangeSurgesAndMustFitOnlyWithMaxUnavailableZero) {
  // 3 replicas, default 25%/25%: surge 1, unavailable 0: the surge pod must start first.
  RolloutDemand d = demand_of(deployment("a:2", 3), deployment("a:1", 3));
  EXPECT_EQ(d.added_pods, 0);
  EXPECT_EQ(d.surge_pods, 1);
  EXPECT_EQ(d.max_unavailable, 0);
  EXPECT_TRUE(d.surge_must_fit);
  EXPECT_EQ(d.surge_text, "maxSurge 25% of 3 replicas");
  // 4 replicas: unavailable 1, the controller retires an old pod first.
  EXPECT_FALSE(demand_of(deployment("a:2", 4), deployment("a:1", 4)).surge_must_fit);
  // No template change, no surge; a scale-up adds its pods.
  d = demand_of(deployment("a:1", 5), deployment("a:1", 3));
  EXPECT_EQ(d.added_pods, 2);
  EXPECT_EQ(d.surge_pods, 0);
  // Recreate stops every old pod first.
  EXPECT_EQ(demand_of(deployment("a:2", 3, {{"type", "Recreate"}}), deployment("a:1", 3)).surge_pods, 0);
  // maxSurge 0 and maxUnavailable 0 is read as maxUnavailable 1 by the controller.
  d = demand_of(deployment("a:2", 3, {{"rollingUpdate", {{"maxSurge", 0}, {"maxUnavailable", 0}}}}), deployment("a:1", 3));
  EXPECT_FALSE(d.surge_must_fit);
  // A surge larger than the replicas creates at most the replicas.
  EXPECT_EQ(demand_of(deployment("a:2", 2, {{"rollingUpdate", {{"maxSurge", 10}, {"maxUnavailable", 0}}}}),
                      deployment("a:1", 2)).surge_pods, 2);
}

TEST(Rollout, OnlyDeploymentsSurge) {
  json sts = deployment("a:2", 2);
  sts["kind"] = "StatefulSet";
  json old = deployment("a:1", 2);
  old["kind"] = "StatefulSet";
  EXPECT_EQ(demand_of(sts, old).surge_pods, 0);
}

}  // namespace
}  // namespace gpuadmit::policies
