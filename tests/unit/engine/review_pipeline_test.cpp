// The review pipeline (engine/engine.cpp and the wire helpers): a mutation that throws half-way
// is rolled back by replaying the mutations that completed, validating policies never change the
// object they read in place, the review decoded by moving the object out is the same review, the
// bytes written directly are the encoder's, and the JSON Patch diff turns one object into the
// other.
#include <gtest/gtest.h>

#include <spdlog/logger.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "engine/capacity/cluster_model.h"
#include "engine/json_patch.h"
#include "engine/mutation_replay.h"
#include "engine/review_wire.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A vLLM Deployment whose first GPU container has a GPU limit and no request (requests-equal-limits
// adds one) and whose second has a memory limit that is not a quantity: requests-equal-limits
// changes the first container, then throws on the second; dev-shm throws on it too.
json half_way_deployment() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "half-way", "namespace": "ml"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": {
      "metadata": {"labels": {"app": "x"}},
      "spec": {"containers": [
        {"name": "server", "image": "vllm/vllm-openai:v0.6.3",
         "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "4", "memory": "16Gi"}}},
        {"name": "sidecar", "image": "vllm/vllm-openai:v0.6.3",
         "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "12QB"}, "requests": {"memory": "1Gi"}}}
      ]}}}})");
}

// The default configuration with some policies' mode set to `mode`, whatever it ships with.
std::shared_ptr<const Engine> default_with(const std::vector<std::string>& policies, const std::string& mode) {
  std::ifstream in(fs::path(GPUADMIT_SOURCE_DIR) / "policies/default.yaml");
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  for (const std::string& policy : policies) {
    const std::string marker = "  " + policy + ":\n    mode: ";
    const auto at = yaml.find(marker);
    EXPECT_NE(at, std::string::npos) << policy;
    if (at == std::string::npos) continue;
    const auto line_end = yaml.find('\n', at + marker.size());
    yaml.replace(at, line_end - at, marker + mode);
  }
  return Engine::from_yaml(yaml, "test");
}

const PolicyOutcome* outcome_of(const ReviewOutcome& outcome, const std::string& policy) {
  for (const PolicyOutcome& p : outcome.policies)
    if (p.policy == policy) return &p;
  return nullptr;
}

TEST(Rollback, APolicyThrowingHalfWayChangesNothingAndEarlierChangesStay) {
  const Request request = request_for_manifest(half_way_deployment(), "default");
  ReviewOutcome outcome = Engine::from_default()->review(request, nullptr, ReviewPhases::MutateOnly);

  ASSERT_NE(outcome_of(outcome, "requests-equal-limits"), nullptr);
  EXPECT_TRUE(outcome_of(outcome, "requests-equal-limits")->error);
  EXPECT_TRUE(outcome_of(outcome, "dev-shm")->error);
  EXPECT_FALSE(outcome_of(outcome, "gpu-tolerations")->error);
  EXPECT_FALSE(outcome.response.allowed);
  EXPECT_NE(outcome.response.status_message.find(
                "[requests-equal-limits] the policy could not evaluate this object: "
                "spec.template.spec.containers[1].resources.limits.memory"),
            std::string::npos)
      << outcome.response.status_message;

  // The object is what the mutations that completed made of it, as if the two that threw had
  // not run at all: the first container has no request added, the toleration and probes are there.
  auto both_off = default_with({"requests-equal-limits", "dev-shm"}, "off");
  ReviewOutcome reference = both_off->review(request, nullptr, ReviewPhases::MutateOnly);
  EXPECT_EQ(outcome.mutated, reference.mutated) << json::diff(reference.mutated, outcome.mutated).dump();
  const json& first = outcome.mutated.at(json::json_pointer("/spec/template/spec/containers/0"));
  EXPECT_FALSE(first.at("resources").contains("requests")) << first.dump();
  EXPECT_TRUE(outcome.mutated.at(json::json_pointer("/spec/template/spec")).contains("tolerations"));
  EXPECT_TRUE(first.contains("startupProbe")) << first.dump();
  EXPECT_NE(outcome.mutated, request.object);
  EXPECT_EQ(outcome.response.patch, json::array());  // denied: no patch

  // The findings are reported once, not again for the replayed mutations.
  int toleration_changes = 0;
  for (const auto& [policy, text] : outcome.response.audit_annotations)
    if (policy == "gpu-tolerations") ++toleration_changes;
  EXPECT_LE(toleration_changes, 1);
  ReviewOutcome again = Engine::from_default()->review(request, nullptr, ReviewPhases::MutateOnly);
  EXPECT_EQ(again.response.status_message, outcome.response.status_message);
  EXPECT_EQ(again.response.warnings, outcome.response.warnings);
  EXPECT_EQ(again.response.audit_annotations, outcome.response.audit_annotations);
}

