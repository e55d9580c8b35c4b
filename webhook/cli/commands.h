// The subcommands of `gpu-admit`, one folder each (webhook/cli/<verb>/); run.cpp dispatches to them.
#pragma once

#include <memory>
#include <string>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/scheduling_objects.h"
#include "gpuadmit/engine.h"
#include "webhook/cli/args.h"

namespace gpuadmit::cli {

// Exit statuses shared by every subcommand.
constexpr int kExitOk = 0;
constexpr int kExitDenied = 1;  // a denial (check, review) or a failed expectation (test)
constexpr int kExitBadInput = 2;

// A subcommand: its options and usage, declared once (webhook/cli/args.h), and what it runs.
struct Command {
  CommandSpec spec;
  int (*run)(const Args& args);
};

Command check_command();      // check_command.cpp
Command audit_command();      // audit_command.cpp
Command review_command();     // review_command.cpp
Command inventory_command();  // inventory_command.cpp
Command test_command();       // test_command.cpp
Command watch_command();      // watch_command.cpp
Command serve_command();      // serve_command.cpp
Command explain_command();    // explain_command.cpp

// A policy's keys as the README's markdown table (explain -o markdown).
std::string policy_key_table(const std::vector<PolicyKey>& keys);

// The options several commands share.
Flag config_flag();   // --config F
Flag cluster_flag();  // --cluster F
// `flags` followed by input_limit_flags(): what every command's spec is built from.
CommandSpec command_spec(std::string name, std::string operands, std::string summary, std::vector<Flag> flags);

// --config F, or the embedded default. Throws ConfigError.
std::shared_ptr<const Engine> load_engine(const Args& args);

// --cluster F (repeatable: files or directories of Nodes, Pods, Namespaces), or null when not
// given; its GPU resources are `engine`'s gpuResources. Throws capacity::SnapshotError naming the
// file and object. For check, review, inventory and serve.
std::unique_ptr<capacity::ClusterModel> load_cluster(const Args& args, const Engine& engine);

// The objects a review consults beside its own, read from the input (check's files, audit's
// snapshot): a ResourceClaim (or template), PodDisruptionBudget or PriorityClass is added to
// `catalog` (true); anything else, or one that does not parse, is not (it is reported when
// reviewed). `ns`: the namespace of objects that name none.
bool catalog_object(k8s::ObjectCatalog& catalog, const nlohmann::json& object, const std::string& ns);
// A workload's summary (GPUs per pod, model-load time) for the autoscalers that name it.
void catalog_workload(k8s::ObjectCatalog& catalog, const nlohmann::json& object, const std::string& ns, const Engine& engine);

}  // namespace gpuadmit::cli
