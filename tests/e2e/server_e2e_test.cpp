// End-to-end tests of `gpu-admit serve`: the real binary on loopback with real TLS (certificates
// from certs/make-dev-certs.sh), driven by real HTTPS clients (cpp-httplib's, and raw OpenSSL
// connections where a test needs to stall or split a request). Every AdmissionReview answer is
// checked by the independent admission oracle.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <csignal>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/server_process.h"
#include "webhook/server/tls_reloader.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

using namespace gpuadmit::testing::e2e;

std::string peer_serial(int port) {
  RawConnection connection(port);
  return connection.handshaken() ? connection.peer_serial() : std::string();
}

std::string cert_serial(const fs::path& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(pem.c_str(), "r"), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  return cert ? gpuadmit::webhook::serial_hex(cert.get()) : std::string();
}

// The value of a metric series (the first line that starts with `series`), or -1.
double metric(httplib::SSLClient& client, const std::string& series) {
  auto result = client.Get("/metrics");
  if (!result || result->status != 200) return -1;
  std::istringstream lines(result->body);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  return -1;
}

json patch_of(const std::string& response_body) {
  json response = json::parse(response_body).at("response");
  if (!response.contains("patch")) return json::array();
  std::string decoded;
  std::unique_ptr<BIO, decltype(&BIO_free_all)> b64(BIO_new(BIO_f_base64()), BIO_free_all);
  std::string encoded = response.at("patch").get<std::string>();
  BIO* source = BIO_new_mem_buf(encoded.data(), static_cast<int>(encoded.size()));
  BIO_set_flags(b64.get(), BIO_FLAGS_BASE64_NO_NL);
  BIO_push(b64.get(), source);
  char buffer[4096];
  for (int n; (n = BIO_read(b64.get(), buffer, sizeof buffer)) > 0;) decoded.append(buffer, static_cast<std::size_t>(n));
  return json::parse(decoded);
}

bool adds_dev_shm(const std::string& response_body) {
  return patch_of(response_body).dump().find("/dev/shm") != std::string::npos;
}

class ServerE2E : public ::testing::Test {
 protected:
  void SetUp() override { make_certs(dir_.path()); }
  TempDir dir_;
};

