// The list page reader (simdjson) must give exactly what trim_object() gives for each item of a
// full parse (parse_json), the reference: for the fake API server's objects, for the manifests of
// the project and the public fixtures read as pods, for hostile shapes, and for random items
// written as text with repeated keys, nulls and wrong types where the trimmer looks.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "engine/input_limits.h"
#include "engine/manifests.h"
#include "tests/support/fake_apiserver.h"
#include "webhook/kube/list_page.h"

namespace gpuadmit::kube {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string page_text(const std::vector<std::string>& items, const std::string& metadata = R"({"resourceVersion":"7","continue":"next"})",
                      const std::string& api_version = "v1") {
  std::string text = R"({"kind":"List","apiVersion":")" + api_version + R"(","metadata":)" + metadata + R"(,"items":[)";
  for (std::size_t i = 0; i < items.size(); ++i) text += (i ? "," : "") + items[i];
  return text + "]}";
}

// Reads the page both ways and compares item by item.
void expect_as_trim_object(ObjectKind kind, const std::vector<std::string>& items, const std::string& what,
                           const std::string& dra_api_version = "v1") {
  std::string body = page_text(items, R"({"resourceVersion":"7","continue":"next"})", api_version(kind, dra_api_version));
  ListPage page;
  std::string error;
  ListPageReader reader(dra_api_version);
  ASSERT_TRUE(reader.read(kind, body, page, error)) << what << ": " << error;
  ASSERT_EQ(page.items.size(), items.size()) << what;
  EXPECT_EQ(page.resource_version, "7");
  EXPECT_EQ(page.continue_token, "next");
  for (std::size_t i = 0; i < items.size(); ++i)
    EXPECT_EQ(page.items[i], trim_object(kind, parse_json(items[i]), dra_api_version))
        << what << ", item " << i << ": " << items[i];
}

TEST(ListPageReader, FakeApiServerObjectsTrimAsTrimObject) {
  std::vector<std::string> pods, nodes, namespaces;
  for (int i = 0; i < 20; ++i) {
    json pod = testing::fake_pod("team-" + std::to_string(i), "p" + std::to_string(i), "gpu-" + std::to_string(i), i % 3);
    if (i % 2) pod["spec"]["initContainers"] = json::array({{{"name", "init"}, {"restartPolicy", "Always"}}});
    if (i % 3 == 0) pod["spec"]["affinity"] = {{"nodeAffinity", {{"x", 1}}}, {"podAntiAffinity", json::object()}};
    if (i % 4 == 0) pod["metadata"]["annotations"] = {{"a", "b"}, {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
    pods.push_back(pod.dump());
    nodes.push_back(testing::fake_node("gpu-" + std::to_string(i), 8).dump());
    namespaces.push_back(testing::fake_namespace("team-" + std::to_string(i)).dump());
  }
  expect_as_trim_object(ObjectKind::Pod, pods, "pods");
  expect_as_trim_object(ObjectKind::Node, nodes, "nodes");
  expect_as_trim_object(ObjectKind::Namespace, namespaces, "namespaces");
}

TEST(ListPageReader, ClaimsAndTemplatesTrimAsTrimObject) {
  std::vector<std::string> claims, templates;
  for (int i = 0; i < 10; ++i) {
    json claim = testing::fake_resource_claim("team-" + std::to_string(i), "c" + std::to_string(i), "gpu.nvidia.com", i);
    if (i % 2) claim["apiVersion"] = "resource.k8s.io/v1";  // as in a watch event; list items carry none
    if (i % 3 == 0) claim["metadata"]["resourceVersion"] = std::to_string(100 + i);
    claims.push_back(claim.dump());
    templates.push_back(testing::fake_resource_claim_template("team-" + std::to_string(i), "t" + std::to_string(i), "gpu.nvidia.com", i).dump());
  }
  for (const char* version : {"v1", "v1beta1"}) {
    expect_as_trim_object(ObjectKind::ResourceClaim, claims, "claims", version);
    expect_as_trim_object(ObjectKind::ResourceClaimTemplate, templates, "templates", version);
  }
  // What the reader keeps of a list item: the version listed, four metadata fields and the spec.
  std::string body = page_text({claims[0]}, R"({"resourceVersion":"7"})", "resource.k8s.io/v1beta1");
  ListPageReader reader("v1beta1");
  ListPage page;
  std::string error;
  ASSERT_TRUE(reader.read(ObjectKind::ResourceClaim, body, page, error)) << error;
  const json claim = json::parse(claims[0]);
  EXPECT_EQ(page.items.at(0), (json{{"kind", "ResourceClaim"},
                                    {"apiVersion", "resource.k8s.io/v1beta1"},
                                    {"metadata", {{"name", "c0"}, {"namespace", "team-0"}, {"uid", claim["metadata"]["uid"]},
                                                  {"resourceVersion", "100"}}},
                                    {"spec", claim["spec"]}}));
}

TEST(ListPageReader, DisruptionBudgetsAndPriorityClassesTrimAsTrimObject) {
  std::vector<std::string> budgets, classes;
  for (int i = 0; i < 10; ++i) {
    json budget = testing::fake_disruption_budget("team-" + std::to_string(i), "b" + std::to_string(i),
                                                  i % 2 ? json::object() : json{{"matchLabels", {{"app", "a"}}}}, i);
    if (i % 3 == 0) budget["apiVersion"] = "policy/v1beta1";  // as in a watch event; list items carry none
    if (i % 4 == 0) budget["spec"]["maxUnavailable"] = "25%";
    budgets.push_back(budget.dump());
    json priority_class = testing::fake_priority_class("pc-" + std::to_string(i), i * 1000 - 5000, i == 3);
    if (i % 2) priority_class.erase("preemptionPolicy");
    classes.push_back(priority_class.dump());
  }
  for (const char* version : {"v1", "v1beta1"}) {
    expect_as_trim_object(ObjectKind::PodDisruptionBudget, budgets, "budgets", version);
    expect_as_trim_object(ObjectKind::PriorityClass, classes, "classes", version);
  }
  // A list item gets the version listed.
  std::string body = page_text({budgets[1]}, R"({"resourceVersion":"7"})", "policy/v1beta1");
  ListPageReader reader("v1");
  reader.set_version("v1beta1");  // a list that fell back from policy/v1
  ListPage page;
  std::string error;
  ASSERT_TRUE(reader.read(ObjectKind::PodDisruptionBudget, body, page, error)) << error;
  EXPECT_EQ(page.items.at(0)["apiVersion"], "policy/v1beta1");
  EXPECT_EQ(page.items.at(0)["spec"], json::parse(budgets[1])["spec"]);
}

TEST(ListPageReader, EveryManifestAsAnyKindTrimsAsTrimObject) {
  // Manifests are not pods or nodes, but their shapes (templates, nested specs, numbers, nulls)
  // are what a hostile or unusual item could hold: read as each kind, both ways must agree.
  std::vector<fs::path> roots = {fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples"};
  if (fs::exists(fs::path(GPUADMIT_SHARED_DIR) / "fixtures/public")) roots.push_back(fs::path(GPUADMIT_SHARED_DIR) / "fixtures/public");
  std::vector<std::string> items;
  for (const fs::path& root : roots)
    for (const auto& document : load_manifests({root.string()})) items.push_back(document.object.dump());
  ASSERT_GT(items.size(), 50u);
  for (ObjectKind kind : kWatchedKinds) expect_as_trim_object(kind, items, std::string(kind_name(kind)));
}

TEST(ListPageReader, HostileShapesTrimAsTrimObject) {
  const std::vector<std::string> items = {
      "null", "[]", "5", R"("pod")", R"({"metadata":5})", R"({"metadata":null,"spec":[]})",
      R"({"spec":{"containers":"x","initContainers":{}}})", R"({"status":{"conditions":[1,null,{"type":"Ready"}]}})",
      // Repeated keys: the last one wins at every level the trimmer reads.
      R"({"metadata":{"name":"a"},"metadata":{"namespace":"b"}})",
      R"({"metadata":{"name":"a","name":null,"labels":{"x":"1","x":"2"}}})",
      R"({"spec":{"nodeName":"n1","nodeName":null,"containers":[{"name":"c"}],"containers":5}})",
      R"({"spec":{"affinity":{"nodeAffinity":{"a":1}},"affinity":{"podAffinity":{}}}})",
      R"({"spec":{"affinity":{"nodeAffinity":{"a":1},"nodeAffinity":null}}})",
      R"({"spec":{"initContainers":[{"name":"i"}],"initContainers":"no"}})",
      R"({"metadata":{"annotations":{"a":"b"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}})",
      R"({"metadata":{"annotations":"x","ownerReferences":[{"kind":"RS","kind":"Job","uid":"u"},7],"ownerReferences":null}})",
      R"({"status":{"phase":"Running","phase":null,"capacity":{"nvidia.com/gpu":"8"},"capacity":null}})",
      R"({"spec":{"taints":[{"key":"k"}],"unschedulable":true,"unschedulable":false}})",
      // Numbers as nlohmann reads them: unsigned, negative, floats, exponents.
      R"({"spec":{"priority":18446744073709551615,"tolerations":[{"tolerationSeconds":-3},{"x":1e3},{"y":-0.0},{"z":1.7976931348623157e308}]}})",
      R"({"metadata":{"name":"\u00e9\ud83d\ude00\n\"","labels":{"\u0061":"\u0062"}},"m\u0065tadata":{"uid":"u"}})",
      // The fields kept whole of the kinds of a named group, repeated, null and mistyped.
      R"({"apiVersion":"policy/v1beta1","apiVersion":5,"spec":{"selector":{}},"spec":null})",
      R"({"apiVersion":"x/v1","apiVersion":"","value":7,"value":null,"globalDefault":true,"globalDefault":"yes"})",
      R"({"value":-2147483649,"preemptionPolicy":null,"preemptionPolicy":"Never","description":"d"})",
  };
  for (ObjectKind kind : kWatchedKinds) expect_as_trim_object(kind, items, std::string(kind_name(kind)));
}

// Random items in the shape of a pod or node, written as text: each field the trimmer reads may
// be missing, null, of the wrong type, or repeated.
class RandomItem {
 public:
  explicit RandomItem(unsigned seed) : random_(seed) {}

