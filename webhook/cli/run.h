#pragma once

namespace gpuadmit::cli {
// Runs one `gpu-admit` invocation; returns the process exit status.
int run_main(int argc, char** argv);
}  // namespace gpuadmit::cli
