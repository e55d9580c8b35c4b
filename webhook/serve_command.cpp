// `gpu-admit serve`: the HTTPS admission webhook (webhook/server.h) until SIGTERM or SIGINT.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>

#include "webhook/commands.h"
#include "webhook/live_cluster.h"
#include "webhook/review_log.h"
#include "webhook/server.h"

namespace gpuadmit::cli {
namespace {

using webhook::ServerOptions;

// Options that take a value, with the server setting each fills in (configure_server), and the
// live cluster's (configure_live_cluster).
const std::set<std::string> kServeOptions = {
    "--config",          "--tls-cert",         "--tls-key",         "--client-ca",
    "--addr",            "--metrics-addr",     "--max-body-bytes",  "--read-timeout",
    "--write-timeout",   "--workers",          "--max-queued-connections",
    "--keep-alive-timeout", "--keep-alive-max-requests", "--watch-interval-ms",
    "--shutdown-deadline", "--log-level", "--cluster",  "--kubeconfig",
    "--handshake-timeout", "--header-timeout", "--max-connections", "--max-connections-per-client",
    "--max-header-bytes", "--max-header-count", "--max-inflight-body-bytes",
    "--context",         "--cluster-stale-after", "--admission-ttl", "--scheduling"};
const std::set<std::string> kServeFlags = {"--in-cluster"};

long long number(const Args& args, const std::string& name, long long fallback, long long min,
                 long long max) {
  auto text = args.value(name);
  if (!text) return fallback;
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || value < min || value > max)
    throw UsageError(name + " must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", not '" + *text + "'");
  return value;
}

webhook::ListenAddress address(const std::string& name, const std::string& text) {
  try {
    return webhook::parse_listen_address(text);
  } catch (const std::invalid_argument& error) {
    throw UsageError(name + " " + error.what());
  }
}

ServerOptions configure_server(const Args& args, const Engine& engine) {
  ServerOptions options;
  options.config_path = args.value_or("--config", "");
  options.cert_path = args.value_or("--tls-cert", "");
  options.key_path = args.value_or("--tls-key", "");
  if (options.cert_path.empty() || options.key_path.empty())
    throw UsageError("serve needs --tls-cert and --tls-key (certs/make-dev-certs.sh makes a pair)");
  options.client_ca_path = args.value_or("--client-ca", "");
  options.address = address("--addr", args.value_or("--addr", "0.0.0.0:8443"));
  if (auto metrics = args.value("--metrics-addr")) options.metrics_address = address("--metrics-addr", *metrics);
  options.max_body_bytes = static_cast<std::size_t>(
      number(args, "--max-body-bytes", static_cast<long long>(options.max_body_bytes), 1024, 1LL << 30));
  options.read_timeout = std::chrono::seconds(number(args, "--read-timeout", options.read_timeout.count(), 1, 300));
  options.write_timeout = std::chrono::seconds(number(args, "--write-timeout", options.write_timeout.count(), 1, 300));
  options.handshake_timeout = std::chrono::seconds(
      number(args, "--handshake-timeout", options.handshake_timeout.count(), 1, 300));
  options.header_timeout = std::chrono::seconds(
      number(args, "--header-timeout", options.read_timeout.count(), 1, 300));  // default: --read-timeout
  options.max_connections = static_cast<std::size_t>(
      number(args, "--max-connections", static_cast<long long>(options.max_connections), 1, 1 << 20));
  options.max_connections_per_client = static_cast<std::size_t>(number(
      args, "--max-connections-per-client", static_cast<long long>(options.max_connections_per_client), 1, 1 << 20));
  options.max_header_bytes = static_cast<std::size_t>(
      number(args, "--max-header-bytes", static_cast<long long>(options.max_header_bytes), 1024, 1 << 20));
  options.max_header_count = static_cast<std::size_t>(
      number(args, "--max-header-count", static_cast<long long>(options.max_header_count), 8, 10000));
  options.max_inflight_body_bytes = static_cast<std::size_t>(number(
      args, "--max-inflight-body-bytes", static_cast<long long>(options.max_inflight_body_bytes), 1 << 20, 1LL << 34));
  options.workers = static_cast<std::size_t>(number(args, "--workers", static_cast<long long>(options.workers), 1, 4096));
  options.max_queued_connections = static_cast<std::size_t>(number(
      args, "--max-queued-connections", static_cast<long long>(options.max_queued_connections), 1, 1 << 20));
  options.keep_alive_timeout = std::chrono::seconds(
      number(args, "--keep-alive-timeout", options.keep_alive_timeout.count(), 1, 300));
  options.keep_alive_max_requests = static_cast<std::size_t>(number(
      args, "--keep-alive-max-requests", static_cast<long long>(options.keep_alive_max_requests), 1, 1 << 30));
  options.watch_interval = std::chrono::milliseconds(
      number(args, "--watch-interval-ms", options.watch_interval.count(), 10, 600000));
  options.cluster = load_cluster(args, engine);  // a snapshot, loaded once
  return options;
}

// --in-cluster or --kubeconfig F [--context C]: the cluster state from a live list/watch.
// Null when neither is given.
std::unique_ptr<webhook::LiveCluster> configure_live_cluster(const Args& args, const Engine& engine,
                                                            std::shared_ptr<spdlog::logger> logger) {
  const bool in_cluster = args.flag("--in-cluster");
  const auto kubeconfig = args.value("--kubeconfig");
  if (in_cluster && kubeconfig) throw UsageError("--in-cluster and --kubeconfig are alternatives: give one");
  if ((in_cluster || kubeconfig) && args.value("--cluster"))
    throw UsageError("--cluster F (a snapshot) and a live cluster (--in-cluster, --kubeconfig) are alternatives: give one");
  if (args.value("--context") && !kubeconfig) throw UsageError("--context only goes with --kubeconfig");
  if (!in_cluster && !kubeconfig) {
    for (const char* name : {"--cluster-stale-after", "--admission-ttl"})
      if (args.value(name)) throw UsageError(std::string(name) + " only goes with --in-cluster or --kubeconfig");
    return nullptr;
  }
  webhook::LiveClusterOptions options;
  options.stale_after = std::chrono::seconds(number(args, "--cluster-stale-after", 180, 1, 86400));
  options.admission_ttl = std::chrono::seconds(number(args, "--admission-ttl", 30, 0, 3600));
  options.gpu = engine.config().gpu;
  kube::KubeConfig config;
  try {
    config = in_cluster ? kube::load_in_cluster_config() : kube::load_kubeconfig(*kubeconfig, args.value_or("--context", ""));
  } catch (const kube::KubeConfigError& error) {
    throw UsageError(error.what());
  }
  return std::make_unique<webhook::LiveCluster>(std::move(config), options, std::move(logger));
}

// `--scheduling batch` (the default): the process runs as SCHED_BATCH, set on the main thread
// before any other thread exists so that every thread inherits it. A batch thread woken by
// a request (or by a log line) does not preempt one in the middle of a review: reviews run to
// completion instead of being sliced against each other, and the server's review p99 at 16
// connections on 2 cores fell by about half with the same client latency (bench/README.md).
// Lowering the policy needs no privilege. Returns why it could not be set ("" when it was).
std::string apply_scheduling(const Args& args) {
  const std::string policy = args.value_or("--scheduling", "batch");
  if (policy != "batch" && policy != "normal")
    throw UsageError("--scheduling must be batch or normal, not '" + policy + "'");
  if (policy == "normal") return "";
  sched_param param{};
  const int error = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  return error == 0 ? "" : std::strerror(error);
}

}  // namespace

int serve_command(int argc, char** argv) {
  Args args = parse_args(argc, argv, 2, kServeOptions, kServeFlags);
  if (!args.positional.empty()) throw UsageError("serve takes no positional arguments");
  const auto level = spdlog::level::from_str(args.value_or("--log-level", "info"));
  if (level == spdlog::level::off && args.value_or("--log-level", "info") != "off")
    throw UsageError("--log-level must be trace, debug, info, warn, error, critical or off");
  const auto deadline = std::chrono::seconds(number(args, "--shutdown-deadline", 20, 0, 3600));
  // The config as it starts: the cluster model counts its gpuResources (the server loads it
  // again, and refuses a config whose gpuResources differ from the model's).
  const std::shared_ptr<const Engine> startup = load_engine(args);
  ServerOptions options = configure_server(args, *startup);
  const std::string scheduling_error = apply_scheduling(args);  // before the first thread starts
  auto logger = webhook::make_json_logger("gpu-admit", level);
  if (scheduling_error.empty())
    webhook::log_event(*logger, spdlog::level::info, "cpu scheduling",
                       {{"policy", args.value_or("--scheduling", "batch")}});
  else
    webhook::log_event(*logger, spdlog::level::warn, "cannot run as SCHED_BATCH, keeping the default policy",
                       {{"error", scheduling_error}});
  // Declared before the server, so it outlives the hooks the server calls.
  std::unique_ptr<webhook::LiveCluster> live = configure_live_cluster(args, *startup, logger);
  if (live) live->attach(options);

  // Signals are taken by sigwait below, never by a handler that could interrupt a worker.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that goes away mid-write must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<webhook::WebhookServer> server;
  try {
    server = std::make_unique<webhook::WebhookServer>(std::move(options), logger);
    server->start();
    // /readyz stays 503 until every kind is listed in full.
    if (live) live->start();
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& error) {
    webhook::log_event(*logger, spdlog::level::critical, "cannot start", {{"error", error.what()}});
    logger->flush();
    return kExitBadInput;
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  webhook::log_event(*logger, spdlog::level::info, "shutting down",
                     {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
                      {"deadline_s", deadline.count()}});
  const bool drained = server->shutdown(deadline);
  if (live) live->stop();
  logger->flush();
  std::fflush(nullptr);
  // Past the deadline, connections may still hold the server's threads; and the metrics port's
  // idle keep-alive connections may too. Nothing is left to answer: end the process now.
  std::_Exit(drained ? kExitOk : kExitDenied);
}

}  // namespace gpuadmit::cli
