// Table tests for the validating policies: each row is one policy config, one manifest (a Pod or
// a controller) and the outcome it must get: allowed untouched, denied, warned or audited, with
// the text the user must read.
#include <gtest/gtest.h>

#include "engine/manifests.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

enum class Expect { Allow, Deny, Warn, Audit };

struct Row {
  std::string name;
  std::string policy;    // the `policies:` entry, as YAML
  std::string manifest;  // one object, as YAML
  Expect expect;
  std::vector<std::string> says;  // substrings of the denial, warning or audit annotation
  std::string ns = "team-a";
};

std::string indent(const std::string& text) {
  std::string out = "  ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

ReviewOutcome review(const std::string& policy, const std::string& manifest, const std::string& ns) {
  auto engine = Engine::from_yaml("gpuResources: [nvidia.com/gpu.shared]\npolicies:\n" + indent(policy), "test.yaml");
  json object = parse_manifests(manifest, "manifest.yaml").at(0).object;
  return engine->review(request_for_manifest(object, ns));
}

std::string everything_said(const Response& response) {
  std::string text = response.status_message;
  for (const std::string& warning : response.warnings) text += "\n" + warning;
  for (const auto& [key, value] : response.audit_annotations) text += "\n" + key + ": " + value;
  return text;
}

class PolicyTable : public ::testing::TestWithParam<Row> {};

TEST_P(PolicyTable, Outcome) {
  const Row& row = GetParam();
  ReviewOutcome outcome = review(row.policy, row.manifest, row.ns);
  const Response& response = outcome.response;
  const std::string said = everything_said(response);
  switch (row.expect) {
    case Expect::Allow:
      EXPECT_TRUE(response.allowed) << said;
      EXPECT_TRUE(response.warnings.empty()) << said;
      EXPECT_TRUE(response.audit_annotations.empty()) << said;
      break;
    case Expect::Deny:
      EXPECT_FALSE(response.allowed) << said;
      EXPECT_EQ(response.status_code, 403);
      break;
    case Expect::Warn:
      EXPECT_TRUE(response.allowed) << said;
      EXPECT_FALSE(response.warnings.empty()) << said;
      break;
    case Expect::Audit:
      EXPECT_TRUE(response.allowed) << said;
      EXPECT_TRUE(response.warnings.empty()) << said;
      EXPECT_FALSE(response.audit_annotations.empty()) << said;
      break;
  }
  for (const std::string& text : row.says) EXPECT_NE(said.find(text), std::string::npos) << "missing '" << text << "' in:\n" << said;
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  std::string name = info.param.name;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

// ---------------------------------------------------------------------------------------------
// image-registries

constexpr const char* kRegistries = R"(image-registries:
  allowed: [docker.io/library/*, nvcr.io/nvidia/**, 'registry.example.com:5000/ml/*']
  allowedPatterns: ['ghcr\.io/acme-[a-z]+/.*'])";

// A Pod with one container running `image`, as YAML.
std::string pod_with_image(const std::string& image) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: main, image: \"" + image + "\"}\n";
}

const std::string kPodUbuntu = pod_with_image("ubuntu:24.04");

INSTANTIATE_TEST_SUITE_P(ImageRegistries, PolicyTable, ::testing::Values(
  Row{"official image normalized to docker.io/library", kRegistries, kPodUbuntu, Expect::Allow, {}},
  Row{"nested NGC repository", kRegistries, pod_with_image("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0"), Expect::Allow, {}},
  Row{"registry with port", kRegistries, pod_with_image("registry.example.com:5000/ml/trainer:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), Expect::Allow, {}},
  Row{"RE2 pattern", kRegistries, pod_with_image("ghcr.io/acme-ml/serve:3"), Expect::Allow, {}},
  Row{"docker hub user account denied in a Deployment", kRegistries, R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "ubuntu:24.04"}
      - {name: b, image: "someone/gpu-burn:1.0"})", Expect::Deny,
      {"spec.template.spec.containers[1].image", "docker.io/someone/gpu-burn", "not from an allowed registry",
       "docker.io/library/*"}},
  Row{"star does not cross a slash", kRegistries, pod_with_image("registry.example.com:5000/ml/team/trainer:1"), Expect::Deny,
      {"registry.example.com:5000/ml/team/trainer"}},
  Row{"init and ephemeral containers are checked", kRegistries, R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: fetch, image: "quay.io/x/fetch:1"}
  containers:
  - {name: main, image: "ubuntu:24.04"}
  ephemeralContainers:
  - {name: debug, image: "busybox2.example/debug:1"})", Expect::Deny,
      {"spec.initContainers[0].image", "spec.ephemeralContainers[0].image"}},
  Row{"invalid reference is denied with the reason", kRegistries, R"(
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      containers:
      - {name: main, image: "$IMAGE_URL"}
      restartPolicy: Never)", Expect::Deny, {"not a valid image reference", "invalid reference format"}},
  Row{"warn mode", "image-registries: {mode: warn, allowed: [nvcr.io/nvidia/**]}", kPodUbuntu, Expect::Warn,
      {"[image-registries]", "docker.io/library/ubuntu"}},
  Row{"audit mode", "image-registries: {mode: audit, allowed: [nvcr.io/nvidia/**]}", kPodUbuntu, Expect::Audit,
      {"image-registries: spec.containers[0].image"}},
  Row{"namespace override to off", R"(image-registries:
  allowed: [nvcr.io/nvidia/**]
  namespaceModes: {"sandbox-*": off})", kPodUbuntu, Expect::Allow, {}, "sandbox-1"},
  Row{"gpuPodsOnly skips CPU pods", "image-registries: {allowed: [nvcr.io/nvidia/**], gpuPodsOnly: true}", kPodUbuntu,
      Expect::Allow, {}}
), row_name);

// ---------------------------------------------------------------------------------------------
// image-tags

constexpr const char* kTags = "image-tags: {deniedTags: [latest, 'latest-*'], requireDigestNamespaces: ['prod-*']}";

const std::string kDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kPinnedTag = pod_with_image("nvcr.io/nvidia/pytorch:24.05-py3");
const std::string kNoTag = pod_with_image("ubuntu");
const std::string kLatestGpu = pod_with_image("tensorflow/tensorflow:latest-gpu");
const std::string kTagAndDigest = pod_with_image("nvcr.io/nvidia/pytorch:24.05-py3@" + kDigest);
const std::string kDigestOnly = pod_with_image("nvcr.io/nvidia/pytorch@" + kDigest);

INSTANTIATE_TEST_SUITE_P(ImageTags, PolicyTable, ::testing::Values(
  Row{"version tag", kTags, kPinnedTag, Expect::Allow, {}},
  Row{"no tag means latest", kTags, kNoTag, Expect::Deny, {"has no tag", "ubuntu:<version>"}},
  Row{"latest denied by default", "image-tags: {}", pod_with_image("ubuntu:latest"), Expect::Deny,
      {"floating tag 'latest'"}},
  Row{"latest-gpu matches a glob", kTags, kLatestGpu, Expect::Deny,
      {"floating tag 'latest-gpu'", "tensorflow/tensorflow@sha256:"}},
  Row{"latest-gpu allowed with default globs", "image-tags: {}", kLatestGpu, Expect::Allow, {}},
  Row{"digest pins even without tag", kTags, kDigestOnly, Expect::Allow, {}},
  Row{"digest required in prod", kTags, kPinnedTag, Expect::Deny,
      {"not pinned by digest", "namespace prod-eu requires", "nvcr.io/nvidia/pytorch@sha256:<digest>"}, "prod-eu"},
  Row{"digest given in prod", kTags, kTagAndDigest, Expect::Allow, {}, "prod-eu"},
  Row{"requireDigest everywhere", "image-tags: {requireDigest: true}", kPinnedTag, Expect::Deny,
      {"not pinned by digest"}},
  Row{"tag with digest refused when configured", "image-tags: {allowTagWithDigest: false}", kTagAndDigest,
      Expect::Deny, {"both a tag and a digest", "nvcr.io/nvidia/pytorch@sha256:0123"}},
  Row{"CronJob template in warn mode", "image-tags: {mode: warn}", R"(
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - {name: main, image: "ubuntu:latest"}
          restartPolicy: Never)", Expect::Warn, {"[image-tags] spec.jobTemplate.spec.template.spec.containers[0].image"}},
  Row{"audit mode", "image-tags: {mode: audit}", kNoTag, Expect::Audit, {"image-tags: spec.containers[0].image"}},
  Row{"invalid references are left to image-registries", "image-tags: {}", pod_with_image("$IMAGE"),
      Expect::Allow, {}}
), row_name);

// ---------------------------------------------------------------------------------------------
// env-secrets

std::string pod_with_env(const std::string& env) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: main\n    image: x\n    env:\n" + env;
}
const std::string kLiteralToken = pod_with_env("    - {name: MODEL_ID, value: meta-llama/Llama-3}\n"
                                               "    - {name: HF_TOKEN, value: hf_abcdefSECRETVALUE}\n");

INSTANTIATE_TEST_SUITE_P(EnvSecrets, PolicyTable, ::testing::Values(
  Row{"literal token denied, value never shown", "env-secrets: {}", kLiteralToken, Expect::Deny,
      {"spec.containers[0].env[1].value", "env HF_TOKEN", "valueFrom.secretKeyRef"}},
  Row{"secretKeyRef allowed", "env-secrets: {}", pod_with_env(
      "    - name: HUGGING_FACE_HUB_TOKEN\n      valueFrom: {secretKeyRef: {name: hf, key: token}}\n"),
      Expect::Allow, {}},
  Row{"token-like words that are not secrets", "env-secrets: {}", pod_with_env(
      "    - {name: MAX_INPUT_TOKENS, value: '2048'}\n    - {name: TOKENIZERS_PARALLELISM, value: 'false'}\n"
      "    - {name: SECRETARY, value: bob}\n"), Expect::Allow, {}},
  Row{"lower-case and API key forms", "env-secrets: {}", pod_with_env(
      "    - {name: wandb_api_key, value: abc}\n    - {name: OPENAI_APIKEY, value: abc}\n"), Expect::Deny,
      {"env wandb_api_key", "env OPENAI_APIKEY"}},
  Row{"empty value and variable references are not secrets", "env-secrets: {}", pod_with_env(
      "    - {name: DB_PASSWORD, value: ''}\n    - {name: HF_TOKEN, value: '$(TOKEN_FROM_SECRET)'}\n"),
      Expect::Allow, {}},
  Row{"ignoredNames", "env-secrets: {ignoredNames: [JUPYTER_TOKEN]}", pod_with_env(
      "    - {name: JUPYTER_TOKEN, value: ''}\n    - {name: JUPYTER_TOKEN, value: open}\n"), Expect::Allow, {}},
  Row{"custom names", "env-secrets: {names: ['^NGC_']}", pod_with_env(
      "    - {name: NGC_CLI_KEY, value: abc}\n    - {name: HF_TOKEN, value: abc}\n"), Expect::Deny,
      {"env NGC_CLI_KEY"}},
  Row{"configMapKeyRef is a warning", "env-secrets: {}", pod_with_env(
      "    - name: API_KEY\n      valueFrom: {configMapKeyRef: {name: c, key: k}}\n"), Expect::Warn,
      {"comes from a ConfigMap"}},
  Row{"StatefulSet init container in warn mode", "env-secrets: {mode: warn}", R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  serviceName: s
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec:
      initContainers:
      - name: download
        image: x
        env: [{name: AWS_SECRET_ACCESS_KEY, value: abc}]
      containers:
      - {name: main, image: x})", Expect::Warn, {"spec.template.spec.initContainers[0].env[0].value"}},
  Row{"audit mode", "env-secrets: {mode: audit}", kLiteralToken, Expect::Audit, {"env HF_TOKEN"}}
), row_name);

TEST(EnvSecrets, ValueAppearsNowhereInTheAnswer) {
  for (const char* mode : {"enforce", "warn", "audit"}) {
    ReviewOutcome outcome = review(std::string("env-secrets: {mode: ") + mode + "}", kLiteralToken, "team-a");
    json answer = encode_admission_review(outcome.response);
    EXPECT_EQ(answer.dump().find("hf_abcdefSECRETVALUE"), std::string::npos) << answer.dump();
    EXPECT_NE(answer.dump().find("HF_TOKEN"), std::string::npos) << mode;
  }
}

// ---------------------------------------------------------------------------------------------
// gpu-shape

std::string gpu_pod(const std::string& resources, const std::string& extra = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + extra +
         "  containers:\n  - name: main\n    image: x\n    resources:\n" + resources;
}
const std::string kGoodGpu = gpu_pod("      limits: {nvidia.com/gpu: 2, cpu: '8', memory: 64Gi}\n");
constexpr const char* kShape = "gpu-shape: {maxGpusPerPod: 8, maxGpusPerContainer: 4}";

INSTANTIATE_TEST_SUITE_P(GpuShape, PolicyTable, ::testing::Values(
  Row{"whole GPUs with cpu and memory", kShape, kGoodGpu, Expect::Allow, {}},
  Row{"fractional GPU", kShape, gpu_pod("      limits: {nvidia.com/gpu: 500m, cpu: '1', memory: 1Gi}\n"),
      Expect::Deny, {"spec.containers[0].resources.limits.nvidia.com/gpu", "500m is not a whole number", "MIG"}},
  Row{"unparsable GPU amount", kShape, gpu_pod("      limits: {nvidia.com/gpu: two, cpu: '1', memory: 1Gi}\n"),
      Expect::Deny, {"is not a quantity"}},
  Row{"too many per container", kShape, gpu_pod("      limits: {nvidia.com/gpu: 6, cpu: '1', memory: 1Gi}\n"),
      Expect::Deny, {"6 nvidia.com/gpu is more than the 4 a container may have"}},
  Row{"pod total sums app containers", kShape, R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      initContainers:
      - {name: warm, image: x, resources: {limits: {nvidia.com/gpu: 1, cpu: '1', memory: 1Gi}}}
      containers:
      - {name: a, image: x, resources: {limits: {nvidia.com/gpu: 4, cpu: '1', memory: 1Gi}}}
      - {name: b, image: x, resources: {limits: {nvidia.com/gpu: 4, cpu: '1', memory: 1Gi}}}
      - {name: c, image: x, resources: {limits: {nvidia.com/gpu: 2, cpu: '1', memory: 1Gi}}})", Expect::Deny,
      {"spec.template.spec.containers", "needs 10 nvidia.com/gpu on one node", "sums", "a: 4, b: 4, c: 2"}},
  Row{"init container counts with its largest request", "gpu-shape: {maxGpusPerPod: 2}", R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: i1, image: x, resources: {limits: {nvidia.com/gpu: 3, cpu: '1', memory: 1Gi}}}
  containers:
  - {name: a, image: x, resources: {limits: {nvidia.com/gpu: 1, cpu: '1', memory: 1Gi}}})", Expect::Deny,
      {"needs 3 nvidia.com/gpu"}},
  Row{"cpu and memory required", kShape, gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Deny,
      {"spec.containers[0].resources", "must set cpu and memory"}},
  Row{"memory alone missing, as a warning", "gpu-shape: {requireCpuAndMemory: warning}",
      gpu_pod("      requests: {cpu: '2'}\n      limits: {nvidia.com/gpu: 1}\n"), Expect::Warn,
      {"must set memory"}},
  Row{"CPU pod tolerating the GPU taint", kShape, R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      containers:
      - {name: web, image: x})", Expect::Deny, {"spec.template.spec.tolerations[0]", "requests no GPU"}},
  Row{"CPU pod selecting GPU nodes by affinity", "gpu-shape: {podsOnGpuNodesWithoutGpu: warning}", R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: nvidia.com/gpu.product, operator: In, values: [NVIDIA-H100-80GB-HBM3]}
  containers:
  - {name: main, image: x})", Expect::Warn,
      {"nodeSelectorTerms[0].matchExpressions[0]", "selects GPU nodes by nvidia.com/gpu.product"}},
  Row{"CPU pod avoiding GPU nodes", kShape, R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: nvidia.com/gpu.present, operator: DoesNotExist}
  tolerations:
  - {operator: Exists}
  containers:
  - {name: main, image: x})", Expect::Allow, {}},
  Row{"DaemonSet node agent on GPU nodes", kShape, R"(
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: dcgm}
spec:
  selector: {matchLabels: {app: dcgm}}
  template:
    metadata: {labels: {app: dcgm}}
    spec:
      nodeSelector: {nvidia.com/gpu.present: "true"}
      tolerations: [{key: nvidia.com/gpu, operator: Exists}]
      containers:
      - {name: exporter, image: x})", Expect::Allow, {}},
  Row{"MIG profile allowed in the namespace",
      R"(gpu-shape: {migResources: {"team-*": [nvidia.com/mig-1g.*], "*": []}})",
      gpu_pod("      limits: {nvidia.com/mig-1g.10gb: 1, cpu: '1', memory: 1Gi}\n"), Expect::Allow, {}},
  Row{"MIG profile not allowed in the namespace",
      R"(gpu-shape: {migResources: {"team-*": [nvidia.com/mig-1g.*], "*": []}})",
      gpu_pod("      limits: {nvidia.com/mig-3g.40gb: 1, cpu: '1', memory: 1Gi}\n"), Expect::Deny,
      {"namespace team-a may not use nvidia.com/mig-3g.40gb", "nvidia.com/mig-1g.*"}},
  Row{"MIG in a namespace with none allowed",
      R"(gpu-shape: {migResources: {"team-*": [nvidia.com/mig-1g.*], "*": []}})",
      gpu_pod("      limits: {nvidia.com/mig-1g.10gb: 1, cpu: '1', memory: 1Gi}\n"), Expect::Deny,
      {"it has no MIG resources allowed"}, "research"},
  Row{"shared resource outside sharing namespaces", "gpu-shape: {sharingNamespaces: [inference]}",
      gpu_pod("      limits: {nvidia.com/gpu.shared: 1, cpu: '1', memory: 1Gi}\n"), Expect::Deny,
      {"namespace team-a may not use shared GPUs", "it requests nvidia.com/gpu.shared"}},
  Row{"shared resource in a sharing namespace", "gpu-shape: {sharingNamespaces: [inference]}",
      gpu_pod("      limits: {nvidia.com/gpu.shared: 1, cpu: '1', memory: 1Gi}\n"), Expect::Allow, {}, "inference"},
  Row{"more than one shared GPU", "gpu-shape: {sharingNamespaces: [inference]}",
      gpu_pod("      limits: {nvidia.com/gpu.shared: 2, cpu: '1', memory: 1Gi}\n"), Expect::Deny,
      {"2 shared GPUs", "buys no more compute"}, "inference"},
  Row{"time-sliced pool by product label", "gpu-shape: {}",
      gpu_pod("      limits: {nvidia.com/gpu: 1, cpu: '1', memory: 1Gi}\n",
              "  nodeSelector: {nvidia.com/gpu.product: Tesla-T4-SHARED}\n"), Expect::Deny,
      {"spec.nodeSelector.nvidia.com/gpu.product", "selects a shared GPU pool", "Tesla-T4-SHARED"}},
  Row{"MPS pool by sharing-strategy affinity, 2 GPUs", "gpu-shape: {sharingNamespaces: ['*']}", R"(
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: nvidia.com/gpu.sharing-strategy, operator: In, values: [mps]}
      containers:
      - {name: main, image: x, resources: {limits: {nvidia.com/gpu: 2, cpu: '1', memory: 1Gi}}})", Expect::Deny,
      {"spec.template.spec.containers[0].resources.limits.nvidia.com/gpu", "2 shared GPUs"}},
  Row{"sharing-strategy none is a dedicated pool", "gpu-shape: {}",
      gpu_pod("      limits: {nvidia.com/gpu: 1, cpu: '1', memory: 1Gi}\n",
              "  nodeSelector: {nvidia.com/gpu.sharing-strategy: none}\n"), Expect::Allow, {}},
  Row{"warn mode", "gpu-shape: {mode: warn}", gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Warn,
      {"[gpu-shape]"}},
  Row{"audit mode", "gpu-shape: {mode: audit}", gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Audit,
      {"gpu-shape: spec.containers[0].resources"}}
), row_name);

// ---------------------------------------------------------------------------------------------
// pod-security

constexpr const char* kSecurity = "pod-security: {allowedHostPaths: ['/data/models/**']}";
const std::string kNonRootGpu = gpu_pod("      limits: {nvidia.com/gpu: 1}\n", "  securityContext: {runAsNonRoot: true}\n");

INSTANTIATE_TEST_SUITE_P(PodSecurity, PolicyTable, ::testing::Values(
  Row{"non-root GPU pod", kSecurity, kNonRootGpu, Expect::Allow, {}},
  Row{"runAsUser set instead", kSecurity,
      gpu_pod("      limits: {nvidia.com/gpu: 1}\n", "  securityContext: {runAsUser: 1000}\n"), Expect::Allow, {}},
  Row{"root by default", kSecurity, gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Deny,
      {"spec.containers[0].securityContext: may run as root", "runAsNonRoot: true"}},
  Row{"runAsUser 0 overrides the pod's runAsNonRoot", kSecurity, R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: main
    image: x
    securityContext: {runAsUser: 0}
    resources: {limits: {nvidia.com/gpu: 1}})", Expect::Deny, {"runAsUser 0"}},
  Row{"runAsNonRoot as a warning", "pod-security: {runAsNonRoot: warning}",
      gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Warn, {"may run as root"}},
  Row{"privileged, host namespaces and hostPath in a Job", kSecurity, R"(
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      hostPID: true
      hostNetwork: true
      securityContext: {runAsNonRoot: true}
      volumes:
      - {name: models, hostPath: {path: /data/models/llama}}
      - {name: root, hostPath: {path: /}}
      containers:
      - name: main
        image: x
        securityContext: {privileged: true}
        resources: {limits: {nvidia.com/gpu: 1}})", Expect::Deny,
      {"spec.template.spec.hostPID", "spec.template.spec.hostNetwork", "spec.template.spec.volumes[1].hostPath",
       "hostPath volume /", "spec.template.spec.containers[0].securityContext.privileged"}},
  Row{"CPU pods are not checked by default", kSecurity, R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  containers:
  - {name: main, image: x})", Expect::Allow, {}},
  Row{"CPU pods checked with gpuPodsOnly false", "pod-security: {gpuPodsOnly: false, runAsNonRoot: off}", R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  containers:
  - {name: main, image: x})", Expect::Deny, {"hostNetwork"}},
  Row{"warn mode", "pod-security: {mode: warn}", gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Warn,
      {"[pod-security]"}},
  Row{"audit mode", "pod-security: {mode: audit}", gpu_pod("      limits: {nvidia.com/gpu: 1}\n"), Expect::Audit,
      {"pod-security: spec.containers[0].securityContext"}},
  Row{"exempt namespace", "pod-security: {exemptNamespaces: [ops]}", gpu_pod("      limits: {nvidia.com/gpu: 1}\n"),
      Expect::Audit, {"pod-security: exempt: namespace ops"}, "ops"}
), row_name);

// ---------------------------------------------------------------------------------------------
// Exemption by annotation, for a validating policy.

TEST(Exemptions, AnnotationHonouredOnlyWhenExemptible) {
  const std::string pod = R"(
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {gpu-admit.io/exempt: "image-tags, pod-security"}
spec:
  containers:
  - {name: main, image: ubuntu})";
  ReviewOutcome honoured = review("image-tags: {exemptibleByAnnotation: true}", pod, "team-a");
  EXPECT_TRUE(honoured.response.allowed);
  EXPECT_EQ(honoured.response.audit_annotations.at("image-tags"), "exempt: annotation gpu-admit.io/exempt");
  ReviewOutcome refused = review("image-tags: {}", pod, "team-a");
  EXPECT_FALSE(refused.response.allowed);
  ASSERT_EQ(refused.response.warnings.size(), 1u);
  EXPECT_NE(refused.response.warnings[0].find("gpu-admit.io/exempt names this policy"), std::string::npos);
  EXPECT_NE(refused.response.audit_annotations.at("image-tags").find("does not allow exempting it"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Config errors name the file, line and key.

std::string config_error(const std::string& policy) {
  try {
    Engine::from_yaml("gpuResources: [nvidia.com/gpu.shared]\npolicies:\n" + indent(policy), "cfg.yaml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "no error";
}

TEST(ValidatingPolicyConfig, ErrorsNameTheKey) {
  EXPECT_EQ(config_error("image-registries: {allowed: [nvcr.io]}").substr(0, 62),
            "cfg.yaml:3:32: policies.image-registries.allowed[0]: 'nvcr.io'");
  EXPECT_NE(config_error("image-registries: {allowed: [nvcr.io]}").find("nvcr.io/**"), std::string::npos);
  EXPECT_NE(config_error("image-registries:\n  allowedPatterns: ['(unclosed']")
                .find("cfg.yaml:4:23: policies.image-registries.allowedPatterns[0]: bad regular expression"),
            std::string::npos);
  EXPECT_NE(config_error("image-registries: {mode: enforce}").find("at least one repository pattern"),
            std::string::npos);
  EXPECT_NE(config_error("env-secrets: {names: ['a(']}").find("policies.env-secrets.names[0]: bad regular expression"),
            std::string::npos);
  EXPECT_NE(config_error("env-secrets: {configMapRefs: deny}").find("expected violation, warning or off"),
            std::string::npos);
  EXPECT_NE(config_error("gpu-shape: {maxGpusPerPod: -1}").find("policies.gpu-shape.maxGpusPerPod"), std::string::npos);
  EXPECT_NE(config_error("gpu-shape: {migResources: {'*': [nvidia.com/gpu]}}").find("nvidia.com/mig-<profile>"),
            std::string::npos);
  EXPECT_NE(config_error("gpu-shape: {sharedGpuResources: [example.com/vgpu]}").find("add it to the top-level gpuResources"),
            std::string::npos);
  EXPECT_NE(config_error("pod-security: {allowedHostPaths: [data]}").find("start the pattern with /"), std::string::npos);
  EXPECT_NE(config_error("image-tags: {requireDigest: maybe}").find("policies.image-tags.requireDigest"),
            std::string::npos);
  EXPECT_NE(config_error("pod-security: {hostPaths: []}").find("unknown key 'hostPaths'"), std::string::npos);
}

}  // namespace
}  // namespace gpuadmit

namespace gpuadmit {
namespace {

// requests-equal-limits copies a fractional limit into the request before validation; the user
// wrote one bad amount and reads one message about it.
TEST(GpuShape, FractionalLimitReportedOnce) {
  const std::string policies = "requests-equal-limits: {}\ngpu-shape: {maxGpusPerPod: 8}";
  ReviewOutcome outcome = review(policies, gpu_pod("      limits: {nvidia.com/gpu: 500m, cpu: '1', memory: 1Gi}\n"), "team-a");
  const std::string& message = outcome.response.status_message;
  EXPECT_NE(message.find("resources.limits.nvidia.com/gpu: 500m is not a whole number"), std::string::npos) << message;
  EXPECT_EQ(message.find("resources.requests.nvidia.com/gpu"), std::string::npos) << message;
  EXPECT_EQ(message.find("needs"), std::string::npos) << message;
}

// A name that is not a string (check reads manifests the API server never decoded) only labels
// messages: the policies still evaluate the container instead of failing on it.
TEST(GpuShape, AContainerNamedByANumberIsStillChecked) {
  const std::string manifest =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: 5\n    image: x\n"
      "    resources:\n      limits: {nvidia.com/gpu: 1}\n";
  ReviewOutcome outcome = review("gpu-shape: {}\nsmoke-test: {image: nvcr.io/x/gpu-smoke:1, namespaces: ['*']}", manifest, "team-a");
  const std::string said = everything_said(outcome.response);
  EXPECT_EQ(said.find("could not evaluate"), std::string::npos) << said;
  EXPECT_NE(said.find("must set cpu and memory"), std::string::npos) << said;
}

}  // namespace
}  // namespace gpuadmit
