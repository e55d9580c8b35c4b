// Kubeconfig files (`--kubeconfig F`): load_kubeconfig() throws KubeConfigError naming the file
// and entry, nothing else. The server URL parser is fed the raw input as well.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_common.h"
#include "webhook/kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (gpuadmit::fuzz::skip_known_classes(text)) return -1;
  const std::string path = gpuadmit::fuzz::write_temp_file("kubeconfig", text);
  try {
    const gpuadmit::kube::KubeConfig config = gpuadmit::kube::load_kubeconfig(path);
    (void)config.bearer_token();
  } catch (const gpuadmit::kube::KubeConfigError&) {
  }
  try {
    gpuadmit::kube::KubeConfig config;
    gpuadmit::kube::parse_server_url(text, config);
  } catch (const gpuadmit::kube::KubeConfigError&) {
  }
  return 0;
}
