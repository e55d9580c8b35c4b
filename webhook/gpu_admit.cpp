// Process entry point; every subcommand lives in main.cpp so tests can call it in-process.
#include "webhook/main.h"

int main(int argc, char** argv) { return gpuadmit::cli::run_main(argc, argv); }