  std::string item() {
    return object({{"apiVersion", [&] { return scalar(); }},
                   {"metadata", [&] { return object({{"name", [&] { return scalar(); }},
                                                      {"namespace", [&] { return scalar(); }},
                                                      {"resourceVersion", [&] { return scalar(); }},
                                                      {"labels", [&] { return any(2); }},
                                                      {"annotations", [&] { return any(2); }},
                                                      {"ownerReferences", [&] { return list([&] { return any(2); }); }},
                                                      {"managedFields", [&] { return any(3); }}}); }},
                   {"spec", [&] { return object({{"nodeName", [&] { return scalar(); }},
                                                  {"priority", [&] { return scalar(); }},
                                                  {"taints", [&] { return any(2); }},
                                                  {"unschedulable", [&] { return scalar(); }},
                                                  {"affinity", [&] { return object({{"nodeAffinity", [&] { return any(2); }},
                                                                                    {"podAffinity", [&] { return any(1); }}}); }},
                                                  {"containers", [&] { return list([&] { return object({{"name", [&] { return scalar(); }},
                                                                                                       {"resources", [&] { return any(2); }},
                                                                                                       {"image", [&] { return scalar(); }}}); }); }},
                                                  {"initContainers", [&] { return any(2); }}}); }},
                   {"status", [&] { return object({{"phase", [&] { return scalar(); }},
                                                    {"capacity", [&] { return any(2); }},
                                                    {"conditions", [&] { return list([&] { return any(2); }); }}}); }}});
  }

