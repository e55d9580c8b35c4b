// A fake Kubernetes API server for tests and benchmarks (header-only: tests in tests/unit/ and
// tests/e2e/, and bench/*.cpp include it; only *_test.cpp files are globbed into the test binary).
//
// It speaks the real wire format over TLS on 127.0.0.1 with a CA made for the test:
//   GET /api/v1/{nodes,pods,namespaces}?limit=N&continue=T   → a v1 List with
//       metadata.resourceVersion, metadata.continue and remainingItemCount; items carry no
//       kind/apiVersion, as the API server sends them
//   GET ...?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=S
//       → 200, chunked, one JSON event per line: {"type":"ADDED","object":{...}};
//         BOOKMARK objects carry only kind, apiVersion and metadata.resourceVersion;
//         a resourceVersion older than the last compaction gets an ERROR event holding a
//         metav1.Status with code 410 ("too old resource version: RV (OLDEST)")
//   GET /apis/resource.k8s.io/VERSION/{resourceclaims,resourceclaimtemplates} → the same, at the
//       one DRA version it serves (set_dra_api_version, v1 unless set), with apiVersion
//       resource.k8s.io/VERSION; any other version, or all of them once set to "", → 404 with a
//       metav1.Status, as a cluster without that API answers
//   GET /apis/policy/VERSION/poddisruptionbudgets → the same, at the one policy version it serves
//       (set_policy_api_version: v1 unless set; v1beta1 as Kubernetes 1.20; "" none)
//   GET /apis/scheduling.k8s.io/v1/priorityclasses → the same (other versions → 404)
//   REST objects, not watched (serve_resource; leases at coordination.k8s.io/v1, policyreports and
//   clusterpolicyreports at wgpolicyk8s.io/v1alpha2 from the start), at
//   /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME]:
//     GET of an object (404 NotFound) or of a collection (all namespaces without one), with
//       ?labelSelector= of `k=v`, `k==v`, `k!=v`, `k`, `!k` terms (set-based ones → 400)
//     POST to the collection → 201; 409 AlreadyExists when the name is taken
//     PUT → 200; 404 when absent; 409 Conflict when metadata.resourceVersion is given and stale
//     PATCH as application/apply-patch+yaml (server-side apply, ?fieldManager= required, a JSON
//       body) creates (201) or replaces the whole object (200); merge-patch+json and
//       json-patch+json patch an existing one; other patch types → 415
//     DELETE → 200 with the object; 404 when absent
//   every write bumps the resourceVersion and sets it, with uid and creationTimestamp, on the
//   object; refusals carry a metav1.Status.
//   401 with a metav1.Status unless the bearer token (set_token, add_token) matches or a client
//   certificate signed by the test CA was presented.
// Lists page through the current state in key order (not a frozen snapshot); continue tokens are
// shaped as the API server's (base64 JSON {"v","rv","start"}) and expire with compaction.
//
// Faults for tests: drop a connection halfway through an event, trickle events a few bytes per
// chunk, stall (accept, never answer), inject raw lines, expire watches (410), close watches; for
// any resource, watched or REST, add_fault: stall or answer a given status and body, for one
// method and one client's Authorization header only if asked (cut one replica off).
//
// Starting it from another test (e.g. an end-to-end `serve --kubeconfig` test):
//   gpuadmit::testing::FakeApiServer api(temp_dir);         // listens on 127.0.0.1:api.port()
//   api.set_token("t");
//   api.add("nodes", gpuadmit::testing::fake_node("gpu-1", 8));
//   std::string kubeconfig = api.write_kubeconfig(temp_dir / "kubeconfig", "t");
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gpuadmit::testing {

namespace fake_detail {

inline std::string base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

inline std::string unbase64(const std::string& data) {
  if (data.empty() || data.size() % 4 != 0) return "";
  std::string out(data.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  if (n < 0) return "";
  size_t padding = (data.back() == '=') + (data.size() > 1 && data[data.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

inline std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error(std::string("fake apiserver: bad certificate extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed CA.
inline X509* make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                       const char* usage, const char* subject_alt_names, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert;
  add_extension(cert, signer, NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
  add_extension(cert, signer, NID_key_usage,
                issuer ? "critical,digitalSignature,keyEncipherment" : "critical,keyCertSign,cRLSign");
  if (usage) add_extension(cert, signer, NID_ext_key_usage, usage);
  if (subject_alt_names) add_extension(cert, signer, NID_subject_alt_name, subject_alt_names);
  X509_sign(cert, issuer ? issuer_key : key, EVP_sha256());
  return cert;
}

inline void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

}  // namespace fake_detail

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN=test-user),
// all EC P-256, written as PEM files into `dir`.
struct TestPki {
  std::filesystem::path dir;
  std::string ca_pem, server_cert_pem, server_key_pem, client_cert_pem, client_key_pem;
  std::filesystem::path ca_file() const { return dir / "ca.crt"; }
  std::filesystem::path server_cert_file() const { return dir / "server.crt"; }
  std::filesystem::path server_key_file() const { return dir / "server.key"; }
};

inline TestPki make_test_pki(const std::filesystem::path& dir) {
  using namespace fake_detail;
  std::filesystem::create_directories(dir);
  EVP_PKEY* ca_key = EVP_EC_gen("P-256");
  EVP_PKEY* server_key = EVP_EC_gen("P-256");
  EVP_PKEY* client_key = EVP_EC_gen("P-256");
  X509* ca = make_cert(ca_key, "fake-apiserver-ca", nullptr, nullptr, nullptr, nullptr, 1);
  X509* server = make_cert(server_key, "fake-apiserver", ca, ca_key, "serverAuth", "IP:127.0.0.1,DNS:localhost", 2);
  X509* client = make_cert(client_key, "test-user", ca, ca_key, "clientAuth", nullptr, 3);
  TestPki pki{dir, pem_of(ca), pem_of(server), pem_of(server_key), pem_of(client), pem_of(client_key)};
  X509_free(ca);
  X509_free(server);
  X509_free(client);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(server_key);
  EVP_PKEY_free(client_key);
  write_file(pki.ca_file(), pki.ca_pem);
  write_file(pki.server_cert_file(), pki.server_cert_pem);
  write_file(pki.server_key_file(), pki.server_key_pem);
  return pki;
}

// Objects shaped as the API server returns them (fields the client must drop included).
inline nlohmann::json fake_managed_fields() {
  return nlohmann::json::array(
      {{{"manager", "kubelet"},
        {"operation", "Update"},
        {"apiVersion", "v1"},
        {"time", "2024-05-01T10:00:00Z"},
        {"fieldsType", "FieldsV1"},
        {"fieldsV1", {{"f:status", {{"f:conditions", {{".", nlohmann::json::object()}}}}}}},
        {"subresource", "status"}}});
}

inline nlohmann::json fake_node(const std::string& name, int gpus, const std::string& product = "NVIDIA-H100-80GB-HBM3") {
  nlohmann::json capacity = {{"cpu", "96"}, {"memory", "1056760300Ki"}, {"pods", "110"}, {"ephemeral-storage", "3750157048Ki"}};
  if (gpus > 0) capacity["nvidia.com/gpu"] = std::to_string(gpus);
  return {{"metadata",
           {{"name", name},
            {"uid", "4b5f0c2e-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(name) % 1000000000000ULL)},
            {"creationTimestamp", "2024-05-01T10:00:00Z"},
            {"labels",
             {{"kubernetes.io/hostname", name},
              {"kubernetes.io/os", "linux"},
              {"node.kubernetes.io/instance-type", "p5.48xlarge"},
              {"nvidia.com/gpu.product", product},
              {"nvidia.com/gpu.count", std::to_string(gpus)}}},
            {"annotations", {{"node.alpha.kubernetes.io/ttl", "0"}, {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}},
            {"managedFields", fake_managed_fields()}}},
          {"spec",
           {{"podCIDR", "10.244.1.0/24"},
            {"providerID", "aws:///us-east-1a/i-0123456789abcdef0"},
            {"taints", nlohmann::json::array({{{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}}})}}},
          {"status",
           {{"capacity", capacity},
            {"allocatable", capacity},
            {"conditions",
             nlohmann::json::array({{{"type", "MemoryPressure"}, {"status", "False"}, {"lastHeartbeatTime", "2024-05-01T10:00:00Z"},
                                     {"lastTransitionTime", "2024-05-01T10:00:00Z"}, {"reason", "KubeletHasSufficientMemory"},
                                     {"message", "kubelet has sufficient memory available"}},
                                    {{"type", "Ready"}, {"status", "True"}, {"lastHeartbeatTime", "2024-05-01T10:00:00Z"},
                                     {"lastTransitionTime", "2024-05-01T10:00:00Z"}, {"reason", "KubeletReady"},
                                     {"message", "kubelet is posting ready status"}}})},
            {"addresses", nlohmann::json::array({{{"type", "InternalIP"}, {"address", "10.0.1.17"}}, {{"type", "Hostname"}, {"address", name}}})},
            {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
            {"nodeInfo",
             {{"machineID", "ec2b3c1e0b2f4c6d8e9f0a1b2c3d4e5f"}, {"kernelVersion", "5.10.215-203.850.amzn2.x86_64"},
              {"osImage", "Amazon Linux 2"}, {"containerRuntimeVersion", "containerd://1.7.11"},
              {"kubeletVersion", "v1.29.3-eks-ae9a62a"}, {"kubeProxyVersion", "v1.29.3-eks-ae9a62a"},
              {"operatingSystem", "linux"}, {"architecture", "amd64"}}},
            {"images",
             nlohmann::json::array({{{"names", {"nvcr.io/nvidia/k8s-device-plugin@sha256:0585da349f3cdca29747834e39ada56aed5e23ba363908fc526474d25aa61a75", "nvcr.io/nvidia/k8s-device-plugin:v0.15.0"}}, {"sizeBytes", 120104806}},
                                    {{"names", {"nvcr.io/nvidia/cuda@sha256:5a2f8ba1fb6f2c3b6f9a8d2c3bd0e33cf1e0c0ed36e7bb04e5d3e6ba3e9a8f22", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"}}, {"sizeBytes", 85173520}}})}}}};
}

inline nlohmann::json fake_pod(const std::string& ns, const std::string& name, const std::string& node, int gpus,
                               const std::string& phase = "Running") {
  nlohmann::json resources = {{"requests", {{"cpu", "4"}, {"memory", "32Gi"}}}, {"limits", {{"memory", "32Gi"}}}};
  if (gpus > 0) {
    resources["requests"]["nvidia.com/gpu"] = std::to_string(gpus);
    resources["limits"]["nvidia.com/gpu"] = std::to_string(gpus);
  }
  nlohmann::json spec = {
      {"containers",
       nlohmann::json::array({{{"name", "main"},
                               {"image", "vllm/vllm-openai:v0.4.2"},
                               {"args", {"--model", "meta-llama/Meta-Llama-3-8B-Instruct", "--port", "8000"}},
                               {"env", nlohmann::json::array({{{"name", "HF_HOME"}, {"value", "/cache"}}})},
                               {"ports", nlohmann::json::array({{{"containerPort", 8000}, {"protocol", "TCP"}}})},
                               {"resources", resources},
                               {"volumeMounts", nlohmann::json::array({{{"name", "kube-api-access-x7k2p"}, {"readOnly", true},
                                                                        {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}}})},
                               {"terminationMessagePath", "/dev/termination-log"},
                               {"imagePullPolicy", "IfNotPresent"}}})},
      {"restartPolicy", "Always"},
      {"terminationGracePeriodSeconds", 30},
      {"dnsPolicy", "ClusterFirst"},
      {"serviceAccountName", "default"},
      {"schedulerName", "default-scheduler"},
      {"priority", 0},
      {"tolerations", nlohmann::json::array({{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}})},
      {"volumes", nlohmann::json::array({{{"name", "kube-api-access-x7k2p"},
                                          {"projected", {{"defaultMode", 420}, {"sources", nlohmann::json::array({{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}}})}}}}})}};
  if (!node.empty()) spec["nodeName"] = node;
  return {{"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "9c1d2e3f-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(ns + "/" + name) % 1000000000000ULL)},
            {"creationTimestamp", "2024-05-01T10:00:00Z"},
            {"labels", {{"app", "inference"}, {"pod-template-hash", "7d9c8b6f5"}}},
            {"annotations", {{"kubectl.kubernetes.io/last-applied-configuration", "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}"}}},
            {"ownerReferences", nlohmann::json::array({{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "inference-7d9c8b6f5"},
                                                        {"uid", "1f2e3d4c-0000-4000-8000-000000000001"}, {"controller", true},
                                                        {"blockOwnerDeletion", true}}})},
            {"managedFields", fake_managed_fields()}}},
          {"spec", spec},
          {"status",
           {{"phase", phase},
            {"conditions", nlohmann::json::array({{{"type", "PodScheduled"}, {"status", node.empty() ? "False" : "True"},
                                                   {"lastProbeTime", nullptr}, {"lastTransitionTime", "2024-05-01T10:00:00Z"}}})},
            {"hostIP", "10.0.1.17"},
            {"podIP", "10.244.1.23"},
            {"startTime", "2024-05-01T10:00:00Z"},
            {"qosClass", "Burstable"},
            {"containerStatuses", nlohmann::json::array({{{"name", "main"}, {"ready", true}, {"restartCount", 0},
                                                          {"image", "docker.io/vllm/vllm-openai:v0.4.2"},
                                                          {"imageID", "docker.io/vllm/vllm-openai@sha256:8f0e6b5c2d3a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4"},
                                                          {"containerID", "containerd://0123456789abcdef"},
                                                          {"started", true},
                                                          {"state", {{"running", {{"startedAt", "2024-05-01T10:01:00Z"}}}}}}})}}}};
}

inline nlohmann::json fake_namespace(const std::string& name) {
  return {{"metadata",
           {{"name", name},
            {"uid", "0a1b2c3d-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(name) % 1000000000000ULL)},
            {"creationTimestamp", "2024-05-01T10:00:00Z"},
            {"labels", {{"kubernetes.io/metadata.name", name}}},
            {"managedFields", fake_managed_fields()}}},
          {"spec", {{"finalizers", {"kubernetes"}}}},
          {"status", {{"phase", "Active"}}}};
}

// A ResourceClaim asking for `count` devices of `device_class`, in the resource.k8s.io/v1 shape
// (a template holds the same under spec.spec).
inline nlohmann::json fake_claim_spec(const std::string& device_class, int count) {
  return {{"devices",
           {{"requests", nlohmann::json::array({{{"name", "gpu"},
                                                 {"exactly", {{"deviceClassName", device_class},
                                                              {"allocationMode", "ExactCount"},
                                                              {"count", count}}}}})}}}};
}

inline nlohmann::json fake_resource_claim(const std::string& ns, const std::string& name, const std::string& device_class,
                                          int count) {
  return {{"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "5e6f7a8b-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(ns + "/" + name) % 1000000000000ULL)},
            {"creationTimestamp", "2025-09-01T10:00:00Z"},
            {"labels", {{"app", "inference"}}},
            {"managedFields", fake_managed_fields()}}},
          {"spec", fake_claim_spec(device_class, count)},
          {"status", {{"reservedFor", nlohmann::json::array({{{"resource", "pods"}, {"name", "p0"}, {"uid", "u"}}})}}}};
}

inline nlohmann::json fake_resource_claim_template(const std::string& ns, const std::string& name,
                                                   const std::string& device_class, int count) {
  nlohmann::json object = fake_resource_claim(ns, name, device_class, count);
  object["spec"] = {{"metadata", {{"labels", {{"app", "inference"}}}}}, {"spec", fake_claim_spec(device_class, count)}};
  object.erase("status");
  return object;
}

// A PodDisruptionBudget with `selector` as written (a metav1.LabelSelector, or null for none) and
// spec.minAvailable, with the status the disruption controller adds.
inline nlohmann::json fake_disruption_budget(const std::string& ns, const std::string& name, nlohmann::json selector,
                                             int min_available) {
  nlohmann::json spec = {{"minAvailable", min_available}};
  if (!selector.is_null()) spec["selector"] = std::move(selector);
  return {{"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "7a8b9c0d-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(ns + "/" + name) % 1000000000000ULL)},
            {"generation", 1},
            {"creationTimestamp", "2025-09-01T10:00:00Z"},
            {"labels", {{"app", "inference"}}},
            {"managedFields", fake_managed_fields()}}},
          {"spec", spec},
          {"status", {{"observedGeneration", 1}, {"disruptionsAllowed", 0}, {"currentHealthy", 1},
                      {"desiredHealthy", min_available}, {"expectedPods", 1}}}};
}

inline nlohmann::json fake_priority_class(const std::string& name, int value, bool global_default = false) {
  return {{"metadata",
           {{"name", name},
            {"uid", "1b2c3d4e-0000-4000-8000-" + std::to_string(std::hash<std::string>{}(name) % 1000000000000ULL)},
            {"creationTimestamp", "2025-09-01T10:00:00Z"},
            {"managedFields", fake_managed_fields()}}},
          {"value", value},
          {"globalDefault", global_default},
          {"description", "GPU training jobs"},
          {"preemptionPolicy", "PreemptLowerPriority"}};
}

class FakeApiServer {
 public:
  struct RecordedRequest {
    std::string resource;
    std::map<std::string, std::string> params;
    std::string authorization;
    bool client_certificate = false;
    std::chrono::steady_clock::time_point at;
    std::string path;  // without the query: /api/v1/pods, /apis/resource.k8s.io/v1/resourceclaims
    std::string method = "GET";
    std::string content_type;
    std::string body;
    int remote_port = 0;  // the client's port: requests on one kept-alive connection share it
    bool watch() const { return params.count("watch") && (params.at("watch") == "1" || params.at("watch") == "true"); }
  };

  // A fault for the requests of one resource ("leases", "pods", ...) that match `method` and
  // `authorization` (each "" for any): held unanswered while the fault is set (`stall`, at most
  // 30 s), or answered with `status` and `body` (a metav1.Status when empty) instead of served.
  struct Fault {
    std::string method;
    std::string authorization;  // e.g. "Bearer replica-a": that client only
    bool stall = false;
    int status = 0;
    std::string body;
  };

  // Generates the PKI into `dir` and listens on 127.0.0.1 (a free port).
  explicit FakeApiServer(const std::filesystem::path& dir) : pki_(make_test_pki(dir)) {
    std::signal(SIGPIPE, SIG_IGN);  // writes to watch clients that went away must not kill the process
    server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      if (SSL_CTX_use_certificate_file(&ctx, pki_.server_cert_file().c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_use_PrivateKey_file(&ctx, pki_.server_key_file().c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_load_verify_locations(&ctx, pki_.ca_file().c_str(), nullptr) != 1)
        return false;
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);  // a client certificate is optional
      return true;
    });
    server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_->set_keep_alive_timeout(1);
    server_->set_tcp_nodelay(true);  // as Go's net/http, and so the API server, sets on every connection
    server_->Get(R"(/api/v1/(nodes|pods|namespaces))", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req.matches[1], "", req, res);
    });
    server_->Get(R"(/apis/resource\.k8s\.io/([^/]+)/(resourceclaims|resourceclaimtemplates))",
                 [this](const httplib::Request& req, httplib::Response& res) { handle(req.matches[2], req.matches[1], req, res); });
    server_->Get(R"(/apis/policy/([^/]+)/(poddisruptionbudgets))",
                 [this](const httplib::Request& req, httplib::Response& res) { handle(req.matches[2], req.matches[1], req, res); });
    server_->Get(R"(/apis/scheduling\.k8s\.io/([^/]+)/(priorityclasses))",
                 [this](const httplib::Request& req, httplib::Response& res) { handle(req.matches[2], req.matches[1], req, res); });
    // After the watched kinds' GET routes, which it would otherwise shadow.
    serve_resource("coordination.k8s.io/v1", "leases", "Lease", true);
    serve_resource("wgpolicyk8s.io/v1alpha2", "policyreports", "PolicyReport", true);
    serve_resource("wgpolicyk8s.io/v1alpha2", "clusterpolicyreports", "ClusterPolicyReport", false);
    const auto rest = [this](const httplib::Request& req, httplib::Response& res) {
      handle_rest(req.matches[1], req.matches[2], req, res);
    };
    const char* rest_route = R"(/apis/([^/]+/[^/]+)/(.+))";
    server_->Get(rest_route, rest);
    server_->Post(rest_route, rest);
    server_->Put(rest_route, rest);
    server_->Patch(rest_route, rest);
    server_->Delete(rest_route, rest);
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("fake apiserver: cannot bind 127.0.0.1");
    listener_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 500 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  ~FakeApiServer() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    changed_.notify_all();
    server_->stop();
    if (listener_.joinable()) listener_.join();
  }

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const TestPki& pki() const { return pki_; }

  // The resource.k8s.io version ResourceClaims and templates are served at ("": none, as before
  // Kubernetes 1.32 or with DRA disabled). Other versions answer 404.
  void set_dra_api_version(std::string version) {
    std::lock_guard<std::mutex> lock(mutex_);
    dra_api_version_ = std::move(version);
  }

  // The policy version PodDisruptionBudgets are served at ("v1beta1": as Kubernetes 1.20, which
  // serves no policy/v1; "": none). Other versions answer 404.
  void set_policy_api_version(std::string version) {
    std::lock_guard<std::mutex> lock(mutex_);
    policy_api_version_ = std::move(version);
  }

  // The bearer token accepted from now on ("" accepts none; client certificates always work).
  void set_token(std::string token) {
    std::lock_guard<std::mutex> lock(mutex_);
    token_ = std::move(token);
  }

  // Another bearer token accepted besides set_token's: replicas told apart by their token.
  void add_token(std::string token) {
    std::lock_guard<std::mutex> lock(mutex_);
    extra_tokens_.push_back(std::move(token));
  }

  // A kubeconfig for this server: the CA as certificate-authority-data, then the token or (with
  // `client_certificate`) the test client certificate and key as *-data.
  std::string write_kubeconfig(const std::filesystem::path& file, const std::string& token,
                               bool client_certificate = false) const {
    using fake_detail::base64;
    std::string user = client_certificate ? "    client-certificate-data: " + base64(pki_.client_cert_pem) +
                                                "\n    client-key-data: " + base64(pki_.client_key_pem) + "\n"
                                          : "    token: " + token + "\n";
    fake_detail::write_file(file, "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n"
                                  "    server: " + url() + "\n    certificate-authority-data: " + base64(pki_.ca_pem) +
                                  "\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                                  "users:\n- name: tester\n  user:\n" + user);
    return file.string();
  }

  // ---- state: each change bumps the resourceVersion and is sent to open watches --------------

  // ADDED, or MODIFIED when an object with that key exists. Returns the new resourceVersion.
  uint64_t apply(const std::string& resource, nlohmann::json object) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string key = key_of(object);
    const bool exists = store_[resource].count(key) > 0;
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    std::string item = object.dump();
    append_event(resource, exists ? "MODIFIED" : "ADDED", item);
    store_[resource][key] = std::move(item);
    return rv_;
  }

  // DELETED with the object's last state; false when there is no such object.
  bool remove(const std::string& resource, const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = store_[resource].find(key);
    if (it == store_[resource].end()) return false;
    nlohmann::json object = nlohmann::json::parse(it->second);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    append_event(resource, "DELETED", object.dump());
    store_[resource].erase(it);
    return true;
  }

  // Many ADDED/MODIFIED events appended under one lock, so a watch finds them all waiting
  // (throughput benchmarks measure the client draining them, not the fake producing them).
  void apply_many(const std::string& resource, std::vector<nlohmann::json> objects) {
    std::vector<std::pair<std::string, nlohmann::json>> keyed;
    for (auto& object : objects) keyed.emplace_back(key_of(object), std::move(object));
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, object] : keyed) {
      const bool exists = store_[resource].count(key) > 0;
      object["metadata"]["resourceVersion"] = std::to_string(++rv_);
      std::string item = object.dump();
      append_event(resource, exists ? "MODIFIED" : "ADDED", item);
      store_[resource][key] = std::move(item);
    }
  }

  // Bulk state for benchmarks: no events, one resourceVersion for all.
  void load(const std::string& resource, const std::vector<nlohmann::json>& objects) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string rv = std::to_string(++rv_);
    for (nlohmann::json object : objects) {
      object["metadata"]["resourceVersion"] = rv;
      store_[resource][key_of(object)] = object.dump();
    }
  }

  // While suppressed, the API server hangs for watches: changes are stored but no watch sees
  // them (only a relist does), and no watch ends at its timeoutSeconds.
  void set_events_suppressed(bool suppressed) {
    std::lock_guard<std::mutex> lock(mutex_);
    suppress_events_ = suppressed;
  }

  // A BOOKMARK at the current resourceVersion to the open watches of `resource`.
  void bookmark(const std::string& resource) {
    std::lock_guard<std::mutex> lock(mutex_);
    nlohmann::json object = {{"kind", kind_of(resource)}, {"apiVersion", api_version_of(resource)},
                             {"metadata", {{"resourceVersion", std::to_string(rv_)}, {"creationTimestamp", nullptr}}}};
    push({resource, rv_, Entry::Bookmark, nlohmann::json{{"type", "BOOKMARK"}, {"object", object}}.dump()});
  }

  // A line sent as is to the open watches of `resource`.
  void send_raw_line(const std::string& resource, std::string line) {
    std::lock_guard<std::mutex> lock(mutex_);
    push({resource, rv_, Entry::Raw, std::move(line)});
  }

  // Compaction: every resourceVersion up to now is gone. Open watches of `resource` get an
  // ERROR 410 event and end; later watches and continue tokens from older versions get 410.
  void compact_and_expire_watches(const std::string& resource) {
    std::lock_guard<std::mutex> lock(mutex_);
    compacted_rv_ = rv_;
    push({resource, rv_, Entry::Expire, ""});
  }

  // Open watches of `resource` end cleanly, as when their timeoutSeconds runs out.
  void close_watches(const std::string& resource) {
    std::lock_guard<std::mutex> lock(mutex_);
    push({resource, rv_, Entry::Close, ""});
  }

  // The next event of `resource` sent to a watch is cut halfway and the connection dropped.
  void drop_next_event_midway(const std::string& resource) {
    std::lock_guard<std::mutex> lock(mutex_);
    drop_midway_[resource] = true;
  }

  // Events are written `bytes` at a time, each piece its own chunk (0: whole lines).
  void set_trickle(size_t bytes, std::chrono::microseconds pause = std::chrono::microseconds(200)) {
    std::lock_guard<std::mutex> lock(mutex_);
    trickle_bytes_ = bytes;
    trickle_pause_ = pause;
  }

  // Requests for `resource` are accepted and never answered while stalled.
  void set_stalled(const std::string& resource, bool stalled) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stalled_[resource] = stalled;
    }
    changed_.notify_all();
  }

  // The next list page after the first one finds its continue token expired (410).
  void expire_next_continue_token() {
    std::lock_guard<std::mutex> lock(mutex_);
    expire_next_continue_ = true;
  }

  // Faults tried in the order added; the first that matches a request applies.
  void add_fault(const std::string& resource, Fault fault) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      faults_[resource].push_back(std::move(fault));
    }
    changed_.notify_all();
  }
  void clear_faults(const std::string& resource) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      faults_.erase(resource);
    }
    changed_.notify_all();
  }

  // ---- REST objects (leases, reports): what the writers under test wrote ----------------------

  // Serves `resource` (plural) of `group_version` ("coordination.k8s.io/v1") at the REST routes.
  void serve_resource(const std::string& group_version, const std::string& resource, const std::string& kind,
                      bool namespaced) {
    std::lock_guard<std::mutex> lock(mutex_);
    served_[resource] = RestResource{group_version, kind, namespaced};
  }

  // The object as stored, or null.
  nlohmann::json object(const std::string& resource, const std::string& ns, const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto kind = rest_.find(resource);
    if (kind == rest_.end()) return nullptr;
    auto it = kind->second.find(ns.empty() ? name : ns + "/" + name);
    return it == kind->second.end() ? nlohmann::json() : it->second;
  }

  std::vector<nlohmann::json> objects(const std::string& resource) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<nlohmann::json> out;
    if (auto kind = rest_.find(resource); kind != rest_.end())
      for (const auto& [key, object] : kind->second) out.push_back(object);
    return out;
  }

  // Stores `object` (any JSON below metadata.name and metadata.namespace) as another client's
  // write would: a new resourceVersion, which it returns.
  uint64_t put_object(const std::string& resource, nlohmann::json object) {
    std::lock_guard<std::mutex> lock(mutex_);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    const std::string key = key_of(object);  // before the object is moved from
    rest_[resource][key] = std::move(object);
    return rv_;
  }

  bool delete_object(const std::string& resource, const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++rv_;
    return rest_[resource].erase(ns.empty() ? name : ns + "/" + name) > 0;
  }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

  size_t count_requests(const std::function<bool(const RecordedRequest&)>& match) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<size_t>(std::count_if(requests_.begin(), requests_.end(), match));
  }

  size_t open_watches(const std::string& resource) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = open_watches_.find(resource);
    return it == open_watches_.end() ? 0 : it->second;
  }

  uint64_t resource_version() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return rv_;
  }

 private:
  struct Entry {
    enum Type { Event, Bookmark, Raw, Expire, Close };
    std::string resource;
    uint64_t rv = 0;
    Type type = Event;
    std::string line;  // without the newline
  };

  struct WatchCursor {
    std::string resource;
    uint64_t from_rv = 0;
    size_t next = 0;         // absolute index into the log
    size_t opened_at = 0;    // absolute index: non-event entries before it are not for us
    std::chrono::steady_clock::time_point deadline;
    std::vector<std::string> initial;  // synthetic ADDED events for resourceVersion "" or "0"
  };

  static constexpr size_t kLogCapacity = 200000;

  static std::string key_of(const nlohmann::json& object) {
    const auto& metadata = object.at("metadata");
    std::string ns = metadata.value("namespace", std::string());
    return ns.empty() ? metadata.at("name").get<std::string>() : ns + "/" + metadata.at("name").get<std::string>();
  }

  static std::string kind_of(const std::string& resource) {
    if (resource == "resourceclaims") return "ResourceClaim";
    if (resource == "resourceclaimtemplates") return "ResourceClaimTemplate";
    if (resource == "poddisruptionbudgets") return "PodDisruptionBudget";
    if (resource == "priorityclasses") return "PriorityClass";
    return resource == "nodes" ? "Node" : resource == "pods" ? "Pod" : "Namespace";
  }

  static bool is_dra(const std::string& resource) { return resource.starts_with("resourceclaim"); }

  // Called with mutex_ held.
  std::string api_version_of(const std::string& resource) const {
    if (resource == "poddisruptionbudgets") return "policy/" + policy_api_version_;
    if (resource == "priorityclasses") return "scheduling.k8s.io/v1";
    return is_dra(resource) ? "resource.k8s.io/" + dra_api_version_ : "v1";
  }

  // `item` is the stored JSON (no kind/apiVersion): prepend them as the API server's watch does.
  // Called with mutex_ held.
  std::string event_line(const std::string& type, const std::string& resource, const std::string& item) const {
    return "{\"type\":\"" + type + "\",\"object\":{\"kind\":\"" + kind_of(resource) + "\",\"apiVersion\":\"" +
           api_version_of(resource) + "\"," + item.substr(1) + "}";
  }

  static std::string status_json(int code, const std::string& reason, const std::string& message) {
    return nlohmann::json{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
                          {"status", "Failure"}, {"message", message}, {"reason", reason}, {"code", code}}
        .dump();
  }

  void append_event(const std::string& resource, const std::string& type, const std::string& item) {
    if (suppress_events_) return;
    push({resource, rv_, Entry::Event, event_line(type, resource, item)});
  }

  void push(Entry entry) {
    log_.push_back(std::move(entry));
    // The oldest history goes, as etcd compaction does: a watch that far behind gets 410.
    while (log_.size() > kLogCapacity) {
      compacted_rv_ = std::max(compacted_rv_, log_.front().rv);
      log_.pop_front();
      ++log_base_;
    }
    changed_.notify_all();
  }

  bool authorized(const httplib::Request& req) const {
    const std::string authorization = req.get_header_value("Authorization");
    if (!token_.empty() && authorization == "Bearer " + token_) return true;
    for (const std::string& token : extra_tokens_)
      if (authorization == "Bearer " + token) return true;
    if (req.ssl) {
      X509* peer = SSL_get1_peer_certificate(req.ssl);
      bool verified = peer && SSL_get_verify_result(req.ssl) == X509_V_OK;
      X509_free(peer);
      return verified;
    }
    return false;
  }

  // `version`: the version asked for (resource.k8s.io, policy, scheduling.k8s.io), "" for the core kinds.
  void handle(const std::string& resource, const std::string& version, const httplib::Request& req,
              httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mutex_);
    const RecordedRequest recorded = record(resource, req);
    if (!admit(recorded, req, res, lock)) return;
    const bool served = is_dra(resource)                     ? !dra_api_version_.empty() && version == dra_api_version_
                        : resource == "poddisruptionbudgets" ? !policy_api_version_.empty() && version == policy_api_version_
                        : resource == "priorityclasses"      ? version == "v1"
                                                             : true;
    if (!served) {
      res.status = 404;
      res.set_content(status_json(404, "NotFound", "the server could not find the requested resource"), "application/json");
      return;
    }
    if (recorded.watch())
      start_watch(resource, recorded.params, res);
    else
      serve_list(resource, recorded.params, res);
  }

  // Records the request. Called with mutex_ held.
  RecordedRequest record(const std::string& resource, const httplib::Request& req) {
    RecordedRequest recorded{resource, {}, req.get_header_value("Authorization"), false, std::chrono::steady_clock::now(),
                             req.path, req.method, req.get_header_value("Content-Type"), req.body, req.remote_port};
    for (const auto& [key, value] : req.params) recorded.params[key] = value;
    if (req.ssl) {
      X509* peer = SSL_get1_peer_certificate(req.ssl);
      recorded.client_certificate = peer != nullptr;
      X509_free(peer);
    }
    requests_.push_back(recorded);
    return recorded;
  }

  // Called with mutex_ held.
  const Fault* fault_for(const RecordedRequest& request) const {
    auto it = faults_.find(request.resource);
    if (it == faults_.end()) return nullptr;
    for (const Fault& fault : it->second)
      if ((fault.method.empty() || fault.method == request.method) &&
          (fault.authorization.empty() || fault.authorization == request.authorization))
        return &fault;
    return nullptr;
  }

  // Stalls, faults and authorization: false when the request was answered (or the server stops).
  bool admit(const RecordedRequest& recorded, const httplib::Request& req, httplib::Response& res,
             std::unique_lock<std::mutex>& lock) {
    // Stalled: hold the request without a byte of answer (bounded so the server can stop).
    changed_.wait_for(lock, std::chrono::seconds(30), [&] {
      const Fault* fault = fault_for(recorded);
      return stopping_ || (!stalled_[recorded.resource] && !(fault && fault->stall));
    });
    if (stopping_) return false;
    if (const Fault* fault = fault_for(recorded); fault && fault->status != 0) {
      res.status = fault->status;
      res.set_content(fault->body.empty() ? status_json(fault->status, "InternalError", "injected fault") : fault->body,
                      "application/json");
      return false;
    }
    if (!authorized(req)) {
      res.status = 401;
      res.set_content(status_json(401, "Unauthorized", "Unauthorized"), "application/json");
      return false;
    }
    return true;
  }

  // ---- REST objects ---------------------------------------------------------------------------

  struct RestResource {
    std::string group_version;
    std::string kind;
    bool namespaced = true;
  };

  // `rest`: what follows /apis/GROUP/VERSION/.
  void handle_rest(const std::string& group_version, const std::string& rest, const httplib::Request& req,
                   httplib::Response& res) {
    std::vector<std::string> segments;
    for (size_t start = 0;;) {
      const size_t slash = rest.find('/', start);
      segments.push_back(rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    std::string ns, resource, name;
    if (segments.size() >= 3 && segments[0] == "namespaces") {
      ns = segments[1];
      resource = segments[2];
      if (segments.size() == 4) name = segments[3];
      if (segments.size() > 4) resource.clear();
    } else {
      resource = segments[0];
      if (segments.size() == 2) name = segments[1];
      if (segments.size() > 2) resource.clear();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    const RecordedRequest recorded = record(resource, req);
    if (!admit(recorded, req, res, lock)) return;
    auto served = served_.find(resource);
    const bool item = !name.empty();
    if (resource.empty() || served == served_.end() || served->second.group_version != group_version ||
        (!served->second.namespaced && !ns.empty()) || (served->second.namespaced && item && ns.empty()) ||
        std::any_of(segments.begin(), segments.end(), [](const std::string& s) { return s.empty(); })) {
      res.status = 404;
      res.set_content(status_json(404, "NotFound", "the server could not find the requested resource"), "application/json");
      return;
    }
    const RestResource& info = served->second;
    const std::string group = group_version.substr(0, group_version.find('/'));
    const std::string what = resource + "." + group + " \"" + name + "\"";
    auto& objects = rest_[resource];
    const std::string key = ns.empty() ? name : ns + "/" + name;
    auto answer = [&](int code, const std::string& reason, const std::string& message) {
      res.status = code;
      res.set_content(status_json(code, reason, message), "application/json");
    };
    auto found = item ? objects.find(key) : objects.end();
    const bool exists = found != objects.end();

    if (req.method == "GET" && item) {
      if (!exists) return answer(404, "NotFound", what + " not found");
      return res.set_content(found->second.dump(), "application/json");
    }
    if (req.method == "GET") {
      std::vector<std::pair<std::string, std::string>> selector;  // key, "=v" "!v" "?" (exists) "!" (absent)
      if (req.has_param("labelSelector") && !parse_label_selector(req.get_param_value("labelSelector"), selector))
        return answer(400, "BadRequest", "unable to parse requirement: only equality-based label selectors are served");
      nlohmann::json items = nlohmann::json::array();
      for (const auto& [object_key, object] : objects) {
        if (!ns.empty() && object["metadata"].value("namespace", std::string()) != ns) continue;
        if (labels_match(object, selector)) items.push_back(object);
      }
      return res.set_content(nlohmann::json{{"apiVersion", group_version},
                                            {"kind", info.kind + "List"},
                                            {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
                                            {"items", std::move(items)}}
                                 .dump(),
                             "application/json");
    }
    if (req.method == "DELETE") {
      if (!item) return answer(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
      if (!exists) return answer(404, "NotFound", what + " not found");
      nlohmann::json deleted = std::move(found->second);
      objects.erase(found);
      ++rv_;
      return res.set_content(deleted.dump(), "application/json");
    }
    if ((req.method == "POST") == item)
      return answer(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

    const std::string content_type = req.get_header_value("Content-Type");
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || (!body.is_object() && content_type != "application/json-patch+json") ||
        (body.is_object() && body.contains("metadata") && !body["metadata"].is_object()))
      return answer(400, "BadRequest", "the body of the request was in an unknown format");
    // The name and namespace are the URL's; a body that names others is refused.
    std::string body_name, body_ns;
    if (body.is_object() && body.contains("metadata")) {
      body_name = body["metadata"].value("name", std::string());
      body_ns = body["metadata"].value("namespace", std::string());
    }
    if (req.method == "POST") {
      name = body_name;
      if (name.empty()) return answer(422, "Invalid", resource + "." + group + " is invalid: metadata.name: Required value: name is required");
    } else if (body_name != name && !(req.method == "PATCH" && body_name.empty())) {
      return answer(400, "BadRequest", "the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")");
    }
    if (!body_ns.empty() && body_ns != ns)
      return answer(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    const std::string write_key = ns.empty() ? name : ns + "/" + name;
    const std::string write_what = resource + "." + group + " \"" + name + "\"";
    auto current = objects.find(write_key);
    const bool present = current != objects.end();
    auto stale = [&](const nlohmann::json& object) {
      if (!present || !object.is_object() || !object.contains("metadata")) return false;
      const nlohmann::json& rv = object["metadata"].value("resourceVersion", nlohmann::json());
      return rv.is_string() && !rv.get<std::string>().empty() && rv != current->second["metadata"]["resourceVersion"];
    };
    auto conflict = [&] {
      answer(409, "Conflict", "Operation cannot be fulfilled on " + write_what +
                                  ": the object has been modified; please apply your changes to the latest version and try again");
    };
    nlohmann::json stored;
    int code = 200;
    if (req.method == "POST") {
      if (present) return answer(409, "AlreadyExists", write_what + " already exists");
      stored = std::move(body);
      code = 201;
    } else if (req.method == "PUT") {
      if (!present) return answer(404, "NotFound", write_what + " not found");
      if (stale(body)) return conflict();
      stored = std::move(body);
    } else if (content_type == "application/apply-patch+yaml") {
      if (!req.has_param("fieldManager") || req.get_param_value("fieldManager").empty())
        return answer(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
      if (stale(body)) return conflict();
      stored = std::move(body);
      code = present ? 200 : 201;
    } else if (content_type == "application/merge-patch+json" || content_type == "application/json-patch+json") {
      if (!present) return answer(404, "NotFound", write_what + " not found");
      if (content_type == "application/merge-patch+json") {
        if (stale(body)) return conflict();
        stored = current->second;
        stored.merge_patch(body);
      } else {
        try {
          stored = current->second.patch(body);
        } catch (const nlohmann::json::exception& e) {
          return answer(422, "Invalid", std::string("the patch does not apply: ") + e.what());
        }
      }
    } else {
      return answer(415, "UnsupportedMediaType", "the body of the request was in an unknown format, accepted media types include: "
                                                 "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
    }
    if (!stored.is_object() || (stored.contains("metadata") && !stored["metadata"].is_object()))
      return answer(422, "Invalid", write_what + " is invalid: the object is not an object");
    stored["apiVersion"] = group_version;
    stored["kind"] = info.kind;
    nlohmann::json& metadata = stored["metadata"];
    metadata["name"] = name;
    if (!ns.empty()) metadata["namespace"] = ns;
    metadata["resourceVersion"] = std::to_string(++rv_);
    metadata["uid"] = present ? current->second["metadata"].value("uid", std::string()) : resource + "-uid-" + std::to_string(rv_);
    metadata["creationTimestamp"] =
        present ? current->second["metadata"].value("creationTimestamp", std::string()) : std::string("2026-01-01T00:00:00Z");
    objects[write_key] = stored;
    res.status = code;
    res.set_content(stored.dump(), "application/json");
  }

  // Equality-based terms only: k=v, k==v, k!=v, k, !k.
  static bool parse_label_selector(const std::string& text, std::vector<std::pair<std::string, std::string>>& out) {
    if (text.find_first_of("() ") != std::string::npos) return false;
    for (size_t start = 0; start <= text.size();) {
      size_t comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      const std::string term = text.substr(start, comma - start);
      start = comma + 1;
      if (term.empty()) {
        if (text.empty()) break;
        return false;
      }
      if (size_t at = term.find("!="); at != std::string::npos) {
        out.emplace_back(term.substr(0, at), "!" + term.substr(at + 2));
      } else if (size_t eq = term.find('='); eq != std::string::npos) {
        const size_t value = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
        out.emplace_back(term.substr(0, eq), "=" + term.substr(value));
      } else if (term[0] == '!') {
        out.emplace_back(term.substr(1), "!");
      } else {
        out.emplace_back(term, "?");
      }
      if (out.back().first.empty()) return false;
    }
    return true;
  }

  static bool labels_match(const nlohmann::json& object, const std::vector<std::pair<std::string, std::string>>& selector) {
    const nlohmann::json labels = object.contains("metadata") && object["metadata"].contains("labels") &&
                                          object["metadata"]["labels"].is_object()
                                      ? object["metadata"]["labels"]
                                      : nlohmann::json::object();
    for (const auto& [key, want] : selector) {
      auto it = labels.find(key);
      const bool has = it != labels.end() && it->is_string();
      const std::string value = has ? it->get<std::string>() : "";
      if (want == "?" && !has) return false;
      if (want == "!" && has) return false;
      if (want[0] == '=' && (!has || value != want.substr(1))) return false;
      if (want[0] == '!' && want.size() > 1 && has && value == want.substr(1)) return false;
    }
    return true;
  }

  void serve_list(const std::string& resource, const std::map<std::string, std::string>& params, httplib::Response& res) {
    const auto& objects = store_[resource];
    size_t limit = params.count("limit") ? std::stoul(params.at("limit")) : 0;
    uint64_t snapshot_rv = rv_;
    auto it = objects.begin();
    std::size_t served = 0;  // items of the earlier pages: remainingItemCount without walking the map
    if (params.count("continue") && !params.at("continue").empty()) {
      nlohmann::json token = nlohmann::json::parse(fake_detail::unbase64(params.at("continue")), nullptr, false);
      if (!token.is_object() || !token.contains("rv") || !token.contains("start")) {
        res.status = 400;
        res.set_content(status_json(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"),
                        "application/json");
        return;
      }
      if (expire_next_continue_) {
        expire_next_continue_ = false;
        compacted_rv_ = rv_;
      }
      snapshot_rv = token["rv"].get<uint64_t>();
      if (snapshot_rv < compacted_rv_) {
        res.status = 410;
        res.set_content(status_json(410, "Expired",
                                    "The provided continue parameter is too old to display a consistent list result. You can "
                                    "start a new list without the continue parameter, or use the continue token in this "
                                    "response to retrieve the remainder of the results. Continuing with the provided token "
                                    "results in an inconsistent list - objects that were created, modified, or deleted between "
                                    "the time the first chunk was returned and now may show up in the list."),
                        "application/json");
        return;
      }
      std::string start = token["start"].get<std::string>();
      if (!start.empty() && start.back() == '\0') start.pop_back();
      it = objects.upper_bound(start);
      served = token.value("served", std::size_t{0});
    }
    std::string body = "{\"kind\":\"" + kind_of(resource) + "List\",\"apiVersion\":\"" + api_version_of(resource) +
                       "\",\"metadata\":{\"resourceVersion\":\"" + std::to_string(snapshot_rv) + "\"";
    std::string items;
    size_t count = 0;
    std::string last_key;
    for (; it != objects.end() && (limit == 0 || count < limit); ++it, ++count) {
      if (count) items += ',';
      items += it->second;
      last_key = it->first;
    }
    if (it != objects.end()) {
      std::string token = nlohmann::json{{"v", "meta.k8s.io/v1"}, {"rv", snapshot_rv}, {"start", last_key + std::string(1, '\0')},
                                         {"served", served + count}}.dump();
      // Approximate when objects changed between pages, as the API server's count is.
      const std::size_t remaining = objects.size() > served + count ? objects.size() - served - count : 0;
      body += ",\"continue\":\"" + fake_detail::base64(token) + "\",\"remainingItemCount\":" + std::to_string(remaining);
    }
    body += "},\"items\":[" + items + "]}";
    res.set_content(std::move(body), "application/json");
  }

  void start_watch(const std::string& resource, const std::map<std::string, std::string>& params, httplib::Response& res) {
    auto cursor = std::make_shared<WatchCursor>();
    cursor->resource = resource;
    const std::string rv_text = params.count("resourceVersion") ? params.at("resourceVersion") : "";
    long timeout = params.count("timeoutSeconds") ? std::stol(params.at("timeoutSeconds")) : 1800;
    cursor->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    cursor->opened_at = log_base_ + log_.size();
    if (rv_text.empty() || rv_text == "0") {
      // "Any" version: the current state as synthetic ADDED events, then changes from now.
      for (const auto& [key, item] : store_[resource]) cursor->initial.push_back(event_line("ADDED", resource, item));
      cursor->from_rv = rv_;
    } else {
      cursor->from_rv = std::stoull(rv_text);
      if (cursor->from_rv < compacted_rv_) {
        std::string error = nlohmann::json{{"type", "ERROR"},
                                           {"object", nlohmann::json::parse(status_json(
                                                          410, "Expired",
                                                          "too old resource version: " + rv_text + " (" +
                                                              std::to_string(compacted_rv_ + 1) + ")"))}}
                                .dump() + "\n";
        res.set_content(error, "application/json");
        return;
      }
    }
    // The first entry newer than from_rv (entries are in resourceVersion order).
    auto first = std::upper_bound(log_.begin(), log_.end(), cursor->from_rv,
                                  [](uint64_t rv, const Entry& entry) { return rv < entry.rv; });
    cursor->next = log_base_ + static_cast<size_t>(first - log_.begin());
    ++open_watches_[resource];
    res.set_chunked_content_provider(
        "application/json",
        [this, cursor](size_t, httplib::DataSink& sink) { return stream_watch(*cursor, sink); },
        [this, resource](bool) {
          std::lock_guard<std::mutex> lock(mutex_);
          --open_watches_[resource];
        });
  }

  // One round of a watch: waits briefly for news, writes it. false aborts the connection.
  bool stream_watch(WatchCursor& cursor, httplib::DataSink& sink) {
    std::vector<std::string> lines = std::move(cursor.initial);
    cursor.initial.clear();
    bool end = false, drop_midway = false;
    size_t trickle = 0;
    std::chrono::microseconds pause{0};
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, std::chrono::milliseconds(20), [&] {
        return stopping_ || !lines.empty() || cursor.next < log_base_ + log_.size() ||
               std::chrono::steady_clock::now() >= cursor.deadline;
      });
      if (stopping_) return false;
      if (cursor.next < log_base_) {  // fell behind the retained history
        lines.push_back(nlohmann::json{{"type", "ERROR"}, {"object", nlohmann::json::parse(status_json(410, "Expired", "too old resource version: " + std::to_string(cursor.from_rv) + " (" + std::to_string(compacted_rv_ + 1) + ")"))}}.dump());
        end = true;
      }
      for (; !end && cursor.next < log_base_ + log_.size(); ++cursor.next) {
        const Entry& entry = log_[cursor.next - log_base_];
        if (entry.resource != cursor.resource) continue;
        if (entry.type != Entry::Event && cursor.next < cursor.opened_at) continue;
        if (entry.type == Entry::Event && entry.rv <= cursor.from_rv) continue;
        if (entry.type == Entry::Close) {
          end = true;
        } else if (entry.type == Entry::Expire) {
          lines.push_back(nlohmann::json{{"type", "ERROR"}, {"object", nlohmann::json::parse(status_json(410, "Expired", "too old resource version: " + std::to_string(cursor.from_rv) + " (" + std::to_string(compacted_rv_ + 1) + ")"))}}.dump());
          end = true;
        } else {
          if (entry.type == Entry::Event && drop_midway_[cursor.resource]) {
            drop_midway_[cursor.resource] = false;
            lines.push_back(entry.line);
            drop_midway = true;
            ++cursor.next;
            break;
          }
          lines.push_back(entry.line);
          if (lines.size() >= 256) {
            ++cursor.next;
            break;
          }
        }
      }
      if (std::chrono::steady_clock::now() >= cursor.deadline && !suppress_events_) end = true;
      trickle = trickle_bytes_;
      pause = trickle_pause_;
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string data = lines[i] + "\n";
      if (drop_midway && i + 1 == lines.size()) {
        sink.write(data.data(), data.size() / 2);
        return false;
      }
      if (trickle == 0) {
        if (!sink.write(data.data(), data.size())) return false;
        continue;
      }
      for (size_t offset = 0; offset < data.size(); offset += trickle) {
        if (!sink.write(data.data() + offset, std::min(trickle, data.size() - offset))) return false;
        std::this_thread::sleep_for(pause);
      }
    }
    if (end) sink.done();
    return true;
  }

  TestPki pki_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread listener_;
  int port_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  std::string token_;
  std::vector<std::string> extra_tokens_;
  std::map<std::string, RestResource> served_;                         // resource → where and what
  std::map<std::string, std::map<std::string, nlohmann::json>> rest_;  // resource → key → object
  std::map<std::string, std::vector<Fault>> faults_;
  std::string dra_api_version_ = "v1";
  std::string policy_api_version_ = "v1";
  uint64_t rv_ = 1000;
  uint64_t compacted_rv_ = 0;
  std::map<std::string, std::map<std::string, std::string>> store_;  // resource → key → item JSON
  std::deque<Entry> log_;
  size_t log_base_ = 0;
  bool suppress_events_ = false;
  bool expire_next_continue_ = false;
  std::map<std::string, bool> drop_midway_;
  std::map<std::string, bool> stalled_;
  std::map<std::string, size_t> open_watches_;
  size_t trickle_bytes_ = 0;
  std::chrono::microseconds trickle_pause_{200};
  std::vector<RecordedRequest> requests_;
};

}  // namespace gpuadmit::testing
