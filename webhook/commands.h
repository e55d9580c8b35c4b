// The subcommands of `gpu-admit`, one file each; main.cpp dispatches to them.
#pragma once

#include <memory>
#include <string>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"
#include "webhook/args.h"

namespace gpuadmit::cli {

// Exit statuses shared by every subcommand.
constexpr int kExitOk = 0;
constexpr int kExitDenied = 1;  // a denial (check, review) or a failed expectation (test)
constexpr int kExitBadInput = 2;

int check_command(int argc, char** argv);   // check_command.cpp
int review_command(int argc, char** argv);  // review_command.cpp
int inventory_command(int argc, char** argv);  // inventory_command.cpp
int test_command(int argc, char** argv);    // test_command.cpp
int watch_command(int argc, char** argv);   // watch_command.cpp
int serve_command(int argc, char** argv);   // serve_command.cpp

// --config F, or the embedded default. Throws ConfigError.
std::shared_ptr<const Engine> load_engine(const Args& args);

// --cluster F (repeatable: files or directories of Nodes, Pods, Namespaces), or null when not
// given; its GPU resources are `engine`'s gpuResources. Throws capacity::SnapshotError naming the
// file and object. For check, review, inventory and serve.
std::unique_ptr<capacity::ClusterModel> load_cluster(const Args& args, const Engine& engine);

}  // namespace gpuadmit::cli
