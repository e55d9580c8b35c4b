// The process's allocator: mimalloc where the build links it (GPUADMIT_MIMALLOC, the default
// outside sanitizer builds), else glibc's malloc. Reviews are nearly all nlohmann JSON nodes and
// strings: with mimalloc a served review took 11-14 % less CPU, and 16 concurrent 2.6 MB ones
// peaked at 158 MB instead of 213-223 MB (bench/README.md, 2026-12-07 session 18). Freed pages
// go back to the OS at once (decommit delay 0, unless MIMALLOC_DECOMMIT_DELAY says otherwise).
#pragma once

#include <string>

namespace gpuadmit::webhook {

// Gives the memory the calling thread freed back to the OS: after a large review or a cluster
// list, so the resident size follows what is kept. mimalloc keeps freed pages per thread, so
// this is called on the thread that did the work.
void return_free_memory();

// "mimalloc 2.0.9" or "glibc malloc": which allocator serves malloc in this process, found by
// asking mimalloc whether it owns a block calloc returned, not from how the build was configured.
std::string malloc_in_use();

// Whether this build links mimalloc as the process's malloc.
bool built_with_mimalloc();

}  // namespace gpuadmit::webhook
