// The webhook's two phases (/mutate runs the mutations, /validate the validations) and the cap on
// the number of warnings a single answer carries.
#include <gtest/gtest.h>

#include <algorithm>

#include <fstream>

#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

Request golden_request(const std::string& name) {
  std::ifstream in(std::string(GPUADMIT_SOURCE_DIR) + "/tests/golden/" + name + "/request.json");
  return decode_admission_review(json::parse(in));
}

TEST(ReviewPhases, MutateOnlyPatchesAsAFullReviewDoes) {
  auto engine = Engine::from_default();
  Request request = golden_request("probe-defaults--deployment-vllm-profile");
  ReviewOutcome all = engine->review(request);
  ReviewOutcome mutate = engine->review(request, nullptr, ReviewPhases::MutateOnly);
  ASSERT_FALSE(all.response.patch.empty());
  EXPECT_EQ(mutate.response.patch, all.response.patch);
  // The mutations' warnings are among the full review's (which adds the validations' own).
  for (const std::string& warning : mutate.response.warnings)
    EXPECT_NE(std::find(all.response.warnings.begin(), all.response.warnings.end(), warning),
              all.response.warnings.end())
        << warning;
}

TEST(ReviewPhases, ValidateOnlyNeverPatchesNorRunsMutations) {
  auto engine = Engine::from_default();
  ReviewOutcome validate =
      engine->review(golden_request("probe-defaults--deployment-vllm-profile"), nullptr, ReviewPhases::ValidateOnly);
  EXPECT_TRUE(validate.response.allowed);
  EXPECT_TRUE(validate.response.patch.empty());
  for (const PolicyOutcome& policy : validate.policies)
    EXPECT_NE(find_policy(policy.policy)->kind, PolicyKind::Mutating) << policy.policy;
  HttpAnswer answer = answer_admission_review(
      *engine, json{{"apiVersion", "admission.k8s.io/v1"},
                    {"kind", "AdmissionReview"},
                    {"request", json::parse(std::ifstream(std::string(GPUADMIT_SOURCE_DIR) +
                                                          "/tests/golden/probe-defaults--deployment-vllm-profile/request.json"))
                                    .at("request")}}
                   .dump(),
      nullptr, ReviewPhases::ValidateOnly);
  ASSERT_EQ(answer.status, 200);
  EXPECT_FALSE(json::parse(answer.body).at("response").contains("patch"));
}

// Twenty GPU containers without probes or a known runtime each get a warning: the answer carries
// kMaxWarnings of them, the last counting the rest, and every one is in the audit annotation.
TEST(Warnings, CountIsCappedAndTheRestAnnotated) {
  json containers = json::array();
  for (int i = 0; i < 20; ++i)
    containers.push_back({{"name", "worker-" + std::to_string(i)},
                          {"image", "example.com/custom-trainer:" + std::to_string(i)},
                          {"resources", {{"limits", {{"nvidia.com/gpu", 1}}}}}});
  json deployment = {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata", {{"name", "many"}, {"namespace", "ml"}}},
                     {"spec",
                      {{"selector", {{"matchLabels", {{"app", "many"}}}}},
                       {"template",
                        {{"metadata", {{"labels", {{"app", "many"}}}}},
                         {"spec", {{"containers", containers}}}}}}}};
  ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(deployment, "ml"));
  const auto& warnings = outcome.response.warnings;
  ASSERT_EQ(warnings.size(), kMaxWarnings);
  EXPECT_NE(warnings.back().find("more warnings are in the audit annotations"), std::string::npos)
      << warnings.back();
  for (const std::string& warning : warnings) EXPECT_LE(warning.size(), 120u) << warning;
  const std::string& annotation = outcome.response.audit_annotations.at("probe-defaults");
  EXPECT_NE(annotation.find("containers[19]"), std::string::npos) << annotation;
  EXPECT_NE(annotation.find("containers[15]"), std::string::npos) << annotation;
}

}  // namespace
}  // namespace gpuadmit
