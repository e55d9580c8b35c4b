// `gpu-admit check` prints each reason for a denial on its own line, from the review's structured
// denials: a message that quotes input containing "; [" (the separator of the AdmissionReview's
// joined status message) stays one line. It used to be split there.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gpuadmit/engine.h"
#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kPod = R"(apiVersion: v1
kind: Pod
metadata: {name: p, namespace: team}
spec:
  containers:
  - name: c
    image: "ubuntu; [x] y"
    resources: {limits: {nvidia.com/gpu: 1}}
)";

TEST(CheckCommand, EachDenialIsOneLineWhateverItQuotes) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "pod.yaml") << kPod;
  const std::string command = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string() + " check " + (dir / "pod.yaml").string();
  int status = -1;
  const std::string out = gpuadmit::testing::command_output(command + " 2>&1", status);
  fs::remove_all(dir);
  std::vector<std::string> denied;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("  denied: ")) denied.push_back(line.substr(10));
  ASSERT_EQ(denied.size(), 2u) << out;
  EXPECT_TRUE(denied[0].starts_with("[image-registries] spec.containers[0].image: \"ubuntu; [x] y\" is not a valid"))
      << denied[0];
  EXPECT_TRUE(denied[1].starts_with("[gpu-shape] ")) << denied[1];
}

TEST(CheckCommand, TheStatusMessageJoinsTheStructuredDenials) {
  auto engine = gpuadmit::Engine::from_default();
  const nlohmann::json pod = {
      {"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}, {"namespace", "team"}}},
      {"spec", {{"containers", {{{"name", "c"}, {"image", "ubuntu; [x] y"},
                                 {"resources", {{"limits", {{"nvidia.com/gpu", 1}}}}}}}}}}};
  const gpuadmit::ReviewOutcome outcome = engine->review(gpuadmit::request_for_manifest(pod, "team"));
  ASSERT_EQ(outcome.denials.size(), 2u);
  EXPECT_EQ(outcome.denials[0].policy, "image-registries");
  EXPECT_EQ(outcome.denials[0].field, "spec.containers[0].image");
  EXPECT_EQ(outcome.response.status_message,
            "gpu-admit denied Pod team/p: " + outcome.denials[0].text() + "; " + outcome.denials[1].text());
}

// Documents are reviewed as they are read: those before a bad document in the same file are
// reported, then the file is named as unreadable (exit 2), and the next file is still checked.
TEST(CheckCommand, DocumentsBeforeABadOneInTheFileAreStillReported) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-partial-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n"
                                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken}\n";
  std::ofstream(dir / "b.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: next}\n";
  const std::string command = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string() + " check " + dir.string();
  int status = -1;
  const std::string out = gpuadmit::testing::command_output(command + " 2>&1", status);
  fs::remove_all(dir);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("a.yaml:1: ConfigMap default/first: skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("gpu-admit check: " + (dir / "a.yaml").string() + ":7:"), std::string::npos) << out;
  EXPECT_NE(out.find("b.yaml:1: ConfigMap default/next: skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("2 objects: 0 allowed (0 mutated), 0 denied, 2 skipped, 1 unreadable"), std::string::npos) << out;
}

// A PodDisruptionBudget in another file of the same run counts for gpu-availability, as on stdin
// before the workload; a run without one says the pods have none.
TEST(CheckCommand, DisruptionBudgetsAmongTheManifestsCountWhereverTheyAre) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-pdb-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string deployment = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: chat, namespace: ml-serving}
spec:
  replicas: 2
  selector: {matchLabels: {app: chat}}
  template:
    metadata: {labels: {app: chat}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: chat}}}
      containers:
      - name: c
        image: nvcr.io/nvidia/tritonserver:24.05-py3
        resources: {limits: {nvidia.com/gpu: 1, cpu: "4", memory: 16Gi}}
)";
  const std::string budget = R"(apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: chat}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: chat}}
)";
  std::ofstream(dir / "a-deployment.yaml") << deployment;
  std::ofstream(dir / "z-budget.yaml") << budget;
  std::ofstream(dir / "stdin.yaml") << budget << "---\n" << deployment;
  const std::string binary = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string();
  const std::string none = "[gpu-availability] spec.template.metadata.labels: no PodDisruptionBudget selects these pods";
  int status = -1;
  // The budget names no namespace: the run's (-n) is taken.
  std::string out = gpuadmit::testing::command_output(
      binary + " check -n ml-serving " + (dir / "a-deployment.yaml").string() + " " + (dir / "z-budget.yaml").string() + " 2>&1", status);
  EXPECT_EQ(out.find("gpu-availability"), std::string::npos) << out;
  out = gpuadmit::testing::command_output(binary + " check " + (dir / "a-deployment.yaml").string() + " 2>&1", status);
  EXPECT_NE(out.find(none), std::string::npos) << out;
  out = gpuadmit::testing::command_output(binary + " check -n ml-serving - < " + (dir / "stdin.yaml").string() + " 2>&1", status);
  EXPECT_EQ(out.find("gpu-availability"), std::string::npos) << out;
  fs::remove_all(dir);
}

}  // namespace

