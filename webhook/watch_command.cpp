// `gpu-admit watch`: list and watch nodes, pods and namespaces from a live API server and print
// what arrives as JSON lines, for a bounded time. Debugs the connection, credentials and RBAC
// the webhook's live cluster state depends on.
#include <iostream>
#include <set>
#include <thread>

#include "webhook/commands.h"
#include "webhook/kube_objects.h"
#include "webhook/kube_watch.h"

namespace gpuadmit::cli {
namespace {

using nlohmann::json;

// Prints one JSON line per call; the watch serializes calls, so lines never interleave.
class PrintingSink : public kube::ClusterObjectSink {
 public:
  explicit PrintingSink(bool events) : events_(events) {}
  void upsert(kube::ObjectKind kind, const json& object) override { print("UPSERT", kind, object); }
  void remove(kube::ObjectKind kind, const json& object) override { print("DELETE", kind, object); }
  void list_complete(kube::ObjectKind kind, const std::unordered_set<std::string>& keys) override {
    json line = {{"event", "LIST"}, {"kind", kube::kind_name(kind)}, {"objects", keys.size()}};
    if (events_) line["keys"] = std::set<std::string>(keys.begin(), keys.end());  // sorted
    std::cout << line.dump() << "\n" << std::flush;
  }

 private:
  void print(const char* event, kube::ObjectKind kind, const json& object) {
    if (!events_) return;
    json line = {{"event", event}, {"kind", kube::kind_name(kind)}, {"key", kube::object_key(object)},
                 {"resourceVersion", kube::resource_version_of(object)}};
    std::cout << line.dump() << "\n" << std::flush;
  }
  bool events_;
};

}  // namespace

int watch_command(int argc, char** argv) {
  Args args = parse_args(argc, argv, 2, {"--kubeconfig", "--context", "--duration", "--page-size"},
                         {"--in-cluster", "--quiet"});
  if (!args.positional.empty()) throw UsageError("watch takes no positional arguments");
  const bool in_cluster = args.flag("--in-cluster");
  const auto kubeconfig = args.value("--kubeconfig");
  if (in_cluster == kubeconfig.has_value()) throw UsageError("watch needs exactly one of --in-cluster and --kubeconfig F");
  if (in_cluster && args.value("--context")) throw UsageError("--context only goes with --kubeconfig");

  double duration = 10;
  int page_size = 500;
  try {
    duration = std::stod(args.value_or("--duration", "10"));
    page_size = std::stoi(args.value_or("--page-size", "500"));
  } catch (const std::exception&) {
    throw UsageError("--duration takes seconds and --page-size a count");
  }
  if (!(duration > 0 && duration <= 86400)) throw UsageError("--duration must be between 0 and 86400 seconds");
  if (page_size < 1) throw UsageError("--page-size must be at least 1");

  kube::KubeConfig config = in_cluster ? kube::load_in_cluster_config()
                                       : kube::load_kubeconfig(*kubeconfig, args.value_or("--context", ""));
  kube::WatchOptions options;
  options.page_size = page_size;
  PrintingSink sink(!args.flag("--quiet"));
  kube::ClusterWatch watch(config, sink, options);
  watch.start();
  const auto deadline = kube::Clock::now() + std::chrono::duration_cast<kube::Clock::duration>(std::chrono::duration<double>(duration));
  bool reported_sync = false;
  while (kube::Clock::now() < deadline) {
    if (!reported_sync && watch.status().synced()) {
      std::cout << json{{"event", "SYNCED"}, {"source", config.source}}.dump() << "\n" << std::flush;
      reported_sync = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watch.stop();
  std::cout << json{{"event", "STATUS"}, {"status", watch.status().to_json()}}.dump() << "\n";
  // Not synced in time: the webhook would not be ready either.
  return watch.status().synced() ? kExitOk : kExitDenied;
}

}  // namespace gpuadmit::cli
