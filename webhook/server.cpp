#include "webhook/server.h"

#include <httplib.h>

#include <deque>
#include <set>
#include <stdexcept>

#include "webhook/review_log.h"

namespace gpuadmit::webhook {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// httplib's pool queues accepted connections without bound. This one holds at most `max_queued`;
// past that the accept loop waits, so the kernel's listen backlog pushes back on clients instead
// of the process growing.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(std::size_t workers, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> job) override {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return jobs_.size() < max_queued_; });
    jobs_.push_back(std::move(job));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and every accepted connection was served
        job = std::move(jobs_.front());
        jobs_.pop_front();
        space_.notify_one();
      }
      job();
    }
  }

  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable work_, space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

const char* reason_for(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found: the webhook serves POST /mutate, POST /validate, GET /healthz, /readyz, /metrics";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
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

WebhookServer::WebhookServer(ServerOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      certificates_(options_.cert_path, options_.key_path) {
  if (!options_.load_engine)
    options_.load_engine = [](const std::string& path) { return Engine::from_file(path); };
  if (options_.config_path.empty()) {
    engine_ = Engine::from_default();
  } else {
    config_stamp_ = stamp_of(options_.config_path);
    engine_ = options_.load_engine(options_.config_path);
  }
  on_handshake_failure_ = [this] { metrics_.tls_handshake_failed(); };
  for (const auto& collectable : options_.extra_metrics) metrics_.add_collectable(collectable);
}

WebhookServer::~WebhookServer() {
  if (!shutting_down_) shutdown(std::chrono::milliseconds(0));
  for (std::thread* thread : {&listen_thread_, &metrics_thread_, &watch_thread_})
    if (thread->joinable()) thread->join();
}

std::shared_ptr<const Engine> WebhookServer::engine() const {
  std::lock_guard lock(engine_mutex_);
  return engine_;
}

void WebhookServer::configure(httplib::Server& server) {
  server.set_payload_max_length(options_.max_body_bytes);
  server.set_read_timeout(options_.read_timeout);
  server.set_write_timeout(options_.write_timeout);
  server.set_keep_alive_max_count(options_.keep_alive_max_requests);
  server.set_keep_alive_timeout(options_.keep_alive_timeout.count());
  server.set_tcp_nodelay(true);
  const std::size_t workers = options_.workers, queued = options_.max_queued_connections;
  server.new_task_queue = [workers, queued] { return new BoundedThreadPool(workers, queued); };
  // Every error answer says what went wrong in plain text.
  httplib::Server::HandlerWithResponse explain_error = [](const httplib::Request&,
                                                          httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    response.set_content(std::string(reason_for(response.status)) + "\n", "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  };
  server.set_error_handler(explain_error);
  // Counts every answer, including those httplib gives before a handler runs (413, 404).
  server.set_logger([this](const httplib::Request& request, const httplib::Response& response) {
    static const std::set<std::string> known = {"/mutate", "/validate", "/healthz", "/readyz", "/metrics"};
    const std::string route = known.count(request.path) ? request.path.substr(1) : "other";
    metrics_.count_request(route, response.status);
    if (response.status == 413 || response.status == 404 || response.status == 405)
      log_event(*logger_, spdlog::level::warn, "request rejected",
                {{"route", route}, {"status", response.status}, {"error", reason_for(response.status)}});
  });
  server.set_exception_handler(
      [this](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown error";
        try {
          if (error) std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log_event(*logger_, spdlog::level::err, "request failed",
                  {{"path", request.path}, {"error", what}});
        response.status = 500;
        response.set_content("internal error: " + what + "\n", "text/plain; charset=utf-8");
      });
}

void WebhookServer::add_routes(httplib::Server& server, bool with_reviews) {
  if (with_reviews) {
    server.Post("/mutate", [this](const httplib::Request& request, httplib::Response& response) {
      handle_review(request, response, ReviewPhases::MutateOnly, "mutate");
    });
    server.Post("/validate", [this](const httplib::Request& request, httplib::Response& response) {
      handle_review(request, response, ReviewPhases::ValidateOnly, "validate");
    });
    server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain; charset=utf-8");
    });
    server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
      handle_readyz(response);
    });
  }
  if (with_reviews == !options_.metrics_address.has_value())
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(metrics_.serialize(), "text/plain; version=0.0.4; charset=utf-8");
    });
}

