// The workload kinds: where the built-in declarations find the pod templates of each operator's
// custom resource, with their counts; the walk's limits on hostile objects; a config's own
// declarations; and KServe's shorthand containers moved in and back.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <yaml-cpp/yaml.h>

#include "engine/manifests.h"
#include "engine/shorthand_containers.h"
#include "engine/workload_kinds.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json sample(const std::string& name) {
  const fs::path path = fs::path(GPUADMIT_SOURCE_DIR) / "tests/data/custom_resources" / (name + ".yaml");
  return load_manifests({path.string()}).at(0).object;
}

struct Expected {
  std::string field;
  std::int64_t replicas;
  std::int64_t gang;
};

std::vector<Expected> found(const Workload& workload) {
  std::vector<Expected> out;
  for (const PodTarget& pod : workload.pods) out.push_back({pod.field, pod.replicas, pod.gang_replicas});
  return out;
}

bool operator==(const Expected& a, const Expected& b) {
  return a.field == b.field && a.replicas == b.replicas && a.gang == b.gang;
}
std::ostream& operator<<(std::ostream& out, const Expected& e) {
  return out << "{" << e.field << ", replicas " << e.replicas << ", gang " << e.gang << "}";
}

TEST(WorkloadKinds, EachBuiltInCustomResourceFindsItsPodTemplatesAndCounts) {
  struct Case {
    std::string sample;
    std::vector<Expected> pods;
    bool batch;
  };
  const std::vector<Case> cases = {
      {"inferenceservice", {{"spec.predictor", 2, 0}, {"spec.transformer", 1, 0}}, false},
      {"llminferenceservice", {{"spec.template", 2, 0}}, false},
      // The head, and one worker group of 2 replicas (minReplicas 1): the gang is head + 1.
      {"raycluster", {{"spec.headGroupSpec.template.spec", 1, 1}, {"spec.workerGroupSpecs[0].template.spec", 2, 1}}, false},
      {"rayjob",
       {{"spec.rayClusterSpec.headGroupSpec.template.spec", 1, 1},
        {"spec.rayClusterSpec.workerGroupSpecs[0].template.spec", 2, 1}},
       true},
      {"rayservice",
       {{"spec.rayClusterConfig.headGroupSpec.template.spec", 1, 1},
        {"spec.rayClusterConfig.workerGroupSpecs[0].template.spec", 2, 1}},
       false},
      // 2 groups of size 4: 2 leaders and 2 × 3 workers; one group is the gang.
      {"leaderworkerset",
       {{"spec.leaderWorkerTemplate.leaderTemplate.spec", 2, 1}, {"spec.leaderWorkerTemplate.workerTemplate.spec", 6, 3}},
       false},
      // 2 Jobs of parallelism 2, all at once.
      {"jobset", {{"spec.replicatedJobs[0].template.spec.template.spec", 4, 4}}, true},
      {"pytorchjob",
       {{"spec.pytorchReplicaSpecs.Master.template.spec", 1, 1}, {"spec.pytorchReplicaSpecs.Worker.template.spec", 3, 3}},
       true},
      {"tfjob", {{"spec.tfReplicaSpecs.Worker.template.spec", 2, 2}}, true},
      {"mpijob",
       {{"spec.mpiReplicaSpecs.Launcher.template.spec", 1, 1}, {"spec.mpiReplicaSpecs.Worker.template.spec", 2, 2}},
       true},
      // A task's gang is its minAvailable when given, else all its replicas.
      {"volcano-job", {{"spec.tasks[0].template.spec", 1, 1}, {"spec.tasks[1].template.spec", 4, 2}}, true},
      // The TrainJob itself stands for the runtime's pod spec: numNodes pods, all at once.
      {"trainjob", {{"spec", 2, 2}}, true},
  };
  for (const Case& c : cases) {
    const Workload workload = locate_workload(sample(c.sample));
    EXPECT_TRUE(workload.supported) << c.sample;
    EXPECT_TRUE(workload.custom_resource) << c.sample;
    EXPECT_TRUE(workload.malformed.empty()) << c.sample << ": " << workload.malformed;
    EXPECT_EQ(found(workload), c.pods) << c.sample;
    EXPECT_EQ(workload.batch, c.batch) << c.sample;
  }
}