TEST_F(ServerE2E, MutateAndValidateRoundTrips) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  OracleCheck oracle(dir_.path());
  for (const char* name : {"probe-defaults--deployment-vllm-profile", "mutate--pod-gpu-basic", "mutate--job-training-8gpu", "mutate--cronjob-mig",
                           "mutate--pod-no-gpu-untouched", "skip--delete-allowed", "skip--namespace-excluded"}) {
    const std::string request = golden_request(name);
    auto mutate = client->Post("/mutate", request, "application/json");
    ASSERT_TRUE(mutate) << name << ": " << httplib::to_string(mutate.error());
    EXPECT_EQ(mutate->status, 200) << name << ": " << mutate->body;
    EXPECT_EQ(mutate->get_header_value("Content-Type"), "application/json");
    oracle.add(request, mutate->body, false);
    auto validate = client->Post("/validate", request, "application/json; charset=utf-8");
    ASSERT_TRUE(validate) << name;
    EXPECT_EQ(validate->status, 200) << name << ": " << validate->body;
    oracle.add(request, validate->body, true);
  }
  // /mutate patches the GPU Deployment; /validate never patches (the oracle's --validating).
  auto mutate = client->Post("/mutate", golden_request("probe-defaults--deployment-vllm-profile"), "application/json");
  EXPECT_TRUE(adds_dev_shm(mutate->body));
  // A pod carrying a secret in an env value: the value must never reach the log.
  json with_secret = json::parse(golden_request("mutate--pod-gpu-basic"));
  with_secret["request"]["object"]["spec"]["containers"][0]["env"] =
      json::array({{{"name", "API_TOKEN"}, {"value", "s3cr3t-value-never-logged"}}});
  auto secret_answer = client->Post("/mutate", with_secret.dump(), "application/json");
  ASSERT_TRUE(secret_answer);
  EXPECT_EQ(secret_answer->status, 200);
  oracle.add(with_secret.dump(), secret_answer->body, false);
  oracle.expect_all_ok();

  auto healthz = client->Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  auto readyz = client->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;
  EXPECT_TRUE(json::parse(readyz->body).at("ready").get<bool>());

  EXPECT_EQ(metric(*client, R"(gpuadmit_patches_applied_total)"), 6);
  EXPECT_GE(metric(*client, R"(gpuadmit_review_duration_seconds_count{decision="allowed",route="mutate"})"), 8);
  EXPECT_GE(metric(*client, R"(gpuadmit_policy_decisions_total{mode="enforce",policy="dev-shm",result="fired"})"), 1);
  EXPECT_EQ(metric(*client, R"(gpuadmit_reviews_in_flight)"), 0);
  EXPECT_EQ(metric(*client, R"(gpuadmit_tls_handshake_failures_total)"), 0);

  // One JSON log line per review, naming the object and decision and never its contents. Lines
  // are written by the server's background log writer, so the last ones may lag the answers a
  // moment: wait for all 16 (and never more).
  auto count_reviews = [](const std::string& text) {
    std::istringstream lines(text);
    int reviews = 0;
    for (std::string line; std::getline(lines, line);)
      if (json::parse(line, nullptr, false).value("msg", "") == "review") ++reviews;
    return reviews;
  };
  EXPECT_TRUE(eventually([&] { return count_reviews(server.log()) >= 16; })) << server.log();
  const std::string log = server.log();
  std::istringstream lines(log);
  int reviews = 0;
  for (std::string line; std::getline(lines, line);) {
    json entry = json::parse(line, nullptr, false);
    ASSERT_FALSE(entry.is_discarded()) << "not JSON: " << line;
    if (entry.value("msg", "") != "review") continue;
    ++reviews;
    for (const char* key : {"time", "uid", "kind", "namespace", "name", "operation", "decision", "policies", "latency_us", "route"})
      EXPECT_TRUE(entry.contains(key)) << key << " missing in " << line;
  }
  EXPECT_EQ(reviews, 16);
  EXPECT_NE(log.find(R"("name":"llama3-vllm")"), std::string::npos);
  EXPECT_EQ(log.find("s3cr3t-value-never-logged"), std::string::npos) << "the log shows an env value";
}

