// Runs a shell command and returns what it printed on stdout, for tests that drive the real
// `gpu-admit` binary.
#pragma once

#include <cstdio>
#include <string>

namespace gpuadmit::testing {

// `status` gets pclose's wait status (WEXITSTATUS gives the exit code).
inline std::string command_output(const std::string& command, int& status) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    status = -1;
    return output;
  }
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  status = pclose(pipe);
  return output;
}

}  // namespace gpuadmit::testing
