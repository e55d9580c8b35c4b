// The capacity model at Kubernetes' documented limits (5,000 nodes, 150,000 pods): writes a seeded
// snapshot as `kubectl get nodes,pods -A -o json` would, then reports the snapshot load time, the
// resident memory, and place() latency p50/p99 over seeded pod specs.
//   capacity_scale_tool [nodes] [pods] [decisions] [seed]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "engine/capacity/placement.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string status_field(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(key)) return line.substr(key.size() + 1);
  return "?";
}

// CPU time of this thread: what a decision cost, without the time another process had the core.
double thread_cpu_micros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

struct Shape {
  std::string product;
  int gpus, memory_mib;
  std::string cpu, memory;
};

json node(int i, std::mt19937& rng) {
  static const std::vector<Shape> shapes = {{"NVIDIA-A100-SXM4-80GB", 8, 81920, "254", "1950Gi"},
                                            {"NVIDIA-H100-80GB-HBM3", 8, 81559, "190", "1950Gi"},
                                            {"NVIDIA-L4", 1, 23034, "7910m", "27Gi"},
                                            {"NVIDIA-A10G", 4, 23028, "47", "180Gi"},
                                            {"", 0, 0, "31850m", "120Gi"}};
  const Shape& s = shapes[rng() % shapes.size()];
  const std::string name = "node-" + std::to_string(i);
  json labels = {{"kubernetes.io/hostname", name}, {"topology.kubernetes.io/zone", "zone-" + std::to_string(rng() % 3)}};
  json allocatable = {{"cpu", s.cpu}, {"memory", s.memory}, {"ephemeral-storage", "400Gi"}, {"pods", "110"}};
  json taints = json::array();
  if (s.gpus) {
    labels["nvidia.com/gpu.product"] = s.product;
    labels["nvidia.com/gpu.count"] = std::to_string(s.gpus);
    labels["nvidia.com/gpu.memory"] = std::to_string(s.memory_mib);
    labels["nvidia.com/cuda.driver-version.major"] = "550";
    labels["nvidia.com/cuda.driver-version.minor"] = "54";
    labels["nvidia.com/cuda.driver-version.revision"] = "15";
    allocatable["nvidia.com/gpu"] = std::to_string(s.gpus);
    taints.push_back({{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}});
  }
  return {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", {{"taints", taints}}},
          {"status", {{"allocatable", allocatable}, {"capacity", allocatable},
                      {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json pod_spec(std::mt19937& rng, bool gpu) {
  json requests = {{"cpu", std::to_string(1 + rng() % 8)}, {"memory", std::to_string(1 + rng() % 32) + "Gi"}};
  if (gpu) requests["nvidia.com/gpu"] = std::to_string(1 << (rng() % 4));
  json spec = {{"containers", {{{"name", "main"}, {"image", "registry.example.com/app:1"},
                                {"resources", {{"requests", requests}, {"limits", requests}}}}}}};
  if (gpu) spec["tolerations"] = {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}};
  if (rng() % 4 == 0) spec["nodeSelector"] = {{"topology.kubernetes.io/zone", "zone-" + std::to_string(rng() % 3)}};
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  const int nodes = argc > 1 ? std::stoi(argv[1]) : 5000;
  const int pods = argc > 2 ? std::stoi(argv[2]) : 150000;
  const int decisions = argc > 3 ? std::stoi(argv[3]) : 20000;
  const unsigned seed = argc > 4 ? static_cast<unsigned>(std::stoul(argv[4])) : 42;
  const std::string path = "/tmp/gpuadmit-capacity-scale-" + std::to_string(seed) + ".json";
  {
    std::mt19937 rng(seed);
    std::ofstream out(path);
    out << R"({"apiVersion":"v1","kind":"List","items":[)";
    // What is still free per node, so pods are bound only where the scheduler could have put them.
    struct Room {
      std::int64_t cpu, memory, gpus, pods;
    };
    std::vector<Room> room;
    for (int i = 0; i < nodes; ++i) {
      json n = node(i, rng);
      const json& a = n["status"]["allocatable"];
      room.push_back({gpuadmit::k8s::Quantity::parse(a["cpu"].get<std::string>()).milli_value(),
                      gpuadmit::k8s::Quantity::parse(a["memory"].get<std::string>()).value(),
                      a.contains("nvidia.com/gpu") ? std::stoll(a["nvidia.com/gpu"].get<std::string>()) : 0, 110});
      out << (i ? "," : "") << n.dump();
    }
    for (int i = 0; i < pods; ++i) {
      json spec = pod_spec(rng, rng() % 3 == 0);
      const auto shape = gpuadmit::capacity::PodShape::from_pod_spec(spec, {});
      for (int attempt = 0; attempt < 20; ++attempt) {  // else it stays Pending
        Room& r = room[rng() % nodes];
        if (r.cpu < shape.requests.cpu_milli || r.memory < shape.requests.memory || r.gpus < shape.gpu_devices || r.pods < 1)
          continue;
        r.cpu -= shape.requests.cpu_milli;
        r.memory -= shape.requests.memory;
        r.gpus -= shape.gpu_devices;
        --r.pods;
        spec["nodeName"] = "node-" + std::to_string(&r - room.data());
        break;
      }
      json pod = {{"apiVersion", "v1"}, {"kind", "Pod"},
                  {"metadata", {{"name", "pod-" + std::to_string(i)}, {"namespace", "ns-" + std::to_string(i % 200)},
                                {"uid", "00000000-0000-4000-8000-" + std::to_string(100000000000LL + i)}}},
                  {"spec", spec}, {"status", {{"phase", "Running"}}}};
      out << "," << pod.dump();
    }
    out << "]}\n";
  }
  std::ifstream sized(path, std::ios::ate | std::ios::binary);
  const double megabytes = static_cast<double>(sized.tellg()) / (1024 * 1024);
  const std::string rss_before = status_field("VmRSS:");

  std::cout << "load average (1, 5, 15 min) before loading: " << load_average() << "\n";
  const auto t0 = Clock::now();
  const double cpu0 = thread_cpu_micros();
  auto model = gpuadmit::capacity::ClusterModel::load({path}, {});
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double load_cpu_s = (thread_cpu_micros() - cpu0) / 1e6;
  std::remove(path.c_str());

  std::mt19937 rng(seed + 1);
  std::vector<json> specs;
  for (int i = 0; i < 1000; ++i) specs.push_back(pod_spec(rng, i % 4 != 0));
  std::vector<gpuadmit::capacity::PodShape> shapes;
  for (const json& s : specs) shapes.push_back(gpuadmit::capacity::PodShape::from_pod_spec(s, {}));
  std::vector<double> micros, zone_micros;  // all decisions; those of pods that select a zone
  std::vector<double> cpu_micros, zone_cpu_micros;  // the same in thread CPU time
  micros.reserve(decisions);
  std::size_t capable = 0;
  for (int i = 0; i < decisions; ++i) {
    const std::size_t k = static_cast<std::size_t>(i) % specs.size();
    const double cpu_start = thread_cpu_micros();
    const auto start = Clock::now();
    const auto view = model->read();
    const auto placement = gpuadmit::capacity::place(view, specs[k], shapes[k], {});
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    cpu_micros.push_back(thread_cpu_micros() - cpu_start);
    if (specs[k].contains("nodeSelector")) {
      zone_micros.push_back(micros.back());
      zone_cpu_micros.push_back(cpu_micros.back());
    }
    capable += placement.can_ever_run();
  }
  std::sort(micros.begin(), micros.end());
  std::sort(zone_micros.begin(), zone_micros.end());
  for (auto* v : {&cpu_micros, &zone_cpu_micros}) std::sort(v->begin(), v->end());
  auto percentile = [](const std::vector<double>& sorted, int p) {
    return sorted.empty() ? 0.0 : sorted[sorted.size() * p / 100];
  };
  const auto view = model->read();
  std::cout << "snapshot: " << nodes << " nodes, " << pods << " pods, " << static_cast<int>(megabytes) << " MiB of JSON\n"
            << "model: " << view.node_count() << " nodes in " << view.pools().size() << " pools, " << view.pod_count()
            << " pods\n"
            << "load: " << load_s << " s (" << load_cpu_s << " s of CPU)\n"
            << "resident memory: before load " << rss_before << ", after load " << status_field("VmRSS:")
            << ", peak " << status_field("VmHWM:") << "\n"
            << "place() over " << decisions << " decisions (" << capable << " schedulable): p50 "
            << percentile(micros, 50) << " us, p99 " << percentile(micros, 99) << " us, max " << micros.back()
            << " us\n"
            << "  of which " << zone_micros.size() << " select a zone: p50 " << percentile(zone_micros, 50) << " us, p99 "
            << percentile(zone_micros, 99) << " us\n"
            << "  thread CPU time per decision: p50 " << percentile(cpu_micros, 50) << " us, p99 " << percentile(cpu_micros, 99)
            << " us; zone selectors p50 " << percentile(zone_cpu_micros, 50) << " us, p99 "
            << percentile(zone_cpu_micros, 99) << " us\n"
            << "load average (1, 5, 15 min) at the end: " << load_average() << "\n";
  return 0;
}
