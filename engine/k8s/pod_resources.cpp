// Port of k8s.io/component-helpers/resource/helpers.go (PodRequests, PodLimits and the
// aggregation behind them), minus DRA claims and the Reuse/NonMissingContainerRequests options.
#include "engine/k8s/pod_resources.h"

#include <functional>
#include <initializer_list>
#include <optional>
#include <vector>

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

const json& null_json() {
  static const json null;
  return null;
}

enum class Want { Object, Array };

// obj[key], null when obj is null or the key is absent or null (Go's nil). Anything of the
// wrong type is an error naming the field.
const json& member(const json& obj, const char* key, const std::string& path, Want want) {
  if (obj.is_null()) return null_json();
  if (!obj.is_object()) throw QuantityError(path + ": expected an object");
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return null_json();
  if (want == Want::Object ? !it->is_object() : !it->is_array()) {
    throw QuantityError(path + "." + key +
                        (want == Want::Object ? ": expected an object" : ": expected a list"));
  }
  return *it;
}

// The ResourceList at obj[key]; nullopt stands for Go's nil map (absent or null).
std::optional<ResourceList> list_at(const json& obj, const char* key, const std::string& path) {
  const json& list = member(obj, key, path, Want::Object);
  if (list.is_null()) return std::nullopt;
  ResourceList out;
  for (const auto& [name, value] : list.items()) {
    try {
      // Quantity.UnmarshalJSON sees the raw JSON text, so numbers count as well as strings.
      out.emplace(name, Quantity::from_json_text(
                            value.dump(-1, ' ', false, json::error_handler_t::replace)));
    } catch (const QuantityError& e) {
      throw QuantityError(path + "." + key + "." + name + ": " + e.what());
    }
  }
  return out;
}

std::string name_of(const json& obj) {
  const json& name = obj.is_object() && obj.contains("name") ? obj["name"] : null_json();
  return name.is_string() ? name.get<std::string>() : "";
}

// addResourceList: copies what is new, adds the rest (the receiver keeps its format).
void add_into(ResourceList& list, const ResourceList& more) {
  for (const auto& [name, q] : more) {
    if (auto [it, inserted] = list.try_emplace(name, q); !inserted) it->second += q;
  }
}

// maxResourceList: the larger of each named resource.
void max_into(ResourceList& list, const ResourceList& other) {
  for (const auto& [name, q] : other) {
    if (auto [it, inserted] = list.try_emplace(name, q); !inserted && q.cmp(it->second) > 0) {
      it->second = q;
    }
  }
}

ResourceList max_of(ResourceList first, std::initializer_list<const ResourceList*> rest) {
  for (const ResourceList* other : rest) max_into(first, *other);
  return first;
}

// subtractResourceList: takes overhead out of what the status reports, never below zero.
void subtract(std::optional<ResourceList>& list, const ResourceList& overhead) {
  if (!list) return;
  for (const auto& [name, q] : overhead) {
    if (const auto it = list->find(name); it != list->end()) {
      it->second -= q;
      if (it->second.sign() < 0) it->second = Quantity::from_int(0, it->second.format());
    }
  }
}

struct Container {
  const json* obj;
  std::string path;
  bool sidecar;  // a restartable init container: restartPolicy Always

  ResourceList spec(const char* which) const {
    const json& resources = member(*obj, "resources", path, Want::Object);
    return list_at(resources, which, path + ".resources").value_or(ResourceList{});
  }
};

std::vector<Container> containers_of(const json& spec, const char* key) {
  std::vector<Container> out;
  const json& list = member(spec, key, "spec", Want::Array);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = std::string("spec.") + key + "[" + std::to_string(i) + "]";
    if (!list[i].is_object()) throw QuantityError(path + ": expected an object");
    const auto policy = list[i].find("restartPolicy");
    const bool sidecar = policy != list[i].end() && *policy == "Always";
    out.push_back({&list[i], path, sidecar});
  }
  return out;
}

using Getter = std::function<ResourceList(const Container&)>;

// aggregateContainerResourcesByFn, after the sidecar KEP: app containers and sidecars run
// together; init container i runs beside the sidecars declared before it; the pod needs the max.
ResourceList aggregate(const json& spec, const Getter& get) {
  ResourceList result;
  for (const Container& c : containers_of(spec, "containers")) add_into(result, get(c));
  ResourceList sidecars, init_peak;
  for (const Container& c : containers_of(spec, "initContainers")) {
    ResourceList running = get(c);
    if (c.sidecar) {
      add_into(result, running);
      add_into(sidecars, running);
      running = sidecars;
    } else {
      add_into(running, sidecars);
    }
    max_into(init_peak, running);
  }
  max_into(result, init_peak);
  return result;
}

