// Quantity against the upstream fact table (shared/fixtures/upstream/quantity.json, every case),
// plus inputs the table does not cover.
#include "engine/k8s/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

constexpr std::size_t kTableSize = 327;

// Cases that cannot pass, each with the reason. None: every case runs.
const std::map<std::string, std::string> kSkipped = {};

std::vector<json> load_cases() {
  std::ifstream in(GPUADMIT_SHARED_DIR "/fixtures/upstream/quantity.json");
  if (!in) return {json{{"id", "fixture-missing"}, {"kind", "fixture-missing"}}};
  return json::parse(in).at("cases").get<std::vector<json>>();
}

const std::vector<json>& cases() {
  static const std::vector<json> all = load_cases();
  return all;
}

// Upstream prints any format it does not know (the table's "invalidFormatDefaultsToExponent")
// as DecimalExponent, the one value of our enum that stands for it.
QuantityFormat format_named(const std::string& name) {
  if (name == "DecimalSI") return QuantityFormat::DecimalSI;
  if (name == "BinarySI") return QuantityFormat::BinarySI;
  return QuantityFormat::DecimalExponent;
}

std::string name_of(QuantityFormat f) {
  switch (f) {
    case QuantityFormat::DecimalSI: return "DecimalSI";
    case QuantityFormat::BinarySI: return "BinarySI";
    case QuantityFormat::DecimalExponent: return "DecimalExponent";
  }
  return "?";
}

Quantity exact(const json& value, QuantityFormat f = QuantityFormat::DecimalSI) {
  return Quantity::from_decimal(value.get<std::string>(), f);
}
Quantity exact_with_format(const json& q) {
  return exact(q.at("value"), format_named(q.at("format").get<std::string>()));
}

void check_parse(const json& c) {
  const std::string input = c.at("input");
  const std::string test = c.at("test");
  Quantity q;
  std::string error;
  const bool ok = Quantity::try_parse(input, q, &error);
  if (!c.at("ok").get<bool>()) {
    EXPECT_FALSE(ok) << "parsed as " << q.to_string();
    return;
  }
  ASSERT_TRUE(ok) << error;
  const json& e = c.at("expect");
  const json computed = c.value("computed", json::object());
  if (e.contains("value")) {
    EXPECT_EQ(q.cmp(exact(e["value"])), 0) << q.to_string();
  }
  if (e.contains("decimal")) {
    EXPECT_EQ(q.cmp(exact(e["decimal"])), 0) << q.to_string();
  }
  if (e.contains("format")) {
    EXPECT_EQ(name_of(q.format()), e["format"]);
  }
  if (e.contains("string")) {
    EXPECT_EQ(q.to_string(), e["string"]);
  } else if (computed.contains("string")) {
    EXPECT_EQ(q.to_string(), computed["string"]) << "(computed)";
  }
  if (e.value("asInt64Ok", false)) {
    EXPECT_EQ(q.value(), e["asInt64"].get<std::int64_t>());
  }
  if (e.contains("intValue")) {
    EXPECT_EQ(q.value(), e["intValue"].get<std::int64_t>());
  }
  if (e.contains("json")) {
    EXPECT_EQ('"' + q.to_string() + '"', e["json"]);
  }
  if (computed.contains("value")) {
    EXPECT_EQ(q.value(), computed["value"].get<std::int64_t>()) << "(computed)";
  }
  if (computed.contains("milliValue")) {
    EXPECT_EQ(q.milli_value(), computed["milliValue"].get<std::int64_t>()) << "(computed)";
  }
  if (test == "TestQuantityParse") {  // signed spellings keep the format
    const Quantity neg = Quantity::parse("-" + input), pos = Quantity::parse("+" + input);
    EXPECT_EQ(neg.cmp(exact(e["value"]).negated()), 0) << neg.to_string();
    EXPECT_EQ(pos.cmp(exact(e["value"])), 0) << pos.to_string();
    EXPECT_EQ(name_of(neg.format()), e["format"]);
    EXPECT_EQ(name_of(pos.format()), e["format"]);
  }
  if (test == "TestQuantityParseEmit" && !q.is_zero()) {
    EXPECT_EQ(Quantity::parse("-" + input).to_string(), "-" + e["string"].get<std::string>());
  }
}

