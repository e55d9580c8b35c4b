// dev-shm: container runtimes give /dev/shm 64 MiB, which NCCL and PyTorch data loaders outgrow
// at once ("Bus error"). Mount a memory-backed emptyDir there in GPU containers. tmpfs pages
// count against the memory limit, so the size is a fraction of that limit.
#include <unordered_set>

#include "engine/resources.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
constexpr std::int64_t kMi = 1024 * 1024;
// 63, a DNS label's limit, less "-" and six digits for a clash suffix.
constexpr std::size_t kMaxVolumeNameBase = 56;

struct DevShmConfig {
  double memory_fraction = 0.5;
  std::int64_t max_bytes = 32LL * 1024 * kMi;
  std::int64_t bytes_without_limit = 8LL * 1024 * kMi;
  std::string volume_name = "dshm";
};

// The mount of /dev/shm in `container`, or null.
const json* dev_shm_mount(const json& container) {
  auto mounts = container.find("volumeMounts");
  if (mounts == container.end() || !mounts->is_array()) return nullptr;
  for (const json& mount : *mounts) {
    if (!mount.is_object() || !mount.contains("mountPath") || !mount["mountPath"].is_string()) continue;
    std::string path = mount["mountPath"].get<std::string>();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path == "/dev/shm") return &mount;
  }
  return nullptr;
}

// Whether the pod's volume `name` is a memory-backed emptyDir: one this policy may share.
bool memory_backed(const json& spec, const json& name) {
  auto volumes = spec.find("volumes");
  if (volumes == spec.end() || !volumes->is_array()) return false;
  for (const json& volume : *volumes) {
    if (!volume.is_object() || volume.value("name", json()) != name) continue;
    auto empty_dir = volume.find("emptyDir");
    return empty_dir != volume.end() && empty_dir->is_object() && empty_dir->value("medium", json()) == "Memory";
  }
  return false;
}

void mount_at_dev_shm(PolicyContext& context, json& container, const std::string& field, const std::string& name) {
  json& mounts = container["volumeMounts"];
  if (!mounts.is_null() && !mounts.is_array()) throw std::invalid_argument(field + ".volumeMounts must be a list");
  mounts.push_back({{"name", name}, {"mountPath", "/dev/shm"}});
  context.changed(field_path(field, "volumeMounts"), "mounted " + name + " at /dev/shm");
}