void WebhookServer::handle_review(const httplib::Request& request, httplib::Response& response,
                                  ReviewPhases phases, const std::string& route) {
  {
    std::lock_guard lock(state_mutex_);
    ++in_flight_;
  }
  metrics_.in_flight().Increment();
  struct Done {
    WebhookServer& server;
    ~Done() {
      server.metrics_.in_flight().Decrement();
      std::lock_guard lock(server.state_mutex_);
      --server.in_flight_;
      server.state_changed_.notify_all();
    }
  } done{*this};

  if (!is_json_content_type(request.get_header_value("Content-Type"))) {
    response.status = 415;
    response.set_content("Content-Type must be application/json (an AdmissionReview), not '" +
                             request.get_header_value("Content-Type").substr(0, 100) + "'\n",
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

void WebhookServer::handle_readyz(httplib::Response& response) {
  json checks = json::array();
  bool ready = true;
  auto report = [&](const std::string& name, const ReadinessResult& result) {
    checks.push_back({{"name", name}, {"ready", result.ready}, {"detail", result.detail}});
    ready = ready && result.ready;
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
  response.status = ready ? 200 : 503;
  response.set_content(json{{"ready", ready}, {"checks", checks}}.dump() + "\n", "application/json");
}

void WebhookServer::start() {
  server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
    try {
      configure_tls_context(&ctx, certificates_, {options_.client_ca_path});
    } catch (const TlsError& error) {
      log_event(*logger_, spdlog::level::critical, "cannot set up TLS", {{"error", error.what()}});
      return false;
    }
    count_handshake_failures(&ctx, &on_handshake_failure_);
    return true;
  });
  if (!server_->is_valid()) throw std::runtime_error("cannot set up TLS (see the log line above)");
  configure(*server_);
  add_routes(*server_, true);
  auto bind = [](httplib::Server& server, const ListenAddress& address) {
    int port = address.port == 0 ? server.bind_to_any_port(address.host)
                                 : (server.bind_to_port(address.host, address.port) ? address.port : -1);
    if (port <= 0)
      throw std::runtime_error("cannot listen on " + address.host + ":" + std::to_string(address.port));
    return port;
  };
  port_ = bind(*server_, options_.address);
  if (options_.metrics_address) {
    metrics_server_ = std::make_unique<httplib::Server>();
    configure(*metrics_server_);
    add_routes(*metrics_server_, false);
    metrics_port_ = bind(*metrics_server_, *options_.metrics_address);
  } else {
    metrics_port_ = port_;
  }
  {
    std::lock_guard lock(state_mutex_);
    listening_ = true;
  }
  listen_thread_ = std::thread([this] {
    server_->listen_after_bind();  // returns once stopped and every connection is finished
    std::lock_guard lock(state_mutex_);
    listening_ = false;
    state_changed_.notify_all();
  });
  if (metrics_server_) metrics_thread_ = std::thread([this] { metrics_server_->listen_after_bind(); });
  watch_thread_ = std::thread([this] { watch_files(); });
  log_event(*logger_, spdlog::level::info, "listening",
            {{"addr", options_.address.host},
             {"port", port_},
             {"metrics_port", metrics_port_},
             {"config", engine()->config().source},
             {"certificate", certificates_.current()->subject},
             {"client_certificates", options_.client_ca_path.empty() ? "not required" : "required"}});
}

bool WebhookServer::shutdown(std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  shutting_down_ = true;
  {
    std::lock_guard lock(state_mutex_);
    stop_watching_ = true;
  }
  state_changed_.notify_all();
  if (server_) server_->stop();
  if (metrics_server_) metrics_server_->stop();
  // Connections already accepted are served to the end: a request still being read counts as in
  // flight too. Idle keep-alive connections end within --keep-alive-timeout.
  std::unique_lock lock(state_mutex_);
  const bool drained = state_changed_.wait_until(lock, until, [&] { return !listening_; });
  log_event(*logger_, drained ? spdlog::level::info : spdlog::level::warn,
            drained ? "stopped" : "shutdown deadline passed",
            {{"reviews_unfinished", in_flight_}});
  return drained;
}

void WebhookServer::watch_files() {
  for (;;) {
    {
      std::unique_lock lock(state_mutex_);
      if (state_changed_.wait_for(lock, options_.watch_interval, [&] { return stop_watching_; })) return;
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
    if (stamp == config_stamp_) return;
    config_stamp_ = stamp;
  }
  try {
    std::shared_ptr<const Engine> fresh = options_.load_engine(options_.config_path);
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
      config_error_ = error.what();
    }
    metrics_.config_reload(false);
    log_event(*logger_, spdlog::level::err, "config reload failed, keeping the previous one",
              {{"config", options_.config_path}, {"error", error.what()}});
  }
}

}  // namespace gpuadmit::webhook
