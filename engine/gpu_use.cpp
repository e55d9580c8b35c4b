#include "engine/gpu_use.h"

#include <charconv>
#include <cmath>
#include <optional>

#include "engine/capacity/cluster_model.h"
#include "engine/k8s/resource_claims.h"
#include "engine/resources.h"
#include "gpuadmit/review.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

const json* member(const json* object, const char* key) {
  if (!object || !object->is_object()) return nullptr;
  auto it = object->find(key);
  return it == object->end() || it->is_null() ? nullptr : &*it;
}

std::string string_member(const json* object, const char* key) {
  const json* value = member(object, key);
  return value && value->is_string() ? value->get<std::string>() : "";
}

std::optional<std::int64_t> positive_integer(const std::string& text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

// gpu-fraction in thousandths: a decimal number in (0, 1].
std::optional<std::int64_t> fraction_milli(const std::string& text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !(value > 0) || value > 1) return std::nullopt;
  return std::max<std::int64_t>(1, std::llround(value * 1000));
}

std::int64_t amount(const json& container, const char* resource, const std::string& field) {
  for (const char* section : {"limits", "requests"})
    if (auto quantity = container_resource(container, section, resource, field)) return quantity->value();
  return 0;
}

// HAMi: nvidia.com/gpumem (MiB) and nvidia.com/gpucores (percent) are per vGPU, times the
// container's nvidia.com/gpu.
void add_hami_shares(const json& spec, GpuShares& shares) {
  const json* containers = member(&spec, "containers");
  if (!containers || !containers->is_array()) return;
  for (std::size_t i = 0; i < containers->size(); ++i) {
    const json& container = (*containers)[i];
    if (!container.is_object()) continue;
    const std::string field = "containers[" + std::to_string(i) + "]";
    try {
      const std::int64_t gpus = amount(container, "nvidia.com/gpu", field);
      if (gpus <= 0) continue;
      GpuShares one;
      one.memory_mib = std::max<std::int64_t>(0, amount(container, "nvidia.com/gpumem", field));
      one.cores = std::max<std::int64_t>(0, amount(container, "nvidia.com/gpucores", field));
      shares.add(one, gpus);
    } catch (const std::exception&) {
      // A bad quantity is gpu-shape's to report; it adds no share.
    }
  }
}

bool has_container(const json& spec, const std::string& name) {
  for (const char* list : {"containers", "initContainers"})
    if (const json* containers = member(&spec, list); containers && containers->is_array())
      for (const json& container : *containers)
        if (string_member(&container, "name") == name) return true;
  return false;
}

bool limits_gpu(const json& spec) {
  for (const char* list : {"containers", "initContainers"})
    if (const json* containers = member(&spec, list); containers && containers->is_array())
      for (const json& container : *containers)
        if (const json* limits = member(member(&container, "resources"), "limits"); limits && limits->is_object() &&
                                                                                   limits->contains("nvidia.com/gpu"))
          return true;
  return false;
}

// KAI's annotations, checked as its admission plugin checks them (ValidateGPUFractionRequest):
// the fraction or the memory, not both, not beside a whole nvidia.com/gpu, a device count only
// with one of them, and a target container that exists.
void read_kai(const json& spec, const json* annotations, const std::string& annotations_field, PodGpuUse& use,
              GpuShares& shares, std::string* target) {
  const std::string fraction_text = string_member(annotations, kKaiFraction);
  const std::string memory_text = string_member(annotations, kKaiMemory);
  const bool has_devices = member(annotations, kKaiDevices) != nullptr;
  auto problem = [&](const char* key, std::string message) {
    use.problems.push_back({annotations_field + "." + key, std::move(message)});
  };
  if (fraction_text.empty() && memory_text.empty()) {
    if (has_devices) problem(kKaiDevices, "asks for several fractional GPUs without gpu-fraction or gpu-memory");
    return;
  }
  use.kai = true;
  std::optional<std::int64_t> devices = 1;
  if (has_devices) {
    devices = positive_integer(string_member(annotations, kKaiDevices));
    if (!devices) problem(kKaiDevices, "must be a whole number of devices, 1 or more");
  }
  std::optional<std::int64_t> milli, memory;
  if (!fraction_text.empty() && !(milli = fraction_milli(fraction_text)))
    problem(kKaiFraction, "must be a number above 0 and at most 1, got \"" + shorten(fraction_text, 40) + "\"");
  if (!memory_text.empty() && !(memory = positive_integer(memory_text)))
    problem(kKaiMemory, "must be a whole number of MiB, 1 or more, got \"" + shorten(memory_text, 40) + "\"");
  if (!fraction_text.empty() && !memory_text.empty())
    problem(kKaiFraction, "asks for both gpu-fraction and gpu-memory; the KAI scheduler takes one");
  if (limits_gpu(spec))
    problem(kKaiFraction, "a pod with a GPU fraction cannot also limit whole nvidia.com/gpu; the KAI scheduler refuses it");
  if (devices) {
    GpuShares kai;
    kai.fraction_milli = milli.value_or(0);
    kai.memory_mib = memory.value_or(0);
    shares.add(kai, *devices);
  }
  std::string name = string_member(annotations, kKaiContainer);
  if (!name.empty() && !has_container(spec, name)) {
    problem(kKaiContainer, "names container \"" + shorten(name, 80) + "\", which the pod does not have");
    name.clear();
  }
  if (name.empty())
    if (const json* containers = member(&spec, "containers"); containers && containers->is_array() && !containers->empty())
      name = string_member(&(*containers)[0], "name");
  *target = name;
}

}  // namespace

