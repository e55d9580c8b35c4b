// The watch stream from the API server: bytes arrive in arbitrary pieces, LineSplitter cuts
// them into event lines, and each line is decoded as ClusterWatch's handle_line does (it is
// private to webhook/kube/watch.cpp, so its steps are repeated here with the same public functions):
// parse without throwing, check type and object, trim_object, object_key, then the model. None
// of that may throw on the watch thread except the model's SnapshotError (which the sink logs).
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_common.h"
#include "webhook/kube/objects.h"

namespace kube = gpuadmit::kube;
using nlohmann::json;

namespace {

void handle_line(kube::ObjectKind kind, const std::string& line, gpuadmit::capacity::ClusterModel& model) {
  const json event = json::parse(line, nullptr, false);
  if (event.is_discarded() || !event.is_object()) return;
  const json* type = event.contains("type") ? &event["type"] : nullptr;
  const json* object = event.contains("object") ? &event["object"] : nullptr;
  if (!type || !type->is_string() || !object || !object->is_object()) return;
  const std::string type_name = type->get<std::string>();
  if (type_name == "ERROR") {
    (void)(object->value("code", json()).is_number_integer() ? (*object)["code"].get<int>() : 0);
    return;
  }
  const std::string rv = kube::resource_version_of(*object);
  if (type_name == "BOOKMARK") return;
  const bool removal = type_name == "DELETED";
  if (!removal && type_name != "ADDED" && type_name != "MODIFIED") return;
  if (object->contains("kind") && object->value("kind", json()) != kube::kind_name(kind)) return;
  const std::string key = kube::object_key(*object);
  if (key.empty() || rv.empty()) return;
  const json trimmed = kube::trim_object(kind, *object);
  const std::string name = kube::metadata_string(trimmed, "name");
  std::string ns = kube::metadata_string(trimmed, "namespace");
  try {
    switch (kind) {
      case kube::ObjectKind::Node:
        removal ? (void)model.delete_node(name) : model.upsert_node(trimmed);
        break;
      case kube::ObjectKind::Pod:
        if (ns.empty()) ns = "default";
        removal ? (void)model.delete_pod(ns, name) : model.upsert_pod(trimmed);
        break;
      case kube::ObjectKind::Namespace:
        removal ? (void)model.delete_namespace(name) : model.upsert_namespace(trimmed);
        break;
      case kube::ObjectKind::ResourceClaim:
      case kube::ObjectKind::ResourceClaimTemplate: {
        const auto claim_kind = kind == kube::ObjectKind::ResourceClaim ? gpuadmit::k8s::ClaimCatalog::Kind::Claim
                                                                        : gpuadmit::k8s::ClaimCatalog::Kind::Template;
        if (ns.empty()) ns = "default";
        removal ? (void)model.delete_claim(claim_kind, ns, name) : model.upsert_claim(trimmed);
        break;
      }
      case kube::ObjectKind::PodDisruptionBudget:
        if (ns.empty()) ns = "default";
        removal ? (void)model.delete_disruption_budget(ns, name) : model.upsert_disruption_budget(trimmed);
        break;
      case kube::ObjectKind::PriorityClass:
        removal ? (void)model.delete_priority_class(name) : model.upsert_priority_class(trimmed);
        break;
    }
  } catch (const gpuadmit::capacity::SnapshotError&) {
  }
}

}  // namespace

// First byte: the watched kind and the size of the pieces the stream arrives in.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t kinds = std::size(kube::kWatchedKinds);
  const kube::ObjectKind kind = kube::kWatchedKinds[data[0] % kinds];
  const std::size_t piece = 1 + data[0] / kinds % 64 * 61;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  if (gpuadmit::fuzz::skip_known_classes(stream)) return -1;
  gpuadmit::capacity::ClusterModel model;
  kube::LineSplitter splitter(1 << 16);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    lines.clear();
    if (!splitter.feed(stream.substr(at, piece), lines)) break;
    for (const std::string& line : lines) handle_line(kind, line, model);
  }
  // What a review reads from the model afterwards.
  gpuadmit::answer_admission_review(gpuadmit::fuzz::default_engine(),
                                    R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",
      "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
      "namespace":"default","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod",
      "metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nvcr.io/nvidia/cuda:12.4.1-base",
      "resources":{"limits":{"nvidia.com/gpu":"1","cpu":"1","memory":"1Gi"}}}]}}}})",
                                    &model);
  return 0;
}