TEST(WorkloadKinds, KServeShorthandContainersAndComponentMetadata) {
  const Workload workload = locate_workload(sample("inferenceservice"));
  ASSERT_EQ(workload.pods.size(), 2u);
  EXPECT_EQ(workload.pods[0].shorthand_containers, std::vector<std::string>{"model"});
  // A component's labels and annotations sit beside its pod spec.
  EXPECT_EQ(workload.pods[0].metadata.to_string(), "/spec/predictor");
  EXPECT_EQ(workload.pods[0].metadata_field, "spec.predictor");
  EXPECT_TRUE(workload.pods[1].shorthand_containers.empty());
}

TEST(WorkloadKinds, CountsFollowEachOperatorsDefaults) {
  json lws = sample("leaderworkerset");
  // Without a leaderTemplate the leader is made from the workerTemplate: size pods per group.
  lws["spec"]["leaderWorkerTemplate"].erase("leaderTemplate");
  EXPECT_EQ(found(locate_workload(lws)), (std::vector<Expected>{{"spec.leaderWorkerTemplate.workerTemplate.spec", 8, 4}}));

  json ray = sample("raycluster");
  json& group = ray["spec"]["workerGroupSpecs"][0];
  group.erase("replicas");
  group.erase("minReplicas");
  group["numOfHosts"] = 4;  // a multi-host group: each replica is 4 pods
  EXPECT_EQ(found(locate_workload(ray))[1], (Expected{"spec.workerGroupSpecs[0].template.spec", 0, 0}));
  group["replicas"] = 2;
  group["minReplicas"] = 1;
  EXPECT_EQ(found(locate_workload(ray))[1], (Expected{"spec.workerGroupSpecs[0].template.spec", 8, 4}));

  // Counts from hostile values: negative is none, past int64 saturates, the wrong type is the default.
  json job = sample("jobset");
  job["spec"]["replicatedJobs"][0]["replicas"] = -3;
  EXPECT_EQ(found(locate_workload(job))[0].replicas, 0);
  job["spec"]["replicatedJobs"][0]["replicas"] = json::parse("18446744073709551615");
  EXPECT_EQ(found(locate_workload(job))[0].replicas, std::numeric_limits<std::int64_t>::max());
  job["spec"]["replicatedJobs"][0]["replicas"] = "two";
  EXPECT_EQ(found(locate_workload(job))[0].replicas, 2);  // 1 (default) × parallelism 2
}

TEST(WorkloadKinds, AWrongTypeOnTheWayIsAMalformedObjectNamingTheField) {
  struct Case {
    std::string sample;
    std::string pointer;
    json value;
    std::string malformed;
  };
  const std::vector<Case> cases = {
      {"raycluster", "/spec/workerGroupSpecs", 3, "spec.workerGroupSpecs must be a list"},
      {"raycluster", "/spec/workerGroupSpecs/0", "x", "spec.workerGroupSpecs[0] must be an object"},
      {"raycluster", "/spec/headGroupSpec/template", json::array(), "spec.headGroupSpec.template must be an object"},
      {"raycluster", "/spec/headGroupSpec/template/spec", 1, "spec.headGroupSpec.template.spec must be an object"},
      {"pytorchjob", "/spec/pytorchReplicaSpecs", "Worker", "spec.pytorchReplicaSpecs must be an object"},
      {"pytorchjob", "/spec/pytorchReplicaSpecs/Worker", 3, "spec.pytorchReplicaSpecs.Worker must be an object"},
      {"inferenceservice", "/spec/predictor/model", "llama", "spec.predictor.model must be an object"},
      {"inferenceservice", "/spec/predictor/containers", json::object(), "spec.predictor.containers must be a list"},
      {"inferenceservice", "/spec/predictor", true, "spec.predictor must be an object"},
  };
  for (const Case& c : cases) {
    json object = sample(c.sample);
    object[json::json_pointer(c.pointer)] = c.value;
    const Workload workload = locate_workload(object);
    EXPECT_EQ(workload.malformed, c.malformed) << c.pointer;
    EXPECT_TRUE(workload.pods.empty()) << c.pointer;
  }
  // Null and absent are "not written", as Go decodes them.
  json ray = sample("raycluster");
  ray["spec"]["workerGroupSpecs"] = nullptr;
  EXPECT_EQ(locate_workload(ray).pods.size(), 1u);
}

