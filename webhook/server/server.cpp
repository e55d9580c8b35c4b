#include "webhook/server/server.h"

#include <sched.h>

#include <charconv>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>

#include <prometheus/metric_family.h>

#include "engine/capacity/cluster_model.h"
#include "webhook/log/heap.h"
#include "webhook/log/json_log.h"
#include "webhook/server/capacity_metrics.h"
#include "webhook/server/review_log.h"
#include "webhook/server/running_thread.h"

namespace gpuadmit::webhook {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* reason_for(int status) {
  switch (status) {
    case 400: return "bad request";
    case 403: return "a client certificate signed by the --client-ca is required";
    case 404: return "not found: the webhook serves POST /mutate, POST /validate, GET /healthz, /readyz, /metrics";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
    case 431: return "request header fields too large";
    default: return "error";
  }
}

bool is_json_content_type(const std::string& value) {
  std::string type = value.substr(0, value.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type == "application/json";
}

}  // namespace

ListenAddress parse_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size())
    throw std::invalid_argument("'" + text + "': expected HOST:PORT, e.g. 0.0.0.0:8443");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) throw std::invalid_argument("'" + text + "': the host is empty");
  const std::string port_text = text.substr(colon + 1);
  int port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535)
      throw std::invalid_argument("'" + text + "': the port must be a number from 0 to 65535");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) throw std::invalid_argument("'" + text + "': the port must be a number from 0 to 65535");
  return {host, port};
}

// Read at scrape time from what /readyz and the TLS handshakes use, so the two never disagree.
class WebhookServer::StateMetrics final : public prometheus::Collectable {
 public:
  explicit StateMetrics(const WebhookServer& server) : server_(server) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto gauge = [](std::string name, std::string help, double value) {
      prometheus::ClientMetric metric;
      metric.gauge.value = value;
      return prometheus::MetricFamily{std::move(name), std::move(help), prometheus::MetricType::Gauge, {metric}};
    };
    const auto not_after = server_.certificates_.current()->not_after;
    return {gauge("gpuadmit_ready", "1 while /readyz answers 200: config loaded, certificate valid, cluster synced, not draining",
                  server_.readiness().ready ? 1 : 0),
            gauge("gpuadmit_certificate_expiry_timestamp_seconds",
                  "The serving certificate's notAfter, in Unix seconds (the pair serving now, after any reload)",
                  static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(not_after.time_since_epoch()).count()))};
  }

 private:
  const WebhookServer& server_;
};

WebhookServer::WebhookServer(ServerOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      certificates_(options_.cert_path, options_.key_path) {
  if (!options_.load_engine)
    options_.load_engine = [](const std::string& path) { return Engine::from_file(path); };
  if (options_.config_path.empty()) {
    engine_ = Engine::from_default();
  } else {
    config_stamp_ = config_seen_ = stamp_of(options_.config_path);
    engine_ = options_.load_engine(options_.config_path);
  }
  check_cluster_gpu_resources(*engine_);
  on_handshake_failure_ = [this] { metrics_.tls_handshake_failed(); };
  for (const auto& collectable : options_.extra_metrics) metrics_.add_collectable(collectable);
  metrics_.add_collectable(std::make_shared<StateMetrics>(*this));
  if (options_.cluster)
    metrics_.add_collectable(std::make_shared<CapacityMetrics>(options_.cluster, [this] { return engine(); }));
}

// The cluster model counted GPU devices with the gpuResources (and DRA claims with the
// gpuDeviceClasses) of the config it started with; a
// config that names other GPU resources would make the policies and the model count different
// things, so it is refused (at start, and at a reload, which keeps the previous config).
void WebhookServer::check_cluster_gpu_resources(const Engine& engine) const {
  if (!options_.cluster) return;
  const GpuResources& model = options_.cluster->gpu_resources();
  if (model == engine.config().gpu) return;
  throw ConfigError(engine.config().source + ": gpuResources and gpuDeviceClasses count " +
                    engine.config().gpu.describe() + " as GPUs, but the cluster model was built counting " +
                    model.describe() + ": restart gpu-admit to change gpuResources or gpuDeviceClasses");
}

WebhookServer::~WebhookServer() {
  if (!shutting_down_) shutdown(std::chrono::milliseconds(0));
  // Their workers use this object's members: stopped before any is destroyed.
  if (listener_) listener_->stop();
  if (metrics_listener_) metrics_listener_->stop();
  if (watch_thread_.joinable()) watch_thread_.join();
}

std::shared_ptr<const Engine> WebhookServer::engine() const {
  std::lock_guard lock(engine_mutex_);
  return engine_;
}

namespace {
// The CPUs this process may use: its affinity mask, and the cgroup v2 CPU quota (a container's
// CPU limit) where one is set. At least 1.
std::size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::size_t cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? static_cast<std::size_t>(CPU_COUNT(&set))
                                                                 : std::thread::hardware_concurrency();
  std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");  // "max 100000" or "<quota> <period>"
  std::string quota_text;
  long long period = 0, quota = 0;
  if (cpu_max >> quota_text >> period && period > 0 &&
      std::from_chars(quota_text.data(), quota_text.data() + quota_text.size(), quota).ec == std::errc() && quota > 0)
    cpus = std::min<std::size_t>(cpus, static_cast<std::size_t>((quota + period - 1) / period));
  return std::max<std::size_t>(1, cpus);
}
}  // namespace

