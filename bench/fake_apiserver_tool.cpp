// A fake API server (tests/support/fake_apiserver.h) holding a cluster for load benchmarks of
// `serve --kubeconfig`: NODES GPU nodes and PODS pods without owners, so a background audit
// reviews every one of them (bench/audit_load.sh). It writes DIR/kubeconfig, prints "ready
// PORT", and serves until SIGTERM or SIGINT.
//
//   fake_apiserver_tool DIR [NODES] [PODS]   (default 100 2000)
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "tests/support/fake_apiserver.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fake_apiserver_tool DIR [NODES] [PODS]\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const int nodes = argc > 2 ? std::atoi(argv[2]) : 100;
  const int pods = argc > 3 ? std::atoi(argv[3]) : 2000;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::filesystem::create_directories(dir);
  gpuadmit::testing::FakeApiServer api(dir / "api");
  api.set_token("bench");
  for (const char* ns : {"ml-serving", "ml-training"}) api.apply("namespaces", gpuadmit::testing::fake_namespace(ns));
  for (int i = 0; i < nodes; ++i) api.apply("nodes", gpuadmit::testing::fake_node("gpu-" + std::to_string(i), 8));
  for (int i = 0; i < pods; ++i) {
    nlohmann::json pod = gpuadmit::testing::fake_pod(i % 2 ? "ml-serving" : "ml-training", "pod-" + std::to_string(i),
                                                     "gpu-" + std::to_string(i % std::max(1, nodes)), 1);
    pod["metadata"].erase("ownerReferences");  // judged themselves: the audit's full cost
    api.apply("pods", pod);
  }
  api.write_kubeconfig(dir / "kubeconfig", "bench");
  std::cout << "ready " << api.port() << std::endl;
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  return 0;
}
