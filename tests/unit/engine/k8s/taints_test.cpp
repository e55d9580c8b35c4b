// Runs shared/fixtures/upstream/tolerations.json: the upstream Go taint/toleration tables.
#include "engine/k8s/taints.h"

#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "engine/k8s/json_fields.h"

#include "tests/support/upstream_table.h"

namespace k8s = gpuadmit::k8s;
using nlohmann::json;

namespace {

const json& table() { return gpuadmit::testing::upstream_table("tolerations.json"); }

template <typename F>
int for_each_case(std::string_view kind, F f) {
  return gpuadmit::testing::for_each_upstream_case(table(), kind, f);
}

std::string id(const json& c) { return c.at("id").get<std::string>(); }

std::function<bool(const k8s::Taint&)> filter_from(const json& f) {
  if (f.is_null() || f == "all") return {};  // null = no filter: every taint applies
  if (f == "none") return [](const k8s::Taint&) { return false; };
  std::string effect = f.at("effect");
  return [effect](const k8s::Taint& t) { return t.effect == effect; };
}

}  // namespace

TEST(TolerationTable, EveryCaseHasAKnownKind) {
  const std::set<std::string> kinds{"toleration_tolerates_taint", "compare_numeric_values",
                                    "taint_to_string", "taint_match_taint",
                                    "find_matching_untolerated_taint"};
  const auto& cases = table().at("cases");
  EXPECT_EQ(cases.size(), 62u);
  for (const auto& c : cases) EXPECT_TRUE(kinds.count(c.at("kind"))) << id(c);
}

TEST(TolerationTable, ToleratesTaint) {
  int n = for_each_case("toleration_tolerates_taint", [](const json& c) {
    auto tol = k8s::toleration_from_json(c.at("toleration"));
    auto taint = k8s::taint_from_json(c.at("taint"));
    EXPECT_EQ(k8s::tolerates(tol, taint, c.at("enableComparisonOperators")),
              c.at("expectTolerated").get<bool>())
        << id(c) << ": " << c.value("description", "");
  });
  EXPECT_EQ(n, 14);
}

TEST(TolerationTable, CompareNumericValues) {
  int n = for_each_case("compare_numeric_values", [](const json& c) {
    EXPECT_EQ(k8s::compare_numeric_values(c.at("tolerationValue").get<std::string>(),
                                          c.at("taintValue").get<std::string>(),
                                          c.at("operator").get<std::string>()),
              c.at("expectedResult").get<bool>())
        << id(c) << ": " << c.value("description", "");
  });
  EXPECT_EQ(n, 30);
}

TEST(TolerationTable, TaintToString) {
  int n = for_each_case("taint_to_string", [](const json& c) {
    EXPECT_EQ(k8s::to_string(k8s::taint_from_json(c.at("taint"))),
              c.at("expectedString").get<std::string>())
        << id(c);
  });
  EXPECT_EQ(n, 4);
}

TEST(TolerationTable, MatchTaint) {
  int n = for_each_case("taint_match_taint", [](const json& c) {
    EXPECT_EQ(k8s::match_taint(k8s::taint_from_json(c.at("taint")),
                               k8s::taint_from_json(c.at("taintToMatch"))),
              c.at("expectMatch").get<bool>())
        << id(c) << ": " << c.value("description", "");
  });
  EXPECT_EQ(n, 4);
}

TEST(TolerationTable, FindMatchingUntoleratedTaint) {
  int n = for_each_case("find_matching_untolerated_taint", [](const json& c) {
    auto untolerated = k8s::find_matching_untolerated_taint(
        k8s::taints_from_json(c.at("taints")), k8s::tolerations_from_json(c.at("tolerations")),
        filter_from(c.at("taintFilter")), c.at("enableComparisonOperators"));
    EXPECT_EQ(!untolerated.has_value(), c.at("expectAllTolerated").get<bool>())
        << id(c) << ": " << c.value("description", "");
  });
  EXPECT_EQ(n, 10);
}

TEST(TolerationJson, RoundTripOmitsEmptyFields) {
  json in = {{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}};
  EXPECT_EQ(k8s::to_json(k8s::toleration_from_json(in)), in);
  json secs = {{"operator", "Exists"}, {"tolerationSeconds", 300}};
  auto t = k8s::toleration_from_json(secs);
  ASSERT_TRUE(t.toleration_seconds);
  EXPECT_EQ(*t.toleration_seconds, 300);
  EXPECT_EQ(k8s::to_json(t), secs);
}

TEST(TolerationJson, NullFieldsAreEmpty) {
  auto t = k8s::toleration_from_json({{"key", nullptr}, {"tolerationSeconds", nullptr}});
  EXPECT_EQ(t.key, "");
  EXPECT_FALSE(t.toleration_seconds);
  EXPECT_TRUE(k8s::tolerations_from_json(nullptr).empty());
}

TEST(TolerationJson, WrongTypesNameTheField) {
  try {
    k8s::toleration_from_json({{"key", 5}});
    FAIL() << "expected JsonFieldError";
  } catch (const k8s::JsonFieldError& e) {
    EXPECT_STREQ(e.what(), "toleration.key: expected a string, got number");
  }
  EXPECT_THROW(k8s::toleration_from_json({{"tolerationSeconds", 1.5}}), k8s::JsonFieldError);
  EXPECT_THROW(k8s::tolerations_from_json(json::object()), k8s::JsonFieldError);
}

TEST(TolerationSemantics, GpuTaintIsToleratedByWildcardAndExactTolerations) {
  k8s::Taint gpu{"nvidia.com/gpu", "present", "NoSchedule"};
  EXPECT_TRUE(k8s::tolerates({"", "Exists", "", "", {}}, gpu));
  EXPECT_TRUE(k8s::tolerates({"nvidia.com/gpu", "Exists", "", "", {}}, gpu));
  EXPECT_TRUE(k8s::tolerates({"nvidia.com/gpu", "", "present", "", {}}, gpu));
  EXPECT_FALSE(k8s::tolerates({"nvidia.com/gpu", "Equal", "", "NoSchedule", {}}, gpu));
  EXPECT_FALSE(k8s::tolerates({"nvidia.com/gpu", "Exists", "", "NoExecute", {}}, gpu));
  EXPECT_FALSE(k8s::tolerates({"nvidia.com/gpu", "exists", "", "", {}}, gpu));  // case matters
  // Lt/Gt stay inert without the feature gate, even when the numbers would match.
  k8s::Taint sla{"sla", "950", "NoSchedule"};
  EXPECT_FALSE(k8s::tolerates({"sla", "Gt", "750", "", {}}, sla));
  EXPECT_TRUE(k8s::tolerates({"sla", "Gt", "750", "", {}}, sla, true));
  EXPECT_FALSE(k8s::compare_numeric_values("0", "-0", "Lt"));
  EXPECT_FALSE(k8s::compare_numeric_values("0", "9223372036854775808", "Gt"));  // overflow
}