// `serve --cluster F`: /validate consults the capacity model, so a pod no node can hold is denied.
TEST_F(ServerE2E, ClusterSnapshotFeedsTheCapacityPolicy) {
  ServerProcess server(dir_.path(), {"--cluster", kSource + "/manifests/examples/cluster.json"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  auto answer = client->Post("/validate", golden_request("gpu-capacity--unschedulable-16-gpus"), "application/json");
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200);
  const json response = json::parse(answer->body).at("response");
  EXPECT_FALSE(response.at("allowed").get<bool>());
  EXPECT_NE(response.at("status").at("message").get<std::string>().find("[gpu-capacity]"), std::string::npos)
      << response.dump();
}

TEST_F(ServerE2E, BadRequestsGetAClearAnswerAndTheServerCarriesOn) {
  ServerProcess server(dir_.path(), {"--max-body-bytes", "65536"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());

  auto too_big = client->Post("/mutate", std::string(65537, ' '), "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_NE(too_big->body.find("too large"), std::string::npos) << too_big->body;

  auto client2 = client_for(server.port(), dir_.path());
  auto not_json = client2->Post("/mutate", "{\"apiVersion\": ", "application/json");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  EXPECT_NE(not_json->body.find("not valid JSON"), std::string::npos) << not_json->body;

  auto wrong_type = client2->Post("/validate", golden_request("mutate--pod-gpu-basic"), "text/plain");
  ASSERT_TRUE(wrong_type);
  EXPECT_EQ(wrong_type->status, 415);
  EXPECT_NE(wrong_type->body.find("application/json"), std::string::npos) << wrong_type->body;

  auto wrong_kind = client2->Post("/mutate", golden_request("malformed--wrong-kind"), "application/json");
  ASSERT_TRUE(wrong_kind);
  EXPECT_EQ(wrong_kind->status, 400);
  EXPECT_FALSE(wrong_kind->body.empty());

  auto unknown = client2->Get("/nothing-here");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);

  // Still serving, and the review right after is correct.
  OracleCheck oracle(dir_.path());
  const std::string request = golden_request("mutate--pod-gpu-basic");
  auto good = client2->Post("/mutate", request, "application/json");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  oracle.add(request, good->body, false);
  oracle.expect_all_ok();
  EXPECT_EQ(metric(*client2, R"(gpuadmit_http_requests_total{code="413",route="mutate"})"), 1);
}

TEST_F(ServerE2E, DefaultBodyLimitIsThreeMebibytes) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  auto too_big = client->Post("/mutate", std::string(3 * 1024 * 1024 + 1, ' '), "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  // Just under the limit is read and judged on its content.
  auto client2 = client_for(server.port(), dir_.path());
  auto fits = client2->Post("/mutate", std::string(3 * 1024 * 1024 - 1, ' '), "application/json");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 400);
}

TEST_F(ServerE2E, SlowClientsAreCutOffWithoutBlockingOthers) {
  ServerProcess server(dir_.path(), {"--read-timeout", "1", "--workers", "4"});
  ASSERT_GT(server.port(), 0) << server.log();
  // One connection never starts TLS; one sends half its headers and stops.
  RawConnection silent(server.port(), RawConnection::Mode::tcp);
  ASSERT_TRUE(silent.connected());
  RawConnection half(server.port());
  ASSERT_TRUE(half.handshaken());
  ASSERT_TRUE(half.send("POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"));

  auto client = client_for(server.port(), dir_.path());
  const auto start = std::chrono::steady_clock::now();
  auto answer = client->Post("/mutate", golden_request("mutate--pod-gpu-basic"), "application/json");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms) << "a slow client held up another";

  // After the read timeout, the silent one is closed and the half-sent one answered 400 and closed.
  const auto waited_from = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.read_all(), "");
  EXPECT_TRUE(half.read_all().starts_with("HTTP/1.1 400"));
  // httplib keeps the connection until --keep-alive-timeout (5 s) after the answer.
  EXPECT_LT(std::chrono::steady_clock::now() - waited_from, 8s);
  auto fresh = client_for(server.port(), dir_.path());
  EXPECT_TRUE(eventually([&] { return metric(*fresh, "gpuadmit_tls_handshake_failures_total") >= 1; }));
}

