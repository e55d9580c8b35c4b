// The command line is declared once per command (webhook/cli/args.h): parsing, defaults and the
// usage text come from the same declaration, and the README shows the usage verbatim.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/command_output.h"
#include "webhook/cli/commands.h"

namespace {

namespace fs = std::filesystem;
using namespace gpuadmit::cli;

const std::string kBinary = (fs::path(GPUADMIT_BINARY_DIR) / "gpu-admit").string();

std::string run(const std::string& arguments, int& status) {
  return gpuadmit::testing::command_output(kBinary + " " + arguments + " 2>&1", status);
}

Args parse(const CommandSpec& spec, std::vector<std::string> words) {
  words.insert(words.begin(), {"gpu-admit", spec.name});
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  return parse_args(static_cast<int>(argv.size()), argv.data(), 2, spec);
}

std::vector<Command> all_commands() {
  return {check_command(), review_command(), inventory_command(), test_command(), watch_command(), serve_command(),
          explain_command()};
}

TEST(CommandLine, EveryDeclaredOptionIsInTheHelpAndParses) {
  for (const Command& command : all_commands()) {
    int status = -1;
    const std::string help = run(command.spec.name + " --help", status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << command.spec.name;
    EXPECT_EQ(help, command.spec.help());
    for (const Flag& flag : command.spec.flags) {
      EXPECT_NE(help.find("  " + (flag.alias.empty() ? "" : flag.alias + "|") + flag.name), std::string::npos)
          << command.spec.name << " " << flag.name;
      if (!flag.fallback.empty()) {
        EXPECT_NE(help.find("(default " + flag.fallback + ")"), std::string::npos) << flag.name;
      }
      // The default as the value: in range, and the input limits parse_args sets stay as they were.
      const std::string value = flag.fallback.empty() ? "7" : flag.fallback;
      const Args args = flag.value.empty() ? parse(command.spec, {flag.name}) : parse(command.spec, {flag.name, value});
      EXPECT_TRUE(flag.value.empty() ? args.flag(flag.name) : args.value(flag.name) == value) << flag.name;
    }
  }
}

TEST(CommandLine, DefaultsAliasesAndErrors) {
  const Command check = check_command();
  Args args = parse(check.spec, {"-o", "json", "--namespace=ml", "a.yaml", "-", "--", "--not-an-option"});
  EXPECT_EQ(args.text("--output"), "json");  // the alias lands under the option's name
  EXPECT_EQ(args.text("--namespace"), "ml");
  EXPECT_EQ(args.positional, (std::vector<std::string>{"a.yaml", "-", "--not-an-option"}));
  args = parse(check.spec, {});
  EXPECT_EQ(args.text("--output"), "text");  // the declared default
  EXPECT_EQ(args.text("--namespace"), "default");
  EXPECT_FALSE(args.value("--namespace"));  // given: no
  EXPECT_THROW(parse(check.spec, {"--bogus"}), UsageError);
  EXPECT_THROW(parse(check.spec, {"--config"}), UsageError);          // needs a value
  EXPECT_THROW(parse(check.spec, {"--show-mutated=yes"}), UsageError);  // a switch takes none
  EXPECT_THROW(parse(check.spec, {"--max-depth", "3"}), UsageError);    // below its range

  const Command serve = serve_command();
  args = parse(serve.spec, {"--workers", "8"});
  EXPECT_EQ(args.whole("--workers", 1, 4096), 8);
  EXPECT_EQ(parse(serve.spec, {}).whole("--workers", 1, 4096), 64);  // ServerOptions' default
  EXPECT_THROW(parse(serve.spec, {"--workers", "8x"}).whole("--workers", 1, 4096), UsageError);
  try {
    parse(serve.spec, {"--workers", "0"}).whole("--workers", 1, 4096);
    FAIL() << "0 workers accepted";
  } catch (const UsageError& error) {
    EXPECT_STREQ(error.what(), "--workers must be a whole number from 1 to 4096, not '0'");
  }
}

TEST(CommandLine, AUsageErrorNamesTheOptionAndShowsTheCommandsHelp) {
  int status = -1;
  const std::string out = run("serve --tls-cert a --tls-key b --workers nine", status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(out.starts_with("gpu-admit serve: --workers must be a whole number from 1 to 4096, not 'nine'\n\nusage: gpu-admit serve"))
      << out;
  const std::string loops = run("serve --tls-cert a --tls-key b --io-threads 65", status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(loops.starts_with("gpu-admit serve: --io-threads must be a whole number from 0 to 64, not '65'")) << loops;
  EXPECT_EQ(WEXITSTATUS(std::system((kBinary + " frobnicate 2>/dev/null").c_str())), 2);
}

TEST(CommandLine, TheReadmeShowsTheUsageVerbatim) {
  int status = -1;
  const std::string usage = run("help", status);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const std::string readme = gpuadmit::testing::read_text(fs::path(GPUADMIT_SOURCE_DIR) / "README.md");
  EXPECT_NE(readme.find("```\n" + usage + "```\n"), std::string::npos)
      << "README.md's \"Command line\" block differs from `gpu-admit help`; paste it again:\n" << usage;
}

}  // namespace
