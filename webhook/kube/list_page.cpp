#include "webhook/kube/list_page.h"

#include <simdjson.h>

#include "engine/input_limits.h"
#include "engine/json_from_simdjson.h"

namespace gpuadmit::kube {

using nlohmann::json;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

// The containers of an element whose type was checked (held by value: a range over a temporary
// simdjson_result would dangle).
simdjson::dom::object object_of(element value) {
  simdjson::dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return {};
  return object;
}
simdjson::dom::array array_of(element value) {
  simdjson::dom::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) return {};
  return array;
}

bool one_of(std::string_view key, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names)
    if (key == name) return true;
  return false;
}

// The walk mirrors trim_object() (objects.cpp) field by field. Where a key repeats, the last one
// wins, as in a full parse, so each occurrence sets or erases what it decides.
template <typename F>
void each_field(element value, F&& f) {
  if (value.type() != element_type::OBJECT) return;  // anything else has no fields
  for (auto [key, child] : object_of(value)) f(key, child);
}

// copy_if_present for one occurrence of `key`: a null erases what an earlier one set.
void keep(element value, std::string_view key, json& into) {
  if (value.type() == element_type::NULL_VALUE)
    into.erase(std::string(key));
  else
    into[std::string(key)] = json_from_simdjson(value);
}

// Sets `key` to an array of objects with only `names` kept of each (containers, conditions,
// owners), or erases it when the value is not an array.
void keep_each(element value, std::initializer_list<std::string_view> names, std::string_view key, json& into) {
  if (value.type() != element_type::ARRAY) {
    into.erase(std::string(key));
    return;
  }
  json kept_all = json::array();
  for (element item : array_of(value)) {
    json kept = json::object();
    each_field(item, [&](std::string_view field, element child) {
      if (one_of(field, names)) keep(child, field, kept);
    });
    kept_all.push_back(std::move(kept));
  }
  into[std::string(key)] = std::move(kept_all);
}

json metadata(element value, bool owners) {
  json out = json::object();
  each_field(value, [&](std::string_view key, element child) {
    if (one_of(key, {"name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp"})) {
      keep(child, key, out);
    } else if (key == "annotations") {
      json annotations = child.type() == element_type::OBJECT ? json_from_simdjson(child) : json();
      if (annotations.is_object()) annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
      if (annotations.is_object() && !annotations.empty())
        out["annotations"] = std::move(annotations);
      else
        out.erase("annotations");
    } else if (key == "ownerReferences" && owners) {
      keep_each(child, {"kind", "name", "controller"}, key, out);
    }
  });
  return out;
}

json node_spec(element value) {
  json out = json::object();
  each_field(value, [&](std::string_view key, element child) {
    if (one_of(key, {"unschedulable", "taints"})) keep(child, key, out);
  });
  return out;
}

json pod_spec(element value) {
  json out = {{"containers", json::array()}};
  each_field(value, [&](std::string_view key, element child) {
    if (one_of(key, {"nodeName", "schedulerName", "priority", "priorityClassName", "nodeSelector", "tolerations",
                     "overhead", "resources"})) {
      keep(child, key, out);
    } else if (key == "affinity") {
      json node_affinity;
      each_field(child, [&](std::string_view inner, element grandchild) {
        if (inner == "nodeAffinity") node_affinity = json_from_simdjson(grandchild);
      });
      if (node_affinity.is_null())
        out.erase("affinity");
      else
        out["affinity"] = {{"nodeAffinity", std::move(node_affinity)}};
    } else if (key == "containers") {
      keep_each(child, {"name", "resources", "restartPolicy"}, key, out);
      if (!out.contains("containers")) out["containers"] = json::array();  // always there, as in trim_object
    } else if (key == "initContainers") {
      keep_each(child, {"name", "resources", "restartPolicy"}, key, out);
    }
  });
  return out;
}

json status(ObjectKind kind, element value) {
  json out = json::object();
  each_field(value, [&](std::string_view key, element child) {
    if (kind == ObjectKind::Node ? one_of(key, {"capacity", "allocatable"}) : key == "phase")
      keep(child, key, out);
    else if (key == "conditions" && kind != ObjectKind::Namespace)
      keep_each(child, {"type", "status"}, key, out);
  });
  return out;
}

