// parse_json reads with simdjson and falls back to nlohmann's parser for whatever simdjson refuses:
// both must build the same value from the same text, and refuse the same texts with nlohmann's
// message. The reference is parse_json_nlohmann, on every JSON file of the project and the public
// fixtures, on the edge cases where the two parsers differ, and on thousands of damaged requests.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "engine/input_limits.h"
#include "tests/support/json_files.h"
#include "tests/support/same_json_tree.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::same_tree;

// Returns "" when parse_json agrees with the reference on `text`, else what differs.
std::string disagreement(const std::string& text) {
  std::optional<json> reference, parsed;
  std::string reference_error, parsed_error;
  try {
    reference = parse_json_nlohmann(text);
  } catch (const InputError& error) {
    reference_error = error.what();
  }
  try {
    parsed = parse_json(text);
  } catch (const InputError& error) {
    parsed_error = error.what();
  }
  if (reference_error != parsed_error) return "errors: '" + reference_error + "' and '" + parsed_error + "'";
  if (reference && !same_tree(*reference, *parsed)) return "values: " + reference->dump() + " and " + parsed->dump();
  return "";
}

TEST(ParseJson, BuildsWhatNlohmannBuildsFromEveryJsonFile) {
  const std::size_t files = testing::for_each_json_file(
      [](const fs::path& path, const std::string& text) { EXPECT_EQ(disagreement(text), "") << path; });
  EXPECT_GT(files, 200u);
}

TEST(ParseJson, AgreesWhereTheTwoParsersDiffer) {
  for (const std::string& text : std::vector<std::string>{
           "-0", "[-0, 0, -0.0, 0.0, 1.0, 1E-400, 4.9e-324, 1.7976931348623157e308]",
           "1e400", "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
           "18446744073709551616", "123456789012345678901234567890",
           R"("\ud800")", R"("\ud800\u0041")", R"("\udc00")", R"("\ud83d\ude00")", "\"\xed\xa0\x80\"",
           "\xEF\xBB\xBF{}", "\xEF\xBB\xBF", R"("\u0000x")", R"({"a":1,"a":{"b":2},"a":[3]})",
           " \t\r\n[1]\n", "[1] x", "", " ", "[1,]", "{\"a\":1,}", "[\"\x01\"]", "\"\xff\"",
           "nul", "[true,false,null]", "{\"\":\"\"}", "01", "1.", ".5", "-", "[1e5, 1E+5, 1e-5, -1.5e-7]",
           std::string("[1]\0", 4), std::string("\"a\0b\"", 5)}) {
    EXPECT_EQ(disagreement(text), "") << "'" << text << "'";
  }
}

// At the depth limit, and past it, with the limit lowered.
TEST(ParseJson, RefusesNestingPastTheLimitAsNlohmannDoes) {
  const InputLimits saved = input_limits();
  InputLimits low = saved;
  low.max_depth = 8;
  set_input_limits(low);
  for (std::size_t depth = 6; depth <= 10; ++depth) {
    const std::string arrays = std::string(depth, '[') + std::string(depth, ']');
    std::string objects = "1";
    for (std::size_t i = 0; i < depth; ++i) objects = "{\"a\":" + objects + "}";
    EXPECT_EQ(disagreement(arrays), "") << depth;
    EXPECT_EQ(disagreement(objects), "") << depth;
    if (depth <= 8) {
      EXPECT_NO_THROW(parse_json(arrays)) << depth;
    } else {
      EXPECT_THROW(parse_json(arrays), InputError) << depth;
    }
  }
  set_input_limits(saved);
}

// Requests damaged at random (a byte changed, dropped or repeated, the text cut) as a hostile
// client or a broken proxy would send them; and texts past the size a thread keeps a parser for.
TEST(ParseJson, AgreesOnDamagedRequests) {
  const std::string request =
      testing::read_text(fs::path(GPUADMIT_SOURCE_DIR) / "tests/golden/probe-defaults--deployment-vllm-profile/request.json");
  ASSERT_FALSE(request.empty());
  std::mt19937 random(15);
  const std::string alphabet = "{}[],:\"\\0123456789-+.eEtrufalsn \xff\xc3\xa9u";
  std::size_t refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = request;
    for (int edits = 1 + static_cast<int>(random() % 3); edits > 0; --edits) {
      const std::size_t at = random() % text.size();
      switch (random() % 4) {
        case 0: text[at] = alphabet[random() % alphabet.size()]; break;
        case 1: text.erase(at, 1); break;
        case 2: text.insert(at, 1, text[at]); break;
        default: text.resize(at); break;
      }
      if (text.empty()) break;
    }
    const std::string differs = disagreement(text);
    EXPECT_EQ(differs, "") << text;
    if (!differs.empty()) break;
    try {
      parse_json(text);
    } catch (const InputError&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 500u);  // the damage reached the refusals, not only strings' contents
  // A text larger than a kept parser (16 KiB), then a small one again on the same thread.
  json big = json::array();
  for (int i = 0; i < 400; ++i) big.push_back(json::parse(request));
  EXPECT_EQ(disagreement(big.dump()), "");
  EXPECT_EQ(disagreement(request), "");
}

}  // namespace
}  // namespace gpuadmit