TEST_F(ServerE2E, CertificateRotatesWhileAConnectionStaysBusy) {
  ServerProcess server(dir_.path(), {"--watch-interval-ms", "100"});
  ASSERT_GT(server.port(), 0) << server.log();
  const std::string first_serial = cert_serial(dir_.path() / "tls.crt");
  ASSERT_EQ(peer_serial(server.port()), first_serial);

  // A client keeps one keep-alive connection busy through the rotation (bounded: 4000 requests
  // or 20 s).
  std::atomic<bool> stop{false};
  std::atomic<int> succeeded{0}, failed{0};
  const std::string request = golden_request("mutate--pod-gpu-basic");
  std::thread busy([&] {
    auto client = client_for(server.port(), dir_.path());
    const auto until = std::chrono::steady_clock::now() + 20s;
    for (int i = 0; i < 4000 && !stop && std::chrono::steady_clock::now() < until; ++i) {
      auto answer = client->Post("/mutate", request, "application/json");
      (answer && answer->status == 200 ? succeeded : failed)++;
    }
  });
  ASSERT_TRUE(eventually([&] { return succeeded > 20; }));

  make_certs(dir_.path());  // a new serving certificate from the same CA, written in place
  const std::string second_serial = cert_serial(dir_.path() / "tls.crt");
  ASSERT_NE(second_serial, first_serial);
  EXPECT_TRUE(eventually([&] { return peer_serial(server.port()) == second_serial; }));

  // A broken certificate file leaves the last good one serving. The rotation above may itself
  // have counted a failed reload (the watcher can catch the new certificate beside the old key),
  // so wait for a failure after this write, not for the first one.
  auto client = client_for(server.port(), dir_.path());
  const double failed_before = metric(*client, R"(gpuadmit_cert_reloads_total{result="failed"})");
  write_text(dir_.path() / "tls.crt", "-----BEGIN CERTIFICATE-----\nnot a certificate\n");
  EXPECT_TRUE(eventually([&] {
    return metric(*client, R"(gpuadmit_cert_reloads_total{result="failed"})") > failed_before;
  }));
  EXPECT_EQ(peer_serial(server.port()), second_serial);
  auto readyz = client->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  EXPECT_NE(readyz->body.find("the last reload failed"), std::string::npos) << readyz->body;
  const int before_stop = succeeded;
  ASSERT_TRUE(eventually([&] { return succeeded > before_stop + 20; }));
  stop = true;
  busy.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GE(metric(*client, R"(gpuadmit_cert_reloads_total{result="ok"})"), 1);
  EXPECT_NE(server.log().find("certificate reload failed"), std::string::npos);
}