class DevShm final : public Policy {
 public:
  explicit DevShm(DevShmConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      if (!context.pod_uses_gpu(pod)) continue;
      // With hostIPC the pod shares the node's /dev/shm: a private mount would break that intent.
      if (spec.value("hostIPC", false) == true) continue;
      // A pod that mounts /dev/shm already keeps its volume. Where that volume is a memory-backed
      // emptyDir (one this policy added on an earlier call, or the user's), GPU containers
      // without it get it too: a container another webhook adds after ours (reinvocation) is
      // mounted like the others, and a second review adds nothing.
      const json* existing = nullptr;
      for (const char* list : {"initContainers", "containers", "ephemeralContainers"})
        for_each_container(spec, pod.field, list, [&](const json& c, const std::string&) {
          if (!existing) existing = dev_shm_mount(c);
        });
      if (existing) {
        const json volume = existing->value("name", json());
        if (!volume.is_string() || !memory_backed(spec, volume)) continue;
        const std::string name = volume.get<std::string>();
        for (const char* list : {"initContainers", "containers"})
          for_each_container(spec, pod.field, list, [&](json& c, const std::string& field) {
            if (context.uses_gpu(pod, c) && !dev_shm_mount(c)) mount_at_dev_shm(context, c, field, name);
          });
        continue;
      }

      std::vector<std::pair<json*, std::string>> gpu_containers;
      std::optional<std::int64_t> smallest_limit;
      for (const char* list : {"initContainers", "containers"})
        for_each_container(spec, pod.field, list, [&](json& c, const std::string& field) {
          if (!context.uses_gpu(pod, c)) return;
          gpu_containers.emplace_back(&c, field);
          if (auto limit = container_resource(c, "limits", "memory", field))
            smallest_limit = std::min(smallest_limit.value_or(limit->value()), limit->value());
        });

      std::int64_t bytes = config_.bytes_without_limit;
      std::string reason = "no memory limit set";
      if (smallest_limit) {
        bytes = static_cast<std::int64_t>(static_cast<long double>(*smallest_limit) * config_.memory_fraction);
        reason = "fraction of the memory limit";
      }
      bytes = std::clamp(bytes / kMi * kMi, kMi, config_.max_bytes);
      const std::string size = k8s::Quantity::from_int(bytes, k8s::QuantityFormat::BinarySI).to_string();

      const std::string name = free_volume_name(spec);
      if (spec.contains("volumes") && !spec["volumes"].is_array())
        throw std::invalid_argument(field_path(pod.field, "volumes") + " must be a list");
      spec["volumes"].push_back({{"name", name}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", size}}}});
      context.changed(field_path(pod.field, "volumes"),
                      "added memory-backed volume " + name + " of " + size + " (" + reason + ")");
      for (auto& [container, field] : gpu_containers) mount_at_dev_shm(context, *container, field, name);
    }
  }

 private:
  // volumeName, or volumeName-2, -3, ...: the names taken are collected once, so a pod with many
  // volumes costs one pass, not one pass per candidate.
  std::string free_volume_name(const json& spec) const {
    std::unordered_set<std::string_view> taken;
    auto volumes = spec.find("volumes");
    if (volumes != spec.end() && volumes->is_array())
      for (const json& volume : *volumes)
        if (auto name = volume.is_object() ? volume.find("name") : volume.end();
            volume.is_object() && name != volume.end() && name->is_string())
          taken.insert(name->get_ref<const std::string&>());
    std::string name = config_.volume_name;
    for (int i = 2; taken.count(name); ++i) name = config_.volume_name + "-" + std::to_string(i);
    return name;
  }

  DevShmConfig config_;
};

std::int64_t size_bytes(const ConfigNode& node, std::int64_t fallback) {
  if (!node.present()) return fallback;
  k8s::Quantity quantity;
  std::string error;
  if (!k8s::Quantity::try_parse(node.as_string(), quantity, &error)) node.fail(error);
  if (quantity.sign() <= 0) node.fail("must be a positive size such as 8Gi");
  return quantity.value();
}

}  // namespace

PolicyInfo dev_shm_info() {
  return {"dev-shm", PolicyKind::Mutating,
          "mounts a memory-backed /dev/shm sized from the memory limit in GPU containers",
          {
           {"memoryFraction", "number", "0.5",
            "share of the smallest GPU-container memory limit given to `/dev/shm` (0 < f ≤ 1)"},
           {"maxSize", "quantity", "32Gi",
            "cap on the size"},
           {"sizeWithoutMemoryLimit", "quantity", "8Gi",
            "size when no GPU container has a memory limit"},
           {"volumeName", "string", "dshm",
            "name of the added volume"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            DevShmConfig config;
            config.memory_fraction = node.number("memoryFraction", config.memory_fraction);
            if (!(config.memory_fraction > 0 && config.memory_fraction <= 1))
              node.child("memoryFraction").fail("must be greater than 0 and at most 1");
            config.max_bytes = size_bytes(node.child("maxSize"), config.max_bytes);
            config.bytes_without_limit = size_bytes(node.child("sizeWithoutMemoryLimit"), config.bytes_without_limit);
            config.volume_name = node.string("volumeName", config.volume_name);
            // The API server refuses a volume whose name is not a DNS label: a bad name here would
            // make every GPU pod fail to create. Room is left for the "-N" added on a clash.
            if (!is_dns_label(config.volume_name) || config.volume_name.size() > kMaxVolumeNameBase)
              node.child("volumeName").fail("must be a DNS label of at most " + std::to_string(kMaxVolumeNameBase) +
                                            " characters (lower-case letters, digits and '-'), as Kubernetes "
                                            "requires of volume names");
            return std::make_unique<DevShm>(config);
          }};
}

}  // namespace gpuadmit::policies
