// Structure-aware fuzzing of the webhook body: a custom mutator parses the input as an
// AdmissionReview and changes its object the way a hostile or confused client would (Kubernetes
// field names and values, deleted and duplicated fields, subtrees spliced elsewhere, another
// kind or operation), so most inputs get past JSON parsing and decoding into the policies, the
// capacity model and the JSON Patch diff. Byte-level mutation of string values is still done by
// libFuzzer. The check is answer_admission_review's own contract: it never throws.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_common.h"

using nlohmann::json;

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

// A GPU Deployment that most policies act on: where mutation starts when the input is not a review.
constexpr std::string_view kStart = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
 "request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
 "namespace":"ml-team","operation":"CREATE","userInfo":{"username":"fuzz"},
 "object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"ml-team","annotations":{"gpu-admit.io/gpu-memory":"40Gi"}},
  "spec":{"replicas":2,"template":{"metadata":{"labels":{"app":"d"}},"spec":{
   "tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}],
   "volumes":[{"name":"dshm","emptyDir":{"medium":"Memory"}}],
   "containers":[{"name":"c","image":"vllm/vllm-openai:v0.5.0","args":["--port","8000"],
    "ports":[{"containerPort":8000}],"env":[{"name":"HF_TOKEN","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}],
    "volumeMounts":[{"name":"dshm","mountPath":"/dev/shm"}],
    "resources":{"limits":{"nvidia.com/gpu":"1","cpu":"4","memory":"32Gi"},"requests":{"nvidia.com/gpu":"1"}}}]}}}}}})";

const char* const kKeys[] = {
    "apiVersion", "kind", "metadata", "name", "namespace", "annotations", "labels", "spec", "template", "jobTemplate",
    "containers", "initContainers", "ephemeralContainers", "image", "resources", "limits", "requests", "nvidia.com/gpu",
    "nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb", "nvidia.com/mig-3g.40gb", "cpu", "memory", "tolerations", "key",
    "operator", "effect", "value", "volumes", "emptyDir", "medium", "sizeLimit", "volumeMounts", "mountPath", "hostIPC",
    "hostPID", "hostNetwork", "securityContext", "privileged", "runAsNonRoot", "runAsUser", "hostPath", "path",
    "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
    "matchExpressions", "matchFields", "values", "nodeSelector", "env", "valueFrom", "readinessProbe", "livenessProbe",
    "startupProbe", "httpGet", "tcpSocket", "exec", "grpc", "port", "ports", "containerPort", "args", "command",
    "restartPolicy", "replicas", "gpu-admit.io/gpu-memory", "gpu-admit.io/cuda-version", "gpu-admit.io/cuda-arch",
    "gpu-admit.io/model-load-seconds", "gpu-admit.io/smoke-test", "gpu-admit.io/exempt", "overhead", "priority",
    "runtimeClassName", "schedulerName", "ownerReferences", "controller", "dryRun", "oldObject", "subResource",
    "operation", "uid",
    // the custom resources' paths (engine/workload_kinds.cpp)
    "predictor", "transformer", "model", "pytorch", "minReplicas", "headGroupSpec", "workerGroupSpecs",
    "numOfHosts", "rayClusterSpec", "leaderWorkerTemplate", "leaderTemplate", "workerTemplate", "size",
    "replicatedJobs", "parallelism", "pytorchReplicaSpecs", "mpiReplicaSpecs", "Worker", "tasks", "minAvailable",
    // GPUs requested another way (engine/gpu_use.h)
    "resourceClaims", "claims", "resourceClaimTemplateName", "resourceClaimName", "source", "gpu-fraction",
    "gpu-memory", "gpu-fraction-num-devices", "gpu-fraction-container-name", "nvidia.com/gpumem", "nvidia.com/gpucores",
    // autoscalers (HorizontalPodAutoscaler, KEDA ScaledObject)
    "scaleTargetRef", "maxReplicas", "behavior", "scaleDown", "stabilizationWindowSeconds", "selectPolicy",
    "minReplicaCount", "maxReplicaCount", "idleReplicaCount", "advanced", "horizontalPodAutoscalerConfig"};

json interesting(std::mt19937& rng) {
  static const json kValues = json::parse(R"([null, true, false, 0, 1, -1, 2, 8, 1.5, -0.0, 9223372036854775807,
    -9223372036854775808, 18446744073709551615, 1e308, "", "0", "1", "-1", "0.5", "1e3", "1E18", "100m", "16Gi",
    "1Ei", "9223372036854775807", "0x10", "Exists", "Equal", "In", "NotIn", "Gt", "Lt", "DoesNotExist", "NoSchedule",
    "NoExecute", "Memory", "/dev/shm", "/", "nvidia.com/gpu", "nvidia.com/gpu.product", "12.4", "sm_90a", "compute_80",
    "ubuntu", "nvcr.io/nvidia/pytorch:24.05-py3", "UPPER/case", "$IMAGE", "a@sha256:0000", "CREATE", "UPDATE",
    "DELETE", "Pod", "Deployment", "Job", "CronJob", "StatefulSet", "DaemonSet", "ReplicaSet", "status", "scale",
    "RayCluster", "InferenceService", "LeaderWorkerSet", "PyTorchJob", "ray.io/v1", "serving.kserve.io/v1beta1",
    "HorizontalPodAutoscaler", "ScaledObject", "Disabled", "autoscaling/v2", "keda.sh/v1alpha1",
    [], {}, [{}], [null], {"name": "x"}, {"": ""}])");
  return kValues[std::uniform_int_distribution<std::size_t>(0, kValues.size() - 1)(rng)];
}

