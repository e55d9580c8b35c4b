#include "webhook/main.h"

#include <iostream>

namespace gpuadmit::cli {
int run_main(int, char**) {
  std::cerr << "usage: gpu-admit <check|review> ...\n";
  return 2;
}
}  // namespace gpuadmit::cli
