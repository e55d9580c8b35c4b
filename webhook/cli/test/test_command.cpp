// `gpu-admit test SUITE.yaml...`: run policy test suites, as CI does before manifests ship.
#include <iostream>

#include "webhook/cli/commands.h"
#include "webhook/cli/test/test_suite.h"

namespace gpuadmit::cli {

namespace {

int test(const Args& args) {
  const std::string format = args.text("--output");
  if (format != "text" && format != "junit") throw UsageError("-o must be text or junit");
  if (args.positional.empty()) throw UsageError("test needs at least one SUITE.yaml");

  // Every suite is read before any runs, so a bad suite fails the run before it reports anything.
  std::vector<Suite> suites;
  for (const std::string& path : args.positional) {
    try {
      suites.push_back(load_suite(path));
    } catch (const ConfigError& error) {
      std::cerr << "gpu-admit test: bad suite: " << error.what() << "\n";
      return kExitBadInput;
    }
  }
  std::vector<CaseResult> results;
  for (const Suite& suite : suites)
    for (CaseResult& result : run_suite(suite)) results.push_back(std::move(result));

  std::size_t passed = 0;
  for (const CaseResult& result : results) passed += result.passed() ? 1 : 0;
  const std::size_t failed = results.size() - passed;
  // In junit mode stdout is the XML alone; the human summary goes to stderr.
  std::ostream& text = format == "junit" ? std::cerr : std::cout;
  for (const CaseResult& result : results) {
    if (result.passed()) {
      if (format == "text") text << "PASS " << result.suite << ": " << result.name << "\n";
      continue;
    }
    text << "FAIL " << result.suite << ": " << result.name << "\n";
    for (const std::string& failure : result.failures) text << "  " << failure << "\n";
  }
  if (format == "junit") std::cout << junit_xml(results);
  text << passed << " passed, " << failed << " failed\n";
  return failed ? kExitDenied : kExitOk;
}

}  // namespace

Command test_command() {
  return {command_spec("test", "SUITE.yaml...",
                       "    Run policy test suites (see README, \"Policy tests\"); prints \"N passed, M failed\".\n"
                       "    Exit 0 all passed, 1 any failed, 2 a bad suite file.",
                       {{"--output", "text|junit", "text", "the report's format (junit: XML on stdout)", "-o"}}),
          test};
}

}  // namespace gpuadmit::cli