TEST(WorkloadKinds, MoreThanTheLimitOfPodTemplatesIsRefusedNotSkipped) {
  json ray = sample("raycluster");
  const json group = ray["spec"]["workerGroupSpecs"][0];
  ray["spec"]["workerGroupSpecs"] = json::array();
  for (std::size_t i = 0; i + 1 < kMaxPodTargets; ++i) ray["spec"]["workerGroupSpecs"].push_back(group);
  EXPECT_EQ(locate_workload(ray).pods.size(), kMaxPodTargets);
  for (int i = 0; i < 100000; ++i) ray["spec"]["workerGroupSpecs"].push_back(group);
  const Workload workload = locate_workload(ray);
  EXPECT_NE(workload.malformed.find("more than 256 pod templates"), std::string::npos) << workload.malformed;
  EXPECT_TRUE(workload.pods.empty());
  // And the engine answers it as a malformed request, never as an allowed one.
  const ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(ray, "team"));
  EXPECT_FALSE(outcome.response.allowed);
}

TEST(WorkloadKinds, MapKeysAreEscapedInThePatchPointers) {
  json job = sample("pytorchjob");
  job["spec"]["pytorchReplicaSpecs"]["a/b~c"] = job["spec"]["pytorchReplicaSpecs"]["Worker"];
  const Workload workload = locate_workload(job);
  ASSERT_EQ(workload.pods.size(), 3u);
  EXPECT_EQ(workload.pods[2].spec.to_string(), "/spec/pytorchReplicaSpecs/a~1b~0c/template/spec");
  EXPECT_EQ(workload.pods[2].field, "spec.pytorchReplicaSpecs.a/b~c.template.spec");
  const ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(job, "ml-research"));
  ASSERT_TRUE(outcome.response.allowed);
  ASSERT_FALSE(outcome.response.patch.empty());
  EXPECT_EQ(job.patch(outcome.response.patch), outcome.mutated);
}

TEST(ShorthandContainers, MovedInFirstAndBackUnchanged) {
  json object = sample("inferenceservice");
  object["spec"]["predictor"]["containers"] = json::array({{{"name", "sidecar"}, {"image", "busybox:1.36"}}});
  const json original = object;
  const Workload workload = locate_workload(object);
  ShorthandContainers moved(workload, object);
  const json& containers = object["spec"]["predictor"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "model");  // named for the policies' messages
  EXPECT_EQ(containers[1]["name"], "sidecar");
  EXPECT_FALSE(object["spec"]["predictor"].contains("model"));
  EXPECT_EQ(moved.field("spec.predictor.containers[0].resources"), "spec.predictor.model.resources");
  EXPECT_EQ(moved.field("spec.predictor.containers[1].image"), "spec.predictor.containers[0].image");
  EXPECT_EQ(moved.field("spec.predictor.containers[10]"), "spec.predictor.containers[9]");
  EXPECT_EQ(moved.field("spec.predictor.containersX[0]"), "spec.predictor.containersX[0]");
  EXPECT_EQ(moved.field("spec.transformer.containers[0]"), "spec.transformer.containers[0]");
  moved.restore(object);
  EXPECT_EQ(object, original);

  // Without `containers` before, none is left behind.
  json bare = sample("inferenceservice");
  const json bare_original = bare;
  ShorthandContainers(locate_workload(bare), bare).restore(bare);
  EXPECT_EQ(bare, bare_original);
}

