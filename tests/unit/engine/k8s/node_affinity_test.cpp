// Runs shared/fixtures/upstream/node_affinity.json: the upstream Go node-selection tables.
#include "engine/k8s/node_affinity.h"

#include <algorithm>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "engine/k8s/json_fields.h"

#include "tests/support/upstream_table.h"

namespace k8s = gpuadmit::k8s;
using nlohmann::json;

namespace {

const json& table() { return gpuadmit::testing::upstream_table("node_affinity.json"); }

template <typename F>
int for_each_case(std::string_view kind, F f) {
  return gpuadmit::testing::for_each_upstream_case(table(), kind, f);
}

std::string id(const json& c) {
  std::string name = c.value("name", "");
  return c.at("id").get<std::string>() + (name.empty() ? "" : " (" + name + ")");
}

// The table's node is {"name", "labels"}; null is a nil node.
std::optional<k8s::Node> fixture_node(const json& j) {
  if (j.is_null()) return std::nullopt;
  k8s::Node n{j.value("name", ""), {}};
  const json labels = j.value("labels", json::object());  // items() must outlive the loop
  for (const auto& [k, v] : labels.items()) n.labels.emplace(k, v);
  return n;
}

k8s::Labels labels_of(const json& j) {
  k8s::Labels l;
  for (const auto& [k, v] : j.items()) l.emplace(k, v);
  return l;
}

json errors_json(const std::vector<k8s::FieldError>& errs) {
  json out = json::array();
  for (const auto& e : errs) {
    out.push_back({{"type", k8s::type_name(e.type)},
                   {"field", e.field},
                   {"detail", e.detail},
                   {"badValue", e.bad_value}});
  }
  return out;
}

json expected_errors(const json& list) {
  json out = json::array();
  for (const auto& e : list) {
    out.push_back({{"type", e.at("type")},
                   {"field", e.at("field")},
                   {"detail", e.at("detail")},
                   {"badValue", e.at("badValue")}});
  }
  return out;
}

// labels.Parse of the one-requirement strings in the table, printed as Requirement.String
// prints it: Parse keeps In/NotIn values as a sorted set.
std::string parsed_selector_string(std::string s) {
  for (std::string_view op : {" in (", " notin ("}) {
    auto at = s.find(op);
    if (at == std::string::npos) continue;
    const auto open = at + op.size();
    std::vector<std::string> vals;
    std::string inner = s.substr(open, s.rfind(')') - open);
    for (std::size_t start = 0;;) {
      auto comma = inner.find(',', start);
      vals.push_back(inner.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    std::sort(vals.begin(), vals.end());
    vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
    std::string joined;
    for (const auto& v : vals) joined += (joined.empty() ? "" : ",") + v;
    return s.substr(0, open) + joined + ")";
  }
  return s;
}

}  // namespace

TEST(NodeAffinityTable, EveryCaseHasAKnownKind) {
  const std::set<std::string> kinds{"node_selector_match",
                                    "preferred_scheduling_terms_score",
                                    "pod_required_node_affinity_match",
                                    "match_node_selector_terms",
                                    "requirements_as_label_selector",
                                    "label_requirements_match"};
  const auto& cases = table().at("cases");
  EXPECT_EQ(cases.size(), 68u);
  for (const auto& c : cases) EXPECT_TRUE(kinds.count(c.at("kind"))) << id(c);
}

TEST(NodeAffinityTable, NodeSelectorMatch) {
  int n = for_each_case("node_selector_match", [](const json& c) {
    std::vector<k8s::FieldError> errs;
    auto sel = k8s::NodeSelector::strict(c.at("nodeSelector"), errs);
    if (c.contains("expectError")) {
      EXPECT_FALSE(sel) << id(c);
      EXPECT_EQ(errors_json(errs), expected_errors(c.at("expectError"))) << id(c);
      return;
    }
    ASSERT_TRUE(sel) << id(c) << ": " << errors_json(errs);
    auto node = fixture_node(c.at("node"));
    EXPECT_EQ(sel->matches(node ? &*node : nullptr), c.at("expectMatch").get<bool>()) << id(c);
  });
  EXPECT_EQ(n, 5);
}

TEST(NodeAffinityTable, PreferredSchedulingTermsScore) {
  int n = for_each_case("preferred_scheduling_terms_score", [](const json& c) {
    std::vector<k8s::FieldError> errs;
    auto terms = k8s::PreferredSchedulingTerms::create(c.at("preferredSchedulingTerms"), errs);
    if (c.contains("expectError")) {
      EXPECT_FALSE(terms) << id(c);
      EXPECT_EQ(errors_json(errs), expected_errors(c.at("expectError"))) << id(c);
      return;
    }
    ASSERT_TRUE(terms) << id(c) << ": " << errors_json(errs);
    auto node = fixture_node(c.at("node"));
    ASSERT_TRUE(node) << id(c);
    EXPECT_EQ(terms->score(*node), c.at("expectScore").get<std::int64_t>()) << id(c);
  });
  EXPECT_EQ(n, 3);
}

TEST(NodeAffinityTable, PodRequiredNodeAffinityMatch) {
  int n = for_each_case("pod_required_node_affinity_match", [](const json& c) {
    auto node = fixture_node(c.at("node"));
    ASSERT_TRUE(node) << id(c);
    EXPECT_EQ(k8s::pod_matches_node_selector_and_affinity(c.at("podSpec"), *node),
              c.at("expectMatch").get<bool>())
        << id(c);
  });
  EXPECT_EQ(n, 27);
}

TEST(NodeAffinityTable, MatchNodeSelectorTerms) {
  int n = for_each_case("match_node_selector_terms", [](const json& c) {
    auto node = fixture_node(c.at("node"));
    EXPECT_EQ(k8s::match_node_selector_terms(node ? &*node : nullptr, c.at("nodeSelector")),
              c.at("expectMatch").get<bool>())
        << id(c);
  });
  EXPECT_EQ(n, 10);
}

TEST(NodeAffinityTable, RequirementsAsLabelSelector) {
  int n = for_each_case("requirements_as_label_selector", [](const json& c) {
    std::vector<k8s::FieldError> errs;
    auto sel = k8s::label_selector_from_requirements(c.at("matchExpressions"), "root", errs);
    const json& expect = c.at("expect");
    if (expect.contains("errors")) {
      EXPECT_FALSE(sel) << id(c);
      EXPECT_EQ(errors_json(errs), expected_errors(expect.at("errors"))) << id(c);
      return;
    }
    ASSERT_TRUE(sel) << id(c) << ": " << errors_json(errs);
    if (expect.value("selectorMatchesNothing", false)) {
      EXPECT_TRUE(sel->matches_nothing()) << id(c);
      EXPECT_FALSE(sel->matches({})) << id(c);
    } else {
      EXPECT_FALSE(sel->matches_nothing()) << id(c);
      EXPECT_EQ(sel->to_string(), parsed_selector_string(expect.at("selectorEqualsParsed")))
          << id(c);
    }
  });
  EXPECT_EQ(n, 7);
}

TEST(LabelRequirementTable, RequirementsMatchLabels) {
  int n = for_each_case("label_requirements_match", [](const json& c) {
    std::vector<k8s::FieldError> errs;
    auto sel = k8s::label_selector_from_requirements(c.at("matchExpressions"), "", errs);
    ASSERT_TRUE(sel) << id(c) << ": " << errors_json(errs);
    EXPECT_EQ(sel->matches(labels_of(c.at("labels"))), c.at("expectMatch").get<bool>())
        << id(c) << " selector " << c.value("selectorString", sel->to_string());
  });
  EXPECT_EQ(n, 16);
}

// ---- Beyond the table: upstream rules the capacity model relies on ----------------------

TEST(LabelRequirement, GtLtParseBothSidesAsGoInt64) {
  std::vector<k8s::FieldError> errs;
  auto gt = k8s::LabelRequirement::create("v", k8s::LabelOperator::Gt, {"05"}, "", errs);
  ASSERT_TRUE(gt) << errors_json(errs);
  EXPECT_TRUE(gt->matches({{"v", "006"}}));
  EXPECT_TRUE(gt->matches({{"v", "+6"}}));
  EXPECT_FALSE(gt->matches({{"v", "5"}}));
  EXPECT_FALSE(gt->matches({{"v", "6.0"}}));
  EXPECT_FALSE(gt->matches({{"v", "99999999999999999999"}}));  // out of int64 range
  EXPECT_FALSE(gt->matches({}));
  // A negative bound parses as an int64 but is no valid label value, so it is rejected.
  EXPECT_FALSE(k8s::LabelRequirement::create("v", k8s::LabelOperator::Lt, {"-1"}, "", errs));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].field, "values[0][v]");
}

