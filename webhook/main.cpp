#include "webhook/main.h"

#include <pthread.h>
#include <sys/resource.h>

#include <iostream>
#include <string_view>

#include "engine/input_limits.h"
#include "webhook/commands.h"

namespace gpuadmit::cli {
namespace {

constexpr std::string_view kUsage = R"(gpu-admit: Kubernetes admission webhook and policy engine for GPU workloads

usage:
  gpu-admit check  [--config F] [--cluster F] [-o text|json] [--show-mutated] [--namespace NS] PATH...
      Review manifests (files, directories, - for stdin) as if each were being created.
      Exit 0 all allowed, 1 any denied, 2 unreadable input or bad config.
  gpu-admit review [--config F] [--cluster F] [FILE|-]
      Read one AdmissionReview request, write the AdmissionReview response the webhook sends.
  gpu-admit inventory --cluster F [--config F] [-o text|json]
      Pools, GPUs total/allocated/free, largest free block, stranded GPUs, usage per namespace.
  gpu-admit test   [-o text|junit] SUITE.yaml...
      Run policy test suites (see README, "Policy tests"); prints "N passed, M failed".
      Exit 0 all passed, 1 any failed, 2 a bad suite file.
  gpu-admit watch  (--kubeconfig F [--context C] | --in-cluster) [--duration S] [--quiet]
      List and watch nodes, pods and namespaces for S seconds (default 10), printing JSON lines.
      Exit 0 when all three kinds synced, 1 when not, 2 for a bad kubeconfig.
  gpu-admit serve --tls-cert F --tls-key F [--config F] [--addr 0.0.0.0:8443]
                  [--metrics-addr HOST:PORT] [--client-ca F] [limits...]
      The HTTPS admission webhook: POST /mutate, POST /validate, GET /healthz, /readyz, /metrics.
      Reloads the config and the certificate when their files change; SIGTERM drains and exits.
      Limits: --max-body-bytes (3 MiB), --read-timeout/--write-timeout S (10), --workers (64),
      --max-queued-connections (256), --keep-alive-timeout S (5), --keep-alive-max-requests
      (1000), --watch-interval-ms (1000), --shutdown-deadline S (20), --log-level (info),
      --scheduling batch|normal (batch: a waking thread does not preempt a review).
      Hostile clients: --handshake-timeout S (5), --header-timeout S (= --read-timeout),
      --max-connections (1024), --max-connections-per-client (128), --max-header-bytes
      (64 KiB), --max-header-count (100), --max-inflight-body-bytes (8 MiB).

Every command takes the limits on its input: --max-depth N (JSON and YAML nesting, default 1000)
and --max-file-bytes N (one manifest, config, suite or kubeconfig file, default 64 MiB).

--config F   the policy configuration (default: the embedded policies/default.yaml)
--cluster F  a cluster snapshot (`kubectl get nodes,pods,namespaces -A -o json`, files or a
             directory) for the gpu-capacity and gpu-quota policies; without it they check nothing
)";

}  // namespace

std::shared_ptr<const Engine> load_engine(const Args& args) {
  if (auto path = args.value("--config")) return Engine::from_file(*path);
  return Engine::from_default();
}

std::unique_ptr<capacity::ClusterModel> load_cluster(const Args& args, const Engine& engine) {
  auto it = args.values.find("--cluster");
  if (it == args.values.end() || it->second.empty()) return nullptr;
  return capacity::ClusterModel::load(it->second, engine.config().gpu);
}

// Recursive walks over input go as deep as --max-depth (engine/input_limits.h): every thread gets
// a stack of kThreadStackBytes, set explicitly rather than taken from whatever RLIMIT_STACK the
// process inherited, and the main thread's limit is raised to it where it is lower.
void set_stack_sizes() {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) == 0) {
    pthread_attr_setstacksize(&attr, kThreadStackBytes);
    pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
  }
  rlimit stack{};
  if (getrlimit(RLIMIT_STACK, &stack) == 0 && stack.rlim_cur != RLIM_INFINITY && stack.rlim_cur < kThreadStackBytes &&
      (stack.rlim_max == RLIM_INFINITY || stack.rlim_max >= kThreadStackBytes)) {
    stack.rlim_cur = kThreadStackBytes;
    setrlimit(RLIMIT_STACK, &stack);
  }
}

int run_main(int argc, char** argv) {
  set_stack_sizes();
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitBadInput;
  }
  const std::string_view command = argv[1];
  try {
    if (command == "check") return check_command(argc, argv);
    if (command == "review") return review_command(argc, argv);
    if (command == "inventory") return inventory_command(argc, argv);
    if (command == "test") return test_command(argc, argv);
    if (command == "watch") return watch_command(argc, argv);
    if (command == "serve") return serve_command(argc, argv);
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return kExitOk;
    }
    std::cerr << "gpu-admit: unknown command '" << command << "'\n\n" << kUsage;
    return kExitBadInput;
  } catch (const UsageError& error) {
    std::cerr << "gpu-admit " << command << ": " << error.what() << "\n\n" << kUsage;
  } catch (const ConfigError& error) {
    std::cerr << "gpu-admit: bad configuration: " << error.what() << "\n";
  } catch (const capacity::SnapshotError& error) {
    std::cerr << "gpu-admit " << command << ": bad cluster snapshot: " << error.what() << "\n";
  } catch (const std::exception& error) {
    std::cerr << "gpu-admit " << command << ": " << error.what() << "\n";
  }
  return kExitBadInput;
}

}  // namespace gpuadmit::cli
