// `gpu-admit watch`: list and watch nodes, pods, namespaces, DRA claims, disruption budgets and
// priority classes from a live API server and print what arrives as JSON lines, for a bounded time. Debugs the connection, credentials and
// RBAC the webhook's live cluster state depends on.
#include <iostream>
#include <set>
#include <thread>

#include "webhook/cli/commands.h"
#include "webhook/kube/objects.h"
#include "webhook/kube/watch.h"

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

int watch(const Args& args) {
  if (!args.positional.empty()) throw UsageError("watch takes no positional arguments");
  const bool in_cluster = args.flag("--in-cluster");
  const auto kubeconfig = args.value("--kubeconfig");
  if (in_cluster == kubeconfig.has_value()) throw UsageError("watch needs exactly one of --in-cluster and --kubeconfig F");
  if (in_cluster && args.value("--context")) throw UsageError("--context only goes with --kubeconfig");

  double duration = 10;
  try {
    duration = std::stod(args.text("--duration"));
  } catch (const std::exception&) {
    throw UsageError("--duration takes seconds");
  }
  if (!(duration > 0 && duration <= 86400)) throw UsageError("--duration must be between 0 and 86400 seconds");
  const int page_size = static_cast<int>(args.whole("--page-size", 1, 1'000'000));

  kube::KubeConfig config = in_cluster ? kube::load_in_cluster_config()
                                       : kube::load_kubeconfig(*kubeconfig, args.text("--context"));
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

}  // namespace

Command watch_command() {
  return {command_spec("watch", "",
                       "    List and watch nodes, pods, namespaces, DRA claims, disruption budgets and priority classes\n"
                       "    for a while, printing JSON lines.\n"
                       "    Exit 0 when every kind synced, 1 when not, 2 for a bad kubeconfig.",
                       {{"--kubeconfig", "F", "", "the API server and credentials (or --in-cluster)"},
                        {"--context", "C", "", "the kubeconfig context (default: its current-context)"},
                        {"--in-cluster", "", "", "the pod's service account and the KUBERNETES_SERVICE_* address"},
                        {"--duration", "S", "10", "seconds to watch"},
                        {"--page-size", "N", std::to_string(kube::WatchOptions{}.page_size), "objects per list page"},
                        {"--quiet", "", "", "print only the LIST, SYNCED and STATUS lines, not every event"}}),
          watch};
}

}  // namespace gpuadmit::cli
