// `gpu-admit review`: one AdmissionReview request in, exactly the webhook's response out.
#include <fstream>
#include <iostream>
#include <sstream>

#include "webhook/commands.h"

namespace gpuadmit::cli {

int review_command(int argc, char** argv) {
  Args args = parse_args(argc, argv, 2, {"--config", "--cluster"}, {});
  if (args.positional.size() > 1) throw UsageError("review takes one file (or - for stdin)");
  auto engine = load_engine(args);
  auto cluster = load_cluster(args);
  const std::string path = args.positional.empty() ? "-" : args.positional[0];
  std::stringstream body;
  if (path == "-") {
    body << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cerr << "gpu-admit review: " << path << ": cannot read the file\n";
      return kExitBadInput;
    }
    body << in.rdbuf();
  }
  HttpAnswer answer = answer_admission_review(*engine, body.str(), cluster.get());
  if (answer.status != 200) {
    std::cerr << "gpu-admit review: " << path << ": HTTP " << answer.status << ": " << answer.body << "\n";
    return kExitBadInput;
  }
  std::cout << answer.body << "\n";
  return answer.allowed ? kExitOk : kExitDenied;
}

}  // namespace gpuadmit::cli
