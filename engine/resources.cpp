#include "engine/resources.h"

#include "engine/gpu_use.h"
#include "engine/k8s/scheduling_objects.h"

#include <functional>

#include "gpuadmit/policy.h"

namespace gpuadmit {

using nlohmann::json;

namespace {

// The quantity `value` holds, or why it holds none in `error`: callers name the field only then,
// so a review that reads a dozen resources builds no field names.
std::optional<k8s::Quantity> try_quantity(const json& value, std::string& error) {
  std::string number;
  std::string_view text;
  if (value.is_string()) {
    text = value.get_ref<const std::string&>();
  } else if (value.is_number()) {
    number = value.dump();  // YAML `nvidia.com/gpu: 1` arrives as a number
    text = number;
  } else {
    error = "expected a quantity string, got " + value.dump();
    return std::nullopt;
  }
  k8s::Quantity quantity;
  if (!k8s::Quantity::try_parse(text, quantity, &error)) return std::nullopt;
  return quantity;
}

}  // namespace

k8s::Quantity quantity_from_json(const json& value, const std::string& field) {
  std::string error;
  if (auto quantity = try_quantity(value, error)) return *quantity;
  throw k8s::QuantityError(field + ": " + error);
}

std::optional<k8s::Quantity> container_resource(const json& container, const char* section,
                                                const std::string& name,
                                                const std::string& container_field) {
  auto resources = container.find("resources");
  if (resources == container.end() || !resources->is_object()) return std::nullopt;
  auto list = resources->find(section);
  if (list == resources->end() || !list->is_object()) return std::nullopt;
  auto value = list->find(name);
  if (value == list->end() || value->is_null()) return std::nullopt;
  std::string error;
  if (auto quantity = try_quantity(*value, error)) return quantity;
  throw k8s::QuantityError(container_field + ".resources." + section + "." + name + ": " + error);
}

bool GpuResources::is_gpu(std::string_view resource) const {
  if (resource == "nvidia.com/gpu" || resource.starts_with("nvidia.com/mig-")) return true;
  return std::find(extra.begin(), extra.end(), resource) != extra.end();
}

bool GpuResources::is_gpu_device_class(std::string_view device_class) const {
  return std::find(device_classes.begin(), device_classes.end(), device_class) != device_classes.end();
}

bool GpuResources::is_share_dimension(std::string_view resource) {
  return resource == "nvidia.com/gpumem" || resource == "nvidia.com/gpumem-percentage" ||
         resource == "nvidia.com/gpucores";
}

std::string GpuResources::describe() const {
  std::string out = "nvidia.com/gpu, nvidia.com/mig-*";
  for (const std::string& name : extra) out += ", " + name;
  out += " and DRA device classes ";
  for (std::size_t i = 0; i < device_classes.size(); ++i) out += (i ? ", " : "") + device_classes[i];
  if (device_classes.empty()) out += "(none)";
  return out;
}

bool GpuResources::container_uses_gpu(const json& container) const {
  auto resources = container.find("resources");
  if (resources == container.end() || !resources->is_object()) return false;
  for (const char* section : {"limits", "requests"}) {
    auto list = resources->find(section);
    if (list == resources->end() || !list->is_object()) continue;
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (!is_gpu(it.key())) continue;
      k8s::Quantity amount;
      std::string text = it->is_string() ? it->get<std::string>() : it->dump();
      // An unparsable GPU amount still names a GPU: treat the container as a GPU container so
      // the policies look at it (and report the bad value) rather than skip it.
      if (!k8s::Quantity::try_parse(text, amount) || amount.sign() > 0) return true;
    }
  }
  return false;
}

bool GpuResources::pod_uses_gpu(const json& pod_spec) const {
  for (const char* list : {"containers", "initContainers"}) {
    auto it = pod_spec.find(list);
    if (it == pod_spec.end() || !it->is_array()) continue;
    for (const json& container : *it)
      if (container.is_object() && container_uses_gpu(container)) return true;
  }
  return false;
}

namespace {

const json* at_pointer(const json& object, const json::json_pointer& pointer) {
  return object.contains(pointer) ? &object.at(pointer) : nullptr;
}

}  // namespace

PodGpuUse PolicyContext::gpu_use_of(const json& other, const PodTarget& pod) const {
  const json* spec = at_pointer(other, pod.spec);
  if (!spec) return {};
  return resolve_gpu_use(*spec, at_pointer(other, pod.metadata), workload.namespace_, pod.field, pod.metadata_field, gpu,
                         {manifests ? &manifests->claims : nullptr, cluster});
}

const PodGpuUse& PolicyContext::gpu_use(const PodTarget& pod) const {
  static const PodGpuUse none;
  // std::less orders any two pointers; `<` on pointers into different arrays would be undefined.
  const std::less<const PodTarget*> before;
  const PodTarget* first = workload.pods.data();
  if (workload.pods.empty() || before(&pod, first) || !before(&pod, first + workload.pods.size())) return none;
  const auto index = static_cast<std::size_t>(&pod - first);
  if (gpu_uses && index < gpu_uses->size()) return (*gpu_uses)[index];
  if (!own_gpu_uses_done_) {
    for (const PodTarget& target : workload.pods) own_gpu_uses_.push_back(gpu_use_of(object, target));
    own_gpu_uses_done_ = true;
  }
  return own_gpu_uses_[index];
}

bool PolicyContext::uses_gpu(const PodTarget& pod, const json& container) const {
  if (gpu.container_uses_gpu(container)) return true;
  const PodGpuUse& use = gpu_use(pod);
  if (use.containers.empty()) return false;
  auto name = container.find("name");
  return name != container.end() && name->is_string() && use.containers.count(name->get<std::string>());
}

bool PolicyContext::pod_uses_gpu(const PodTarget& pod) const {
  const json* spec = at_pointer(object, pod.spec);
  return (spec && spec->is_object() && gpu.pod_uses_gpu(*spec)) || gpu_use(pod).any();
}

std::string PolicyContext::annotation(const PodTarget& pod, std::string_view key) const {
  // The pointers are not copied: several policies ask on every review.
  static const json::json_pointer kObjectMetadata("/metadata");
  const std::string name(key);
  for (const json::json_pointer* metadata : {&pod.metadata, &kObjectMetadata}) {
    if (!object.contains(*metadata)) continue;
    const json& meta = object.at(*metadata);
    if (!meta.is_object()) continue;
    auto annotations = meta.find("annotations");
    if (annotations == meta.end() || !annotations->is_object()) continue;
    auto value = annotations->find(name);
    if (value != annotations->end() && value->is_string()) return value->get<std::string>();
  }
  return {};
}

void PolicyContext::violation(std::string field, std::string message) {
  findings_.push_back({Finding::Severity::Violation, std::move(field), std::move(message)});
}
void PolicyContext::advise(std::string field, std::string message) {
  findings_.push_back({Finding::Severity::Advice, std::move(field), std::move(message)});
}
void PolicyContext::changed(std::string field, std::string message) {
  findings_.push_back({Finding::Severity::Change, std::move(field), std::move(message)});
}

}  // namespace gpuadmit