// The pod status a computation may read: only with use_status_resources.
struct Status {
  const json& obj;
  bool infeasible = false;  // PodResizePending with reason Infeasible

  explicit Status(const PodResourcesOptions& o)
      : obj(o.use_status_resources && o.status != nullptr ? *o.status : null_json()) {
    const json& conditions = member(obj, "conditions", "status", Want::Array);
    for (const json& c : conditions) {
      if (c.is_object() && c.value("type", json()) == "PodResizePending") {
        infeasible = c.value("reason", json()) == "Infeasible";
        break;
      }
    }
  }

  // findContainerStatus: by name, among containerStatuses and then initContainerStatuses.
  const json* container(const Container& c, std::string& path) const {
    const std::string name = name_of(*c.obj);
    for (const char* key : {"containerStatuses", "initContainerStatuses"}) {
      const json& list = member(obj, key, "status", Want::Array);
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (list[i].is_object() && name_of(list[i]) == name) {
          path = std::string("status.") + key + "[" + std::to_string(i) + "]";
          return &list[i];
        }
      }
    }
    return nullptr;
  }

  // What the container status reports at resources.<which>.
  std::optional<ResourceList> actual(const json* cs, const std::string& path,
                                     const char* which) const {
    return list_at(member(*cs, "resources", path, Want::Object), which, path + ".resources");
  }

  bool has(const char* key) const { return !member(obj, key, "status", Want::Object).is_null(); }
  std::optional<ResourceList> pod_list(const char* key) const {
    return list_at(obj, key, "status");
  }
  std::optional<ResourceList> pod_actual(const char* which) const {
    return list_at(member(obj, "resources", "status", Want::Object), which, "status.resources");
  }
};

// effectivePodLevelResources: an infeasible resize leaves only what the status reports.
ResourceList effective_pod_level(const Status& status, const ResourceList& spec,
                                 std::initializer_list<const std::optional<ResourceList>*> lists) {
  ResourceList result = status.infeasible ? ResourceList{} : spec;
  for (const auto* list : lists) {
    if (*list) max_into(result, **list);
  }
  return result;
}

void apply_pod_level(ResourceList& result, const ResourceList& pod_level) {
  for (const auto& [name, q] : pod_level) {
    if (is_supported_pod_level_resource(name)) result.insert_or_assign(name, q);
  }
}

bool any_supported(const json& spec, const char* which) {
  const json& resources = member(spec, "resources", "spec", Want::Object);
  const json& list = member(resources, which, "spec.resources", Want::Object);
  if (list.is_null()) return false;
  for (const auto& [name, value] : list.items()) {
    if (is_supported_pod_level_resource(name)) return true;
  }
  return false;
}

}  // namespace

ResourceList container_requests(const json& container, std::string_view path) {
  return Container{&container, std::string(path), false}.spec("requests");
}

ResourceList container_limits(const json& container, std::string_view path) {
  return Container{&container, std::string(path), false}.spec("limits");
}

ResourceList aggregate_container_requests(const json& pod_spec, const PodResourcesOptions& opts) {
  const Getter spec_requests = [](const Container& c) { return c.spec("requests"); };
  if (!opts.use_status_resources) return aggregate(pod_spec, spec_requests);
  const Status status(opts);
  const ResourceList spec = aggregate(pod_spec, spec_requests);
  std::optional<ResourceList> allocated, actuated;
  if (opts.in_place_pod_level_resources_vertical_scaling_enabled) {
    // Pod-level status already holds the aggregate, when the kubelet has filled it in.
    allocated = status.pod_list("allocatedResources");
    actuated = status.pod_actual("requests");
  }
  if (!allocated || !actuated) {
    const auto allocated_of = [](const json* cs,
                                 const std::string& path) -> std::optional<ResourceList> {
      if (cs == nullptr) return std::nullopt;
      return list_at(*cs, "allocatedResources", path);
    };
    allocated = aggregate(pod_spec, [&](const Container& c) {
      std::string path;
      const json* cs = status.container(c, path);
      if (auto a = allocated_of(cs, path)) return *a;
      return status.infeasible ? ResourceList{} : c.spec("requests");
    });
    actuated = aggregate(pod_spec, [&](const Container& c) {
      std::string path;
      const json* cs = status.container(c, path);
      if (cs != nullptr) {
        if (auto r = status.actual(cs, path, "requests")) return *r;
      }
      if (auto a = allocated_of(cs, path)) return *a;
      return status.infeasible ? ResourceList{} : c.spec("requests");
    });
  }
  return status.infeasible ? max_of(*actuated, {&*allocated})
                           : max_of(spec, {&*actuated, &*allocated});
}

