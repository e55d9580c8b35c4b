// append_json must write what nlohmann's dump() writes, byte for byte, and fail where it fails:
// checked on every JSON file of the project and the fixtures, on the strings that need escaping,
// on numbers of every JSON type, and on invalid UTF-8 under both error handlers.
#include "engine/json_writer.h"

#include <gtest/gtest.h>

#include <limits>

#include "engine/input_limits.h"
#include "tests/support/json_files.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

// "" when write_json agrees with dump() on `value` under `handler`, else what differs.
std::string disagreement(const json& value, json::error_handler_t handler = json::error_handler_t::strict) {
  std::string expected, written, expected_error, written_error;
  try {
    expected = value.dump(-1, ' ', false, handler);
  } catch (const json::exception& error) {
    expected_error = error.what();
  }
  try {
    written = write_json(value, handler);
  } catch (const json::exception& error) {
    written_error = error.what();
  }
  if (expected_error != written_error) return "errors: '" + expected_error + "' and '" + written_error + "'";
  if (expected_error.empty() && expected != written) return "texts: " + expected + " and " + written;
  return "";
}

TEST(AppendJson, WritesWhatDumpWritesForEveryJsonFile) {
  std::size_t parsed = 0;
  const std::size_t files = testing::for_each_json_file([&](const std::filesystem::path& path, const std::string& text) {
    json value;
    try {
      value = parse_json(text);
    } catch (const InputError&) {
      return;  // the corpora hold damaged texts too
    }
    ++parsed;
    EXPECT_EQ(disagreement(value), "") << path;
  });
  EXPECT_GT(files, 200u);
  EXPECT_GT(parsed, 150u);
}

TEST(AppendJson, EscapesAsDumpDoes) {
  const std::string all_bytes_below_0x80 = [] {
    std::string text;
    for (int c = 0; c < 0x80; ++c) text += static_cast<char>(c);
    return text;
  }();
  for (const std::string& text : {std::string(), std::string("plain"), std::string("quote \" and \\ backslash"),
                                  std::string("only \"quotes\""), std::string("only \\ a backslash"),
                                  std::string("tab\tnewline\nreturn\rbell\x07 nul", 26), all_bytes_below_0x80,
                                  std::string("UTF-8: caf\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x9a\x80"), std::string("\x7f")}) {
    EXPECT_EQ(disagreement(json(text)), "") << text;
    EXPECT_EQ(disagreement(json::object({{text, text}})), "") << text;  // as a key too
    EXPECT_EQ(disagreement(json::array({text, 1, text})), "") << text;
  }
}

TEST(AppendJson, EveryByteAtEveryPositionOfAWordIsWrittenAsDumpWritesIt) {
  // Strings are scanned eight bytes at a time, then byte by byte: each byte value is put at each
  // position of two words and a tail, alone and after a multi-byte character.
  for (int byte = 0; byte < 256; ++byte)
    for (std::size_t at = 0; at < 19; ++at)
      for (const std::string& base : {std::string(19, 'a'), std::string("\xc3\xa9") + std::string(17, 'a')}) {
        std::string text = base;
        text[at] = static_cast<char>(byte);
        EXPECT_EQ(disagreement(json(text), json::error_handler_t::replace), "") << "byte " << byte << " at " << at;
      }
}

TEST(AppendJson, InvalidUtf8FailsOrIsReplacedAsInDump) {
  for (const std::string& text : {std::string("cut \xc3"), std::string("\xff\xfe"), std::string("a\xe2\x80 b"),
                                  std::string("overlong \xc0\xaf"),
                                  std::string("surrogate \xed\xa0\x80"), std::string("past U+10FFFF \xf4\x90\x80\x80"),
                                  std::string("\"quoted\" then cut \xe2\x82")}) {
    for (auto handler : {json::error_handler_t::strict, json::error_handler_t::replace, json::error_handler_t::ignore}) {
      EXPECT_EQ(disagreement(json(text), handler), "") << text;
      EXPECT_EQ(disagreement(json::object({{"k", text}, {text, 1}}), handler), "") << text;
    }
    EXPECT_THROW(write_json(json(text)), json::type_error);
  }
}

TEST(AppendJson, WritesNumbersOfEveryTypeAsDumpDoes) {
  const json values = json::array({0, -0, 1, -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                                   std::numeric_limits<std::uint64_t>::max(), 0u, 0.0, -0.0, 1.5, -2.25, 1e300, 1e-300, 0.1,
                                   std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), true,
                                   false, nullptr, json::object(), json::array(), json::array({json::object()})});
  EXPECT_EQ(disagreement(values), "");
  for (const json& value : values) EXPECT_EQ(disagreement(value), "") << value.dump();
}

// A string alone is written as the json holding it is, escapes and invalid UTF-8 included.
TEST(AppendJsonString, WritesWhatAppendJsonWritesForTheString) {
  for (const std::string& text : {std::string(), std::string("plain"), std::string("quote \" and \\ backslash"),
                                  std::string("tab\tnewline\nnul\0end", 18), std::string("caf\xc3\xa9 \xe2\x80\xa6"),
                                  std::string("cut \xc3"), std::string("\xff\xfe")})
    for (auto handler : {json::error_handler_t::strict, json::error_handler_t::replace, json::error_handler_t::ignore}) {
      std::string expected = "x", written = "x", expected_error, written_error;
      try {
        append_json(expected, json(text), handler);
      } catch (const json::exception& error) {
        expected_error = error.what();
      }
      try {
        append_json_string(written, text, handler);
      } catch (const json::exception& error) {
        written_error = error.what();
      }
      EXPECT_EQ(written_error, expected_error) << text;
      if (expected_error.empty()) {
        EXPECT_EQ(written, expected) << text;
      }
    }
}

TEST(AppendJson, AppendsToWhatTheStringHolds) {
  std::string out = "prefix:";
  append_json(out, json::object({{"a", json::array({"x\n", 2.5})}}));
  EXPECT_EQ(out, R"(prefix:{"a":["x\n",2.5]})");
}

}  // namespace
}  // namespace gpuadmit
