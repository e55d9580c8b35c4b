// One benchmark per validating policy: a typical GPU Deployment (vLLM server with a sidecar,
// an init container, env vars, tolerations and a node selector) reviewed by an engine that runs
// only that policy, so each policy's own cost shows on its own.
#include <benchmark/benchmark.h>

#include "engine/manifests.h"
#include "gpuadmit/engine.h"

namespace {

using gpuadmit::Engine;

constexpr const char* kDeployment = R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: llama3-8b, namespace: ml-serving}
spec:
  replicas: 2
  selector: {matchLabels: {app: llama3-8b}}
  template:
    metadata: {labels: {app: llama3-8b}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000}
      nodeSelector: {nvidia.com/gpu.product: NVIDIA-L4}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      initContainers:
        - name: fetch-model
          image: "python:3.12-slim"
          env: [{name: MODEL_ID, value: meta-llama/Meta-Llama-3-8B-Instruct}]
          resources: {limits: {cpu: "1", memory: 2Gi}}
      containers:
        - name: vllm
          image: "vllm/vllm-openai:v0.6.3"
          args: [--model, meta-llama/Meta-Llama-3-8B-Instruct, --port, "8000"]
          env:
            - {name: MAX_INPUT_TOKENS, value: "4096"}
            - {name: TOKENIZERS_PARALLELISM, value: "false"}
            - name: HF_TOKEN
              valueFrom: {secretKeyRef: {name: hf-token, key: token}}
          resources:
            requests: {nvidia.com/gpu: "1", cpu: "8", memory: 48Gi}
            limits: {nvidia.com/gpu: "1", cpu: "8", memory: 48Gi}
        - name: metrics
          image: "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5-3.4.1-ubuntu22.04"
          resources: {limits: {cpu: 100m, memory: 128Mi}}
)";

void review_with(benchmark::State& state, const std::string& policy_yaml) {
  auto engine = Engine::from_yaml("gpuResources: [nvidia.com/gpu.shared]\npolicies:\n" + policy_yaml, "bench");
  const auto request =
      gpuadmit::request_for_manifest(gpuadmit::parse_manifests(kDeployment, "bench").at(0).object, "ml-serving");
  for (auto _ : state) {
    auto outcome = engine->review(request);
    benchmark::DoNotOptimize(outcome.response.allowed);
  }
}

void BM_ImageRegistries(benchmark::State& state) {
  review_with(state, "  image-registries: {allowed: [docker.io/library/*, docker.io/vllm/**, nvcr.io/nvidia/**],"
                     " allowedPatterns: ['registry\\.example\\.com/.*']}\n");
}
void BM_ImageTags(benchmark::State& state) { review_with(state, "  image-tags: {deniedTags: [latest, 'latest-*']}\n"); }
void BM_EnvSecrets(benchmark::State& state) { review_with(state, "  env-secrets: {}\n"); }
void BM_GpuShape(benchmark::State& state) {
  review_with(state, "  gpu-shape: {maxGpusPerPod: 8, maxGpusPerContainer: 8, sharingNamespaces: [notebooks]}\n");
}
void BM_PodSecurity(benchmark::State& state) { review_with(state, "  pod-security: {}\n"); }
// The floor: the same review with no policy at all.
void BM_NoPolicy(benchmark::State& state) { review_with(state, "  {}\n"); }

BENCHMARK(BM_NoPolicy);
BENCHMARK(BM_ImageRegistries);
BENCHMARK(BM_ImageTags);
BENCHMARK(BM_EnvSecrets);
BENCHMARK(BM_GpuShape);
BENCHMARK(BM_PodSecurity);

}  // namespace

BENCHMARK_MAIN();
