#include "engine/shorthand_containers.h"

#include <stdexcept>

namespace gpuadmit {

using nlohmann::json;

namespace {

const std::string& resources_key(const PodTarget& pod, std::size_t i) {
  static const std::string none;
  return i < pod.shorthand_resources.size() ? pod.shorthand_resources[i] : none;
}

}  // namespace

ShorthandContainers::ShorthandContainers(const Workload& workload, json& object) {
  for (const PodTarget& pod : workload.pods) {
    if (pod.shorthand_containers.empty()) continue;
    json& spec = object.at(pod.spec);
    Moved moved{&pod, spec.contains("containers") && !spec["containers"].is_null(), {}};
    json containers = moved.had_containers ? std::move(spec["containers"]) : json::array();
    json front = json::array();
    for (std::size_t i = 0; i < pod.shorthand_containers.size(); ++i) {
      const std::string& key = pod.shorthand_containers[i];
      json container = std::move(spec[key]);
      spec.erase(key);
      if (const std::string& resources = resources_key(*moved.pod, i); !resources.empty() && container.contains(resources)) {
        container["resources"] = std::move(container[resources]);
        container.erase(resources);
      }
      // A container needs a name in messages and in the policies' checks; KServe names it too.
      moved.had_name.push_back(container.contains("name"));
      if (!container.contains("name")) container["name"] = key;
      front.push_back(std::move(container));
    }
    for (json& container : containers) front.push_back(std::move(container));
    spec["containers"] = std::move(front);
    moved_.push_back(std::move(moved));
  }
}

void ShorthandContainers::restore(json& object) const {
  for (const Moved& moved : moved_) {
    json& spec = object.at(moved.pod->spec);
    json& containers = spec["containers"];
    const std::size_t count = moved.pod->shorthand_containers.size();
    if (!containers.is_array() || containers.size() < count)
      throw std::logic_error(moved.pod->field + ".containers lost the shorthand containers moved into it");
    for (std::size_t i = 0; i < count; ++i) {
      json container = std::move(containers[i]);
      const std::string& key = moved.pod->shorthand_containers[i];
      if (!moved.had_name[i] && container.is_object() && container.value("name", "") == key) container.erase("name");
      if (const std::string& resources = resources_key(*moved.pod, i);
          !resources.empty() && container.is_object() && container.contains("resources")) {
        container[resources] = std::move(container["resources"]);
        container.erase("resources");
      }
      spec[key] = std::move(container);
    }
    containers.erase(containers.begin(), containers.begin() + static_cast<std::ptrdiff_t>(count));
    if (!moved.had_containers && containers.empty()) spec.erase("containers");
  }
}

std::string ShorthandContainers::field(const std::string& field) const {
  for (const Moved& moved : moved_) {
    // The whole list, where it holds only what was moved in: the one shorthand container.
    if (field == moved.pod->field + ".containers" && !moved.had_containers && moved.pod->shorthand_containers.size() == 1)
      return moved.pod->field + "." + moved.pod->shorthand_containers[0];
    const std::string prefix = moved.pod->field + ".containers[";
    if (!field.starts_with(prefix)) continue;
    const std::size_t close = field.find(']', prefix.size());
    if (close == std::string::npos) return field;
    std::size_t index = 0;
    try {
      index = std::stoul(field.substr(prefix.size(), close - prefix.size()));
    } catch (const std::exception&) {
      return field;
    }
    const std::string rest = field.substr(close + 1);
    const std::size_t count = moved.pod->shorthand_containers.size();
    if (index < count) {
      const std::string& resources = resources_key(*moved.pod, index);
      if (!resources.empty() && (rest == ".resources" || rest.starts_with(".resources.")))
        return moved.pod->field + "." + moved.pod->shorthand_containers[index] + "." + resources + rest.substr(10);
      return moved.pod->field + "." + moved.pod->shorthand_containers[index] + rest;
    }
    return prefix + std::to_string(index - count) + "]" + rest;
  }
  return field;
}

}  // namespace gpuadmit