void collect(json& node, std::vector<json*>& out) {
  out.push_back(&node);
  if (node.is_object() || node.is_array())
    for (json& child : node) collect(child, out);
}

std::string mutate_bytes(const std::string& text, std::size_t max_size) {
  std::string buffer(text);
  buffer.resize(std::max(max_size, text.size() + 16));
  buffer.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(buffer.data()), text.size(), buffer.size()));
  return buffer;
}

void mutate(json& review, std::mt19937& rng) {
  json& request = review["request"];
  if (!request.is_object()) request = json::object();
  json& object = request["object"];
  std::vector<json*> nodes;
  collect(object, nodes);
  json& target = *nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(rng)];
  const json& donor = *nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(rng)];
  const char* key = kKeys[std::uniform_int_distribution<std::size_t>(0, std::size(kKeys) - 1)(rng)];
  switch (std::uniform_int_distribution<int>(0, 8)(rng)) {
    case 0:  // libFuzzer's byte mutations on one string or number
      if (target.is_string())
        target = mutate_bytes(target.get<std::string>(), 256);
      else if (target.is_number())
        if (json number = json::parse(mutate_bytes(target.dump(), 32), nullptr, false); !number.is_discarded())
          target = std::move(number);
      break;
    case 1:
      target = interesting(rng);
      break;
    case 2:  // a Kubernetes field with a value
      if (target.is_object()) target[key] = rng() % 2 ? interesting(rng) : json(donor);
      else if (target.is_array()) target.push_back(rng() % 2 ? json::object({{key, interesting(rng)}}) : json(donor));
      break;
    case 3:  // delete a field or element
      if (target.is_object() && !target.empty()) {
        auto it = target.begin();
        std::advance(it, rng() % target.size());
        target.erase(it);
      } else if (target.is_array() && !target.empty()) {
        target.erase(target.begin() + static_cast<std::ptrdiff_t>(rng() % target.size()));
      }
      break;
    case 4:  // duplicate an element (names that clash, many containers)
      if (target.is_array() && !target.empty()) target.push_back(json(target[rng() % target.size()]));
      break;
    case 5:  // splice a subtree elsewhere
      if (&donor != &target) target = json(donor);
      break;
    case 6: {  // another kind
      const json kinds = json::parse(R"([["","v1","Pod"],["apps","v1","Deployment"],["batch","v1","Job"],
        ["batch","v1","CronJob"],["apps","v1","StatefulSet"],["apps","v1","DaemonSet"],["","v1","PodTemplate"],
        ["serving.kserve.io","v1beta1","InferenceService"],["ray.io","v1","RayCluster"],["ray.io","v1","RayJob"],
        ["leaderworkerset.x-k8s.io","v1","LeaderWorkerSet"],["jobset.x-k8s.io","v1alpha2","JobSet"],
        ["kubeflow.org","v1","PyTorchJob"],["batch.volcano.sh","v1alpha1","Job"],
        ["autoscaling","v2","HorizontalPodAutoscaler"],["autoscaling","v1","HorizontalPodAutoscaler"],
        ["keda.sh","v1alpha1","ScaledObject"]])");
      const json& kind = kinds[rng() % kinds.size()];
      request["kind"] = {{"group", kind[0]}, {"version", kind[1]}, {"kind", kind[2]}};
      if (object.is_object()) {
        object["kind"] = kind[2];
        const std::string group = kind[0];
        object["apiVersion"] = group.empty() ? kind[1].get<std::string>() : group + "/" + kind[1].get<std::string>();
      }
      break;
    }
    case 7: {  // another operation, with the object as the old object too
      const char* operations[] = {"CREATE", "UPDATE", "DELETE", "CONNECT"};
      request["operation"] = operations[rng() % 4];
      if (rng() % 2) request["oldObject"] = object;
      break;
    }
    case 8:  // a GPU resource somewhere
      if (target.is_object()) target["resources"] = {{"limits", {{key, interesting(rng)}}}};
      break;
  }
}

}  // namespace

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  std::mt19937 rng(seed);
  json review = json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (review.is_discarded() || !review.is_object() || !review.contains("request"))
    review = json::parse(kStart);
  for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) mutate(review, rng);
  const std::string text = review.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > max_size) return size;  // no smaller form: keep the input as it was
  std::memcpy(data, text.data(), text.size());
  return text.size();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(body)) return -1;
  gpuadmit::answer_admission_review(gpuadmit::fuzz::default_engine(), body, &gpuadmit::fuzz::sample_cluster());
  return 0;
}