 private:
  using Maker = std::function<std::string()>;

  std::string scalar() {
    static const std::vector<std::string> kScalars = {"null", "true", "false", "0", "-1", "1.5", "1e2", R"("")",
                                                      R"("x")", R"("8")", "18446744073709551615", R"("\u00e9")"};
    return kScalars[random_() % kScalars.size()];
  }
  std::string any(int depth) {
    const unsigned pick = random_() % 6;
    if (depth <= 0 || pick < 3) return scalar();
    if (pick < 4) return list([&] { return any(depth - 1); });
    std::string out = "{";
    for (unsigned i = 0, n = random_() % 4; i < n; ++i)
      out += (i ? "," : "") + std::string("\"k") + std::to_string(random_() % 3) + "\":" + any(depth - 1);
    return out + "}";
  }
  std::string list(const Maker& make) {
    if (random_() % 5 == 0) return scalar();
    std::string out = "[";
    for (unsigned i = 0, n = random_() % 4; i < n; ++i) out += (i ? "," : "") + make();
    return out + "]";
  }
  // An object with each field absent, present, or present twice; sometimes not an object at all.
  std::string object(const std::vector<std::pair<std::string, Maker>>& fields) {
    if (random_() % 8 == 0) return scalar();
    std::string out = "{";
    bool first = true;
    for (const auto& [name, make] : fields)
      for (unsigned copies = random_() % 4 == 0 ? 2 : random_() % 4 == 0 ? 0 : 1; copies > 0; --copies) {
        out += (first ? "\"" : ",\"") + name + "\":" + (random_() % 6 == 0 ? scalar() : make());
        first = false;
      }
    return out + "}";
  }