ListenerOptions WebhookServer::listener_options(const std::string& name, std::size_t io_threads,
                                                std::size_t workers, std::size_t running_workers) const {
  ListenerOptions listener;
  listener.name = name;
  listener.io_threads = io_threads;
  listener.workers = workers;
  listener.running_workers = running_workers;
  listener.max_queued_requests = options_.max_queued_connections;
  listener.max_inflight_body_bytes = options_.max_inflight_body_bytes;
  listener.max_body_bytes = options_.max_body_bytes;
  listener.max_header_bytes = options_.max_header_bytes;
  listener.max_header_count = options_.max_header_count;
  listener.max_connections = options_.max_connections;
  listener.max_connections_per_client = options_.max_connections_per_client;
  listener.keep_alive_max_requests = options_.keep_alive_max_requests;
  listener.handshake_timeout = options_.handshake_timeout;
  listener.header_timeout = options_.header_timeout.count() > 0 ? options_.header_timeout : options_.read_timeout;
  listener.read_timeout = options_.read_timeout;
  listener.keep_alive_timeout = options_.keep_alive_timeout;
  listener.write_timeout = options_.write_timeout;
  return listener;
}

namespace {
const std::set<std::string> kKnownPaths = {"/mutate", "/validate", "/healthz", "/readyz", "/metrics"};
std::string route_of(const std::string& path) { return kKnownPaths.count(path) ? path.substr(1) : "other"; }
}  // namespace

ListenerHooks WebhookServer::listener_hooks(bool main_port) {
  ListenerHooks hooks;
  hooks.handle = [this, main_port](const HttpRequest& request, HttpResponse& response) {
    route(request, response, main_port);
  };
  // Answers the listener gives before a route runs (413, 431, ...): counted like the others.
  hooks.on_rejected_request = [this](const std::string& path, int status) {
    metrics_.count_request(route_of(path), status);
  };
  hooks.on_open = [this] { metrics_.connection_opened(); };
  hooks.on_close = [this](CloseReason reason) { metrics_.connection_closed(reason); };
  return hooks;
}

void WebhookServer::route(const HttpRequest& request, HttpResponse& response, bool main_port) {
  const std::string& path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool here = kKnownPaths.count(path) && (main_port ? path != "/metrics" || !options_.metrics_address
                                                          : path == "/metrics");
  try {
    if (!here) {
      response.status = 404;
    } else if (main_port && !options_.client_ca_path.empty() && !request.client_certificate &&
               path != "/healthz" && path != "/readyz") {
      response.status = 403;
    } else if (path == "/mutate" || path == "/validate") {
      if (request.method != "POST") response.status = 405;
      else if (path == "/mutate") handle_review(request, response, ReviewPhases::MutateOnly, "mutate");
      else handle_review(request, response, ReviewPhases::ValidateOnly, "validate");
    } else if (!get) {
      response.status = 405;
    } else if (path == "/healthz") {
      response.set_content("ok\n", "text/plain; charset=utf-8");
    } else if (path == "/readyz") {
      handle_readyz(response);
    } else {
      response.set_content(metrics_.serialize(), "text/plain; version=0.0.4; charset=utf-8");
    }
  } catch (const std::exception& error) {
    log_event(*logger_, spdlog::level::err, "request failed", {{"path", path}, {"error", error.what()}});
    response.status = 500;
    response.set_content(std::string("internal error: ") + error.what() + "\n", "text/plain; charset=utf-8");
  }
  // Every error answer says what went wrong in plain text.
  if (response.body.empty() && response.status != 200)
    response.set_content(std::string(reason_for(response.status)) + "\n", "text/plain; charset=utf-8");
  const std::string route = here ? path.substr(1) : "other";
  metrics_.count_request(route, response.status);
  if (response.status == 403 || response.status == 404 || response.status == 405)
    log_event(*logger_, spdlog::level::warn, "request rejected",
              {{"route", route}, {"status", response.status}, {"error", reason_for(response.status)}});
}