TEST_F(ServerE2E, ConfigReloadsWhenGoodAndKeepsTheOldOneWhenBad) {
  const fs::path config = dir_.path() / "config.yaml";
  std::string yaml = read_text(kSource + "/policies/default.yaml");
  write_text(config, yaml);
  ServerProcess server(dir_.path(), {"--config", config.string(), "--watch-interval-ms", "100"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  OracleCheck oracle(dir_.path());
  const std::string request = golden_request("probe-defaults--deployment-vllm-profile");
  auto review = [&] {
    auto answer = client->Post("/mutate", request, "application/json");
    if (answer && answer->status == 200) oracle.add(request, answer->body, false);
    return answer ? answer->body : std::string();
  };
  ASSERT_TRUE(adds_dev_shm(review()));

  // dev-shm switched off: the next reviews stop adding /dev/shm.
  const std::string marker = "  dev-shm:\n    mode: enforce";
  ASSERT_NE(yaml.find(marker), std::string::npos);
  std::string off = yaml;
  off.replace(off.find(marker), marker.size(), "  dev-shm:\n    mode: off");
  write_text(config, off);
  EXPECT_TRUE(eventually([&] { return !adds_dev_shm(review()); }));
  EXPECT_EQ(metric(*client, R"(gpuadmit_config_reloads_total{result="ok"})"), 1);

  // A bad config is refused, counted and reported; the last good one keeps serving.
  write_text(config, off + "  no-such-policy: {}\n");
  EXPECT_TRUE(eventually([&] { return metric(*client, R"(gpuadmit_config_reloads_total{result="failed"})") == 1; }));
  EXPECT_FALSE(adds_dev_shm(review()));
  auto readyz = client->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  EXPECT_NE(readyz->body.find("unknown policy 'no-such-policy'"), std::string::npos) << readyz->body;
  EXPECT_NE(server.log().find("config reload failed"), std::string::npos);
  oracle.expect_all_ok();
}

// The cluster model counted GPUs with the gpuResources the server started with: a config that
// lists other GPU resources would make the policies and the model count different things.
TEST_F(ServerE2E, AReloadThatChangesGpuResourcesIsRefusedWhileAClusterIsLoaded) {
  const fs::path config = dir_.path() / "config.yaml";
  const std::string yaml = read_text(kSource + "/policies/default.yaml");
  write_text(config, yaml);
  ServerProcess server(dir_.path(), {"--config", config.string(), "--watch-interval-ms", "100", "--cluster",
                                     kSource + "/manifests/examples/cluster.json"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  const std::string marker = "gpuResources: [nvidia.com/gpu.shared]";
  ASSERT_NE(yaml.find(marker), std::string::npos);
  std::string changed = yaml;
  changed.replace(changed.find(marker), marker.size(), "gpuResources: [nvidia.com/gpu.shared, example.com/vgpu]");
  write_text(config, changed);
  EXPECT_TRUE(eventually([&] { return metric(*client, R"(gpuadmit_config_reloads_total{result="failed"})") == 1; }));
  auto readyz = client->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_NE(readyz->body.find("restart gpu-admit to change gpuResources"), std::string::npos) << readyz->body;
  // Any other change still reloads.
  std::string other = yaml;
  const std::string excluded = "excludedNamespaces: [kube-system, gpu-admit]";
  ASSERT_NE(other.find(excluded), std::string::npos);
  other.replace(other.find(excluded), excluded.size(), "excludedNamespaces: [kube-system, gpu-admit, sandbox]");
  write_text(config, other);
  EXPECT_TRUE(eventually([&] { return metric(*client, R"(gpuadmit_config_reloads_total{result="ok"})") == 1; }));
}

TEST_F(ServerE2E, AConfigEmptiedOrRewrittenInPlaceNeverSwitchesEnforcementOff) {
  const fs::path config = dir_.path() / "config.yaml";
  const std::string yaml = read_text(kSource + "/policies/default.yaml");
  write_text(config, yaml);
  ServerProcess server(dir_.path(), {"--config", config.string(), "--watch-interval-ms", "1000"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto client = client_for(server.port(), dir_.path());
  const std::string request = golden_request("probe-defaults--deployment-vllm-profile");
  auto review = [&] {
    auto answer = client->Post("/mutate", request, "application/json");
    return answer ? answer->body : std::string();
  };
  ASSERT_TRUE(adds_dev_shm(review()));

  // Emptied (a truncate caught before the write): refused, the previous config keeps serving.
  write_text(config, "");
  EXPECT_TRUE(eventually([&] { return metric(*client, R"(gpuadmit_config_reloads_total{result="failed"})") == 1; }));
  EXPECT_TRUE(adds_dev_shm(review()));
  auto readyz = client->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_NE(readyz->body.find("names no policy"), std::string::npos) << readyz->body;

  // Rewritten in place in two writes: the first half alone is a valid config that names only the
  // first policies. The reload waits for the file to settle and loads the whole one.
  const std::string marker = "  dev-shm:\n    mode: enforce";
  std::string off = yaml;
  off.replace(off.find(marker), marker.size(), "  dev-shm:\n    mode: off");
  const std::size_t cut = off.find("  probe-defaults:");
  ASSERT_NE(cut, std::string::npos);
  {
    std::ofstream out(config, std::ios::binary | std::ios::trunc);
    out << off.substr(0, cut) << std::flush;
    std::this_thread::sleep_for(50ms);
    out << off.substr(cut) << std::flush;
  }
  EXPECT_TRUE(eventually([&] { return metric(*client, R"(gpuadmit_config_reloads_total{result="ok"})") == 1; }));
  std::this_thread::sleep_for(2500ms);  // two more checks: nothing else is loaded
  EXPECT_EQ(metric(*client, R"(gpuadmit_config_reloads_total{result="ok"})"), 1);
  EXPECT_EQ(metric(*client, R"(gpuadmit_config_reloads_total{result="failed"})"), 1);
  const std::string patch = patch_of(review()).dump();
  EXPECT_EQ(patch.find("/dev/shm"), std::string::npos);
  // probe-defaults, in the second half, still runs: the whole file was loaded, not its first half.
  EXPECT_NE(patch.find("startupProbe"), std::string::npos) << patch;
}

TEST_F(ServerE2E, SigtermFinishesTheReviewInFlightAndExitsZero) {
  ServerProcess server(dir_.path(), {"--shutdown-deadline", "10"});
  ASSERT_GT(server.port(), 0) << server.log();
  const std::string request = golden_request("probe-defaults--deployment-vllm-profile");
  RawConnection in_flight(server.port());
  ASSERT_TRUE(in_flight.handshaken());
  const std::string head = "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           "Connection: close\r\nContent-Length: " + std::to_string(request.size()) + "\r\n\r\n";
  const std::size_t half = request.size() / 2;
  ASSERT_TRUE(in_flight.send(head + request.substr(0, half)));
  std::this_thread::sleep_for(200ms);  // the server is reading the body

  server.signal(SIGTERM);
  // New connections are refused once it stops accepting.
  EXPECT_TRUE(eventually([&] { return !RawConnection(server.port(), RawConnection::Mode::tcp).connected(); }, 3000ms));
  ASSERT_TRUE(in_flight.send(request.substr(half)));
  const std::string answer = in_flight.read_all();
  ASSERT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer.substr(0, 200);
  const std::string body = answer.substr(answer.find("\r\n\r\n") + 4);
  EXPECT_TRUE(adds_dev_shm(body));
  OracleCheck oracle(dir_.path());
  oracle.add(request, body, false);
  oracle.expect_all_ok();
  EXPECT_EQ(server.wait_exit(10s), 0) << server.log();
  EXPECT_NE(server.log().find(R"("msg":"shutting down","signal":"SIGTERM")"), std::string::npos) << server.log();
  // Info lines go through the background log writer; the exit path flushes it, so the review
  // answered during the shutdown and the final "stopped" line are both in the log.
  EXPECT_NE(server.log().find(R"("msg":"review")"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find(R"("msg":"stopped")"), std::string::npos) << server.log();
}

// Reviews and /metrics need a certificate the --client-ca signed; the kubelet's probes of
// /healthz and /readyz carry none and still get their answer.
TEST_F(ServerE2E, ClientCertificatesAreRequiredWhenAClientCaIsGiven) {
  const fs::path& dir = dir_.path();
  const std::string commands =
      "cd " + dir.string() + " && openssl ecparam -name prime256v1 -genkey -noout -out client.key && "
      "openssl req -new -key client.key -subj /CN=kube-apiserver -out client.csr && "
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -set_serial 7 -days 1 -extfile client.ext "
      "-out client.crt) >/dev/null 2>&1";
  ASSERT_EQ(std::system(("(" + commands).c_str()), 0);
  ServerProcess server(dir, {"--client-ca", (dir / "ca.crt").string()});
  ASSERT_GT(server.port(), 0) << server.log();

  auto anonymous = client_for(server.port(), dir);
  for (const char* probe : {"/healthz", "/readyz"}) {
    auto answer = anonymous->Get(probe);
    ASSERT_TRUE(answer) << probe << ": " << httplib::to_string(answer.error());
    EXPECT_EQ(answer->status, 200) << probe;
  }
  for (const char* route : {"/mutate", "/validate"}) {
    auto answer = anonymous->Post(route, golden_request("mutate--pod-gpu-basic"), "application/json");
    ASSERT_TRUE(answer) << route << ": " << httplib::to_string(answer.error());
    EXPECT_EQ(answer->status, 403) << route;
    EXPECT_NE(answer->body.find("client certificate"), std::string::npos) << answer->body;
  }
  auto metrics = anonymous->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 403);

  // A certificate the CA did not sign fails the handshake.
  const std::string stranger =
      "cd " + dir.string() + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout other.key -out other.crt -subj /CN=stranger -days 1) >/dev/null 2>&1";
  ASSERT_EQ(std::system(("(" + stranger).c_str()), 0);
  httplib::SSLClient unknown("127.0.0.1", server.port(), (dir / "other.crt").string(), (dir / "other.key").string());
  unknown.set_ca_cert_path((dir / "ca.crt").c_str());
  unknown.enable_server_certificate_verification(true);
  EXPECT_FALSE(unknown.Post("/validate", golden_request("mutate--pod-gpu-basic"), "application/json"))
      << "served a client whose certificate the CA did not sign";

  httplib::SSLClient known("127.0.0.1", server.port(), (dir / "client.crt").string(), (dir / "client.key").string());
  known.set_ca_cert_path((dir / "ca.crt").c_str());
  known.enable_server_certificate_verification(true);
  auto answer = known.Post("/validate", golden_request("mutate--pod-gpu-basic"), "application/json");
  ASSERT_TRUE(answer) << httplib::to_string(answer.error());
  EXPECT_EQ(answer->status, 200);
}

// How many of the process's threads run with `policy`, and how many threads it has
// (sched_getscheduler takes a thread id).
std::pair<int, int> threads_with_policy(pid_t pid, int policy) {
  int count = 0, total = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    ++total;
    if (sched_getscheduler(static_cast<pid_t>(std::stol(task.path().filename().string()))) == policy) ++count;
  }
  return {count, total};
}

TEST_F(ServerE2E, EveryThreadRunsAsBatchSoAWakingOneDoesNotPreemptAReview) {
  const std::string request = golden_request("probe-defaults--deployment-vllm-profile");
  for (const std::string policy : {"batch", "normal"}) {
    fs::remove(dir_.path() / "server.log");  // else the second start could read the first's port
    ServerProcess server(dir_.path(), {"--workers", "3", "--io-threads", "3", "--scheduling", policy});
    auto client = client_for(server.port(), dir_.path());
    auto answer = client->Post("/mutate", request, "application/json");  // the pool is running
    ASSERT_TRUE(answer) << httplib::to_string(answer.error()) << server.log();
    ASSERT_EQ(answer->status, 200) << answer->body;
    EXPECT_NE(server.log().find("\"io_threads\":3"), std::string::npos) << server.log();
    // The main thread, the log writer, the file watcher, the acceptor, 3 event loops, 3 workers.
    const auto [batch, total] = threads_with_policy(server.pid(), SCHED_BATCH);
    EXPECT_GE(total, 10) << policy;
    EXPECT_EQ(batch, policy == "batch" ? total : 0) << policy;
    EXPECT_NE(server.log().find("\"msg\":\"cpu scheduling\",\"policy\":\"" + policy + "\""), std::string::npos)
        << server.log();
  }
  const std::string command = kBinary + " serve --addr 127.0.0.1:0 --tls-cert " + (dir_.path() / "tls.crt").string() +
                              " --tls-key " + (dir_.path() / "tls.key").string() +
                              " --scheduling fifo 2>" + (dir_.path() / "err.txt").string();
  EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), 2);
  EXPECT_NE(read_text(dir_.path() / "err.txt").find("--scheduling must be batch or normal, not 'fifo'"),
            std::string::npos)
      << read_text(dir_.path() / "err.txt");
}

TEST_F(ServerE2E, StartupErrorsAreClear) {
  const std::string bad_config = (dir_.path() / "bad.yaml").string();
  write_text(bad_config, "policies:\n  dev-shm:\n    memoryFraction: 2\n");
  const std::string command = kBinary + " serve --addr 127.0.0.1:0 --tls-cert " + (dir_.path() / "tls.crt").string() +
                              " --tls-key " + (dir_.path() / "tls.key").string() + " --config " + bad_config +
                              " 2>" + (dir_.path() / "err.txt").string();
  EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), 2);
  EXPECT_NE(read_text(dir_.path() / "err.txt").find("bad.yaml:3:"), std::string::npos)
      << read_text(dir_.path() / "err.txt");

  const std::string mismatched = kBinary + " serve --addr 127.0.0.1:0 --tls-cert " + (dir_.path() / "tls.crt").string() +
                                 " --tls-key " + (dir_.path() / "ca.key").string() + " 2>" +
                                 (dir_.path() / "err2.txt").string();
  EXPECT_EQ(WEXITSTATUS(std::system(mismatched.c_str())), 2);
  EXPECT_NE(read_text(dir_.path() / "err2.txt").find("do not match"), std::string::npos)
      << read_text(dir_.path() / "err2.txt");
}

}  // namespace
