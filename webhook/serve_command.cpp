// `gpu-admit serve`: the HTTPS admission webhook (webhook/server.h) until SIGTERM or SIGINT.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "webhook/commands.h"
#include "webhook/review_log.h"
#include "webhook/server.h"

namespace gpuadmit::cli {
namespace {

using webhook::ServerOptions;

// Options that take a value, with the server setting each fills in. A later issue adds its own
// (e.g. --cluster) to this table and to configure_server().
const std::set<std::string> kServeOptions = {
    "--config",          "--tls-cert",         "--tls-key",         "--client-ca",
    "--addr",            "--metrics-addr",     "--max-body-bytes",  "--read-timeout",
    "--write-timeout",   "--workers",          "--max-queued-connections",
    "--keep-alive-timeout", "--keep-alive-max-requests", "--watch-interval-ms",
    "--shutdown-deadline", "--log-level", "--cluster"};

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

ServerOptions configure_server(const Args& args) {
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
  options.workers = static_cast<std::size_t>(number(args, "--workers", static_cast<long long>(options.workers), 1, 4096));
  options.max_queued_connections = static_cast<std::size_t>(number(
      args, "--max-queued-connections", static_cast<long long>(options.max_queued_connections), 1, 1 << 20));
  options.keep_alive_timeout = std::chrono::seconds(
      number(args, "--keep-alive-timeout", options.keep_alive_timeout.count(), 1, 300));
  options.keep_alive_max_requests = static_cast<std::size_t>(number(
      args, "--keep-alive-max-requests", static_cast<long long>(options.keep_alive_max_requests), 1, 1 << 30));
  options.watch_interval = std::chrono::milliseconds(
      number(args, "--watch-interval-ms", options.watch_interval.count(), 10, 600000));
  options.cluster = load_cluster(args);  // a snapshot, loaded once
  return options;
}

}  // namespace

int serve_command(int argc, char** argv) {
  Args args = parse_args(argc, argv, 2, kServeOptions, {});
  if (!args.positional.empty()) throw UsageError("serve takes no positional arguments");
  const auto level = spdlog::level::from_str(args.value_or("--log-level", "info"));
  if (level == spdlog::level::off && args.value_or("--log-level", "info") != "off")
    throw UsageError("--log-level must be trace, debug, info, warn, error, critical or off");
  const auto deadline = std::chrono::seconds(number(args, "--shutdown-deadline", 20, 0, 3600));
  ServerOptions options = configure_server(args);
  auto logger = webhook::make_json_logger("gpu-admit", level);

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
  logger->flush();
  std::fflush(nullptr);
  // Past the deadline, connections may still hold the server's threads; and the metrics port's
  // idle keep-alive connections may too. Nothing is left to answer: end the process now.
  std::_Exit(drained ? kExitOk : kExitDenied);
}

}  // namespace gpuadmit::cli
