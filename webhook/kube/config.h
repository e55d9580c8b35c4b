// Where the Kubernetes API server is and how to authenticate to it: in-cluster (service account)
// or from a kubeconfig file. Only loads and checks configuration; client.h does the I/O.
#pragma once

#include <stdexcept>
#include <string>

namespace gpuadmit::kube {

class KubeConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KubeConfig {
  std::string scheme = "https";  // "https", or "http" for `kubectl proxy`
  std::string host;              // name or IP, without brackets
  int port = 443;
  std::string path_prefix;  // the server URL's path, for API servers behind a proxy ("" or "/x")

  std::string ca_pem;  // trusted CA certificates; empty: the system's trust store
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;  // client certificate authentication (kubeconfig only)
  std::string client_key_pem;
  std::string token;       // a fixed bearer token
  std::string token_file;  // read on every request: service-account tokens rotate on disk

  std::string source;  // for messages: "in-cluster" or "kubeconfig F, context C"

  // The bearer token to send now ("" for none). Throws KubeConfigError when token_file is set
  // but cannot be read.
  std::string bearer_token() const;
};

// The standard service-account mount; tests point these elsewhere.
struct InClusterPaths {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};

// KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, the service-account token (re-read on every
// request) and CA. Throws KubeConfigError naming what is missing.
KubeConfig load_in_cluster_config(const InClusterPaths& paths = {});

// A kubeconfig file (YAML or JSON): `context` or the file's current-context, its cluster
// (server, certificate-authority[-data], insecure-skip-tls-verify) and user (token, tokenFile,
// client-certificate[-data], client-key[-data]). Relative file names are resolved against the
// kubeconfig's folder, as kubectl does. exec and auth-provider plugins are not supported and
// are reported as such. Throws KubeConfigError naming the file and the entry.
KubeConfig load_kubeconfig(const std::string& path, const std::string& context = "");

// Splits "https://host:port/prefix" into the config's scheme/host/port/path_prefix.
// Throws KubeConfigError for anything else.
void parse_server_url(const std::string& url, KubeConfig& config);

}  // namespace gpuadmit::kube
