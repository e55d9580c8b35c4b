// The process entry point. Everything it runs is in webhook/cli/ (run.cpp dispatches to one
// folder per command), a library the tests drive in-process.
#include "webhook/cli/run.h"

int main(int argc, char** argv) { return gpuadmit::cli::run_main(argc, argv); }
