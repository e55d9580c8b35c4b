// `gpu-admit check`: manifests as YAML (multi-document, kubectl's YAML 1.1 scalars) or JSON.
// parse_manifests() throws ManifestError only; each document is then shown as YAML
// (`--show-mutated`) and reviewed as check reviews it, with the sample cluster: a recorded
// AdmissionReview with its own operation (ReviewError allowed), anything else as a CREATE.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/manifests.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(text)) return -1;
  std::vector<gpuadmit::ManifestDocument> documents;
  try {
    documents = gpuadmit::parse_manifests(text, "fuzz.yaml");
  } catch (const gpuadmit::ManifestError&) {
    return 0;
  }
  const gpuadmit::Engine& engine = gpuadmit::fuzz::default_engine();
  for (const gpuadmit::ManifestDocument& document : documents) {
    gpuadmit::to_yaml(document.object);
    if (!document.object.is_object() || !document.object.contains("kind")) continue;
    if (document.object["kind"] == "AdmissionReview") {
      try {
        engine.review(gpuadmit::decode_admission_review(document.object));
      } catch (const gpuadmit::ReviewError&) {
      }
      continue;
    }
    const gpuadmit::ReviewOutcome outcome =
        engine.review(gpuadmit::request_for_manifest(document.object, "default"), &gpuadmit::fuzz::sample_cluster());
    if (!outcome.mutated.is_null()) gpuadmit::to_yaml(outcome.mutated);
  }
  return 0;
}
