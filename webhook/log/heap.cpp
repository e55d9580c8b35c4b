#include "webhook/log/heap.h"

#include <malloc.h>

#include <cstdlib>

#ifdef GPUADMIT_MIMALLOC
#include <mimalloc.h>
#endif

namespace gpuadmit::webhook {
namespace {

#ifdef GPUADMIT_MIMALLOC
// mimalloc keeps freed pages committed for a while (25 ms by default) for reuse. Given back at
// once, 16 concurrent 2.6 MB reviews peaked at 148 MB instead of 225 MB and left 20 MB resident
// instead of 130 MB, and small reviews served as fast (bench/README.md, session 18).
// MIMALLOC_DECOMMIT_DELAY in the environment still wins. Set before main() runs.
const bool decommit_at_once = [] {
  if (!std::getenv("MIMALLOC_DECOMMIT_DELAY")) mi_option_set(mi_option_decommit_delay, 0);
  return true;
}();
#endif

}  // namespace

void return_free_memory() {
#ifdef GPUADMIT_MIMALLOC
  mi_collect(true);
#else
  ::malloc_trim(0);
#endif
}

std::string malloc_in_use() {
#ifdef GPUADMIT_MIMALLOC
  void* block = std::calloc(1, 64);
  const bool mimalloc = mi_is_in_heap_region(block);
  std::free(block);
  if (mimalloc) {
    const int version = mi_version();  // 209 is 2.0.9
    return "mimalloc " + std::to_string(version / 100) + "." + std::to_string(version / 10 % 10) + "." +
           std::to_string(version % 10);
  }
#endif
  return "glibc malloc";
}

bool built_with_mimalloc() {
#ifdef GPUADMIT_MIMALLOC
  return true;
#else
  return false;
#endif
}

}  // namespace gpuadmit::webhook