TEST(Rollback, ValidationsSeeTheRolledBackObject) {
  const Request request = request_for_manifest(half_way_deployment(), "default");
  ReviewOutcome outcome = Engine::from_default()->review(request);
  // gpu-shape judges the object the mutations left: the second container still has no cpu.
  EXPECT_NE(outcome.response.status_message.find("[gpu-shape] spec.template.spec.containers[1].resources"),
            std::string::npos)
      << outcome.response.status_message;
  EXPECT_FALSE(outcome.mutated.at(json::json_pointer("/spec/template/spec/containers/0/resources"))
                   .contains("requests"));
}

TEST(Rollback, WarnModeMutationsLeaveTheObjectAlone) {
  json object = half_way_deployment();
  object["spec"]["template"]["spec"]["containers"].erase(1);  // nothing throws now
  const Request request = request_for_manifest(object, "default");
  ReviewOutcome warned = default_with({"requests-equal-limits"}, "warn")->review(request, nullptr, ReviewPhases::MutateOnly);
  ReviewOutcome off = default_with({"requests-equal-limits"}, "off")->review(request, nullptr, ReviewPhases::MutateOnly);
  EXPECT_EQ(warned.mutated, off.mutated);
  EXPECT_TRUE(outcome_of(warned, "requests-equal-limits")->fired);
  ReviewOutcome enforced = Engine::from_default()->review(request, nullptr, ReviewPhases::MutateOnly);
  EXPECT_NE(enforced.mutated, off.mutated);
}

// A mutation that labels the object; it throws from its `throw_on`-th run on (0: never).
class LabelPolicy : public Policy {
 public:
  LabelPolicy(std::string key, int throw_on) : key_(std::move(key)), throw_on_(throw_on) {}
  void run(PolicyContext& context) const override {
    if (throw_on_ > 0 && ++runs_ >= throw_on_) throw std::runtime_error(key_ + " is not deterministic");
    context.object["metadata"]["labels"][key_] = "yes";
    context.changed("metadata.labels", "added " + key_);
  }

 private:
  std::string key_;
  int throw_on_;
  mutable int runs_ = 0;
};

TEST(Rollback, ReplayingTheCompletedMutationsRebuildsTheirObject) {
  const Request request = request_for_manifest(half_way_deployment(), "default");
  const Workload workload = locate_workload(request.object);
  LabelPolicy first("first", 0), second("second", 0);
  ReplayedObject replayed = replay_mutations(request, workload, GpuResources{}, nullptr, nullptr,
                                             {{"first", &first}, {"second", &second}});
  EXPECT_EQ(replayed.error, "");
  json expected = request.object;
  expected["metadata"]["labels"] = {{"first", "yes"}, {"second", "yes"}};
  EXPECT_EQ(replayed.object, expected);
}