// A TrainJob's trainer is a container whose resources are `resourcesPerNode`: the policies see
// `resources`, the findings name `resourcesPerNode`, and nothing is mutated (the runtime
// completes the pod spec).
TEST(ShorthandContainers, TheTrainersResourcesPerNodeIsShownAsResources) {
  json object = sample("trainjob");
  const json original = object;
  const Workload workload = locate_workload(object);
  EXPECT_TRUE(workload.partial_pod_spec);
  ShorthandContainers moved(workload, object);
  const json& trainer = object["spec"]["containers"][0];
  EXPECT_EQ(trainer["name"], "trainer");
  EXPECT_EQ(trainer["resources"]["limits"]["nvidia.com/gpu"], 4);
  EXPECT_FALSE(trainer.contains("resourcesPerNode"));
  EXPECT_EQ(moved.field("spec.containers[0].resources.limits.cpu"), "spec.trainer.resourcesPerNode.limits.cpu");
  EXPECT_EQ(moved.field("spec.containers[0].resources"), "spec.trainer.resourcesPerNode");
  EXPECT_EQ(moved.field("spec.containers[0].resourcesX"), "spec.trainer.resourcesX");
  EXPECT_EQ(moved.field("spec.containers"), "spec.trainer");
  moved.restore(object);
  EXPECT_EQ(object, original);

  // A trainer that writes both names is malformed, not silently merged.
  json both = sample("trainjob");
  both["spec"]["trainer"]["resources"] = json::object();
  EXPECT_EQ(locate_workload(both).malformed, "spec.trainer has both resources and resourcesPerNode");

  // Reviewed: its own checks apply, nothing is patched.
  json bare = sample("trainjob");
  bare["spec"]["trainer"]["resourcesPerNode"]["limits"].erase("cpu");
  bare["spec"]["trainer"]["resourcesPerNode"]["requests"].erase("cpu");
  const ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(bare, "ml-training"));
  EXPECT_FALSE(outcome.response.allowed);
  EXPECT_TRUE(outcome.response.patch.empty() || outcome.response.patch.is_null()) << outcome.response.patch.dump();
  EXPECT_NE(outcome.response.status_message.find("[gpu-shape] spec.trainer.resourcesPerNode: a GPU container must set cpu"),
            std::string::npos)
      << outcome.response.status_message;
}

TEST(ShorthandContainers, RestoringAfterTheContainerWasTakenAwayThrowsInsteadOfLosingIt) {
  json object = sample("inferenceservice");
  const Workload workload = locate_workload(object);
  ShorthandContainers moved(workload, object);
  object["spec"]["predictor"]["containers"] = json::array();
  EXPECT_THROW(moved.restore(object), std::logic_error);
  object["spec"]["predictor"]["containers"] = 7;
  EXPECT_THROW(moved.restore(object), std::logic_error);
}

TEST(ShorthandContainers, AMutationOfTheModelContainerLandsWhereTheUserWroteIt) {
  json object = sample("inferenceservice");
  object["spec"]["predictor"]["model"]["resources"]["requests"].erase("cpu");
  const ReviewOutcome outcome = Engine::from_default()->review(request_for_manifest(object, "ml-serving"));
  ASSERT_TRUE(outcome.response.allowed) << outcome.response.status_message;
  std::set<std::string> paths;
  for (const json& op : outcome.response.patch) paths.insert(op["path"].get<std::string>());
  EXPECT_TRUE(paths.count("/spec/predictor/model/resources/requests/cpu")) << outcome.response.patch.dump();
  EXPECT_TRUE(paths.count("/spec/predictor/model/volumeMounts")) << outcome.response.patch.dump();
  EXPECT_EQ(object.patch(outcome.response.patch), outcome.mutated);
  EXPECT_FALSE(outcome.mutated["spec"]["predictor"].contains("containers"));
  EXPECT_FALSE(outcome.mutated["spec"]["predictor"]["model"].contains("name"));
}