// A ResourceClaimTemplate among the manifests gives the pods that name it their GPU devices,
// wherever in the input it comes: in a later file, or before them on stdin.
TEST(CheckCommand, ClaimTemplatesAmongTheManifestsCountWhereverTheyAre) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-dra-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string deployment = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: dra, namespace: ml-serving}
spec:
  replicas: 1
  selector: {matchLabels: {app: dra}}
  template:
    metadata: {labels: {app: dra}}
    spec:
      resourceClaims: [{name: gpu, resourceClaimTemplateName: four-gpus}]
      containers:
      - name: c
        image: nvcr.io/nvidia/tritonserver:24.05-py3
        resources:
          claims: [{name: gpu}]
          limits: {cpu: "4", memory: 16Gi}
)";
  const std::string claim_template = R"(apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: four-gpus}
spec:
  spec:
    devices:
      requests: [{name: gpu, exactly: {deviceClassName: gpu.nvidia.com, count: 4}}]
)";
  std::ofstream(dir / "a-deployment.yaml") << deployment;
  std::ofstream(dir / "z-claims.yaml") << claim_template;
  std::ofstream(dir / "stdin.yaml") << claim_template << "---\n" << deployment;
  const std::string binary = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string();
  const std::string cluster = " --cluster " + (fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string();
  const std::string over = "[gpu-quota] spec.template.spec: namespace ml-serving uses 11 of its 12 GPUs and this Deployment adds 4 GPUs";
  int status = -1;
  // The template comes in a later file, and names no namespace: the Deployment's (-n) is taken.
  std::string out = gpuadmit::testing::command_output(
      binary + " check -n ml-serving" + cluster + " " + (dir / "a-deployment.yaml").string() + " " + (dir / "z-claims.yaml").string() + " 2>&1", status);
  EXPECT_NE(out.find(over), std::string::npos) << out;
  // Without it the claim is unknown: no devices counted, and a warning says so.
  out = gpuadmit::testing::command_output(binary + " check" + cluster + " " + (dir / "a-deployment.yaml").string() + " 2>&1", status);
  EXPECT_EQ(out.find(over), std::string::npos) << out;
  EXPECT_NE(out.find("ResourceClaimTemplate four-gpus in namespace ml-serving is not known"), std::string::npos) << out;
  out = gpuadmit::testing::command_output(binary + " check -n ml-serving" + cluster + " - < " + (dir / "stdin.yaml").string() + " 2>&1", status);
  EXPECT_NE(out.find(over), std::string::npos) << out;
  fs::remove_all(dir);
}

// An autoscaler's target is resolved from the manifests wherever it is written: the Deployment
// in a later file gives the HPA its GPUs per pod and model-load time; without it, the HPA gets an
// advice that it could not be checked (never a silent pass). On stdin, a target read before it.
TEST(CheckCommand, AutoscalersFindTheirTargetInAnotherFile) {
  const fs::path dir = fs::temp_directory_path() / ("gpuadmit-check-hpa-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string hpa = R"(apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: llm, namespace: ml-serving}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}
  minReplicas: 0
  maxReplicas: 2
)";
  const std::string deployment = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: llm, namespace: ml-serving}
spec:
  replicas: 1
  selector: {matchLabels: {app: llm}}
  template:
    metadata: {labels: {app: llm}, annotations: {gpu-admit.io/model-load-seconds: "900"}}
    spec:
      containers:
      - name: c
        image: nvcr.io/nvidia/tritonserver:24.05-py3
        resources: {limits: {nvidia.com/gpu: 1, cpu: "4", memory: 16Gi}}
)";
  std::ofstream(dir / "a-hpa.yaml") << hpa;
  std::ofstream(dir / "z-deployment.yaml") << deployment;
  std::ofstream(dir / "stdin.yaml") << deployment << "---\n" << hpa;
  const std::string binary = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string();
  const std::string cluster = " --cluster " + (fs::path(GPUADMIT_SOURCE_DIR) / "manifests/examples/cluster.json").string();
  const std::string quota =
      "[gpu-quota] spec.maxReplicas: namespace ml-serving uses 11 of its 12 GPUs; at 2 replicas × 1 GPU per pod "
      "Deployment llm would take it to 13; lower maxReplicas to 1";
  const std::string window = "[gpu-autoscaling] spec.behavior.scaleDown.stabilizationWindowSeconds: scale-down";
  const std::string zero = "model-load budget is 900 s";
  int status = -1;
  std::string out = gpuadmit::testing::command_output(
      binary + " check" + cluster + " " + (dir / "a-hpa.yaml").string() + " " + (dir / "z-deployment.yaml").string() + " 2>&1", status);
  EXPECT_NE(out.find(quota), std::string::npos) << out;
  EXPECT_NE(out.find(window), std::string::npos) << out;
  EXPECT_NE(out.find(zero), std::string::npos) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;  // gpu-quota denies, gpu-autoscaling (warn) only warns
  out = gpuadmit::testing::command_output(binary + " check" + cluster + " " + (dir / "a-hpa.yaml").string() + " 2>&1", status);
  EXPECT_EQ(out.find(quota), std::string::npos) << out;
  EXPECT_NE(out.find("could not check: Deployment llm is not in the manifests read nor the cluster's pods"), std::string::npos) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  out = gpuadmit::testing::command_output(binary + " check" + cluster + " - < " + (dir / "stdin.yaml").string() + " 2>&1", status);
  EXPECT_NE(out.find(quota), std::string::npos) << out;
  fs::remove_all(dir);
}
