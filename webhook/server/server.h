// The HTTPS admission webhook: routes, TLS with certificate rotation, config reload, limits,
// metrics, JSON logs and a graceful shutdown, around the engine's answer_admission_review().
//
// Extension points for what comes next (the cluster capacity model, a live watch):
//   - ServerOptions::readiness_checks: named conditions /readyz reports and requires;
//   - ServerOptions::load_engine: how a config file becomes an Engine (on start and on reload).
#pragma once

#include <prometheus/collectable.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gpuadmit/engine.h"
#include "webhook/server/http_listener.h"
#include "webhook/server/metrics.h"
#include "webhook/server/tls_reloader.h"

namespace gpuadmit::webhook {

struct ListenAddress {
  std::string host;
  int port = 0;  // 0: any free port (see WebhookServer::port())
};
// "0.0.0.0:8443", "127.0.0.1:0", "[::1]:8443"; throws std::invalid_argument.
ListenAddress parse_listen_address(const std::string& text);

struct ReadinessResult {
  bool ready = false;
  std::string detail;
};
struct ReadinessCheck {
  std::string name;
  std::function<ReadinessResult()> check;
};

struct ServerOptions {
  ListenAddress address{"0.0.0.0", 8443};
  std::optional<ListenAddress> metrics_address;  // plain HTTP; unset: /metrics on the main port
  std::string config_path;                       // empty: the embedded default, never reloaded
  std::string cert_path, key_path;
  std::string client_ca_path;                    // set: clients must present a certificate it signed
  // The API server's own limit on an object (etcd's request size), so a real review always fits.
  std::size_t max_body_bytes = 3 * 1024 * 1024;
  // Deadlines per connection (webhook/server/http_listener.h): the TLS handshake, the request headers
  // (0: the same as read_timeout), the body after the headers, the answer, an idle keep-alive.
  std::chrono::seconds handshake_timeout{5}, header_timeout{0};
  std::chrono::seconds read_timeout{10}, write_timeout{10};
  // Event loops on the webhook port; 0: one per CPU this process may use (its affinity and its
  // cgroup's CPU quota), at most 8.
  std::size_t io_threads = 0;
  std::size_t workers = 64;                   // complete requests answered at once
  std::size_t max_queued_connections = 256;   // complete requests waiting for a worker; then they wait unread
  std::size_t keep_alive_max_requests = 1000;
  std::chrono::seconds keep_alive_timeout{5};
  // Connections open at once, in total and from one client address; more are closed at accept.
  // A kube-apiserver opens a handful per webhook (one per concurrent review), far below 128.
  std::size_t max_connections = 1024, max_connections_per_client = 128;
  std::size_t max_header_bytes = 64 * 1024, max_header_count = 100;
  // Request bodies under review at once; a request that would pass it waits for a review to end.
  // A review's memory is a large multiple of its body (an env-heavy 2.6 MB pod: ~60 MB), and
  // reviews are CPU-bound: 16 such reviews at once peaked at 956 MB, 3 at a time (8 MiB) at
  // 265 MB in the same total time (bench/README.md). Typical 20 KB bodies never meet it.
  std::size_t max_inflight_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds watch_interval{1000};  // how often the config and cert files are checked
  std::vector<ReadinessCheck> readiness_checks;
  std::function<std::shared_ptr<const Engine>(const std::string& config_path)> load_engine;
  // What gpu-capacity and gpu-quota consult (`--cluster F`, or a live watch); null: those
  // policies check nothing.
  std::shared_ptr<const capacity::ClusterModel> cluster;
  // A live cluster: why its state cannot be trusted now ("" when it can). Unset: always trusted.
  std::function<std::string()> cluster_staleness;
  // Called after every answered review (a live cluster records the pods it allowed).
  std::function<void(const ReviewOutcome&, ReviewPhases)> after_review;
  // More metrics for /metrics, collected at scrape time.
  std::vector<std::shared_ptr<const prometheus::Collectable>> extra_metrics;
};

class WebhookServer {
 public:
  // Loads the config and the certificate; throws ConfigError or TlsError.
  WebhookServer(ServerOptions options, std::shared_ptr<spdlog::logger> logger);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  // Binds the ports and serves on background threads; throws std::runtime_error if a port cannot
  // be bound.
  void start();
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }

  // Fails /readyz, stops accepting, and waits until every accepted connection is finished (the
  // requests in flight answered) or the deadline passes. Returns whether all finished.
  bool shutdown(std::chrono::milliseconds deadline);

  std::shared_ptr<const Engine> engine() const;
  WebhookMetrics& metrics() { return metrics_; }
  // Re-reads the config and certificate if their files changed; the watcher thread calls it.
  void reload_changed_files();

 private:
  // The route table: /mutate, /validate, /healthz, /readyz on the main port, /metrics on the
  // metrics port when there is one, else on the main port too.
  void route(const HttpRequest& request, HttpResponse& response, bool main_port);
  void handle_review(const HttpRequest& request, HttpResponse& response, ReviewPhases phases,
                     const std::string& route);
  void handle_readyz(HttpResponse& response);
  // What /readyz answers: whether every check passes, and each check's name, state and detail.
  struct Readiness {
    bool ready = true;
    nlohmann::json checks = nlohmann::json::array();
  };
  Readiness readiness() const;
  class StateMetrics;  // gpuadmit_ready and the certificate's expiry, at scrape time
  ListenerOptions listener_options(const std::string& name, std::size_t io_threads, std::size_t workers,
                                   std::size_t running_workers) const;
  ListenerHooks listener_hooks(bool main_port);
  void watch_files();
  // Throws ConfigError when `engine`'s gpuResources differ from the cluster model's.
  void check_cluster_gpu_resources(const Engine& engine) const;

  ServerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  WebhookMetrics metrics_;
  CertificateStore certificates_;
  std::function<void()> on_handshake_failure_;

  mutable std::mutex engine_mutex_;
  std::shared_ptr<const Engine> engine_;
  FileStamp config_stamp_;  // of the file last loaded (or refused)
  FileStamp config_seen_;   // at the last check: a reload waits until two checks agree
  std::string config_error_;  // the last failed reload, until one succeeds

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls_{nullptr, SSL_CTX_free};
  // After everything their threads use (metrics, certificates, the TLS context).
  std::unique_ptr<HttpListener> listener_, metrics_listener_;
  int port_ = 0, metrics_port_ = 0;
  std::thread watch_thread_;
  std::atomic<bool> shutting_down_{false};

  // The watcher's own: a review must not wake it (a shared notify per review once did, 2-4 % of
  // a review's CPU under load).
  std::mutex watch_mutex_;
  std::condition_variable watch_stop_;
  bool stop_watching_ = false;
};

}  // namespace gpuadmit::webhook