  std::mt19937 random_;
};

TEST(ListPageReader, RandomItemsTrimAsTrimObject) {
  for (unsigned seed = 1; seed <= 300; ++seed) {
    RandomItem random(seed);
    std::vector<std::string> items;
    for (int i = 0; i < 5; ++i) items.push_back(random.item());
    for (ObjectKind kind : kWatchedKinds) expect_as_trim_object(kind, items, "seed " + std::to_string(seed));
  }
}

TEST(ListPageReader, WhatIsNotAListIsRefusedWithoutQuotingIt) {
  ListPageReader reader;
  for (std::string body : {std::string("[]"), std::string(R"({"items":[]})"), std::string(R"({"metadata":{}})"),
                           std::string(R"({"items":5,"metadata":{}})"), std::string(R"({"items":[],"metadata":[]})"),
                           std::string(R"({"items":[],"metadata":{"continue":5}})"),
                           std::string(R"({"items":[],"metadata":{}} trailing)"), std::string(R"({"items":[{"secret-token")"),
                           std::string("{\"items\":[\"\xff\"],\"metadata\":{}}"), std::string("")}) {
    ListPage page;
    std::string error;
    EXPECT_FALSE(reader.read(ObjectKind::Pod, body, page, error)) << body;
    EXPECT_FALSE(error.empty()) << body;
    EXPECT_EQ(error.find("secret-token"), std::string::npos) << error;
  }
  // An empty list, `items: null` (as Go writes an empty slice it never made), is a list.
  std::string body = R"({"items":null,"metadata":{"resourceVersion":"3"}})";
  ListPage page;
  std::string error;
  EXPECT_TRUE(reader.read(ObjectKind::Pod, body, page, error)) << error;
  EXPECT_TRUE(page.items.empty());
  EXPECT_EQ(page.resource_version, "3");
}

TEST(ListPageReader, AnIntegerPastSixtyFourBitsFailsThePage) {
  // The one place the reader is stricter than parse_json (which reads it as a double): nodes,
  // pods and namespaces are Go structs whose integers are at most 64 bits, so the API server never
  // writes one. The page fails as a whole, as any malformed page does, and the list is retried.
  std::string body = page_text({R"({"metadata":{"name":"p"},"x":123456789012345678901234567890})"});
  EXPECT_NO_THROW(parse_json(body));
  ListPageReader reader;
  ListPage page;
  std::string error;
  EXPECT_FALSE(reader.read(ObjectKind::Pod, body, page, error));
  EXPECT_EQ(error, "Problem while parsing a number");
}

TEST(ListPageReader, TheDepthLimitIsTheOneParseJsonApplies) {
  // parse_json refuses more than max_depth open arrays and objects; so does the reader, counting
  // the page and its items array, wherever the nesting is (here in a field that is never kept).
  const std::size_t limit = input_limits().max_depth;
  for (std::size_t depth : {limit - 3, limit - 2, limit - 1}) {
    const std::string nested = std::string(depth, '[') + std::string(depth, ']');
    std::string body = page_text({R"({"metadata":{"name":"p"},"x":)" + nested + "}"});
    bool reference_ok = true;
    try {
      parse_json(body);
    } catch (const InputError&) {
      reference_ok = false;
    }
    ListPageReader reader;
    ListPage page;
    std::string error;
    EXPECT_EQ(reader.read(ObjectKind::Pod, body, page, error), reference_ok) << depth << ": " << error;
    if (!reference_ok) {
      EXPECT_NE(error.find("nesting deeper than"), std::string::npos) << error;
    }
  }
}

}  // namespace
}  // namespace gpuadmit::kube
