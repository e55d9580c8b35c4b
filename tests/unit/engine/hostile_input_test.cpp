// Hostile input: every class the probe of the hostile-input issue found, at each entry point
// (webhook body, manifests, config, snapshot, suite), answered with a clear error or the exact
// answer, never a crash, a hang, unbounded growth, a wrapped integer or a leaked secret.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include "engine/capacity/cluster_model.h"
#include "engine/capacity/placement.h"
#include "engine/input_limits.h"
#include "engine/manifests.h"
#include "gpuadmit/engine.h"
#include "tests/support/command_output.h"
#include "tests/support/server_process.h"

namespace gpuadmit {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using capacity::ClusterModel;
using testing::e2e::TempDir;

struct CommandResult {
  int status = 0;
  std::string out, err;
};

// The real binary, for what only the command line shows (exit status, report on stdout, errors on
// stderr).
CommandResult run_check(const std::string& arguments, const TempDir& dir) {
  CommandResult result;
  const auto err = dir.path() / "stderr.txt";
  int status = 0;
  result.out = testing::command_output(testing::e2e::kBinary + " check " + arguments + " 2>" + err.string(), status);
  result.status = WEXITSTATUS(status);
  result.err = testing::e2e::read_text(err);
  return result;
}

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string review_text(const json& object, const std::string& operation = "CREATE", const json& old = nullptr,
                        const std::string& ns = "team") {
  json request = {{"uid", "u-1"},
                  {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                  {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                  {"namespace", ns},
                  {"operation", operation},
                  {"object", object}};
  if (!old.is_null()) request["oldObject"] = old;
  return json{{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}}.dump();
}

json gpu_pod() {
  return json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team"},
    "spec":{"containers":[{"name":"c","image":"nvcr.io/nvidia/pytorch:24.01-py3",
      "resources":{"limits":{"nvidia.com/gpu":"1","cpu":"1","memory":"1Gi"}}}]}})");
}

HttpAnswer answer(const std::string& body) { return answer_admission_review(*Engine::from_default(), body); }

// The bound a hang guard gives a step that takes milliseconds now and took seconds to minutes
// before its fix: generous, since CI machines are loaded; it only catches a quadratic return.
constexpr auto kHangGuard = 30s;

template <typename F>
void within_hang_guard(F&& step) {
  auto done = std::async(std::launch::async, std::forward<F>(step));
  ASSERT_EQ(done.wait_for(kHangGuard), std::future_status::ready) << "still running after the hang guard";
  done.get();
}

// 1. Deep JSON: refused at the limit while parsing, and handled below it through every
// recursive walk (the copy of an UPDATE's object, the JSON Patch diff of a mutated CREATE).
TEST(HostileInput, DeepJsonIsRefusedWithTheLimitNamed) {
  const std::string body = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","x":)" +
                           nested_arrays(16000) + "}}";
  HttpAnswer refused = answer(body);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("nesting deeper than 1000 levels"), std::string::npos) << refused.body;
  EXPECT_THROW(parse_json(nested_arrays(1001)), InputError);
  EXPECT_NO_THROW(parse_json(nested_arrays(1000)));
}

TEST(HostileInput, DeepJsonJustUnderTheLimitPassesEveryWalk) {
  // The pod is 5 levels down from the review (request.object.spec.containers[0].x): the rest of
  // the limit goes to the deep value.
  json pod = gpu_pod();
  pod["spec"]["containers"][0]["x"] = json::parse(nested_arrays(990));
  HttpAnswer created = answer(review_text(pod));
  ASSERT_EQ(created.status, 200) << created.body.substr(0, 300);
  EXPECT_TRUE(created.allowed);
  EXPECT_NE(json::parse(created.body)["response"].value("patch", ""), "");  // mutated: the diff ran

  json deployment = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"},
                     {"metadata", {{"name", "d"}, {"namespace", "team"}}},
                     {"spec", {{"template", {{"spec", pod["spec"]}}}}}};
  HttpAnswer updated = answer(review_text(deployment, "UPDATE", deployment));
  EXPECT_EQ(updated.status, 200) << updated.body.substr(0, 300);
}

