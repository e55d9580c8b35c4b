// PodDisruptionBudgets and PriorityClasses as the API server keeps them, the metav1 label
// selector a budget selects pods with (LabelSelectorAsSelector), and the catalog `check` and the
// cluster model fill.
#include <gtest/gtest.h>

#include "engine/k8s/json_fields.h"
#include "engine/k8s/scheduling_objects.h"

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

std::optional<LabelSelector> selector(const char* text, std::vector<FieldError>& errors) {
  return metav1_label_selector(json::parse(text), "spec.selector", errors);
}

// The cases of apimachinery's TestLabelSelectorAsSelector, and what each selects.
TEST(Metav1LabelSelector, NullSelectsNothingAndEmptySelectsEverything) {
  std::vector<FieldError> errors;
  EXPECT_FALSE(selector("null", errors)->matches({{"app", "x"}}));
  EXPECT_TRUE(selector("{}", errors)->matches({}));
  EXPECT_TRUE(selector("{}", errors)->matches({{"app", "x"}}));
  EXPECT_TRUE(errors.empty());
}

TEST(Metav1LabelSelector, MatchLabelsAndExpressionsAreAnded) {
  std::vector<FieldError> errors;
  auto s = selector(R"({"matchLabels":{"foo":"bar"},"matchExpressions":[
      {"key":"baz","operator":"In","values":["qux","norf"]},{"key":"gone","operator":"DoesNotExist"}]})", errors);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->to_string(), "baz in (norf,qux),foo in (bar),!gone");
  EXPECT_TRUE(s->matches({{"foo", "bar"}, {"baz", "norf"}}));
  EXPECT_FALSE(s->matches({{"foo", "bar"}, {"baz", "norf"}, {"gone", ""}}));
  EXPECT_FALSE(s->matches({{"foo", "bar"}}));
  EXPECT_FALSE(s->matches({{"foo", "other"}, {"baz", "qux"}}));
}

TEST(Metav1LabelSelector, NotInAndExists) {
  std::vector<FieldError> errors;
  auto s = selector(R"({"matchExpressions":[{"key":"tier","operator":"NotIn","values":["batch"]},
      {"key":"app","operator":"Exists"}]})", errors);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->matches({{"app", "vllm"}}));
  EXPECT_FALSE(s->matches({{"app", "vllm"}, {"tier", "batch"}}));
  EXPECT_FALSE(s->matches({{"tier", "web"}}));
}

