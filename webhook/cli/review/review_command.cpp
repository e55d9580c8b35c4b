// `gpu-admit review`: one AdmissionReview request in, exactly the webhook's response out.
#include <iostream>

#include "engine/input_limits.h"
#include "webhook/cli/commands.h"

namespace gpuadmit::cli {

namespace {

int review(const Args& args) {
  if (args.positional.size() > 1) throw UsageError("review takes one file (or - for stdin)");
  auto engine = load_engine(args);
  auto cluster = load_cluster(args, *engine);
  const std::string path = args.positional.empty() ? "-" : args.positional[0];
  std::string body;
  try {
    body = path == "-" ? read_standard_input() : read_input_file(path);
  } catch (const InputError& error) {
    std::cerr << "gpu-admit review: " << (path == "-" ? "<stdin>: " : "") << error.what() << "\n";
    return kExitBadInput;
  }
  HttpAnswer answer = answer_admission_review(*engine, body, cluster.get());
  if (answer.status != 200) {
    std::cerr << "gpu-admit review: " << path << ": HTTP " << answer.status << ": " << answer.body << "\n";
    return kExitBadInput;
  }
  std::cout << answer.body << "\n";
  return answer.allowed ? kExitOk : kExitDenied;
}

}  // namespace

Command review_command() {
  return {command_spec("review", "[FILE|-]",
                       "    Read one AdmissionReview request, write the AdmissionReview response the webhook sends.",
                       {config_flag(), cluster_flag()}),
          review};
}

}  // namespace gpuadmit::cli
