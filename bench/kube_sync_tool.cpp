// Initial sync of a large cluster from the fake API server, and watch event throughput.
//
//   kube_sync_tool [NODES] [PODS] [EVENTS] [model|store|count]   (default 5000 150000 100000 model)
//
// `model` feeds the capacity model through the webhook's own adapter (ClusterModelSink), as
// `serve --in-cluster` does; `store` keeps every trimmed object as JSON in a map (what the model
// avoids); `count` only counts, which leaves the client's own memory (keys, buffers).
//
// The fake API server runs in a child process so that the resident memory reported is the
// client's (its trimmed objects held in a map, as the capacity model would hold them), not the
// fake's copy of the cluster. Both talk over TLS on 127.0.0.1, as in the tests.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>
#include <fstream>
#include <iostream>
#include <unordered_map>

#include "tests/support/fake_apiserver.h"
#include "engine/capacity/cluster_model.h"
#include "webhook/kube/model_sink.h"
#include "webhook/kube/objects.h"
#include "webhook/kube/watch.h"

namespace {

using namespace gpuadmit;
using nlohmann::json;

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field) + 1));
  return -1;
}

// Keeps every trimmed object as JSON by kind and key: what a JSON-holding model would cost.
class StoringSink : public kube::ClusterObjectSink {
 public:
  void upsert(kube::ObjectKind kind, const json& object) override {
    objects_[static_cast<int>(kind)][kube::object_key(object)] = object;
  }
  void remove(kube::ObjectKind kind, const json& object) override {
    objects_[static_cast<int>(kind)].erase(kube::object_key(object));
  }
  void list_complete(kube::ObjectKind kind, const std::unordered_set<std::string>& keys) override {
    auto& held = objects_[static_cast<int>(kind)];
    for (auto it = held.begin(); it != held.end();) it = keys.count(it->first) ? std::next(it) : held.erase(it);
  }
  std::unordered_map<std::string, json> objects_[3];
};

// Counts upserts and removals, then hands them on (or drops them, for `count`).
class CountingSink : public kube::ClusterObjectSink {
 public:
  explicit CountingSink(kube::ClusterObjectSink* inner) : inner_(inner) {}
  void upsert(kube::ObjectKind kind, const json& object) override {
    if (inner_) inner_->upsert(kind, object);
    ++events_;
  }
  void remove(kube::ObjectKind kind, const json& object) override {
    if (inner_) inner_->remove(kind, object);
    ++events_;
  }
  void upsert_page(kube::ObjectKind kind, const std::vector<json>& objects) override {
    if (inner_) inner_->upsert_page(kind, objects);
    events_ += objects.size();
  }
  void list_complete(kube::ObjectKind kind, const std::unordered_set<std::string>& keys) override {
    if (inner_) inner_->list_complete(kind, keys);
  }
  std::atomic<uint64_t> events_{0};

 private:
  kube::ClusterObjectSink* inner_;
};

void send_line(int fd, const std::string& text) {
  std::string line = text + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(3);
}

std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