TEST(LabelRequirement, ValidationErrorsAsUpstream) {
  std::vector<k8s::FieldError> errs;
  EXPECT_FALSE(
      k8s::LabelRequirement::create("a/b/c", k8s::LabelOperator::Gt, {"x", "y"}, "r", errs));
  ASSERT_EQ(errs.size(), 4u) << errors_json(errs);
  EXPECT_EQ(errs[0].field, "r.key");
  EXPECT_EQ(errs[0].detail.rfind("a valid label key must consist of", 0), 0u) << errs[0].detail;
  EXPECT_EQ(errs[1].field, "r.values");
  EXPECT_EQ(errs[1].detail, "for 'Gt', 'Lt' operators, exactly one value is required");
  EXPECT_EQ(errs[2].field, "r.values[0]");
  EXPECT_EQ(errs[3].field, "r.values[1]");

  errs.clear();
  EXPECT_FALSE(k8s::LabelRequirement::create("Example.com/", k8s::LabelOperator::In, {"ok", "-bad"},
                                             "r", errs));
  ASSERT_EQ(errs.size(), 2u) << errors_json(errs);
  EXPECT_EQ(errs[0].detail.substr(0, 61),
            "prefix part a lowercase RFC 1123 subdomain must consist of lo");
  EXPECT_NE(errs[0].detail.find("; name part must be non-empty; name part must consist"),
            std::string::npos)
      << errs[0].detail;
  EXPECT_EQ(errs[1].field, "r.values[1][Example.com/]");
  EXPECT_EQ(k8s::to_string(errs[1]).substr(0, 46),
            "r.values[1][Example.com/]: Invalid value: \"-ba");

  errs.clear();
  EXPECT_TRUE(k8s::LabelRequirement::create("nvidia.com/gpu.product", k8s::LabelOperator::NotIn,
                                            {"", std::string(63, 'a')}, "r", errs));
  EXPECT_FALSE(k8s::LabelRequirement::create("k", k8s::LabelOperator::In, {std::string(64, 'a')},
                                             "r", errs));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].detail, "must be no more than 63 bytes");
}