ResourceList aggregate_container_limits(const json& pod_spec, const PodResourcesOptions& opts) {
  const Getter spec_limits = [](const Container& c) { return c.spec("limits"); };
  if (!opts.use_status_resources) return aggregate(pod_spec, spec_limits);
  const Status status(opts);
  const ResourceList spec = aggregate(pod_spec, spec_limits);
  std::optional<ResourceList> actuated;
  if (opts.in_place_pod_level_resources_vertical_scaling_enabled) {
    actuated = status.pod_actual("limits");
  }
  if (!actuated) {
    actuated = aggregate(pod_spec, [&](const Container& c) {
      std::string path;
      if (const json* cs = status.container(c, path)) {
        if (auto l = status.actual(cs, path, "limits")) return *l;
      }
      return status.infeasible ? ResourceList{} : c.spec("limits");
    });
  }
  return status.infeasible ? *actuated : max_of(spec, {&*actuated});
}

ResourceList pod_requests(const json& pod_spec, const PodResourcesOptions& opts) {
  ResourceList requests = aggregate_container_requests(pod_spec, opts);
  const std::optional<ResourceList> overhead = list_at(pod_spec, "overhead", "spec");
  if (!opts.skip_pod_level_resources && is_pod_level_requests_set(pod_spec)) {
    const json& resources = member(pod_spec, "resources", "spec", Want::Object);
    ResourceList effective = *list_at(resources, "requests", "spec.resources");
    const Status status(opts);
    if (opts.in_place_pod_level_resources_vertical_scaling_enabled &&
        (status.has("resources") || status.has("allocatedResources"))) {
      std::optional<ResourceList> actual = status.pod_actual("requests");
      std::optional<ResourceList> allocated = status.pod_list("allocatedResources");
      if (overhead) {
        subtract(actual, *overhead);
        subtract(allocated, *overhead);
      }
      effective = effective_pod_level(status, effective, {&actual, &allocated});
    }
    apply_pod_level(requests, effective);
  }
  if (!opts.exclude_overhead && overhead) add_into(requests, *overhead);
  return requests;
}

ResourceList pod_limits(const json& pod_spec, const PodResourcesOptions& opts) {
  ResourceList limits = aggregate_container_limits(pod_spec, opts);
  const std::optional<ResourceList> overhead = list_at(pod_spec, "overhead", "spec");
  if (!opts.skip_pod_level_resources && is_pod_level_resources_set(pod_spec)) {
    const json& resources = member(pod_spec, "resources", "spec", Want::Object);
    ResourceList effective =
        list_at(resources, "limits", "spec.resources").value_or(ResourceList{});
    const Status status(opts);
    if (opts.in_place_pod_level_resources_vertical_scaling_enabled && status.has("resources")) {
      std::optional<ResourceList> actual = status.pod_actual("limits");
      if (overhead) subtract(actual, *overhead);
      effective = effective_pod_level(status, effective, {&actual});
    }
    apply_pod_level(limits, effective);
  }
  if (!opts.exclude_overhead && overhead) {
    for (const auto& [name, q] : *overhead) {
      if (const auto it = limits.find(name); it != limits.end() && !it->second.is_zero()) {
        it->second += q;
      }
    }
  }
  return limits;
}

bool is_supported_pod_level_resource(std::string_view name) {
  return name == "cpu" || name == "memory" || name.starts_with("hugepages-");
}

bool is_pod_level_requests_set(const json& pod_spec) { return any_supported(pod_spec, "requests"); }
bool is_pod_level_limits_set(const json& pod_spec) { return any_supported(pod_spec, "limits"); }
bool is_pod_level_resources_set(const json& pod_spec) {
  return is_pod_level_requests_set(pod_spec) || is_pod_level_limits_set(pod_spec);
}

std::optional<nlohmann::json> with_requests_defaulted_from_limits(const nlohmann::json& pod_spec) {
  std::optional<nlohmann::json> copy;
  for (const char* list : {"initContainers", "containers"}) {
    const auto containers = pod_spec.find(list);
    if (containers == pod_spec.end() || !containers->is_array()) continue;
    for (std::size_t i = 0; i < containers->size(); ++i) {
      const nlohmann::json& container = (*containers)[i];
      if (!container.is_object() || !container.contains("resources")) continue;
      const nlohmann::json& resources = container["resources"];
      if (!resources.is_object() || !resources.contains("limits") || !resources["limits"].is_object()) continue;
      // Looked up in place, not copied: this runs for every pod of a cluster snapshot.
      const auto found = resources.find("requests");
      const nlohmann::json* requests = found != resources.end() && found->is_object() ? &*found : nullptr;
      for (auto it = resources["limits"].begin(); it != resources["limits"].end(); ++it) {
        if (requests && requests->contains(it.key())) continue;
        if (!copy) copy = pod_spec;
        (*copy)[list][i]["resources"]["requests"][it.key()] = it.value();
      }
    }
  }
  return copy;
}

}  // namespace gpuadmit::k8s