void WebhookServer::handle_review(const HttpRequest& request, HttpResponse& response,
                                  ReviewPhases phases, const std::string& route) {
  metrics_.in_flight().Increment();
  struct Done {
    WebhookServer& server;
    ~Done() { server.metrics_.in_flight().Decrement(); }
  } done{*this};

  if (!is_json_content_type(request.header("content-type"))) {
    response.status = 415;
    response.set_content("Content-Type must be application/json (an AdmissionReview), not '" +
                             request.header("content-type").substr(0, 100) + "'\n",
                         "text/plain; charset=utf-8");
    log_event(*logger_, spdlog::level::warn, "request rejected",
              {{"route", route}, {"status", 415}, {"error", "wrong content type"}});
    return;
  }
  std::shared_ptr<const Engine> engine = this->engine();
  const auto start = Clock::now();
  const std::string stale = options_.cluster_staleness ? options_.cluster_staleness() : std::string();
  HttpAnswer answer = answer_admission_review(*engine, request.body, options_.cluster.get(), phases, stale);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (answer.outcome && options_.after_review) options_.after_review(*answer.outcome, phases);
  metrics_.observe_review(route, answer, seconds);
  log_event(*logger_, answer.status == 200 ? spdlog::level::info : spdlog::level::warn,
            answer.status == 200 ? "review" : "request rejected", review_log_fields(route, answer, seconds));
  response.status = answer.status;
  if (answer.status == 200) answer.body += '\n';
  response.set_content(std::move(answer.body),
                       answer.status == 200 ? "application/json" : "text/plain; charset=utf-8");
}

void WebhookServer::handle_readyz(HttpResponse& response) {
  const Readiness readiness = this->readiness();
  response.status = readiness.ready ? 200 : 503;
  response.set_content(json{{"ready", readiness.ready}, {"checks", readiness.checks}}.dump() + "\n", "application/json");
}

WebhookServer::Readiness WebhookServer::readiness() const {
  Readiness readiness;
  auto report = [&](const std::string& name, const ReadinessResult& result) {
    readiness.checks.push_back({{"name", name}, {"ready", result.ready}, {"detail", result.detail}});
    readiness.ready = readiness.ready && result.ready;
  };
  {
    std::lock_guard lock(engine_mutex_);
    std::string detail = "serving " + engine_->config().source;
    if (!config_error_.empty()) detail += "; the last reload failed, keeping the previous one: " + config_error_;
    report("config", {true, detail});
  }
  auto pair = certificates_.current();
  std::string problem = certificates_.validity_problem();
  std::string detail = problem.empty() ? pair->subject + " serial " + pair->serial : problem;
  if (std::string error = certificates_.last_error(); !error.empty())
    detail += "; the last reload failed, keeping the previous one: " + error;
  report("certificate", {problem.empty(), detail});
  for (const ReadinessCheck& check : options_.readiness_checks) {
    ReadinessResult result;
    try {
      result = check.check();
    } catch (const std::exception& error) {
      result = {false, std::string("the check failed: ") + error.what()};
    }
    report(check.name, result);
  }
  if (shutting_down_) report("shutdown", {false, "shutting down: finishing the reviews in flight"});
  return readiness;
}