TEST(NodeAffinity, MatchFieldsQuirks) {
  json sel = {{"nodeSelectorTerms",
               {{{"matchFields",
                  {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"node-a"}}}}}}}}};
  auto s = k8s::NodeSelector::lazy(sel);
  EXPECT_TRUE(s.matches(k8s::Node{"node-a", {}}));
  EXPECT_FALSE(s.matches(k8s::Node{"node-b", {}}));
  EXPECT_TRUE(s.matches(k8s::Node{"", {}}));  // unnamed node: matchFields are skipped
  // Any other field key reads as "", so NotIn of a non-empty value always holds.
  json other = {
      {"nodeSelectorTerms",
       {{{"matchFields",
          {{{"key", "spec.unschedulable"}, {"operator", "NotIn"}, {"values", {"true"}}}}}}}}};
  EXPECT_TRUE(k8s::NodeSelector::lazy(other).matches(k8s::Node{"n", {}}));
}

TEST(NodeAffinity, LazySelectorSkipsOnlyTheBadTerm) {
  json sel = {{"nodeSelectorTerms",
               {{{"matchExpressions", {{{"key", "gpu"}, {"operator", "Bogus"}}}}},
                {{"matchExpressions", {{{"key", "gpu"}, {"operator", "Exists"}}}}}}}};
  auto s = k8s::NodeSelector::lazy(sel);
  EXPECT_TRUE(s.matches(k8s::Node{"n", {{"gpu", "a100"}}}));
  ASSERT_EQ(s.errors().size(), 1u);
  EXPECT_EQ(k8s::to_string(s.errors()[0]),
            "nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: \"Bogus\": "
            "supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\", \"Gt\", \"Lt\"");
  std::vector<k8s::FieldError> errs;
  EXPECT_FALSE(k8s::NodeSelector::strict(sel, errs));
  EXPECT_EQ(errs.size(), 1u);
}

TEST(NodeAffinity, CompiledOnceMatchedAgainstManyNodes) {
  json spec = json::parse(R"({
    "nodeSelector": {"pool": "gpu"},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
      "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                               "values": ["H100", "A100"]},
                              {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["3"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}]}}}})");
  k8s::RequiredNodeAffinity affinity(spec);
  EXPECT_TRUE(affinity.errors().empty());
  EXPECT_TRUE(affinity.matches(
      {"n1",
       {{"pool", "gpu"}, {"nvidia.com/gpu.product", "H100"}, {"nvidia.com/gpu.count", "8"}}}));
  EXPECT_FALSE(affinity.matches(
      {"n2",
       {{"pool", "gpu"}, {"nvidia.com/gpu.product", "H100"}, {"nvidia.com/gpu.count", "2"}}}));
  EXPECT_FALSE(affinity.matches(
      {"n3",
       {{"pool", "cpu"}, {"nvidia.com/gpu.product", "A100"}, {"nvidia.com/gpu.count", "4"}}}));
  EXPECT_TRUE(affinity.matches({"special", {{"pool", "gpu"}}}));
  EXPECT_FALSE(affinity.matches({"special", {}}));  // nodeSelector still applies
}

TEST(NodeAffinity, NodeFromJsonAndShapeErrors) {
  auto node = k8s::node_from_json(
      {{"metadata", {{"name", "gpu-1"}, {"labels", {{"a", "1"}, {"b", nullptr}}}}}});
  EXPECT_EQ(node.name, "gpu-1");
  EXPECT_EQ(node.labels, (k8s::Labels{{"a", "1"}}));
  try {
    k8s::RequiredNodeAffinity(json::parse(R"({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
          {"matchExpressions": [{"key": "k", "operator": "In", "values": [1]}]}]}}}})"));
    FAIL() << "expected JsonFieldError";
  } catch (const k8s::JsonFieldError& e) {
    EXPECT_STREQ(e.what(),
                 "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                 "nodeSelectorTerms[0].matchExpressions[0].values[0]: expected a string, got "
                 "number");
  }
  EXPECT_THROW(k8s::RequiredNodeAffinity(json{{"nodeSelector", {{"a", 1}}}}), k8s::JsonFieldError);
}