TEST(HostileInput, TheBinarySetsItsOwnStackForTheDepthLimit) {
  // 512 KiB of stack is too little for a walk at the limit; gpu-admit raises it to 8 MiB itself
  // rather than trusting the RLIMIT_STACK it inherits.
  TempDir dir;
  json pod = gpu_pod();
  pod["spec"]["containers"][0]["x"] = json::parse(nested_arrays(990));
  testing::e2e::write_text(dir.path() / "review.json", review_text(pod));
  int status = 0;
  const std::string out = testing::command_output(
      "bash -c 'ulimit -S -s 512 && exec " + testing::e2e::kBinary + " review " + (dir.path() / "review.json").string() +
          "' 2>&1",
      status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out.substr(0, 300);
  EXPECT_NE(out.find("\"allowed\":true"), std::string::npos) << out.substr(0, 300);
}

TEST(HostileInput, DeepYamlIsRefusedInManifestsConfigsAndSuites) {
  // Manifests are read by libyaml, which keeps its own stacks: the reader's limit refuses, naming
  // the line, and a text under it reads whole. Configs and suites are yaml-cpp node trees, whose
  // parser stops at 500 levels.
  EXPECT_EQ(parse_manifests("apiVersion: v1\nkind: Pod\nx: " + nested_arrays(600) + "\n", "deep.yaml").size(), 1u);
  for (std::size_t depth : {1001, 20000}) {
    try {
      parse_manifests("apiVersion: v1\nkind: Pod\nx: " + nested_arrays(depth) + "\n", "deep.yaml");
      ADD_FAILURE() << "no error";
    } catch (const ManifestError& error) {
      EXPECT_NE(std::string(error.what()).find("deep.yaml:3:"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("nesting deeper than 1000 levels"), std::string::npos) << error.what();
    }
  }
  EXPECT_THROW(Engine::from_yaml("policies:\n  dev-shm: " + nested_arrays(1500) + "\n", "c.yaml"), ConfigError);
  EXPECT_THROW(parse_manifests(R"({"kind":"Pod","x":)" + nested_arrays(16000) + "}", "deep.json"), ManifestError);
  // A lower --max-depth is enforced on YAML too.
  const InputLimits limits = input_limits();
  InputLimits low = limits;
  low.max_depth = 100;
  set_input_limits(low);
  try {
    parse_manifests("apiVersion: v1\nkind: Pod\nx: " + nested_arrays(150) + "\n", "deep.yaml");
    ADD_FAILURE() << "no error";
  } catch (const ManifestError& error) {
    EXPECT_NE(std::string(error.what()).find("nesting deeper than 100 levels"), std::string::npos) << error.what();
  }
  set_input_limits(limits);
}

// 2 and 11. Numbers at their extremes are a clear 400, and no parse error quotes the input.
TEST(HostileInput, ExtremeNumbersAreBadRequestsNotServerErrors) {
  for (const std::string& number : std::vector<std::string>{"1e999999", std::string(5000, '7'), "-1e400"}) {
    json pod = gpu_pod();
    std::string body = review_text(pod);
    body.replace(body.find("\"1Gi\""), 5, number);
    HttpAnswer a = answer(body);
    EXPECT_EQ(a.status, 400) << number.substr(0, 20);
    EXPECT_NE(a.body.find("a number is out of range"), std::string::npos) << a.body.substr(0, 300);
    EXPECT_EQ(a.body.find(number.substr(0, 12)), std::string::npos) << a.body.substr(0, 300);
  }
  // In range: exact or the nearest double, as the API server's decoder reads them.
  for (const std::string number : {"18446744073709551616", "-0", "1e-400"}) {
    std::string body = review_text(gpu_pod());
    body.replace(body.find("\"1Gi\""), 5, number);
    EXPECT_EQ(answer(body).status, 200) << number;
  }
}

TEST(HostileInput, ParseErrorsNeverQuoteTheInput) {
  const std::string secret = "hf_SeCrEtToKeN0123456789";
  for (const std::string tail : {"\" x", "\"", "\\q\"", "\u0001\""}) {
    const std::string body = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",)"
                             R"("object":{"env":[{"name":"HF_TOKEN","value":")" + secret + tail;
    HttpAnswer a = answer(body);
    EXPECT_EQ(a.status, 400);
    EXPECT_EQ(a.body.find("SeCrEt"), std::string::npos) << a.body;
    EXPECT_NE(a.body.find("line 1, column"), std::string::npos) << a.body;
  }
  try {
    parse_manifests("{\"HF_TOKEN\": \"" + secret + "\" x}", "m.json");
    FAIL();
  } catch (const ManifestError& error) {
    EXPECT_EQ(std::string(error.what()).find("SeCrEt"), std::string::npos) << error.what();
  }
}

// 12. Objects of the wrong shape are malformed requests (400), not allowed unreviewed.
TEST(HostileInput, WrongShapedObjectsAreBadRequests) {
  auto denial = [](const json& object) {
    HttpAnswer a = answer(review_text(object));
    EXPECT_EQ(a.status, 200);
    json response = json::parse(a.body)["response"];
    EXPECT_FALSE(response["allowed"].get<bool>()) << object.dump();
    EXPECT_EQ(response["status"]["code"], 400);
    return response["status"]["message"].get<std::string>();
  };
  json pod = gpu_pod();
  pod["spec"] = json::array({1});
  EXPECT_NE(denial(pod).find("request.object.spec must be an object"), std::string::npos);
  pod = gpu_pod();
  pod.erase("kind");
  EXPECT_NE(denial(pod).find("request.object.kind must be a non-empty string"), std::string::npos);
  pod["kind"] = 7;
  EXPECT_NE(denial(pod).find("request.object.kind"), std::string::npos);
  json deployment = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "d"}}},
                     {"spec", {{"template", 5}}}};
  EXPECT_NE(denial(deployment).find("request.object.spec.template must be an object"), std::string::npos);
  deployment["spec"] = {{"template", {{"spec", "x"}}}};
  EXPECT_NE(denial(deployment).find("spec.template.spec must be an object"), std::string::npos);
  pod = gpu_pod();
  pod["metadata"] = "x";
  EXPECT_NE(denial(pod).find("request.object.metadata must be an object"), std::string::npos);
}

