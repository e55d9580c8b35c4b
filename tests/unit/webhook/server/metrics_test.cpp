// The cached /metrics series (webhook/server/metrics.h) print what was observed: only the series
// used, each counted once per use, from any number of threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gpuadmit/engine.h"
#include "webhook/server/metrics.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;

// The lines of `text` that mention `name`, sorted: the order of series within a family is the
// registry's (hash) order either way.
std::vector<std::string> lines_of(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(name) != std::string::npos && line[0] != '#') out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

HttpAnswer reviewed(const std::string& body) {
  return answer_admission_review(*Engine::from_default(), body, nullptr, ReviewPhases::MutateOnly);
}

std::string golden(const std::string& name) {
  std::ifstream in(fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden" / name / "request.json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The series are cached after their first use; /metrics must list the same series with the same
// counts as looking each one up every time did: only those used, each counted once per use.
TEST(Metrics, CachedSeriesPrintWhatWasObserved) {
  webhook::WebhookMetrics metrics;
  const std::string fresh = metrics.serialize();
  EXPECT_TRUE(lines_of(fresh, "gpuadmit_policy_decisions_total{").empty()) << fresh;
  EXPECT_TRUE(lines_of(fresh, "gpuadmit_http_requests_total{").empty()) << fresh;
  EXPECT_TRUE(lines_of(fresh, "gpuadmit_review_duration_seconds_count{").empty()) << fresh;

  const HttpAnswer vllm = reviewed(golden("probe-defaults--deployment-vllm-profile"));
  const HttpAnswer bad = reviewed("not json");
  ASSERT_TRUE(vllm.outcome);
  for (int i = 0; i < 3; ++i) {
    metrics.observe_review("mutate", vllm, 120e-6);
    metrics.count_request("mutate", 200);
  }
  metrics.observe_review("validate", bad, 10e-6);
  metrics.count_request("validate", 400);
  metrics.count_request("other", 404);
  metrics.count_request("somewhere-else", 200);  // not a known route: still counted
  metrics.count_request("mutate", 999);          // not an HTTP status: still counted

  const std::string text = metrics.serialize();
  EXPECT_EQ(lines_of(text, "gpuadmit_review_duration_seconds_count{"),
            (std::vector<std::string>{
                R"(gpuadmit_review_duration_seconds_count{decision="allowed",route="mutate"} 3)",
                R"(gpuadmit_review_duration_seconds_count{decision="error",route="validate"} 1)"}))
      << text;
  EXPECT_EQ(lines_of(text, "gpuadmit_http_requests_total{"),
            (std::vector<std::string>{R"(gpuadmit_http_requests_total{code="200",route="mutate"} 3)",
                                      R"(gpuadmit_http_requests_total{code="200",route="somewhere-else"} 1)",
                                      R"(gpuadmit_http_requests_total{code="400",route="validate"} 1)",
                                      R"(gpuadmit_http_requests_total{code="404",route="other"} 1)",
                                      R"(gpuadmit_http_requests_total{code="999",route="mutate"} 1)"}))
      << text;
  std::vector<std::string> expected_decisions;
  for (const PolicyOutcome& policy : vllm.outcome->policies) {
    const std::string result = policy.error ? "error" : policy.denied ? "denied" : policy.exempted ? "exempted"
                               : policy.fired ? "fired" : "passed";
    expected_decisions.push_back("gpuadmit_policy_decisions_total{mode=\"" + std::string(to_string(policy.mode)) +
                                 "\",policy=\"" + policy.policy + "\",result=\"" + result + "\"} 3");
  }
  std::sort(expected_decisions.begin(), expected_decisions.end());
  EXPECT_EQ(lines_of(text, "gpuadmit_policy_decisions_total{"), expected_decisions) << text;
  EXPECT_NE(text.find(R"(gpuadmit_review_duration_seconds_bucket{decision="allowed",route="mutate",le="0.00015"} 3)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gpuadmit_patches_applied_total 3"), std::string::npos) << text;
}

TEST(Metrics, CachedSeriesCountEveryUseFromManyThreads) {
  webhook::WebhookMetrics metrics;
  const HttpAnswer vllm = reviewed(golden("probe-defaults--deployment-vllm-profile"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        metrics.observe_review("mutate", vllm, 50e-6);
        metrics.count_request("mutate", 200);
      }
    });
  for (std::thread& thread : threads) thread.join();
  const std::string text = metrics.serialize();
  EXPECT_NE(text.find(R"(gpuadmit_review_duration_seconds_count{decision="allowed",route="mutate"} 2000)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(gpuadmit_http_requests_total{code="200",route="mutate"} 2000)"), std::string::npos) << text;
  EXPECT_EQ(lines_of(text, "gpuadmit_http_requests_total{").size(), 1u) << text;
}

// Violation findings, counted by policy, namespace and the mode the policy ran in; a mutation's
// changes are no violations.
TEST(Metrics, ViolationsByPolicyNamespaceAndMode) {
  webhook::WebhookMetrics metrics;
  const fs::path dir = fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden/image-tags--digest-required-warn";
  // image-tags in warn mode: two unpinned images in namespace prod-eval.
  const HttpAnswer warned = answer_admission_review(*Engine::from_file((dir / "config.yaml").string()),
                                                    golden("image-tags--digest-required-warn"), nullptr,
                                                    ReviewPhases::ValidateOnly);
  ASSERT_TRUE(warned.outcome);
  metrics.observe_review("validate", warned, 50e-6);
  metrics.observe_review("validate", warned, 50e-6);
  metrics.observe_review("mutate", reviewed(golden("probe-defaults--deployment-vllm-profile")), 50e-6);
  const std::string text = metrics.serialize();
  EXPECT_EQ(lines_of(text, "gpuadmit_policy_violations_total{"),
            (std::vector<std::string>{
                R"(gpuadmit_policy_violations_total{mode="warn",namespace="prod-eval",policy="image-tags"} 4)"}))
      << text;
}

// Anyone who reaches the port can send any namespace string: the label takes the first N valid
// names, then "other", and never a string that is no namespace name.
TEST(Metrics, NamespaceLabelValuesAreCapped) {
  webhook::WebhookMetrics metrics(3);
  EXPECT_EQ(metrics.namespace_label("team-a"), "team-a");
  EXPECT_EQ(metrics.namespace_label("team-b"), "team-b");
  EXPECT_EQ(metrics.namespace_label("Team_C"), "other");  // not a DNS label: uses no slot
  EXPECT_EQ(metrics.namespace_label(std::string(64, 'a')), "other");
  EXPECT_EQ(metrics.namespace_label("-a"), "other");
  EXPECT_EQ(metrics.namespace_label("team-c"), "team-c");
  EXPECT_EQ(metrics.namespace_label("team-d"), "other");  // the fourth distinct name
  EXPECT_EQ(metrics.namespace_label("team-a"), "team-a");  // those already given keep theirs
  EXPECT_EQ(metrics.namespace_label(""), "");              // a cluster-scoped object
  EXPECT_EQ(webhook::WebhookMetrics::kMaxNamespaceLabels, 1000u);

  // Through the counter: 2,000 made-up namespaces give at most 1,000 + "other" series.
  webhook::WebhookMetrics flooded;
  HttpAnswer answer;
  answer.outcome.emplace();
  PolicyOutcome tags;
  tags.policy = "image-tags";
  tags.mode = Mode::Enforce;
  tags.fired = tags.denied = true;
  tags.violations = 1;
  answer.outcome->policies.push_back(tags);
  for (int i = 0; i < 2000; ++i) {
    answer.outcome->workload.namespace_ = "ns-" + std::to_string(i);
    flooded.observe_review("validate", answer, 10e-6);
  }
  const std::vector<std::string> series = lines_of(flooded.serialize(), "gpuadmit_policy_violations_total{");
  EXPECT_EQ(series.size(), 1001u);
  EXPECT_NE(std::find(series.begin(), series.end(),
                      R"(gpuadmit_policy_violations_total{mode="enforce",namespace="other",policy="image-tags"} 1000)"),
            series.end());
}

}  // namespace
}  // namespace gpuadmit
