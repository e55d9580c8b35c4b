// The cluster model's pods per workload: a pod's controller owner gives its workload (a
// ReplicaSet named <deployment>-<pod-template-hash> is its Deployment), kept per pod upsert and
// delete; and a property check against a brute force over the pods the model was given.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/workload.h"

namespace gpuadmit::capacity {
namespace {

using nlohmann::json;

json pod(const std::string& ns, const std::string& name, const std::string& owner_kind, const std::string& owner,
         std::int64_t gpus, const std::string& hash = "", std::optional<std::int64_t> load = std::nullopt,
         const std::string& phase = "Running", bool controller = true) {
  json container = {{"name", "c"}, {"resources", {{"limits", {{"cpu", "1"}}}}}};
  if (gpus) container["resources"]["limits"]["nvidia.com/gpu"] = std::to_string(gpus);
  json metadata = {{"name", name}, {"namespace", ns}};
  if (!owner_kind.empty())
    metadata["ownerReferences"] = {{{"apiVersion", "apps/v1"}, {"kind", owner_kind}, {"name", owner}, {"uid", "u"}, {"controller", controller}}};
  if (!hash.empty()) metadata["labels"] = {{"pod-template-hash", hash}};
  if (load) metadata["annotations"] = {{"gpu-admit.io/model-load-seconds", std::to_string(*load)}};
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", metadata}, {"spec", {{"containers", {container}}}},
          {"status", {{"phase", phase}}}};
}

TEST(WorkloadIndex, OwnersGiveTheWorkload) {
  ClusterModel model;
  model.upsert_pod(pod("ml", "llm-abc12-x", "ReplicaSet", "llm-abc12", 2, "abc12", 600));
  model.upsert_pod(pod("ml", "llm-abc12-y", "ReplicaSet", "llm-abc12", 2, "abc12"));
  model.upsert_pod(pod("ml", "db-0", "StatefulSet", "db", 1));
  model.upsert_pod(pod("ml", "bare-q", "ReplicaSet", "bare", 1));               // no hash label: the ReplicaSet itself
  model.upsert_pod(pod("ml", "odd-q", "ReplicaSet", "odd-zzz", 1, "abc12"));     // the hash is not its suffix
  model.upsert_pod(pod("ml", "lone", "", "", 4));                               // no owner: no workload
  model.upsert_pod(pod("ml", "adopted", "ReplicaSet", "llm-abc12", 8, "abc12", std::nullopt, "Running", false));  // not the controller
  const ClusterModel::View view = model.read();
  auto llm = view.workload("ml/Deployment/llm");
  ASSERT_TRUE(llm);
  EXPECT_EQ(llm->pods, 2);
  EXPECT_EQ(llm->gpus_per_pod, 2);
  EXPECT_EQ(llm->gpus_in_use, 4);
  EXPECT_EQ(llm->model_load_seconds, 600);  // the one pod that has it
  EXPECT_FALSE(view.workload("ml/ReplicaSet/llm-abc12"));
  auto db = view.workload("ml/StatefulSet/db");
  ASSERT_TRUE(db);
  EXPECT_EQ(db->gpus_in_use, 1);
  EXPECT_FALSE(db->model_load_seconds);
  EXPECT_TRUE(view.workload("ml/ReplicaSet/bare"));
  EXPECT_TRUE(view.workload("ml/ReplicaSet/odd-zzz"));
  EXPECT_FALSE(view.workload("other/Deployment/llm"));
  EXPECT_EQ(view.workload_count(), 4u);
}

TEST(WorkloadIndex, UpsertsAndDeletesTakeBackWhatTheyAdded) {
  ClusterModel model;
  model.upsert_pod(pod("ml", "a", "StatefulSet", "s", 1, "", 100));
  model.upsert_pod(pod("ml", "b", "StatefulSet", "s", 4, "", 900));
  EXPECT_EQ(model.read().workload("ml/StatefulSet/s")->gpus_per_pod, 4);  // the largest pod
  EXPECT_EQ(model.read().workload("ml/StatefulSet/s")->model_load_seconds, 900);
  model.upsert_pod(pod("ml", "b", "StatefulSet", "s", 1, "", 100));  // replaced
  auto s = model.read().workload("ml/StatefulSet/s");
  EXPECT_EQ(s->pods, 2);
  EXPECT_EQ(s->gpus_per_pod, 1);
  EXPECT_EQ(s->gpus_in_use, 2);
  EXPECT_EQ(s->model_load_seconds, 100);
  model.upsert_pod(pod("ml", "a", "StatefulSet", "s", 1, "", 100, "Succeeded"));  // finished: gone
  EXPECT_EQ(model.read().workload("ml/StatefulSet/s")->pods, 1);
  EXPECT_TRUE(model.delete_pod("ml", "b"));
  EXPECT_FALSE(model.read().workload("ml/StatefulSet/s"));
  EXPECT_EQ(model.read().workload_count(), 0u);
  // A pod that moves to another owner leaves the first.
  model.upsert_pod(pod("ml", "c", "StatefulSet", "s", 1));
  model.upsert_pod(pod("ml", "c", "StatefulSet", "t", 1));
  EXPECT_FALSE(model.read().workload("ml/StatefulSet/s"));
  EXPECT_EQ(model.remove_pods_except({}), 1u);
  EXPECT_EQ(model.read().workload_count(), 0u);
}

// A pod's DRA claims are not counted per pod: the summary says its GPUs are not all known, so the
// autoscaling checks still treat the target as a GPU workload.
TEST(WorkloadIndex, PodsWithClaimsAreMarked) {
  ClusterModel model;
  json with_claim = pod("ml", "a", "StatefulSet", "s", 0);
  with_claim["spec"]["resourceClaims"] = {{{"name", "g"}, {"resourceClaimName", "c"}}};
  model.upsert_pod(with_claim);
  model.upsert_pod(pod("ml", "b", "StatefulSet", "s", 0));
  EXPECT_TRUE(model.read().workload("ml/StatefulSet/s")->gpus_unresolved);
  EXPECT_TRUE(model.delete_pod("ml", "a"));
  EXPECT_FALSE(model.read().workload("ml/StatefulSet/s")->gpus_unresolved);
}

TEST(WorkloadIndex, HugeGpuCountsSaturate) {
  ClusterModel model;
  model.upsert_pod(pod("ml", "a", "StatefulSet", "s", INT64_MAX / 2 + 1));
  model.upsert_pod(pod("ml", "b", "StatefulSet", "s", INT64_MAX / 2 + 1));
  EXPECT_EQ(model.read().workload("ml/StatefulSet/s")->gpus_in_use, INT64_MAX);
  EXPECT_TRUE(model.delete_pod("ml", "a"));
  EXPECT_EQ(model.read().workload("ml/StatefulSet/s")->gpus_in_use, INT64_MAX / 2 + 1);  // counts, not a saturated sum
}

// Random upserts, replacements, finishes and deletes; after each step every workload's summary
// equals one recomputed from the pods the model should hold.
TEST(WorkloadIndex, AgreesWithABruteForceOverThePods) {
  std::mt19937 rng(20261206);
  for (int round = 0; round < 20; ++round) {
    ClusterModel model;
    struct Live {
      std::string workload;
      std::int64_t gpus;
      std::optional<std::int64_t> load;
    };
    std::map<std::string, Live> live;  // "ns/name"
    const std::vector<std::string> namespaces = {"a", "b"};
    for (int step = 0; step < 300; ++step) {
      const std::string ns = namespaces[rng() % 2];
      const std::string name = "p" + std::to_string(rng() % 25);
      const std::string key = ns + "/" + name;
      if (rng() % 5 == 0) {
        EXPECT_EQ(model.delete_pod(ns, name), live.erase(key) == 1);
      } else {
        const int owner = static_cast<int>(rng() % 4);
        const std::int64_t gpus = static_cast<std::int64_t>(rng() % 4);
        const std::optional<std::int64_t> load = rng() % 2 ? std::optional<std::int64_t>(60 * (1 + rng() % 3)) : std::nullopt;
        const bool finished = rng() % 7 == 0;
        json p;
        std::string workload;
        switch (owner) {
          case 0: p = pod(ns, name, "ReplicaSet", "d-h" + std::to_string(rng() % 2), gpus, "h0", load); break;
          case 1: p = pod(ns, name, "StatefulSet", "s", gpus, "", load); break;
          case 2: p = pod(ns, name, "", "", gpus, "", load); break;
          default: p = pod(ns, name, "Job", "j", gpus, "", load); break;
        }
        const std::string owner_name = owner == 0 ? p["metadata"]["ownerReferences"][0]["name"].get<std::string>() : "";
        if (owner == 0) workload = owner_name == "d-h0" ? workload_key(ns, "Deployment", "d") : workload_key(ns, "ReplicaSet", owner_name);
        if (owner == 1) workload = workload_key(ns, "StatefulSet", "s");
        if (owner == 3) workload = workload_key(ns, "Job", "j");
        if (finished) p["status"]["phase"] = "Failed";
        model.upsert_pod(p);
        if (finished)
          live.erase(key);
        else
          live[key] = {workload, gpus, load};
      }
      std::map<std::string, k8s::WorkloadSummary> expected;
      for (const auto& [key, pod] : live) {
        if (pod.workload.empty()) continue;
        k8s::WorkloadSummary& s = expected[pod.workload];
        ++s.pods;
        s.gpus_per_pod = std::max(s.gpus_per_pod, pod.gpus);
        s.gpus_in_use += pod.gpus;
        if (pod.load) s.model_load_seconds = std::max(s.model_load_seconds.value_or(0), *pod.load);
      }
      const ClusterModel::View view = model.read();
      ASSERT_EQ(view.workload_count(), expected.size()) << "round " << round << " step " << step;
      for (const auto& [workload, want] : expected) {
        const auto got = view.workload(workload);
        ASSERT_TRUE(got) << workload;
        EXPECT_EQ(got->pods, want.pods) << workload;
        EXPECT_EQ(got->gpus_per_pod, want.gpus_per_pod) << workload;
        EXPECT_EQ(got->gpus_in_use, want.gpus_in_use) << workload;
        EXPECT_EQ(got->model_load_seconds, want.model_load_seconds) << workload;
      }
    }
  }
}

}  // namespace
}  // namespace gpuadmit::capacity