TEST(HostileInput, ANamespaceWithANulIsNotAnExcludedOne) {
  std::string body = review_text(gpu_pod(), "CREATE", nullptr, "kube-system");
  body.replace(body.find("\"kube-system\""), 13, "\"kube-system\\u0000x\"");
  HttpAnswer a = answer(body);
  ASSERT_EQ(a.status, 200) << a.body;
  json response = json::parse(a.body)["response"];
  EXPECT_FALSE(response["allowed"].get<bool>());
  EXPECT_NE(response["status"]["message"].get<std::string>().find("request.namespace"), std::string::npos);
  EXPECT_FALSE(namespace_matches("kube-system", std::string("kube-system\0x", 13)));
}

TEST(HostileInput, AnOversizedUidIsNotEchoed) {
  std::string body = review_text(gpu_pod());
  body.replace(body.find("\"u-1\""), 5, "\"" + std::string(1 << 20, 'u') + "\"");
  HttpAnswer a = answer(body);
  EXPECT_EQ(a.status, 400);
  EXPECT_LT(a.body.size(), 200u);
}

// 6. YAML alias bombs are refused before anything expands them.
TEST(HostileInput, YamlAliasBombsAreRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    const char previous = static_cast<char>(level - 1);
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + previous;
    bomb += "]\n";
  }
  within_hang_guard([&] {
    try {
      parse_manifests("apiVersion: v1\nkind: ConfigMap\n" + bomb, "bomb.yaml");
      ADD_FAILURE() << "no error";
    } catch (const ManifestError& error) {
      EXPECT_NE(std::string(error.what()).find("expands to more values than its size allows"), std::string::npos)
          << error.what();
    }
    EXPECT_THROW(Engine::from_yaml("policies:\n  dev-shm: {}\n" + bomb, "c.yaml"), ConfigError);
  });
  // Aliases that repeat a little are fine: an anchor reused a few times.
  auto documents = parse_manifests("apiVersion: v1\nkind: X\nbase: &b {a: 1, b: 2}\none: *b\ntwo: *b\n", "ok.yaml");
  ASSERT_EQ(documents.size(), 1u);
  EXPECT_EQ(documents[0].object["two"]["b"], 2);
}

TEST(HostileInput, YamlThatStallsTheParserIsAnError) {
  // yaml-cpp 0.7's LoadAll loops for ever on these (found by fuzz_kubeconfig); manifests are read
  // by libyaml, which refuses them where they go wrong.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {",", "stall.yaml:1:1: invalid YAML"}, {",,,", "stall.yaml:1:1: invalid YAML"},
      {"--- ,", "stall.yaml:1:5: invalid YAML"}, {"a: 1\n---\n, b", "stall.yaml:3:1: invalid YAML"}};
  for (const auto& one : cases) {  // not a structured binding: clang 14 cannot capture one
    within_hang_guard([&] {
      try {
        parse_manifests(one.first, "stall.yaml");
        ADD_FAILURE() << "no error: " << one.first;
      } catch (const ManifestError& error) {
        EXPECT_NE(std::string(error.what()).find(one.second), std::string::npos) << error.what();
      }
    });
  }
  EXPECT_EQ(parse_manifests("---\n---\napiVersion: v1\nkind: X\n---\n", "docs.yaml").size(), 1u);
}