void GpuShares::add(const GpuShares& other, std::int64_t times) {
  fraction_milli = capacity::saturating_add(fraction_milli, capacity::saturating_mul(other.fraction_milli, times));
  memory_mib = capacity::saturating_add(memory_mib, capacity::saturating_mul(other.memory_mib, times));
  cores = capacity::saturating_add(cores, capacity::saturating_mul(other.cores, times));
}

GpuShares pod_gpu_shares(const json& spec, const json* annotations) {
  GpuShares shares;
  std::string target;
  PodGpuUse scratch;
  read_kai(spec, annotations, "", scratch, shares, &target);
  if (!scratch.problems.empty()) shares = {};
  add_hami_shares(spec, shares);
  return shares;
}

PodGpuUse resolve_gpu_use(const json& spec, const json* metadata, const std::string& namespace_,
                          const std::string& spec_field, const std::string& metadata_field, const GpuResources& gpu,
                          ClaimSources sources) {
  PodGpuUse use;
  if (!spec.is_object()) return use;
  std::string kai_container;
  read_kai(spec, member(metadata, "annotations"), metadata_field + ".annotations", use, use.shares, &kai_container);
  if (use.kai && !kai_container.empty()) use.containers.insert(kai_container);
  add_hami_shares(spec, use.shares);

  const json* claims = member(&spec, "resourceClaims");
  if (!claims || !claims->is_array() || claims->empty()) return use;
  // Pod claim name -> whether it gives GPUs (an unresolved one is taken to).
  std::map<std::string, bool> gpu_claims;
  std::optional<capacity::ClusterModel::View> view;
  // The API server admits at most 32 claims a pod, as many as device requests a claim.
  for (std::size_t i = 0; i < claims->size() && i < k8s::kMaxDeviceRequests; ++i) {
    const json& entry = (*claims)[i];
    const json* source = member(&entry, "source");  // before 1.28
    std::string claim_name = string_member(&entry, "resourceClaimName");
    std::string template_name = string_member(&entry, "resourceClaimTemplateName");
    if (claim_name.empty() && template_name.empty()) {
      claim_name = string_member(source, "resourceClaimName");
      template_name = string_member(source, "resourceClaimTemplateName");
    }
    if (claim_name.empty() && template_name.empty()) continue;  // no claim at all: the API server refuses it
    const auto kind = template_name.empty() ? k8s::ClaimCatalog::Kind::Claim : k8s::ClaimCatalog::Kind::Template;
    const std::string& name = template_name.empty() ? claim_name : template_name;
    std::optional<k8s::ClaimSpec::Devices> devices;
    auto lookup = [&](const k8s::ClaimCatalog& catalog) {
      if (const k8s::ClaimSpec* claim = catalog.find(kind, namespace_, name))
        devices = claim->devices([&](std::string_view c) { return gpu.is_gpu_device_class(c); });
    };
    if (sources.manifests) lookup(*sources.manifests);
    if (!devices && sources.cluster) {
      if (!view) view.emplace(sources.cluster->read());
      lookup(view->claims());
    }
    const std::string pod_claim = string_member(&entry, "name");
    const std::string what = std::string(template_name.empty() ? "ResourceClaim " : "ResourceClaimTemplate ") + name;
    if (!devices) {
      use.unresolved_claims.push_back({spec_field + ".resourceClaims[" + std::to_string(i) + "]",
                                       what + " in namespace " + namespace_ + " is not known to gpu-admit"});
      gpu_claims[pod_claim] = true;
      continue;
    }
    gpu_claims[pod_claim] = devices->any;
    std::int64_t& total = template_name.empty() ? use.named_claim_devices : use.template_claim_devices;
    total = capacity::saturating_add(total, devices->devices);
  }
  // Containers that take a GPU claim: resources.claims[].name.
  for (const char* list : {"containers", "initContainers"}) {
    const json* containers = member(&spec, list);
    if (!containers || !containers->is_array()) continue;
    for (const json& container : *containers) {
      const json* refs = member(member(&container, "resources"), "claims");
      if (!refs || !refs->is_array()) continue;
      for (const json& ref : *refs) {
        auto it = gpu_claims.find(string_member(&ref, "name"));
        const std::string name = string_member(&container, "name");
        if (it != gpu_claims.end() && it->second && !name.empty()) use.containers.insert(name);
      }
    }
  }
  return use;
}

}  // namespace gpuadmit