void WebhookServer::start() {
  tls_.reset(SSL_CTX_new(TLS_server_method()));
  if (!tls_) throw std::runtime_error("cannot set up TLS: no SSL context");
  try {
    configure_tls_context(tls_.get(), certificates_, {options_.client_ca_path});
  } catch (const TlsError& error) {
    log_event(*logger_, spdlog::level::critical, "cannot set up TLS", {{"error", error.what()}});
    throw std::runtime_error("cannot set up TLS (see the log line above)");
  }
  count_handshake_failures(tls_.get(), &on_handshake_failure_);
  // Both ports are bound before any thread starts, so a port in use fails cleanly.
  // The CPUs (the cgroup's quota) are read once: an event loop per CPU, at most 8, unless
  // --io-threads says; two running workers per CPU, as more only take turns (bench/README.md,
  // 2026-12-08 session 20).
  const std::size_t cpus = usable_cpus();
  const std::size_t loops = options_.io_threads > 0 ? options_.io_threads : std::min<std::size_t>(8, cpus);
  const std::size_t running = std::min(options_.workers, 2 * cpus);
  listener_ = std::make_unique<HttpListener>(listener_options("https", loops, options_.workers, running),
                                             tls_.get(), listener_hooks(true), logger_);
  port_ = listener_->bind(options_.address.host, options_.address.port);
  if (options_.metrics_address) {
    // Scrapes are cheap and rare: one loop, two workers.
    metrics_listener_ = std::make_unique<HttpListener>(listener_options("metrics", 1, 2, 0), nullptr,
                                                       listener_hooks(false), logger_);
    metrics_port_ = metrics_listener_->bind(options_.metrics_address->host, options_.metrics_address->port);
  } else {
    metrics_port_ = port_;
  }
  listener_->start();
  if (metrics_listener_) metrics_listener_->start();
  watch_thread_ = start_running_thread("gpuadmit-watch", [this] { watch_files(); });
  log_event(*logger_, spdlog::level::info, "listening",
            {{"addr", options_.address.host},
             {"port", port_},
             {"metrics_port", metrics_port_},
             {"io_threads", loops},
             {"workers", options_.workers},
             {"running_workers", running},
             {"malloc", malloc_in_use()},
             {"config", engine()->config().source},
             {"certificate", certificates_.current()->subject},
             {"client_certificates", options_.client_ca_path.empty() ? "not required" : "required except for /healthz and /readyz"}});
}

bool WebhookServer::shutdown(std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  shutting_down_ = true;
  {
    std::lock_guard lock(watch_mutex_);
    stop_watching_ = true;
  }
  watch_stop_.notify_all();
  if (listener_) listener_->begin_shutdown();
  if (metrics_listener_) metrics_listener_->begin_shutdown();
  // Connections with a request partly read or being answered are served to the end (their
  // deadlines bound that); idle ones are closed at once.
  const bool drained = listener_ ? listener_->wait_drained(until) : true;
  const auto unfinished = static_cast<std::size_t>(metrics_.in_flight().Value());
  log_event(*logger_, drained ? spdlog::level::info : spdlog::level::warn,
            drained ? "stopped" : "shutdown deadline passed", {{"reviews_unfinished", unfinished}});
  return drained;
}

void WebhookServer::watch_files() {
  for (;;) {
    {
      std::unique_lock lock(watch_mutex_);
      if (watch_stop_.wait_for(lock, options_.watch_interval, [&] { return stop_watching_; })) return;
    }
    reload_changed_files();
  }
}

void WebhookServer::reload_changed_files() {
  std::string cert_error;
  if (auto reloaded = certificates_.reload_if_changed(cert_error)) {
    metrics_.cert_reload(*reloaded);
    if (*reloaded) {
      auto pair = certificates_.current();
      log_event(*logger_, spdlog::level::info, "certificate reloaded",
                {{"subject", pair->subject}, {"serial", pair->serial}});
    } else {
      log_event(*logger_, spdlog::level::err, "certificate reload failed, keeping the previous one",
                {{"error", cert_error}});
    }
  }
  if (options_.config_path.empty()) return;
  FileStamp stamp = stamp_of(options_.config_path);
  {
    std::lock_guard lock(engine_mutex_);
    // A file rewritten in place (not renamed over) changes between checks while it is written:
    // it is loaded only once it has stayed the same for a whole watch interval, so a reload never
    // reads it half-written.
    const bool settled = stamp == config_seen_;
    config_seen_ = stamp;
    if (stamp == config_stamp_ || !settled) return;
  }
  try {
    std::shared_ptr<const Engine> fresh = options_.load_engine(options_.config_path);
    // Changed while it was read: try again once it settles.
    if (!(stamp_of(options_.config_path) == stamp)) return;
    check_cluster_gpu_resources(*fresh);
    {
      std::lock_guard lock(engine_mutex_);
      config_stamp_ = stamp;
    }
    {
      std::lock_guard lock(engine_mutex_);
      engine_ = std::move(fresh);
      config_error_.clear();
    }
    metrics_.config_reload(true);
    log_event(*logger_, spdlog::level::info, "config reloaded", {{"config", options_.config_path}});
  } catch (const std::exception& error) {
    {
      std::lock_guard lock(engine_mutex_);
      config_stamp_ = stamp;  // reported once, not again at every check
      config_error_ = error.what();
    }
    metrics_.config_reload(false);
    log_event(*logger_, spdlog::level::err, "config reload failed, keeping the previous one",
              {{"config", options_.config_path}, {"error", error.what()}});
  }
}

}  // namespace gpuadmit::webhook