TEST(HostileInput, InvalidUtf8InYamlNamesTheFileAndLine) {
  try {
    parse_manifests("apiVersion: v1\nkind: Pod\nmetadata: {name: \"a\xff\"}\n", "bad.yaml");
    FAIL();
  } catch (const ManifestError& error) {
    EXPECT_EQ(std::string(error.what()), "bad.yaml:3:20: invalid UTF-8 (byte 0xFF): YAML must be UTF-8");
  }
}

TEST(HostileInput, CheckReportsABadFileAndCarriesOnWithTheRest) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "manifests");
  std::ofstream(dir.path() / "manifests" / "a-bad.yaml") << "apiVersion: v1\nkind: Pod\nmetadata: {name: \"a\xff\"}\n";
  std::ofstream(dir.path() / "manifests" / "b-good.yaml") << gpu_pod().dump();
  CommandResult out = run_check("-o json " + (dir.path() / "manifests").string(), dir);
  EXPECT_EQ(out.status, 2) << out.err;
  EXPECT_NE(out.err.find("a-bad.yaml:3:20: invalid UTF-8"), std::string::npos) << out.err;
  json report = json::parse(out.out);
  ASSERT_EQ(report.size(), 2u) << out.out;
  EXPECT_NE(report[0]["error"].get<std::string>().find("invalid UTF-8"), std::string::npos);
  EXPECT_EQ(report[1]["kind"], "Pod");
  EXPECT_TRUE(report[1]["allowed"].get<bool>());
}

// 7. A configuration that names no policy, or is no file at all, is an error: enforcement is
// never switched off by a mistake.
TEST(HostileInput, AConfigThatNamesNoPolicyIsAnError) {
  for (const std::string text : {"", "# only a comment\n", "policies: {}\n", "policies:\n", "excludedNamespaces: [a]\n"}) {
    try {
      Engine::from_yaml(text, "cfg.yaml");
      ADD_FAILURE() << "loaded: '" << text << "'";
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find("names no policy"), std::string::npos) << error.what();
    }
  }
  EXPECT_NO_THROW(Engine::from_yaml("policies:\n  dev-shm: {mode: off}\n", "cfg.yaml"));  // off, explicitly
  TempDir dir;
  mkfifo((dir.path() / "fifo").c_str(), 0600);
  for (const std::string& path : std::vector<std::string>{dir.path().string(), "/dev/zero", (dir.path() / "fifo").string()}) {
    within_hang_guard([&] {
      try {
        Engine::from_file(path);
        ADD_FAILURE() << "loaded " << path;
      } catch (const ConfigError& error) {
        EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
      }
    });
  }
}

TEST(HostileInput, AVolumeNameTheApiServerWouldRefuseIsAConfigError) {
  for (const std::string& name : std::vector<std::string>{"\"\"", "\"a/b~c\"", "\"a\\0b\"", "UPPER", std::string(57, 'a')}) {
    EXPECT_THROW(Engine::from_yaml("policies:\n  dev-shm: {volumeName: " + name + "}\n", "c.yaml"), ConfigError) << name;
  }
  EXPECT_NO_THROW(Engine::from_yaml("policies:\n  dev-shm: {volumeName: " + std::string(56, 'a') + "}\n", "c.yaml"));
}

