// Kubernetes client configuration: kubeconfig files and in-cluster service accounts.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "webhook/kube/config.h"

namespace gpuadmit::kube {
namespace {

namespace fs = std::filesystem;

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kube_config_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }

  std::string expect_error(const std::string& kubeconfig_text) {
    std::string path = write("config", kubeconfig_text);
    try {
      load_kubeconfig(path);
    } catch (const KubeConfigError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no error for:\n" << kubeconfig_text;
    return "";
  }

  fs::path dir_;
};

const char* kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://10.1.2.3:6443
    certificate-authority-data: Q0EtUEVN
- name: prod-cluster
  cluster:
    server: https://api.prod.example.com/k8s/
    certificate-authority: certs/ca.crt
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
users:
- name: dev-user
  user:
    token: abc.def
- name: prod-user
  user:
    client-certificate: certs/client.crt
    client-key: certs/client.key
)";

TEST_F(KubeConfigTest, CurrentContextWithCaDataAndToken) {
  std::string path = write("config", kTwoContexts);
  KubeConfig config = load_kubeconfig(path);
  EXPECT_EQ(config.scheme, "https");
  EXPECT_EQ(config.host, "10.1.2.3");
  EXPECT_EQ(config.port, 6443);
  EXPECT_EQ(config.path_prefix, "");
  EXPECT_EQ(config.ca_pem, "CA-PEM");  // base64 "Q0EtUEVN" decoded
  EXPECT_EQ(config.bearer_token(), "abc.def");
  EXPECT_TRUE(config.client_cert_pem.empty());
  EXPECT_EQ(config.source, "kubeconfig " + path + ", context dev");
}

TEST_F(KubeConfigTest, NamedContextWithFilesRelativeToTheKubeconfig) {
  write("certs/ca.crt", "CA FILE");
  write("certs/client.crt", "CLIENT CERT");
  write("certs/client.key", "CLIENT KEY");
  KubeConfig config = load_kubeconfig(write("config", kTwoContexts), "prod");
  EXPECT_EQ(config.host, "api.prod.example.com");
  EXPECT_EQ(config.port, 443);
  EXPECT_EQ(config.path_prefix, "/k8s");
  EXPECT_EQ(config.ca_pem, "CA FILE");
  EXPECT_EQ(config.client_cert_pem, "CLIENT CERT");
  EXPECT_EQ(config.client_key_pem, "CLIENT KEY");
  EXPECT_EQ(config.bearer_token(), "");
}

TEST_F(KubeConfigTest, TokenFileIsReadOnEveryRequest) {
  write("token", "first\n");
  KubeConfig config = load_kubeconfig(write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://[::1]:8443", insecure-skip-tls-verify: true}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {tokenFile: token}}]
)"));
  EXPECT_EQ(config.host, "::1");
  EXPECT_EQ(config.port, 8443);
  EXPECT_TRUE(config.insecure_skip_tls_verify);
  EXPECT_EQ(config.bearer_token(), "first");
  write("token", "second");
  EXPECT_EQ(config.bearer_token(), "second");
  fs::remove(dir_ / "token");
  EXPECT_THROW(config.bearer_token(), KubeConfigError);
}

TEST_F(KubeConfigTest, JsonKubeconfigIsAccepted) {
  KubeConfig config = load_kubeconfig(write("config.json", R"({"current-context":"c",
    "clusters":[{"name":"k","cluster":{"server":"http://127.0.0.1:8001"}}],
    "contexts":[{"name":"c","context":{"cluster":"k"}}]})"));
  EXPECT_EQ(config.scheme, "http");
  EXPECT_EQ(config.port, 8001);
}

TEST_F(KubeConfigTest, ErrorsNameTheFileAndTheEntry) {
  EXPECT_NE(expect_error("clusters: []\n").find("no current-context"), std::string::npos);
  EXPECT_NE(expect_error("current-context: x\ncontexts: []\n").find("context 'x' not found"), std::string::npos);
  EXPECT_NE(expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n").find("cluster 'k'"),
            std::string::npos);
  const std::string base = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n";
  EXPECT_NE(expect_error(base + "clusters: [{name: k, cluster: {}}]\n").find("clusters[k].cluster.server: missing"),
            std::string::npos);
  EXPECT_NE(expect_error(base + "clusters: [{name: k, cluster: {server: 'ftp://x'}}]\n").find("scheme must be https"),
            std::string::npos);
  EXPECT_NE(expect_error(base + "clusters: [{name: k, cluster: {server: 'https://x:99999'}}]\n").find("bad port"),
            std::string::npos);
  const std::string cluster = base + "clusters: [{name: k, cluster: {server: 'https://x'}}]\n";
  EXPECT_NE(expect_error(cluster).find("user 'u'"), std::string::npos);
  EXPECT_NE(expect_error(base + "clusters: [{name: k, cluster: {server: 'https://x', certificate-authority-data: '%%%'}}]\n")
                .find("certificate-authority-data: not valid base64"),
            std::string::npos);
  EXPECT_NE(expect_error(base + "clusters: [{name: k, cluster: {server: 'https://x', certificate-authority: nope.crt}}]\n")
                .find("certificate-authority: cannot read"),
            std::string::npos);
  EXPECT_NE(expect_error(cluster + "users: [{name: u, user: {exec: {command: aws}}}]\n").find("users[u].user.exec"),
            std::string::npos);
  EXPECT_NE(expect_error(cluster + "users: [{name: u, user: {client-certificate-data: Q0E=}}]\n")
                .find("client-certificate and client-key must be given together"),
            std::string::npos);
  EXPECT_NE(expect_error(cluster + "users: [{name: u, user: {token: [1]}}]\n").find("users[u].user.token: must be a string"),
            std::string::npos);
  EXPECT_NE(expect_error("a: [unclosed\n").find("kubeconfig "), std::string::npos);
  EXPECT_NE(expect_error("- just\n- a list\n").find("document 0 is not"), std::string::npos);
  EXPECT_THROW(load_kubeconfig((dir_ / "missing").string()), KubeConfigError);
}

class KubeInClusterTest : public KubeConfigTest {
 protected:
  void TearDown() override {
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    KubeConfigTest::TearDown();
  }
};

TEST_F(KubeInClusterTest, ServiceAccountTokenAndCa) {
  InClusterPaths paths{write("sa/token", "token-1"), write("sa/ca.crt", "SA CA")};
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  KubeConfig config = load_in_cluster_config(paths);
  EXPECT_EQ(config.host, "10.96.0.1");
  EXPECT_EQ(config.port, 443);
  EXPECT_EQ(config.ca_pem, "SA CA");
  EXPECT_EQ(config.bearer_token(), "token-1");
  write("sa/token", "token-2\n");  // the kubelet rotates the projected token in place
  EXPECT_EQ(config.bearer_token(), "token-2");
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(load_in_cluster_config(paths).host, "fd00::1");
}

TEST_F(KubeInClusterTest, MissingPiecesAreNamed) {
  InClusterPaths paths{(dir_ / "none/token").string(), (dir_ / "none/ca.crt").string()};
  try {
    load_in_cluster_config(paths);
    FAIL();
  } catch (const KubeConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  }
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  try {
    load_in_cluster_config(paths);
    FAIL();
  } catch (const KubeConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("service-account CA"), std::string::npos);
  }
  paths.ca_file = write("sa/ca.crt", "SA CA");
  try {
    load_in_cluster_config(paths);
    FAIL();
  } catch (const KubeConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("token file"), std::string::npos);
  }
}

}  // namespace
}  // namespace gpuadmit::kube