void check_split(const json& c) {
  const std::string input = c.at("input");  // the parts view it
  Quantity::Parts p;
  ASSERT_TRUE(Quantity::split(input, p));
  const json& e = c.at("expect");
  EXPECT_EQ(p.positive, e["positive"].get<bool>());
  EXPECT_EQ(p.value, e["value"].get<std::string>());
  EXPECT_EQ(p.num, e["num"].get<std::string>());
  EXPECT_EQ(p.denom, e["denom"].get<std::string>());
  EXPECT_EQ(p.suffix, e["suffix"].get<std::string>());
}

void check_format(const json& c) {
  const Quantity q = exact_with_format(c.at("quantity"));
  const std::string want = c.at("expect").at("string");
  EXPECT_EQ(q.to_string(), want);
  EXPECT_EQ(Quantity::parse(want).to_string(), want) << "reparsed";
  if (const json& alt = c["expect"]["alternate"]; !alt.is_null()) {
    EXPECT_EQ(Quantity::parse(alt.get<std::string>()).to_string(), want) << "alternate " << alt;
  }
  if (!q.is_zero()) {
    EXPECT_EQ(q.negated().to_string(), "-" + want);
  }
}

void check_case(const json& c) {
  const std::string kind = c.at("kind");
  const json& e = c.contains("expect") ? c["expect"] : json();
  if (kind == "parse") {
    check_parse(c);
  } else if (kind == "parse_quantity_string_internal") {
    check_split(c);
  } else if (kind == "format") {
    check_format(c);
  } else if (kind == "compare") {
    EXPECT_EQ(Quantity::parse(c.at("x").get<std::string>())
                  .cmp(Quantity::parse(c.at("y").get<std::string>())),
              e.at("cmp").get<int>());
  } else if (kind == "round_up") {
    Quantity q = Quantity::parse(c.at("input").get<std::string>());
    EXPECT_EQ(q.round_up(c.at("scale").get<int>()), e.at("exact").get<bool>());
    EXPECT_EQ(q.cmp(exact(e.at("value"))), 0) << q.to_string();
  } else if (kind == "negate") {
    EXPECT_EQ(exact_with_format(c.at("quantity")).negated().to_string(), e.at("string"));
  } else if (kind == "add" || kind == "sub") {
    Quantity a = exact_with_format(c.at("a"));
    const Quantity b = exact_with_format(c.at("b"));
    a = kind == "add" ? a + b : a - b;
    EXPECT_EQ(a.cmp(exact(e.at("value"))), 0) << a.to_string();
  } else if (kind == "add_zero_string") {
    const Quantity q = Quantity::parse(c.at("input").get<std::string>()),
                   zero = Quantity::parse("0");
    EXPECT_EQ((q + zero).to_string(), e.at("string_after_add_zero"));
    EXPECT_EQ((zero + q).to_string(), e.at("string_zero_plus_input"));
  } else if (kind == "sub_zero_string") {
    const Quantity q = Quantity::parse(c.at("input").get<std::string>()),
                   zero = Quantity::parse("0");
    EXPECT_EQ((q - zero).to_string(), e.at("string_after_sub_zero"));
    if (e.at("string_zero_minus_input_equals_negated_input_string").get<bool>()) {
      EXPECT_EQ((zero - q).to_string(), q.negated().to_string());
    }
  } else if (kind == "json_unmarshal") {
    ASSERT_TRUE(c.at("ok").get<bool>());
    EXPECT_EQ(Quantity::from_json_text(c.at("json").get<std::string>()).to_string(),
              e.at("string"));
  } else if (kind == "new_milli_quantity") {
    const auto milli = c.at("milliValue").get<std::int64_t>();
    const std::string want = e.at("string");
    EXPECT_EQ(Quantity::from_milli(milli, format_named(c.at("format"))).to_string(), want);
    if (e.at("roundtrip_exact").get<bool>()) {
      EXPECT_EQ(Quantity::parse(want).milli_value(), milli);
    }
  } else if (kind == "new_quantity") {
    const auto v = c.at("intValue").get<std::int64_t>();
    const std::string want = e.at("string");
    EXPECT_EQ(Quantity::from_int(v, format_named(c.at("format"))).to_string(), want);
    EXPECT_EQ(Quantity::parse(want).value(), v);
  } else if (kind == "new_scaled_quantity") {
    const auto v = c.at("scaledValue").get<std::int64_t>();
    const int scale = c.at("scale");
    const std::string want = e.at("string");
    EXPECT_EQ(Quantity::from_scaled(v, scale).to_string(), want);
    EXPECT_EQ(Quantity::parse(want).scaled_value(scale), v);
  } else if (kind == "scaled_value") {
    EXPECT_EQ(Quantity::from_scaled(1, c.at("fromScale")).scaled_value(c.at("toScale")),
              e.at("scaledValue").get<std::int64_t>());
  } else if (kind == "as_float64") {
    ASSERT_TRUE(c.at("ok").get<bool>());
    EXPECT_EQ(Quantity::parse(c.at("input").get<std::string>()).as_double(),
              e.at("float64").get<double>());
  } else {
    FAIL() << "unknown kind " << kind;
  }
}

