// The webhook body: answer_admission_review() is documented never to throw, so any exception
// is a finding (it would be an HTTP 500, or a crash of the server thread). Each input is
// answered twice: by the default engine alone, and with the sample cluster loaded, as
// `serve --cluster manifests/examples/cluster.json` answers it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(body)) return -1;
  const gpuadmit::Engine& engine = gpuadmit::fuzz::default_engine();
  gpuadmit::answer_admission_review(engine, body);
  gpuadmit::answer_admission_review(engine, body, &gpuadmit::fuzz::sample_cluster());
  return 0;
}
