// `gpu-admit serve`: the HTTPS admission webhook (webhook/server/server.h) until SIGTERM or SIGINT.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>

#include "webhook/cli/commands.h"
#include <unistd.h>

#include "webhook/server/background_audit.h"
#include "webhook/server/live_cluster.h"
#include "webhook/log/json_log.h"
#include "webhook/server/server.h"

namespace gpuadmit::cli {
namespace {

using webhook::ServerOptions;

webhook::ListenAddress address(const std::string& name, const std::string& text) {
  try {
    return webhook::parse_listen_address(text);
  } catch (const std::invalid_argument& error) {
    throw UsageError(name + " " + error.what());
  }
}

template <typename Duration>
Duration seconds(const Args& args, const std::string& name, long long min, long long max) {
  return std::chrono::duration_cast<Duration>(std::chrono::seconds(args.whole(name, min, max)));
}

std::size_t count(const Args& args, const std::string& name, long long min, long long max) {
  return static_cast<std::size_t>(args.whole(name, min, max));
}

ServerOptions configure_server(const Args& args, const Engine& engine) {
  ServerOptions options;
  options.config_path = args.text("--config");
  options.cert_path = args.text("--tls-cert");
  options.key_path = args.text("--tls-key");
  if (options.cert_path.empty() || options.key_path.empty())
    throw UsageError("serve needs --tls-cert and --tls-key (certs/make-dev-certs.sh makes a pair)");
  options.client_ca_path = args.text("--client-ca");
  options.address = address("--addr", args.text("--addr"));
  if (auto metrics = args.value("--metrics-addr")) options.metrics_address = address("--metrics-addr", *metrics);
  options.max_body_bytes = count(args, "--max-body-bytes", 1024, 1LL << 30);
  options.read_timeout = seconds<std::chrono::seconds>(args, "--read-timeout", 1, 300);
  options.write_timeout = seconds<std::chrono::seconds>(args, "--write-timeout", 1, 300);
  options.handshake_timeout = seconds<std::chrono::seconds>(args, "--handshake-timeout", 1, 300);
  options.header_timeout = args.value("--header-timeout")
                               ? seconds<std::chrono::seconds>(args, "--header-timeout", 1, 300)
                               : options.read_timeout;
  options.max_connections = count(args, "--max-connections", 1, 1 << 20);
  options.max_connections_per_client = count(args, "--max-connections-per-client", 1, 1 << 20);
  options.max_header_bytes = count(args, "--max-header-bytes", 1024, 1 << 20);
  options.max_header_count = count(args, "--max-header-count", 8, 10000);
  options.max_inflight_body_bytes = count(args, "--max-inflight-body-bytes", 1 << 20, 1LL << 34);
  options.io_threads = count(args, "--io-threads", 0, 64);
  options.workers = count(args, "--workers", 1, 4096);
  options.max_queued_connections = count(args, "--max-queued-connections", 1, 1 << 20);
  options.keep_alive_timeout = seconds<std::chrono::seconds>(args, "--keep-alive-timeout", 1, 300);
  options.keep_alive_max_requests = count(args, "--keep-alive-max-requests", 1, 1 << 30);
  options.watch_interval = std::chrono::milliseconds(args.whole("--watch-interval-ms", 10, 600000));
  options.cluster = load_cluster(args, engine);  // a snapshot, loaded once
  return options;
}

// An on|off option's value, true for on.
bool on_or_off(const Args& args, const std::string& name) {
  const std::string value = args.text(name);
  if (value != "on" && value != "off") throw UsageError(name + " must be on or off, not '" + value + "'");
  return value == "on";
}

// --in-cluster or --kubeconfig F [--context C]: where the live cluster is; none when neither is given.
std::optional<kube::KubeConfig> live_cluster_config(const Args& args) {
  const bool in_cluster = args.flag("--in-cluster");
  const auto kubeconfig = args.value("--kubeconfig");
  if (in_cluster && kubeconfig) throw UsageError("--in-cluster and --kubeconfig are alternatives: give one");
  if ((in_cluster || kubeconfig) && args.value("--cluster"))
    throw UsageError("--cluster F (a snapshot) and a live cluster (--in-cluster, --kubeconfig) are alternatives: give one");
  if (args.value("--context") && !kubeconfig) throw UsageError("--context only goes with --kubeconfig");
  if (!in_cluster && !kubeconfig) return std::nullopt;
  try {
    return in_cluster ? kube::load_in_cluster_config() : kube::load_kubeconfig(*kubeconfig, args.text("--context"));
  } catch (const kube::KubeConfigError& error) {
    throw UsageError(error.what());
  }
}

// The cluster state from a live list/watch of `config`'s cluster. Null without one.
std::unique_ptr<webhook::LiveCluster> configure_live_cluster(const Args& args, const Engine& engine,
                                                            const std::optional<kube::KubeConfig>& config,
                                                            std::shared_ptr<spdlog::logger> logger) {
  if (!config) {
    for (const char* name : {"--cluster-stale-after", "--admission-ttl", "--dra-api-version",
                             "--disruption-budgets", "--priority-classes"})
      if (args.value(name)) throw UsageError(std::string(name) + " only goes with --in-cluster or --kubeconfig");
    return nullptr;
  }
  webhook::LiveClusterOptions options;
  options.stale_after = seconds<std::chrono::milliseconds>(args, "--cluster-stale-after", 1, 86400);
  options.admission_ttl = seconds<std::chrono::milliseconds>(args, "--admission-ttl", 0, 3600);
  options.watch.dra_api_version = args.text("--dra-api-version");
  if (options.watch.dra_api_version != "off" && !kube::is_api_version(options.watch.dra_api_version))
    throw UsageError("--dra-api-version must be a resource.k8s.io version (v1, v1beta2, v1beta1) or off, not '" +
                     options.watch.dra_api_version + "'");
  options.watch.watch_disruption_budgets = on_or_off(args, "--disruption-budgets");
  options.watch.watch_priority_classes = on_or_off(args, "--priority-classes");
  options.gpu = engine.config().gpu;
  return std::make_unique<webhook::LiveCluster>(*config, options, std::move(logger));
}

// --audit-interval S > 0, with a live cluster: the background audit. Null when off.
std::unique_ptr<webhook::BackgroundAudit> configure_audit(const Args& args, const std::optional<kube::KubeConfig>& config,
                                                          std::shared_ptr<spdlog::logger> logger) {
  webhook::BackgroundAuditOptions options;
  options.interval = std::chrono::seconds(args.whole("--audit-interval", 0, 7 * 86400));
  if (options.interval.count() == 0) {
    for (const char* name : {"--audit-min-interval", "--audit-lease", "--audit-identity", "--audit-lease-duration",
                             "--audit-scheduling"})
      if (args.value(name)) throw UsageError(std::string(name) + " only goes with --audit-interval");
    return nullptr;
  }
  if (!config) throw UsageError("--audit-interval needs a live cluster (--in-cluster or --kubeconfig): it reads the stored workloads");
  options.min_interval = std::chrono::seconds(args.whole("--audit-min-interval", 1, 7 * 86400));
  const std::string scheduling = args.text("--audit-scheduling");
  if (scheduling != "idle" && scheduling != "batch")
    throw UsageError("--audit-scheduling must be idle or batch, not '" + scheduling + "'");
  options.idle_priority = scheduling == "idle";
  const std::string lease = args.text("--audit-lease");
  const auto slash = lease.find('/');
  if (slash == std::string::npos || !is_dns_label(lease.substr(0, slash)) || lease.find('/', slash + 1) != std::string::npos ||
      slash + 1 == lease.size())
    throw UsageError("--audit-lease must be NAMESPACE/NAME, not '" + lease + "'");
  options.lease.lease_namespace = lease.substr(0, slash);
  options.lease.lease_name = lease.substr(slash + 1);
  options.lease.identity = args.text("--audit-identity");
  if (options.lease.identity.empty()) {
    // The pod's name (the Deployment sets POD_NAME), else this host and process.
    if (const char* pod = std::getenv("POD_NAME"); pod && *pod) {
      options.lease.identity = pod;
    } else {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      options.lease.identity = std::string(host) + "_" + std::to_string(getpid());
    }
  }
  // client-go's proportions (15 s, 10 s, 2 s), from one knob.
  const auto lease_ms = std::chrono::milliseconds(1000 * args.whole("--audit-lease-duration", 1, 3600));
  options.lease.lease_duration = lease_ms;
  options.lease.renew_deadline = lease_ms * 2 / 3;
  options.lease.retry_period = lease_ms * 2 / 15;
  try {
    return std::make_unique<webhook::BackgroundAudit>(*config, std::move(options), std::move(logger));
  } catch (const std::invalid_argument& error) {
    throw UsageError(std::string("--audit-lease, --audit-identity: ") + error.what());
  }
}

// `--scheduling batch` (the default): the process runs as SCHED_BATCH, set on the main thread
// before any other thread exists so that every thread inherits it. A batch thread woken by
// a request (or by a log line) does not preempt one in the middle of a review: reviews run to
// completion instead of being sliced against each other, and the server's review p99 at 16
// connections on 2 cores fell by about half with the same client latency (bench/README.md).
// Lowering the policy needs no privilege. Returns why it could not be set ("" when it was).
std::string apply_scheduling(const Args& args) {
  const std::string policy = args.text("--scheduling");
  if (policy != "batch" && policy != "normal")
    throw UsageError("--scheduling must be batch or normal, not '" + policy + "'");
  if (policy == "normal") return "";
  sched_param param{};
  const int error = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  return error == 0 ? "" : std::strerror(error);
}

int serve(const Args& args) {
  if (!args.positional.empty()) throw UsageError("serve takes no positional arguments");
  const auto level = spdlog::level::from_str(args.text("--log-level"));
  if (level == spdlog::level::off && args.text("--log-level") != "off")
    throw UsageError("--log-level must be trace, debug, info, warn, error, critical or off");
  const auto deadline = std::chrono::seconds(args.whole("--shutdown-deadline", 0, 3600));
  // The config as it starts: the cluster model counts its gpuResources (the server loads it
  // again, and refuses a config whose gpuResources differ from the model's).
  const std::shared_ptr<const Engine> startup = load_engine(args);
  ServerOptions options = configure_server(args, *startup);
  const std::string scheduling_error = apply_scheduling(args);  // before the first thread starts
  auto logger = webhook::make_json_logger("gpu-admit", level);
  if (scheduling_error.empty())
    webhook::log_event(*logger, spdlog::level::info, "cpu scheduling",
                       {{"policy", args.text("--scheduling")}});
  else
    webhook::log_event(*logger, spdlog::level::warn, "cannot run as SCHED_BATCH, keeping the default policy",
                       {{"error", scheduling_error}});
  // Declared before the server, so it outlives the hooks the server calls.
  const std::optional<kube::KubeConfig> kube_config = live_cluster_config(args);
  std::unique_ptr<webhook::LiveCluster> live = configure_live_cluster(args, *startup, kube_config, logger);
  if (live) live->attach(options);
  std::unique_ptr<webhook::BackgroundAudit> audit = configure_audit(args, kube_config, logger);
  if (audit) options.extra_metrics.push_back(audit->metrics());

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
    if (audit) {
      webhook::WebhookServer* serving = server.get();
      const webhook::LiveCluster* cluster = live.get();
      audit->start({[serving] { return serving->engine(); }, cluster->model(),
                    [cluster] { return cluster->staleness(); }, [cluster] { return cluster->changes(); }});
    }
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
  // The lease first: the other replica takes over the audit while this one drains.
  if (audit) audit->stop();
  const bool drained = server->shutdown(deadline);
  if (live) live->stop();
  logger->flush();
  std::fflush(nullptr);
  // Past the deadline, connections may still hold the server's threads; and the metrics port's
  // idle keep-alive connections may too. Nothing is left to answer: end the process now.
  std::_Exit(drained ? kExitOk : kExitDenied);
}

}  // namespace

Command serve_command() {
  // The defaults are the option structs' own, so they are stated once.
  const ServerOptions server;
  const webhook::LiveClusterOptions live;
  auto n = [](auto value) { return std::to_string(value); };
  auto s = [](auto duration) { return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(duration).count()); };
  return {command_spec(
              "serve", "",
              "    The HTTPS admission webhook: POST /mutate, POST /validate, GET /healthz, /readyz, /metrics.\n"
              "    Reloads the config and the certificate when their files change; SIGTERM drains and exits.",
              {{"--tls-cert", "F", "", "the serving certificate, PEM (reloaded when it changes)", "", true},
               {"--tls-key", "F", "", "its private key, PEM", "", true},
               {"--client-ca", "F", "", "reviews need a client certificate this CA signed (probes do not)"},
               config_flag(),
               {"--addr", "HOST:PORT", server.address.host + ":" + n(server.address.port), "where to serve HTTPS"},
               {"--metrics-addr", "HOST:PORT", "", "serve /metrics in plain HTTP here (default: on --addr)"},
               cluster_flag(),
               {"--in-cluster", "", "",
                "watch the cluster's nodes, pods, namespaces, DRA claims, disruption budgets and priority "
                "classes with the pod's service account"},
               {"--kubeconfig", "F", "", "watch the cluster this kubeconfig names"},
               {"--context", "C", "", "the kubeconfig context (default: its current-context)"},
               {"--cluster-stale-after", "S", s(live.stale_after),
                "capacity and quota warn instead of denying when the watch is silent this long"},
               {"--admission-ttl", "S", s(live.admission_ttl),
                "an allowed pod counts toward its namespace's GPUs this long before the watch shows it"},
               {"--dra-api-version", "VERSION", live.watch.dra_api_version,
                "watch ResourceClaims and templates at resource.k8s.io/VERSION (v1beta2 in 1.33, v1beta1 in "
                "1.32), or off; a cluster that does not serve them there counts as having none"},
               {"--disruption-budgets", "on|off", live.watch.watch_disruption_budgets ? "on" : "off",
                "watch PodDisruptionBudgets (policy/v1, else v1beta1; a cluster serving neither has none)"},
               {"--priority-classes", "on|off", live.watch.watch_priority_classes ? "on" : "off",
                "watch PriorityClasses (scheduling.k8s.io/v1)"},
               {"--audit-interval", "S", "0",
                "with a live cluster: judge every stored workload this often and write the results as "
                "PolicyReports (0: no background audit)"},
               {"--audit-min-interval", "S", "60", "at most this often after changes in the cluster or the config"},
               {"--audit-lease", "NS/NAME", "gpu-admit/gpu-admit-audit",
                "the coordination.k8s.io Lease whose holder writes the reports"},
               {"--audit-identity", "ID", "", "this replica's name in the Lease (default: $POD_NAME, else host_pid)"},
               {"--audit-lease-duration", "S", "15",
                "a writer that stops renewing is replaced after this; it stops writing after two thirds of it"},
               {"--audit-scheduling", "idle|batch", "idle",
                "idle: the audit runs only on CPU no review wants; batch: as the reviews (tests on a shared machine)"},
               {"--max-body-bytes", "N", n(server.max_body_bytes), "largest request body"},
               {"--read-timeout", "S", s(server.read_timeout), "to read a request body"},
               {"--write-timeout", "S", s(server.write_timeout), "to write an answer"},
               {"--handshake-timeout", "S", s(server.handshake_timeout), "for the TLS handshake"},
               {"--header-timeout", "S", "--read-timeout", "to read a request's headers"},
               {"--io-threads", "N", n(server.io_threads),
                "event loops running TLS and HTTP (0: one per CPU this process may use, at most 8)"},
               {"--workers", "N", n(server.workers), "requests answered at once"},
               {"--max-queued-connections", "N", n(server.max_queued_connections),
                "complete requests waiting for a worker"},
               {"--keep-alive-timeout", "S", s(server.keep_alive_timeout), "an idle keep-alive connection is closed after"},
               {"--keep-alive-max-requests", "N", n(server.keep_alive_max_requests), "requests on one connection"},
               {"--max-connections", "N", n(server.max_connections), "connections open at once"},
               {"--max-connections-per-client", "N", n(server.max_connections_per_client),
                "connections open at once from one address"},
               {"--max-header-bytes", "N", n(server.max_header_bytes), "bytes of one request's headers"},
               {"--max-header-count", "N", n(server.max_header_count), "headers of one request"},
               {"--max-inflight-body-bytes", "N", n(server.max_inflight_body_bytes),
                "request bodies under review at once; more wait"},
               {"--watch-interval-ms", "N", n(server.watch_interval.count()),
                "how often the config and certificate files are checked"},
               {"--shutdown-deadline", "S", "20", "after SIGTERM, how long reviews in flight may finish"},
               {"--log-level", "LEVEL", "info", "trace, debug, info, warn, error, critical or off"},
               {"--scheduling", "batch|normal", "batch", "batch: a waking thread does not preempt a review"}}),
          serve};
}

}  // namespace gpuadmit::cli