class QuantityTable : public ::testing::TestWithParam<json> {};

TEST_P(QuantityTable, Case) {
  const json& c = GetParam();
  const std::string id = c.at("id");
  SCOPED_TRACE("case " + id);
  if (const auto skip = kSkipped.find(id); skip != kSkipped.end()) GTEST_SKIP() << skip->second;
  check_case(c);
}

std::string case_name(const ::testing::TestParamInfo<json>& info) {
  std::string name = info.param.at("id");
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(QuantityUpstream, QuantityTable, ::testing::ValuesIn(cases()), case_name);

TEST(QuantityTableFile, HasEveryCase) { EXPECT_EQ(cases().size(), kTableSize); }

// ---- Beyond the table ----

std::string parse_error(std::string_view text) {
  Quantity q;
  std::string error;
  EXPECT_FALSE(Quantity::try_parse(text, q, &error)) << text << " parsed as " << q.to_string();
  return error;
}

TEST(QuantityErrors, QuoteTheInputAndGiveUpstreamsReason) {
  EXPECT_EQ(parse_error("12Q"),
            "\"12Q\" is not a valid quantity: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  EXPECT_EQ(parse_error(""),
            "\"\" is not a valid quantity: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  EXPECT_EQ(parse_error("1Gi1"),
            "\"1Gi1\" is not a valid quantity: unable to parse quantity's suffix");
  EXPECT_EQ(parse_error("Pi"),
            "\"Pi\" is not a valid quantity: unable to parse numeric part of quantity");
  EXPECT_EQ(parse_error("1\n"),
            "\"1\\x0a\" is not a valid quantity: quantities must match the "
            "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  EXPECT_THROW(Quantity::parse("1.5.5"), QuantityError);
}

TEST(QuantityGrammar, RejectsMalformedInput) {
  for (const char* bad : {"", "1.5.5", "1Gi1", "1e", "1e+", "1ee3", "1e3.5", "1K", "1gi", "1 Gi",
                          " 1", "1 ", "\t1", "--1", "1Ki-", "0x10", "1,5", "∞"}) {
    parse_error(bad);
  }
}

TEST(QuantityGrammar, ScannerQuirksUpstreamAccepts) {
  // The scanner never insists on a digit: these are all zero (inf.Dec, used for "Pi"/"Ei"
  // and sub-nano exponents, does insist).
  for (const char* zero : {"+", "-", ".", "-.", "k", "Ki", "Ti", "n", "e5", "00"}) {
    const Quantity q = Quantity::parse(zero);
    EXPECT_TRUE(q.is_zero()) << zero;
    EXPECT_EQ(q.to_string(), "0") << zero;
  }
  parse_error("Ei");
  parse_error("e-10");
  // Inputs that look canonical are echoed as written.
  EXPECT_EQ(Quantity::parse("+1Ki").to_string(), "+1Ki");
  EXPECT_EQ(Quantity::parse("007").to_string(), "007");
  EXPECT_EQ(Quantity::parse("1.500").to_string(), "1.500");
  EXPECT_EQ(Quantity::parse("1.5").to_string(), "1500m");
}

TEST(QuantityGrammar, HugeExponents) {
  const Quantity big = Quantity::parse("1e2147483647");
  EXPECT_EQ(big.format(), QuantityFormat::DecimalExponent);
  EXPECT_EQ(big.to_string(), "10e2147483646");  // exponent 2^31-1 is no multiple of 3
  EXPECT_EQ(big.value(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(big.negated().value(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(big.cmp(Quantity::parse("999E")), 1);
  EXPECT_EQ(big.as_double(), std::numeric_limits<double>::infinity());
  EXPECT_THROW(big + Quantity::parse("1"), QuantityError);  // would need 2^31 digits
  EXPECT_EQ((big + big).to_string(), "20e2147483646");
  // A canonical exponent past int32 keeps its zeros in the mantissa: the string parses back (F13).
  const Quantity bigger = Quantity::parse("9000E2147483647");
  EXPECT_EQ(bigger.to_string(), "90000e2147483646");
  EXPECT_EQ(Quantity::parse(bigger.to_string()), bigger);
  // Tiny values round up to 1n, however tiny.
  EXPECT_EQ(Quantity::parse("1e-2147483648").to_string(), "1e-9");
  EXPECT_EQ(Quantity::parse("5e-20").to_string(), "1e-9");
  // Upstream narrows the exponent to int32 (wrapping) and rejects what overflows int64.
  EXPECT_EQ(Quantity::parse("1e4294967296").value(), 1);
  EXPECT_EQ(Quantity::parse("1e4294967296").to_string(), "1e4294967296");
  parse_error("1e9223372036854775808");
  EXPECT_EQ(Quantity::parse("1e-9223372036854775808").value(), 1);  // wraps to e0
}

TEST(QuantityGrammar, WhitespaceOnlyTrimmedForJson) {
  parse_error(" 1");
  parse_error("1 ");
  EXPECT_THROW(Quantity::from_json_text("\" 2Gi\\t\""), QuantityError);  // escapes stay raw
  EXPECT_EQ(Quantity::from_json_text("\"\t2Gi\xC2\xA0\"").to_string(), "2Gi");
  EXPECT_EQ(Quantity::from_json_text("null").to_string(), "0");
  EXPECT_EQ(Quantity::from_json_text("0.5").to_string(), "500m");
  EXPECT_THROW(Quantity::from_json_text("\"1 Gi\""), QuantityError);
}

TEST(QuantityPrinting, OutsideTheSuffixTables) {
  EXPECT_EQ(Quantity::parse("1000E").to_string(), "1e21");  // upstream fix #140459
  EXPECT_EQ(Quantity::from_scaled(1, -12).to_string(), "1e-12");
  EXPECT_EQ(Quantity::from_scaled(15, -11).to_string(), "150e-12");
  // 2^70 in BinarySI has no suffix; print it whole rather than as "1".
  EXPECT_EQ(Quantity::from_decimal("1180591620717411303424", QuantityFormat::BinarySI).to_string(),
            "1180591620717411303424");
  EXPECT_EQ(Quantity::from_decimal("1152921504606846976", QuantityFormat::BinarySI).to_string(),
            "1Ei");
}

TEST(QuantityValues, RoundAwayFromZeroAndSaturate) {
  EXPECT_EQ(Quantity::parse("-1.5").value(), -2);
  EXPECT_EQ(Quantity::parse("-1.5").milli_value(), -1500);
  EXPECT_EQ(Quantity::parse("1n").milli_value(), 1);
  EXPECT_EQ(Quantity::parse("9223372036854775807").value(),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(Quantity::parse("9223372036854775807.1").value(),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(Quantity::parse("-9223372036854775808").value(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(Quantity::parse("-9223372036854775809").value(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(Quantity::parse("10E").milli_value(), std::numeric_limits<std::int64_t>::max());
  const auto lowest = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(Quantity::from_int(lowest, QuantityFormat::DecimalSI).to_string(),
            "-9223372036854775808");
  EXPECT_EQ(Quantity::parse("-8Ei").to_string(), "-9223372036854775807");  // capped magnitude
}

TEST(QuantityArithmetic, ExactAndFormatRules) {
  Quantity q = Quantity::parse("0.1");
  for (int i = 0; i < 9; ++i) q += Quantity::parse("0.1");
  EXPECT_EQ(q.cmp(Quantity::parse("1")), 0);
  EXPECT_EQ((Quantity::parse("1Gi") - Quantity::parse("1Gi")).to_string(), "0");
  EXPECT_EQ((Quantity::parse("1Gi") + Quantity::parse("500m")).to_string(), "1073741824500m");
  EXPECT_EQ((Quantity::parse("500m") - Quantity::parse("2")).to_string(), "-1500m");
  EXPECT_EQ((Quantity() + Quantity::parse("2Gi")).format(), QuantityFormat::BinarySI);
  EXPECT_EQ((Quantity::parse("1") + Quantity::parse("2Gi")).format(), QuantityFormat::DecimalSI);
  EXPECT_TRUE(Quantity::parse("1.5k").is_integer());
  EXPECT_FALSE(Quantity::parse("1.5").is_integer());
  EXPECT_LT(Quantity::parse("999m"), Quantity::parse("1"));
  EXPECT_EQ(Quantity::parse("1"), Quantity::parse("1000m"));
}

// digits × 10^exponent written as a plain decimal.
std::string plain_decimal(std::string digits, int exponent) {
  if (exponent >= 0) return digits + std::string(exponent, '0');
  const std::size_t point = static_cast<std::size_t>(-exponent);
  if (digits.size() <= point) digits.insert(0, point - digits.size() + 1, '0');
  return digits.insert(digits.size() - point, ".");
}

TEST(QuantityPrinting, CanonicalStringsRoundTrip) {
  std::mt19937_64 rng(20240607);
  const QuantityFormat formats[] = {QuantityFormat::DecimalSI, QuantityFormat::BinarySI,
                                    QuantityFormat::DecimalExponent};
  const Quantity cap = Quantity::parse("9223372036854775807");
  for (int i = 0; i < 5000; ++i) {
    std::string digits(1 + rng() % 25, '0');
    for (char& d : digits) d = static_cast<char>('0' + rng() % 10);
    const int exponent = static_cast<int>(rng() % 40) - 9;  // nothing that parsing rounds
    const std::string sign = rng() % 2 == 0 ? "-" : "";
    const QuantityFormat format = formats[rng() % 3];
    const Quantity q = Quantity::from_decimal(sign + plain_decimal(digits, exponent), format);
    const bool binary = format == QuantityFormat::BinarySI;
    if (binary && (q.sign() < 0 ? q.negated() : q) > cap) continue;  // parsing would cap it
    const std::string printed = q.to_string();
    SCOPED_TRACE(sign + digits + "e" + std::to_string(exponent) + " -> " + printed);
    const Quantity reparsed = Quantity::parse(printed);
    EXPECT_EQ(reparsed.cmp(q), 0);
    EXPECT_EQ((reparsed - q).to_string(), "0");
    // A BinarySI value off the 1024 grid prints as a plain number, which reads back as DecimalSI.
    if (!binary || printed.back() == 'i') {
      EXPECT_EQ(reparsed.to_string(), printed);
    }
  }
}

TEST(QuantityArithmetic, RoundUpKeepsAnEchoedStringOnlyWhenUntouched) {
  Quantity q = Quantity::parse("1.500");
  EXPECT_TRUE(q.round_up(-3));
  EXPECT_EQ(q.to_string(), "1.500");
  EXPECT_TRUE(q.round_up(-1));  // exact, yet upstream re-derives the string
  EXPECT_EQ(q.to_string(), "1500m");
  EXPECT_FALSE(q.round_up(0));
  EXPECT_EQ(q.to_string(), "2");
}

}  // namespace
}  // namespace gpuadmit::k8s