// 8. Amounts saturate instead of wrapping: a pod asking for 2^63-1 GPUs twice makes the
// namespace's usage huge, and a Deployment that breaks the budget stays denied.
TEST(HostileInput, HugeGpuRequestsDoNotWrapTheQuota) {
  ClusterModel model;
  model.upsert_node({{"kind", "Node"}, {"metadata", {{"name", "n"}}},
                     {"status", {{"allocatable", {{"cpu", "8"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "8"}}}}}});
  const std::string max = "9223372036854775807";
  json container = {{"name", "c"}, {"image", "x"}, {"resources", {{"requests", {{"nvidia.com/gpu", max}}}}}};
  model.upsert_pod({{"kind", "Pod"}, {"metadata", {{"name", "big"}, {"namespace", "team"}}},
                    {"spec", {{"nodeName", "n"}, {"containers", {container, container}}}}});
  EXPECT_EQ(model.read().namespace_usage("team").devices(), INT64_MAX);
  auto engine = Engine::from_yaml("policies:\n  gpu-quota:\n    budgets: [{namespace: team, gpus: 4}]\n", "c.yaml");
  json deployment = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "d"}, {"namespace", "team"}}},
                     {"spec", {{"replicas", 1}, {"template", {{"spec", gpu_pod()["spec"]}}}}}};
  ReviewOutcome outcome = engine->review(request_for_manifest(deployment, "team"), &model);
  EXPECT_FALSE(outcome.response.allowed);
  // Replicas × GPUs saturates too.
  deployment["spec"]["replicas"] = INT64_MAX;
  EXPECT_FALSE(engine->review(request_for_manifest(deployment, "team"), &model).response.allowed);
}

TEST(HostileInput, NegativeQuantitiesInASnapshotAreErrors) {
  TempDir dir;
  std::ofstream(dir.path() / "nodes.json")
      << json{{"kind", "Node"}, {"metadata", {{"name", "n"}}}, {"status", {{"allocatable", {{"nvidia.com/gpu", "-8"}}}}}}.dump();
  try {
    ClusterModel::load({(dir.path() / "nodes.json").string()}, {});
    FAIL();
  } catch (const capacity::SnapshotError& error) {
    EXPECT_NE(std::string(error.what()).find("nvidia.com/gpu must not be negative"), std::string::npos) << error.what();
  }
}

// 5. Work that was quadratic or combinatorial in the input is linear or capped.
// Found by the fuzzers after the classes above were fixed: numbers a policy narrowed or scaled.
TEST(HostileInput, HugeNumbersInFieldsAreNeverNarrowedOrScaledPastInt64) {
  // probe-defaults compared containerPort as an int: 8e33 converted to int is UB.
  json pod = gpu_pod();
  pod["spec"]["containers"][0]["image"] = "vllm/vllm-openai:v0.6.3";
  pod["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 8.00333e33}}});
  json deployment = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "d"}, {"namespace", "team"}}},
                     {"spec", {{"template", {{"spec", pod["spec"]}}}}}};
  EXPECT_NO_THROW(Engine::from_default()->review(request_for_manifest(deployment, "team")));
  // gpu-capacity printed a memory amount near 2^63 as tenths of GiB: amount * 10 overflowed.
  EXPECT_EQ(capacity::format_amount("memory", INT64_MAX), "8589934591.9Gi");
}

TEST(HostileInput, DevShmNamesItsVolumeInOnePass) {
  json pod = gpu_pod();
  json volumes = json::array({{{"name", "dshm"}}});
  for (int i = 2; i <= 40000; ++i) volumes.push_back({{"name", "dshm-" + std::to_string(i)}});
  pod["spec"]["volumes"] = volumes;
  within_hang_guard([&] {
    ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(pod, "team"));
    EXPECT_EQ(outcome.mutated["spec"]["volumes"].back()["name"], "dshm-40001");
  });
}

TEST(HostileInput, GpuAffinityRefusesToMultiplyTermsPastItsCap) {
  json pod = gpu_pod();
  std::string archs;
  for (int i = 0; i < 60; ++i) archs += (i ? "," : "") + std::string("sm_") + std::to_string(50 + i) + "a";
  pod["metadata"]["annotations"] = {{"gpu-admit.io/cuda-arch", archs}};
  json terms = json::array();
  for (int i = 0; i < 40; ++i)
    terms.push_back({{"matchExpressions", {{{"key", "k" + std::to_string(i)}, {"operator", "Exists"}}}}});
  pod["spec"]["affinity"] = {{"nodeAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", terms}}}}}};
  auto engine = Engine::from_yaml("policies:\n  gpu-affinity: {}\n", "c.yaml");
  within_hang_guard([&] {
    ReviewOutcome outcome = engine->review(request_for_manifest(pod, "team"));
    EXPECT_FALSE(outcome.response.allowed);
    EXPECT_NE(outcome.response.status_message.find("more than 64"), std::string::npos) << outcome.response.status_message;
  });
}