TEST(Rollback, AMutationThatThrowsWhenReplayedLeavesTheObjectAsSubmitted) {
  const Request request = request_for_manifest(half_way_deployment(), "default");
  const Workload workload = locate_workload(request.object);
  LabelPolicy first("first", 0), flaky("flaky", 1);  // the replay is its first run here
  ReplayedObject replayed = replay_mutations(request, workload, GpuResources{}, nullptr, nullptr,
                                             {{"first", &first}, {"flaky", &flaky}});
  EXPECT_EQ(replayed.object, request.object);
  EXPECT_EQ(replayed.error,
            "flaky threw when run again to roll back (flaky is not deterministic), so no mutation is "
            "kept and the object is checked as submitted");
}

std::vector<fs::path> golden_requests() {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden"))
    if (fs::exists(entry.path() / "request.json")) paths.push_back(entry.path() / "request.json");
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The engine a golden case runs: its own config.yaml, else the default.
std::shared_ptr<const Engine> golden_engine(const fs::path& dir) {
  return fs::exists(dir / "config.yaml") ? Engine::from_file((dir / "config.yaml").string()) : Engine::from_default();
}

// Validating policies now read the object in place instead of a copy each: none may change it.
// Every validating policy of the default configuration in enforce, warn and audit mode, on every
// golden request (against its cluster snapshot where it has one, so capacity and quota run too).
TEST(Validations, NeverChangeTheObject) {
  std::vector<std::string> validating;
  for (const PolicyInfo& info : policy_registry())
    if (info.kind == PolicyKind::Validating) validating.emplace_back(info.name);
  int reviewed = 0;
  for (const char* mode : {"enforce", "warn", "audit"}) {
    auto engine = default_with(validating, mode);
    for (const fs::path& path : golden_requests()) {
      json review = json::parse(std::ifstream(path), nullptr, false);
      Request request;
      try {
        request = decode_admission_review(review);
      } catch (const ReviewError&) {
        continue;
      }
      if (request.operation != "CREATE") continue;
      const fs::path cluster_file = path.parent_path() / "cluster.json";
      auto cluster = fs::exists(cluster_file) ? capacity::ClusterModel::load({cluster_file.string()}, engine->config().gpu) : nullptr;
      ReviewOutcome outcome = engine->review(request, cluster.get(), ReviewPhases::ValidateOnly);
      if (!outcome.skipped.empty()) continue;
      ++reviewed;
      EXPECT_EQ(outcome.mutated, request.object) << mode << " " << path;
      if (outcome.response.allowed) {
        EXPECT_EQ(outcome.response.patch, json::array()) << mode << " " << path;
      }
    }
  }
  EXPECT_GT(reviewed, 60);
}

// A review that consumes its request reads the object in place where no mutation runs (the
// /validate route, an UPDATE): every golden request, in each phase, gets the same answer and the
// same mutated object as a review of a copy.
TEST(Review, ConsumingTheRequestAnswersAsReviewingACopy) {
  int in_place = 0;
  for (const fs::path& path : golden_requests()) {
    const fs::path dir = path.parent_path();
    auto engine = golden_engine(dir);
    const fs::path cluster_file = dir / "cluster.json";
    auto cluster = fs::exists(cluster_file) ? capacity::ClusterModel::load({cluster_file.string()}, engine->config().gpu)
                                            : nullptr;
    Request request;
    try {
      request = decode_admission_review(json::parse(std::ifstream(path), nullptr, false));
    } catch (const ReviewError&) {
      continue;
    }
    for (ReviewPhases phases : {ReviewPhases::All, ReviewPhases::MutateOnly, ReviewPhases::ValidateOnly}) {
      const ReviewOutcome copied = engine->review(request, cluster.get(), phases);
      Request given = request;
      const ReviewOutcome consumed = engine->review(std::move(given), cluster.get(), phases);
      const std::string where = path.string() + " phases " + std::to_string(static_cast<int>(phases));
      EXPECT_EQ(serialize_admission_review(consumed.response), serialize_admission_review(copied.response)) << where;
      EXPECT_EQ(consumed.mutated, copied.mutated) << where;
      EXPECT_EQ(consumed.skipped, copied.skipped) << where;
      EXPECT_EQ(consumed.policies.size(), copied.policies.size()) << where;
      if (copied.skipped.empty() && copied.mutated.is_object() && phases == ReviewPhases::ValidateOnly) ++in_place;
    }
  }
  EXPECT_GT(in_place, 40);  // most golden requests are CREATEs reviewed in full
}

// Moving the object out of the parsed review decodes exactly what copying it does.
TEST(Decode, MovingTheObjectOutDecodesTheSameRequest) {
  for (const fs::path& path : golden_requests()) {
    const json review = json::parse(std::ifstream(path), nullptr, false);
    if (review.is_discarded()) continue;
    std::string copied_error, moved_error;
    Request copied, moved;
    try {
      copied = decode_admission_review(review);
    } catch (const ReviewError& error) {
      copied_error = std::string(error.what()) + "|" + error.uid();
    }
    try {
      moved = decode_admission_review(json(review));
    } catch (const ReviewError& error) {
      moved_error = std::string(error.what()) + "|" + error.uid();
    }
    EXPECT_EQ(copied_error, moved_error) << path;
    EXPECT_EQ(copied.uid, moved.uid);
    EXPECT_EQ(copied.operation, moved.operation);
    EXPECT_EQ(copied.object, moved.object) << path;
    EXPECT_EQ(copied.old_object, moved.old_object) << path;
    EXPECT_EQ(copied.groups, moved.groups);
    EXPECT_EQ(copied.kind.kind, moved.kind.kind);
    EXPECT_EQ(copied.resource.resource, moved.resource.resource);
  }
}

// The answer is written directly rather than built as json and dumped: same bytes for every
// golden case (allowed, patched, denied, warned, malformed) and for hand-made corner cases.
TEST(Serialize, SameBytesAsEncodeThenDump) {
  int compared = 0;
  for (const fs::path& path : golden_requests()) {
    const fs::path dir = path.parent_path();
    auto engine = golden_engine(dir);
    json review = json::parse(std::ifstream(path), nullptr, false);
    Response response;
    try {
      response = engine->review(decode_admission_review(review)).response;
    } catch (const ReviewError& error) {
      if (error.uid().empty()) continue;
      response = malformed_request_response(error);
    }
    EXPECT_EQ(serialize_admission_review(response), encode_admission_review(response).dump()) << path;
    ++compared;
  }
  EXPECT_GT(compared, 40);
  Response odd;
  odd.uid = "quote\"and\\backslash\n";
  odd.allowed = false;
  odd.status_code = 403;
  odd.status_message = "ünïcode \u2603 and \t tab";
  odd.warnings = {"w1", "w\"2"};
  odd.audit_annotations = {{"b", "2"}, {"a", "1"}, {"quote\"key", "new\nline"}, {"empty", ""}};
  odd.patch = json::parse(R"([{"op":"add","path":"/x","value":1}])");  // denied: not sent
  EXPECT_EQ(serialize_admission_review(odd), encode_admission_review(odd).dump());
  odd.allowed = true;
  EXPECT_EQ(serialize_admission_review(odd), encode_admission_review(odd).dump());
  odd.patch = json::array();
  EXPECT_EQ(serialize_admission_review(odd), encode_admission_review(odd).dump());
  odd.warnings = {"one"};
  EXPECT_EQ(serialize_admission_review(odd), encode_admission_review(odd).dump());
  odd.warnings = {"bad \xff utf-8"};
  EXPECT_THROW(serialize_admission_review(odd), json::type_error);
  EXPECT_THROW(encode_admission_review(odd).dump(), json::type_error);
  odd.warnings.clear();
  odd.audit_annotations = {{"a", "bad \xff utf-8"}};
  EXPECT_THROW(serialize_admission_review(odd), json::type_error);
}

// The reference for the diff's order of operations: a lookup in the other object per key, as the
// diff was first written. The diff now pairs the members of two objects by walking both in key
// order, and must give exactly these operations.
void reference_diff(const json& from, const json& to, const json::json_pointer& path, json& ops) {
  // Paths escaped by nlohmann's json_pointer, not by the diff's own escaping.
  if (!(from.is_object() || from.is_array()) || from.type() != to.type()) {
    if (from != to) ops.push_back({{"op", "replace"}, {"path", path.to_string()}, {"value", to}});
    return;
  }
  if (from.is_object()) {
    for (auto it = from.begin(); it != from.end(); ++it)
      if (!to.contains(it.key())) ops.push_back({{"op", "remove"}, {"path", (path / it.key()).to_string()}});
    for (auto it = to.begin(); it != to.end(); ++it) {
      const json::json_pointer child = path / it.key();
      if (auto old = from.find(it.key()); old == from.end())
        ops.push_back({{"op", "add"}, {"path", child.to_string()}, {"value", it.value()}});
      else
        reference_diff(*old, it.value(), child, ops);
    }
    return;
  }
  const std::size_t common = std::min(from.size(), to.size());
  for (std::size_t i = 0; i < common; ++i) reference_diff(from[i], to[i], path / i, ops);
  for (std::size_t i = from.size(); i > common; --i)
    ops.push_back({{"op", "remove"}, {"path", (path / (i - 1)).to_string()}});
  for (std::size_t i = common; i < to.size(); ++i)
    ops.push_back({{"op", "add"}, {"path", (path / i).to_string()}, {"value", to[i]}});
}

// The patch diff no longer compares whole subtrees before walking them; what it produces must
// still turn `from` into `to`, and equal numbers of different JSON types are still equal.
TEST(JsonPatchDiff, TurnsOneDocumentIntoTheOther) {
  std::mt19937 random(7);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  std::function<json(int)> make = [&](int depth) -> json {
    switch (depth <= 0 ? pick(4) : pick(6)) {
      case 0: return pick(3);
      case 1: return std::string(1, static_cast<char>('a' + pick(3)));
      case 2: return nullptr;
      case 3: return pick(2) == 0;
      case 4: {
        json object = json::object();
        for (int i = pick(4); i > 0; --i) object[std::string(1, "ab/~c"[pick(5)])] = make(depth - 1);
        return object;
      }
      default: {
        json array = json::array();
        for (int i = pick(4); i > 0; --i) array.push_back(make(depth - 1));
        return array;
      }
    }
  };
  for (int round = 0; round < 2000; ++round) {
    json from = make(4), to = make(4);
    if (pick(2)) {  // often a small change to the same document, as a mutation makes
      to = from;
      if (to.is_object() && pick(2)) to["a"] = make(2);
    }
    json ops = json_patch_diff(from, to);
    EXPECT_EQ(from.patch(ops), to) << from.dump() << " -> " << to.dump() << " by " << ops.dump();
    json expected = json::array();
    reference_diff(from, to, json::json_pointer(), expected);
    EXPECT_EQ(ops, expected) << from.dump() << " -> " << to.dump();
    if (from == to) {
      EXPECT_EQ(ops, json::array()) << from.dump();
    }
  }
  EXPECT_EQ(json_patch_diff(json::parse(R"({"a":[1,{"b":2}]})"), json::parse(R"({"a":[1,{"b":2}]})")), json::array());
  json unsigned_one = json::object({{"n", 1u}}), signed_one = json::object({{"n", 1}});
  EXPECT_EQ(json_patch_diff(unsigned_one, signed_one), json::array());
  EXPECT_EQ(json_patch_diff(json::parse(R"({"a":{"x/y":[1,2,3]}})"), json::parse(R"({"a":{"x/y":[1,5]}})")),
            json::parse(R"([{"op":"replace","path":"/a/x~1y/1","value":5},{"op":"remove","path":"/a/x~1y/2"}])"));
}


}  // namespace
}  // namespace gpuadmit
