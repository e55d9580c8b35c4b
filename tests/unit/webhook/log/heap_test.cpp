#include "webhook/log/heap.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <vector>

namespace gpuadmit::webhook {
namespace {

TEST(Heap, TheAllocatorInUseIsTheOneTheBuildLinks) {
  // Fails where mimalloc is linked but libc's malloc still serves the process (link order).
  const std::string in_use = malloc_in_use();
  if (built_with_mimalloc())
    EXPECT_EQ(in_use.rfind("mimalloc 2.", 0), 0u) << in_use;
  else
    EXPECT_EQ(in_use, "glibc malloc");
}

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

#if defined(__SANITIZE_ADDRESS__)
#define GPUADMIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GPUADMIT_ASAN 1
#endif
#endif

TEST(Heap, FreedMemoryGoesBackToTheSystem) {
#ifdef GPUADMIT_ASAN
  GTEST_SKIP() << "ASan's allocator keeps freed blocks in quarantine";
#endif
  constexpr std::size_t kBlocks = 400'000, kBlockBytes = 200;  // 80 MB of small blocks, as a big review's
  const long before = resident_bytes();
  {
    std::vector<std::unique_ptr<char[]>> blocks;
    blocks.reserve(kBlocks);
    for (std::size_t i = 0; i < kBlocks; ++i) {
      blocks.emplace_back(new char[kBlockBytes]);
      blocks.back()[0] = 1;  // touched: resident
    }
    EXPECT_GT(resident_bytes() - before, 60L << 20);
  }
  return_free_memory();
  EXPECT_LT(resident_bytes() - before, 20L << 20);
}

}  // namespace
}  // namespace gpuadmit::webhook