TEST(HostileInput, ConfigDuplicateKeysAreFoundInOnePass) {
  std::string config = "policies:\n  gpu-shape:\n    namespaceModes:\n";
  for (int i = 0; i < 100000; ++i) config += "      ns-" + std::to_string(i) + ": warn\n";
  within_hang_guard([&] { EXPECT_NO_THROW(Engine::from_yaml(config, "big.yaml")); });
  config += "      ns-7: warn\n";
  EXPECT_THROW(Engine::from_yaml(config, "big.yaml"), ConfigError);
}

TEST(HostileInput, SnapshotsLoadInLinearTime) {
  TempDir dir;
  json items = json::array();
  // One pool of 30,000 nodes, and 3,000 pools whose names differ only by their number.
  for (int i = 0; i < 30000; ++i)
    items.push_back({{"kind", "Node"}, {"metadata", {{"name", "n" + std::to_string(i)}}},
                     {"status", {{"allocatable", {{"cpu", "8"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "8"}}}}}});
  for (int i = 0; i < 3000; ++i)
    items.push_back({{"kind", "Node"}, {"metadata", {{"name", "t" + std::to_string(i)}}},
                     {"spec", {{"taints", {{{"key", "k" + std::to_string(i)}, {"effect", "NoSchedule"}}}}}},
                     {"status", {{"allocatable", {{"cpu", "8"}, {"memory", "64Gi"}, {"pods", "110"}}}}}});
  std::ofstream(dir.path() / "nodes.json") << json{{"kind", "List"}, {"items", items}}.dump();
  within_hang_guard([&] {
    auto model = ClusterModel::load({(dir.path() / "nodes.json").string()}, {});
    auto view = model->read();
    EXPECT_EQ(view.node_count(), 33000u);
    ASSERT_EQ(view.pools().size(), 3001u);
    std::set<std::string> names;
    for (const capacity::Pool* pool : view.pools()) {
      names.insert(pool->name);
      // Sorted, indexed and summed as if inserted one by one.
      for (std::size_t i = 0; i < pool->nodes.size(); ++i) EXPECT_EQ(pool->nodes[i]->pool_index, i);
      EXPECT_EQ(pool->free.size(), pool->nodes.size());
    }
    EXPECT_EQ(names.size(), 3001u);
    EXPECT_TRUE(names.count("cpu-only #3000")) << *names.begin();
  });
}

TEST(HostileInput, PoolNamesReuseTheLowestFreeNumber) {
  ClusterModel model;
  auto tainted = [](const std::string& name, const std::string& key) {
    return json{{"kind", "Node"}, {"metadata", {{"name", name}}},
                {"spec", {{"taints", {{{"key", key}, {"effect", "NoSchedule"}}}}}},
                {"status", {{"allocatable", {{"cpu", "8"}, {"memory", "64Gi"}, {"pods", "110"}}}}}};
  };
  for (int i = 0; i < 4; ++i) model.upsert_node(tainted("n" + std::to_string(i), "k" + std::to_string(i)));
  model.delete_node("n1");  // "cpu-only #2" is free again
  model.upsert_node(tainted("n9", "k9"));
  std::vector<std::string> names;
  for (const capacity::Pool* pool : model.read().pools()) names.push_back(pool->name);
  EXPECT_EQ(names, (std::vector<std::string>{"cpu-only", "cpu-only #2", "cpu-only #3", "cpu-only #4"}));
}

TEST(HostileInput, FilesThatAreNotRegularFilesAreRefused) {
  TempDir dir;
  mkfifo((dir.path() / "fifo.yaml").c_str(), 0600);
  within_hang_guard([&] {
    EXPECT_THROW(load_manifests({(dir.path() / "fifo.yaml").string()}), ManifestError);
    EXPECT_THROW(ClusterModel::load({(dir.path() / "fifo.yaml").string()}, {}), capacity::SnapshotError);
  });
  InputLimits limits = input_limits();
  InputLimits small = limits;
  small.max_file_bytes = 1024;
  set_input_limits(small);
  std::ofstream(dir.path() / "big.yaml") << std::string(2048, '#');
  try {
    load_manifests({(dir.path() / "big.yaml").string()});
    ADD_FAILURE();
  } catch (const ManifestError& error) {
    EXPECT_NE(std::string(error.what()).find("more than the limit of 1024"), std::string::npos) << error.what();
  }
  set_input_limits(limits);
}

}  // namespace
}  // namespace gpuadmit