TEST(Metav1LabelSelector, RejectsWhatTheApiServerRejects) {
  std::vector<FieldError> errors;
  // Gt/Lt belong to node selectors, not to metav1 label selectors.
  EXPECT_FALSE(selector(R"({"matchExpressions":[{"key":"n","operator":"Gt","values":["1"]}]})", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "spec.selector.matchExpressions[0].operator");
  errors.clear();
  EXPECT_FALSE(selector(R"({"matchExpressions":[{"key":"a","operator":"In"}]})", errors));  // In needs values
  errors.clear();
  EXPECT_FALSE(selector(R"({"matchLabels":{"bad key!":"x"}})", errors));
  errors.clear();
  EXPECT_THROW(selector(R"({"matchLabels":{"a":1}})", errors), JsonFieldError);
  EXPECT_THROW(selector(R"([])", errors), JsonFieldError);
}

json pdb(const char* api_version, const char* ns, const char* name, const char* selector) {
  return {{"apiVersion", api_version}, {"kind", "PodDisruptionBudget"},
          {"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"selector", json::parse(selector)}, {"minAvailable", 1}}}};
}

TEST(DisruptionBudgets, SelectingFindsTheBudgetsOfTheNamespaceThatMatch) {
  DisruptionBudgetCatalog budgets;
  budgets.upsert(pdb("policy/v1", "serve", "vllm", R"({"matchLabels":{"app":"vllm"}})"));
  budgets.upsert(pdb("policy/v1", "serve", "all", R"({})"));
  budgets.upsert(pdb("policy/v1", "serve-2", "vllm", R"({"matchLabels":{"app":"vllm"}})"));
  budgets.upsert(pdb("policy/v1beta1", "serve", "old-empty", R"({})"));
  auto found = budgets.selecting("serve", {{"app", "vllm"}});
  ASSERT_EQ(found.size(), 2u);  // "all" and "vllm"; v1beta1's empty selector selects no pod
  EXPECT_EQ(found[0]->name, "all");
  EXPECT_EQ(found[0]->min_available, "1");
  EXPECT_EQ(budgets.selecting("serve", {{"app", "tgi"}}).size(), 1u);
  EXPECT_TRUE(budgets.selecting("serv", {{"app", "vllm"}}).empty());  // a prefix is another namespace
  EXPECT_TRUE(budgets.remove("serve", "all"));
  EXPECT_FALSE(budgets.remove("serve", "all"));
  EXPECT_EQ(budgets.remove_except({"serve/vllm"}), 2u);
  EXPECT_EQ(budgets.size(), 1u);
}

TEST(DisruptionBudgets, ABadBudgetNamesItsField) {
  DisruptionBudgetCatalog budgets;
  try {
    budgets.upsert(pdb("policy/v1", "ns", "x", R"({"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]})"));
    FAIL() << "accepted a Gt operator";
  } catch (const JsonFieldError& error) {
    EXPECT_NE(std::string(error.what()).find("spec.selector.matchExpressions[0].operator"), std::string::npos) << error.what();
  }
  json no_name = pdb("policy/v1", "ns", "", "{}");
  EXPECT_THROW(budgets.upsert(no_name), JsonFieldError);
  EXPECT_EQ(budgets.size(), 0u);
}

json priority_class(const char* name, std::int64_t value, bool global_default = false, const char* policy = nullptr) {
  json pc = {{"apiVersion", "scheduling.k8s.io/v1"}, {"kind", "PriorityClass"}, {"metadata", {{"name", name}}},
             {"value", value}, {"globalDefault", global_default}};
  if (policy) pc["preemptionPolicy"] = policy;
  return pc;
}

TEST(PriorityClasses, FindsClassesAndTheBuiltInOnes) {
  PriorityClassCatalog classes;
  classes.upsert(priority_class("inference", 100000));
  classes.upsert(priority_class("batch", 100, false, "Never"));
  ASSERT_TRUE(classes.find("inference"));
  EXPECT_EQ(classes.find("inference")->value, 100000);
  EXPECT_TRUE(classes.find("inference")->preempts);
  EXPECT_FALSE(classes.find("batch")->preempts);
  ASSERT_TRUE(classes.find("system-node-critical"));
  EXPECT_EQ(classes.find("system-node-critical")->value, 2000001000);
  EXPECT_FALSE(classes.find("missing"));
  EXPECT_FALSE(classes.global_default());
}

TEST(PriorityClasses, GlobalDefaultIsTheLowestOfThoseThatClaimIt) {
  PriorityClassCatalog classes;
  classes.upsert(priority_class("a", 500, true));
  classes.upsert(priority_class("b", 50, true));
  ASSERT_TRUE(classes.global_default());
  EXPECT_EQ(classes.global_default()->name, "b");
}

TEST(PriorityClasses, ValueMustBeA32BitInteger) {
  PriorityClassCatalog classes;
  EXPECT_THROW(classes.upsert(priority_class("big", 3000000000)), JsonFieldError);
  json no_value = priority_class("x", 1);
  no_value.erase("value");
  EXPECT_THROW(classes.upsert(no_value), JsonFieldError);
  EXPECT_EQ(classes.size(), 0u);
}

TEST(ObjectCatalog, KeepsItsKindsAndPassesOthers) {
  ObjectCatalog catalog;
  EXPECT_TRUE(catalog.upsert(priority_class("x", 1)));
  EXPECT_TRUE(catalog.upsert(pdb("policy/v1", "ns", "p", "{}")));
  EXPECT_TRUE(catalog.upsert(json::parse(R"({"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim",
      "metadata":{"name":"c","namespace":"ns"},"spec":{"devices":{"requests":[]}}})")));
  EXPECT_FALSE(catalog.upsert(json::parse(R"({"kind":"Deployment","metadata":{"name":"d"}})")));
  EXPECT_TRUE(ObjectCatalog::holds("PriorityClass"));
  EXPECT_FALSE(ObjectCatalog::holds("Deployment"));
  EXPECT_EQ(catalog.priority_classes.size(), 1u);
  EXPECT_EQ(catalog.disruption_budgets.size(), 1u);
  EXPECT_EQ(catalog.claims.size(), 1u);
}

}  // namespace
}  // namespace gpuadmit::k8s
