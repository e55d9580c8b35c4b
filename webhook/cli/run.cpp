// `gpu-admit COMMAND ...`: the commands in usage order, the usage text built from their option
// declarations, dispatch, and how each kind of error becomes a message and an exit status.
#include "webhook/cli/run.h"

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <string_view>

#include "engine/input_limits.h"
#include "engine/k8s/json_fields.h"
#include "engine/workload_summary.h"
#include "webhook/cli/commands.h"

namespace gpuadmit::cli {
namespace {

// In the order the usage text lists them.
const std::vector<Command>& commands() {
  static const std::vector<Command> all = {check_command(), audit_command(), review_command(),
                                           inventory_command(), test_command(), watch_command(),
                                           serve_command(), explain_command()};
  return all;
}

std::string usage() {
  std::string out = "gpu-admit: Kubernetes admission webhook and policy engine for GPU workloads\n\nusage:\n";
  for (const Command& command : commands()) out += command.spec.synopsis("  ") + "\n" + command.spec.summary + "\n";
  out += "\n`gpu-admit COMMAND --help` lists a command's options with their defaults. Every command also\n"
         "takes the limits on its input: --max-depth N and --max-file-bytes N.\n";
  return out;
}

}  // namespace

Flag config_flag() {
  return {"--config", "F", "", "the policy configuration (default: the embedded policies/default.yaml)"};
}

Flag cluster_flag() {
  return {"--cluster", "F", "",
          "a cluster snapshot for gpu-capacity and gpu-quota: kubectl get nodes,pods,namespaces -A -o json; "
          "files or directories, repeatable"};
}

CommandSpec command_spec(std::string name, std::string operands, std::string summary, std::vector<Flag> flags) {
  for (Flag& flag : input_limit_flags()) flags.push_back(std::move(flag));
  return {std::move(name), std::move(operands), std::move(summary), std::move(flags)};
}

std::shared_ptr<const Engine> load_engine(const Args& args) {
  if (auto path = args.value("--config")) return Engine::from_file(*path);
  return Engine::from_default();
}

bool catalog_object(k8s::ObjectCatalog& catalog, const nlohmann::json& object, const std::string& ns) {
  if (!object.is_object() || !k8s::ObjectCatalog::holds(k8s::json_fields::string_or(object, "kind"))) return false;
  nlohmann::json copy = object;
  if (!copy["metadata"].is_object()) copy["metadata"] = nlohmann::json::object();
  if (k8s::json_fields::string_or(copy["metadata"], "namespace").empty()) copy["metadata"]["namespace"] = ns;
  try {
    return catalog.upsert(copy);
  } catch (const std::exception&) {
    return false;
  }
}

void catalog_workload(k8s::ObjectCatalog& catalog, const nlohmann::json& object, const std::string& ns, const Engine& engine) {
  if (!object.is_object()) return;
  if (auto summary = summarize_workload(object, ns, engine.config().kinds, engine.config().gpu, &catalog.claims))
    catalog.workloads.insert_or_assign(std::move(summary->first), summary->second);
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
    std::cerr << usage();
    return kExitBadInput;
  }
  const std::string_view name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    std::cout << usage();
    return kExitOk;
  }
  const auto& all = commands();
  auto command = std::find_if(all.begin(), all.end(), [&](const Command& c) { return c.spec.name == name; });
  if (command == all.end()) {
    std::cerr << "gpu-admit: unknown command '" << name << "'\n\n" << usage();
    return kExitBadInput;
  }
  for (int i = 2; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help") {
      std::cout << command->spec.help();
      return kExitOk;
    }
  try {
    return command->run(parse_args(argc, argv, 2, command->spec));
  } catch (const UsageError& error) {
    std::cerr << "gpu-admit " << name << ": " << error.what() << "\n\n" << command->spec.help();
  } catch (const ConfigError& error) {
    std::cerr << "gpu-admit: bad configuration: " << error.what() << "\n";
  } catch (const capacity::SnapshotError& error) {
    std::cerr << "gpu-admit " << name << ": bad cluster snapshot: " << error.what() << "\n";
  } catch (const std::exception& error) {
    std::cerr << "gpu-admit " << name << ": " << error.what() << "\n";
  }
  return kExitBadInput;
}

}  // namespace gpuadmit::cli