// The kinds of a named API group, as trim_object() trims them: the last apiVersion when a
// non-empty string (list items carry none), four metadata fields and the kind's few fields whole.
json trim_grouped(ObjectKind kind, element item, std::string_view version) {
  json out = {{"kind", std::string(kind_name(kind))}, {"metadata", json::object()}};
  const bool priority_class = kind == ObjectKind::PriorityClass;
  std::string own_api_version;
  each_field(item, [&](std::string_view key, element child) {
    if (key == "apiVersion") {
      own_api_version = child.type() == element_type::STRING ? std::string(child.get_string().value_unsafe()) : "";
    } else if (key == "metadata") {
      json kept = json::object();
      each_field(child, [&](std::string_view field, element value) {
        if (one_of(field, {"name", "namespace", "uid", "resourceVersion"})) keep(value, field, kept);
      });
      out["metadata"] = std::move(kept);
    } else if (priority_class ? one_of(key, {"value", "globalDefault", "preemptionPolicy"}) : key == "spec") {
      keep(child, key, out);
    }
  });
  out["apiVersion"] = own_api_version.empty() ? api_version(kind, version) : own_api_version;
  return out;
}

json trim(ObjectKind kind, element item, std::string_view version) {
  if (!api_group(kind).empty()) return trim_grouped(kind, item, version);
  json out = json::object();
  out["kind"] = std::string(kind_name(kind));
  out["apiVersion"] = "v1";
  out["metadata"] = json::object();
  if (kind == ObjectKind::Node) out["spec"] = json::object();
  if (kind == ObjectKind::Pod) out["spec"] = {{"containers", json::array()}};
  out["status"] = json::object();
  each_field(item, [&](std::string_view key, element child) {
    if (key == "metadata")
      out["metadata"] = metadata(child, kind == ObjectKind::Pod);
    else if (key == "spec" && kind == ObjectKind::Node)
      out["spec"] = node_spec(child);
    else if (key == "spec" && kind == ObjectKind::Pod)
      out["spec"] = pod_spec(child);
    else if (key == "status")
      out["status"] = status(kind, child);
  });
  return out;
}

}  // namespace

struct ListPageReader::Parser {
  simdjson::dom::parser parser;
  std::size_t max_depth = 0;
  element items;        // the page's items array, valid until the next parse
  bool has_items = false;
};

ListPageReader::ListPageReader(std::string version) : parser_(std::make_unique<Parser>()), version_(std::move(version)) {}
ListPageReader::~ListPageReader() = default;

bool ListPageReader::parse(std::string& body, ListPage& page, std::string& error) {
  page = ListPage();
  parser_->has_items = false;
  // simdjson counts open arrays and objects as parse_json does.
  const std::size_t max_depth = input_limits().max_depth;
  if (parser_->max_depth != max_depth) {
    if (parser_->parser.allocate(0, max_depth) != simdjson::SUCCESS) {
      error = "out of memory";
      return false;
    }
    parser_->max_depth = max_depth;
  }
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  element root;
  if (auto e = parser_->parser.parse(body.data(), body.size(), false).get(root); e != simdjson::SUCCESS) {
    error = e == simdjson::DEPTH_ERROR ? "nesting deeper than " + std::to_string(input_limits().max_depth) +
                                             " levels (the limit, --max-depth)"
                                       : simdjson::error_message(e);  // a fixed text, never the input
    return false;
  }
  // The page's own fields: the last of a repeated key wins, as in a full parse.
  bool have_items = false, have_metadata = false, strings = true;
  each_field(root, [&](std::string_view key, element child) {
    if (key == "items") {
      have_items = child.type() == element_type::ARRAY || child.type() == element_type::NULL_VALUE;
      parser_->has_items = child.type() == element_type::ARRAY;
      parser_->items = child;
    } else if (key == "metadata") {
      have_metadata = child.type() == element_type::OBJECT;
      page.resource_version.clear();
      page.continue_token.clear();
      each_field(child, [&](std::string_view name, element value) {
        if (name != "resourceVersion" && name != "continue") return;
        if (value.type() != element_type::STRING) {
          strings = false;  // a list's resourceVersion and continue token are strings
          return;
        }
        (name == "continue" ? page.continue_token : page.resource_version) = std::string(value.get_string().value_unsafe());
      });
    }
  });
  if (root.type() != element_type::OBJECT || !have_items || !have_metadata || !strings) {
    parser_->has_items = false;
    error = "no items array or no metadata object";
    return false;
  }
  return true;
}

void ListPageReader::trim_items(ObjectKind kind, std::vector<json>& items) {
  items.clear();
  if (!parser_->has_items) return;
  const simdjson::dom::array array = array_of(parser_->items);
  items.reserve(array.size());
  for (element item : array) items.push_back(trim(kind, item, version_));
  parser_->has_items = false;
}

bool ListPageReader::read(ObjectKind kind, std::string& body, ListPage& page, std::string& error) {
  if (!parse(body, page, error)) return false;
  trim_items(kind, page.items);
  return true;
}

}  // namespace gpuadmit::kube