int run_fake(int to_parent, int from_parent, int nodes, int pods, int events) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("kube_sync_tool_" + std::to_string(::getpid()));
  testing::FakeApiServer api(dir);
  api.set_token("bench");
  std::vector<json> batch;
  for (int i = 0; i < nodes; ++i) batch.push_back(testing::fake_node("gpu-node-" + std::to_string(i), 8));
  api.load("nodes", batch);
  batch.clear();
  const int namespaces = 200;
  for (int i = 0; i < namespaces; ++i) batch.push_back(testing::fake_namespace("team-" + std::to_string(i)));
  api.load("namespaces", batch);
  batch.clear();
  size_t pod_bytes = 0;
  for (int i = 0; i < pods; ++i) {
    batch.push_back(testing::fake_pod("team-" + std::to_string(i % namespaces), "pod-" + std::to_string(i),
                                      "gpu-node-" + std::to_string(i % std::max(nodes, 1)), 1));
    if (i == 0) pod_bytes = batch.back().dump().size();
  }
  api.load("pods", batch);
  batch.clear();
  send_line(to_parent, api.write_kubeconfig(dir / "kubeconfig", "bench") + " " + std::to_string(pod_bytes) + " " +
                           std::to_string(testing::fake_node("x", 8).dump().size()));
  if (read_line(from_parent) != "events") return 0;
  for (int i = 0; i < events; ++i)  // MODIFIED: the pod's labels change
    batch.push_back(testing::fake_pod("team-" + std::to_string(i % namespaces), "pod-" + std::to_string(i % std::max(pods, 1)),
                                      "gpu-node-" + std::to_string(i % std::max(nodes, 1)), 1));
  for (auto& pod : batch) pod["metadata"]["labels"]["revision"] = "2";
  api.apply_many("pods", std::move(batch));
  send_line(to_parent, "ready");
  read_line(from_parent);  // "quit"
  api.stop();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int nodes = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int pods = argc > 2 ? std::atoi(argv[2]) : 150000;
  const int events = argc > 3 ? std::atoi(argv[3]) : 100000;
  const std::string mode = argc > 4 ? argv[4] : "model";
  if (mode != "model" && mode != "store" && mode != "count") {
    std::cerr << "usage: kube_sync_tool [NODES] [PODS] [EVENTS] [model|store|count]\n";
    return 2;
  }
  int up[2], down[2];
  if (::pipe(up) != 0 || ::pipe(down) != 0) return 3;
  pid_t child = ::fork();
  if (child == 0) {
    ::close(up[0]);
    ::close(down[1]);
    return run_fake(up[1], down[0], nodes, pods, events);
  }
  ::close(up[1]);
  ::close(down[0]);
  spdlog::set_level(spdlog::level::warn);
  std::string ready = read_line(up[0]);
  std::istringstream fields(ready);
  std::string kubeconfig;
  size_t pod_bytes = 0, node_bytes = 0;
  fields >> kubeconfig >> pod_bytes >> node_bytes;
  if (kubeconfig.empty()) return 3;

  const long rss_before = status_kib("VmRSS:");
  capacity::ClusterModel model;
  webhook::ClusterModelSink model_sink(model, std::make_shared<spdlog::logger>("sync"));
  StoringSink storing_sink;
  CountingSink sink(mode == "model" ? static_cast<kube::ClusterObjectSink*>(&model_sink)
                    : mode == "store" ? static_cast<kube::ClusterObjectSink*>(&storing_sink)
                                      : nullptr);
  kube::WatchOptions options;
  auto watch = std::make_unique<kube::ClusterWatch>(kube::load_kubeconfig(kubeconfig), sink, options);
  auto cpu_seconds = [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  // The fake's CPU over the same time: it shares the 2 cores, and a real API server's cost is its own.
  auto child_cpu_seconds = [child] {
    std::ifstream in("/proc/" + std::to_string(child) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  };
  const double cpu_begin = cpu_seconds();
  const double child_cpu_begin = child_cpu_seconds();
  const auto begin = kube::Clock::now();
  watch->start();
  if (!watch->wait_synced(std::chrono::minutes(10))) {
    std::cerr << "not synced: " << watch->status().to_json().dump() << "\n";
    return 1;
  }
  const double sync_seconds = std::chrono::duration<double>(kube::Clock::now() - begin).count();
  const double sync_cpu = cpu_seconds() - cpu_begin;
  const double sync_fake_cpu = child_cpu_seconds() - child_cpu_begin;
  const long rss_synced = status_kib("VmRSS:");
  const long hwm_synced = status_kib("VmHWM:");

  sink.events_ = 0;  // the list's upserts are not watch events
  send_line(down[1], "events");
  read_line(up[0]);  // the events are waiting in the fake's log
  const double events_cpu_begin = cpu_seconds();
  const auto events_begin = kube::Clock::now();
  while (sink.events_ < static_cast<uint64_t>(events) &&
         kube::Clock::now() - events_begin < std::chrono::minutes(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double event_seconds = std::chrono::duration<double>(kube::Clock::now() - events_begin).count();
  const uint64_t received = sink.events_;
  const double events_cpu = cpu_seconds() - events_cpu_begin;
  watch->stop();
  send_line(down[1], "quit");
  int child_status = 0;
  ::waitpid(child, &child_status, 0);

  std::printf("cluster: %d nodes (%zu bytes each as served), %d pods (%zu bytes each), 200 namespaces\n", nodes,
              node_bytes, pods, pod_bytes);
  std::printf("sink: %s\n", mode == "model"   ? "the capacity model (ClusterModelSink, as serve --in-cluster)"
                            : mode == "store" ? "stores every trimmed object (json) by key"
                                              : "counts only");
  if (mode == "model") {
    auto view = model.read();
    std::printf("model: %zu nodes, %zu pods, %zu pools\n", view.node_count(), view.pod_count(), view.pools().size());
  }
  std::printf("initial sync (list pages of %d, TLS, parse, trim): %.2f s wall, %.2f s CPU in the client, %.2f s CPU in the fake API server\n",
              options.page_size, sync_seconds, sync_cpu, sync_fake_cpu);
  std::printf("resident memory: %.1f MiB before, %.1f MiB after sync (peak %.1f MiB)\n", rss_before / 1024.0,
              rss_synced / 1024.0, hwm_synced / 1024.0);
  std::printf("watch events: %llu MODIFIED pod events in %.2f s wall (%.2f s CPU) = %.0f events/s\n",
              static_cast<unsigned long long>(received), event_seconds, events_cpu, received / event_seconds);
  return received == static_cast<uint64_t>(events) ? 0 : 1;
}