// ---- a config's own declarations ----

std::shared_ptr<const Engine> engine_with(const std::string& kinds) {
  return Engine::from_yaml("workloadKinds:\n" + kinds + "policies:\n  gpu-tolerations: {}\n", "kinds.yaml");
}

std::string config_error(const std::string& kinds) {
  try {
    engine_with(kinds);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "(loaded)";
}

TEST(WorkloadKinds, AConfigDeclaresItsOwnKinds) {
  auto engine = engine_with(R"(
  - group: example.com
    kind: Trainer
    plural: trainers
    batch: true
    pods:
      - template: "spec.roles.*.pod"
        replicas: ["spec.roles.*.count", 2]
)");
  const json trainer = json::parse(R"({"apiVersion": "example.com/v1", "kind": "Trainer", "metadata": {"name": "t"},
      "spec": {"roles": {"worker": {"count": 3, "pod": {"spec": {"containers": [{"name": "c", "image": "nvcr.io/nvidia/pytorch:24.05-py3",
        "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}}})");
  const Workload workload = locate_workload(trainer, engine->config().kinds);
  ASSERT_EQ(workload.pods.size(), 1u);
  EXPECT_EQ(workload.pods[0].field, "spec.roles.worker.pod.spec");
  EXPECT_EQ(workload.pods[0].replicas, 6);
  EXPECT_TRUE(workload.batch);
  const ReviewOutcome outcome = engine->review(request_for_manifest(trainer, "team", engine->config().kinds));
  EXPECT_EQ(outcome.response.patch.at(0)["path"], "/spec/roles/worker/pod/spec/tolerations");
  EXPECT_EQ(request_for_manifest(trainer, "team", engine->config().kinds).resource.resource, "trainers");
  // The built-in table is untouched by another engine's config.
  EXPECT_FALSE(locate_workload(trainer).supported);
}

TEST(WorkloadKinds, AConfigReplacesABuiltInCustomResourceButNotAKubernetesKind) {
  auto engine = engine_with(R"(
  - group: ray.io
    kind: RayCluster
    pods: [{template: spec.headGroupSpec.template}]
)");
  EXPECT_EQ(locate_workload(sample("raycluster"), engine->config().kinds).pods.size(), 1u);
  EXPECT_EQ(locate_workload(sample("raycluster")).pods.size(), 2u);
  EXPECT_NE(config_error("  - {group: apps, kind: Deployment, pods: [{template: spec.x}]}\n")
                .find("kinds.yaml:2:5: workloadKinds[0]: group 'apps' is Kubernetes' own"),
            std::string::npos);
}

TEST(WorkloadKinds, ABadDeclarationIsAConfigErrorNamingIt) {
  struct Case {
    std::string kinds;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"  - {group: a.io, kind: K, pods: [{template: 'spec..x'}]}\n", "is not a field path (an empty key"},
      {"  - {group: a.io, kind: K, pods: [{template: '[*].x'}]}\n", "[*] follows a key"},
      {"  - {group: a.io, kind: K, pods: [{template: 'a[*].b[*].c[*].d[*]'}]}\n", "more than 3 wildcards"},
      {"  - {group: a.io, kind: K, pods: [{template: spec.t, replicas: ['spec.x[*].n']}]}\n",
       "more wildcards than the pod path"},
      {"  - {group: a.io, kind: K, pods: [{template: spec.t, podSpec: spec.p}]}\n", "exactly one of `template`"},
      {"  - {group: a.io, kind: K, pods: [{template: spec.t, containers: [model]}]}\n", "keys of an inline `podSpec`"},
      {"  - {group: a.io, kind: K, pods: []}\n", "at least one pod template"},
      {"  - {group: a.io, kind: K, pods: [{podSpec: spec, containers: [{key: t, resources: 'a.b'}]}]}\n",
       "its resources one key of it"},
      {"  - {group: a.io, kind: K, pods: [{podSpec: spec, containers: [{resources: r}]}]}\n",
       "a shorthand container is one key"},
      {"  - {group: a.io, kind: K, pods: [{podSpec: spec, containers: [{key: t, limits: r}]}]}\n", "unknown key 'limits'"},
      {"  - {group: a.io, kind: K, pod: []}\n", "unknown key 'pod'"},
      {"  - {kind: K, pods: [{template: spec.t}]}\n", "needs `group` and `kind`"},
      {"  - {group: a.io, kind: K, pods: [{template: spec.t, replicas: [{path: spec.n, minus: -1}]}]}\n",
       "`minus` cannot be negative"},
  };
  for (const Case& c : cases) {
    const std::string error = config_error(c.kinds);
    EXPECT_NE(error.find(c.error), std::string::npos) << c.kinds << " -> " << error;
    EXPECT_TRUE(error.starts_with("kinds.yaml:")) << error;
  }
}

// Both webhook configurations list exactly the custom resources declared, by group and plural:
// a kind left out would never be reviewed in a cluster, whatever `check` says in CI. The mutating
// one leaves out the kinds that are never mutated (a partial pod spec: a TrainJob).
TEST(WorkloadKinds, TheShippedWebhooksListEveryBuiltInCustomResource) {
  std::set<std::string> declared, mutable_kinds;
  for (const WorkloadKinds::Name& name : WorkloadKinds::builtin().custom_resources()) {
    EXPECT_FALSE(name.plural.empty()) << name.kind;
    declared.insert(name.group + "/" + name.plural);
    if (!WorkloadKinds::builtin().find(name.group, "", name.kind)->partial_pod_spec)
      mutable_kinds.insert(name.group + "/" + name.plural);
  }
  EXPECT_EQ(declared.size(), 12u);
  EXPECT_EQ(mutable_kinds.size(), 11u);
  // The autoscalers are validated only (nothing in them is patched), in every version: a v1.20
  // API server serves autoscaling/v2beta2 and no v2, and a rule naming v2 alone would match none.
  std::set<std::string> autoscalers;
  for (const AutoscalerKind& kind : autoscaler_kinds()) {
    autoscalers.insert(std::string(kind.group) + "/" + std::string(kind.plural));
    if (std::string_view(kind.group).find('.') != std::string_view::npos)
      declared.insert(std::string(kind.group) + "/" + std::string(kind.plural));
  }
  EXPECT_EQ(autoscalers, (std::set<std::string>{"autoscaling/horizontalpodautoscalers", "keda.sh/scaledobjects"}));
  const fs::path file = fs::path(GPUADMIT_SOURCE_DIR) / "manifests/base/webhooks.yaml";
  int configurations = 0;
  for (const YAML::Node& document : YAML::LoadAllFromFile(file.string())) {
    std::set<std::string> listed, autoscalers_listed;
    for (const YAML::Node& hook : document["webhooks"])
      for (const YAML::Node& rule : hook["rules"])
        for (const YAML::Node& group : rule["apiGroups"])
          for (const YAML::Node& resource : rule["resources"]) {
            const std::string name = group.as<std::string>() + "/" + resource.as<std::string>();
            if (group.as<std::string>().find('.') != std::string::npos) listed.insert(name);
            if (!autoscalers.count(name)) continue;
            autoscalers_listed.insert(name);
            EXPECT_EQ(rule["apiVersions"].as<std::vector<std::string>>(), std::vector<std::string>{"*"}) << name;
            EXPECT_EQ(rule["operations"].as<std::vector<std::string>>(), (std::vector<std::string>{"CREATE", "UPDATE"})) << name;
          }
    const bool mutating = document["kind"].as<std::string>() == "MutatingWebhookConfiguration";
    EXPECT_EQ(listed, mutating ? mutable_kinds : declared) << document["kind"].as<std::string>();
    EXPECT_EQ(autoscalers_listed, mutating ? std::set<std::string>{} : autoscalers) << document["kind"].as<std::string>();
    ++configurations;
  }
  EXPECT_EQ(configurations, 2);
}

}  // namespace
}  // namespace gpuadmit
