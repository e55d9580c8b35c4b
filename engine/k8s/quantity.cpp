// Port of k8s.io/apimachinery/pkg/api/resource (quantity.go, suffix.go, amount.go). Values are
// exact decimals kept as digit strings, so there is no int64/inf.Dec split: only the observable
// behaviour of upstream's two representations is reproduced (see parse_into for the one place
// where the split shows: which inputs String() echoes verbatim).
#include "engine/k8s/quantity.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <system_error>

namespace gpuadmit::k8s {
namespace {

constexpr std::string_view kErrFormatWrong =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr std::string_view kErrNumeric = "unable to parse numeric part of quantity";
constexpr std::string_view kErrSuffix = "unable to parse quantity's suffix";

constexpr std::int64_t kNano = -9;
constexpr std::string_view kMaxInt64 = "9223372036854775807";  // the BinarySI parse cap
constexpr std::string_view kBinarySuffixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Go's %q, near enough for messages: printable ASCII as is, everything else escaped.
std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + '"';
}

// strings.TrimSpace: ASCII and Unicode white space (UTF-8) at either end.
std::string_view trim_space(std::string_view s) {
  // clang-format off
  static constexpr std::string_view kSpaces[] = {
      "\t", "\n", "\v", "\f", "\r", " ", "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80",
      "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84",
      "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89",
      "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
      "\xE3\x80\x80"};
  // clang-format on
  for (bool trimmed = true; trimmed && !s.empty();) {
    trimmed = false;
    for (const std::string_view sp : kSpaces) {
      if (s.starts_with(sp)) s.remove_prefix(sp.size()), trimmed = true;
      if (s.ends_with(sp)) s.remove_suffix(sp.size()), trimmed = true;
    }
  }
  return s;
}

// ---- Magnitudes: digit strings without leading zeros ("" is zero) times 10^exp. ----

void strip_leading_zeros(std::string& d) {
  d.erase(0, std::min(d.find_first_not_of('0'), d.size()));
}

std::int64_t length(const std::string_view d) { return static_cast<std::int64_t>(d.size()); }

// Compares a×10^ea with b×10^eb by their leading digit's position first, so huge exponents
// never get written out.
int cmp_mag(std::string_view a, std::int64_t ea, std::string_view b, std::int64_t eb) {
  if (a.empty() || b.empty()) return a.empty() ? (b.empty() ? 0 : -1) : 1;
  const std::int64_t top_a = length(a) + ea, top_b = length(b) + eb;
  if (top_a != top_b) return top_a < top_b ? -1 : 1;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const char x = i < a.size() ? a[i] : '0', y = i < b.size() ? b[i] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

// Writes both magnitudes out at the smaller exponent as equally long strings; returns it.
std::int64_t align(std::string& a, std::int64_t ea, std::string& b, std::int64_t eb) {
  const std::int64_t e = std::min(ea, eb);
  if (std::max(ea, eb) - e > Quantity::kMaxAlignDigits) {
    throw QuantityError("cannot add quantities whose exponents (" + std::to_string(ea) + ", " +
                        std::to_string(eb) + ") lie that far apart exactly");
  }
  a.append(static_cast<std::size_t>(ea - e), '0');
  b.append(static_cast<std::size_t>(eb - e), '0');
  const std::size_t width = std::max(a.size(), b.size());
  a.insert(0, width - a.size(), '0');
  b.insert(0, width - b.size(), '0');
  return e;
}

std::string add_aligned(const std::string& a, const std::string& b) {
  std::string out(a.size() + 1, '0');
  int carry = 0;
  for (std::size_t i = a.size(); i-- > 0;) {
    const int v = (a[i] - '0') + (b[i] - '0') + carry;
    out[i + 1] = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  out[0] = static_cast<char>('0' + carry);
  strip_leading_zeros(out);
  return out;
}

std::string sub_aligned(const std::string& a, const std::string& b) {  // needs a >= b
  std::string out(a.size(), '0');
  int borrow = 0;
  for (std::size_t i = a.size(); i-- > 0;) {
    int v = (a[i] - '0') - (b[i] - '0') - borrow;
    borrow = v < 0;
    out[i] = static_cast<char>('0' + v + 10 * borrow);
  }
  strip_leading_zeros(out);
  return out;
}

void mul_small(std::string& d, std::uint64_t m) {  // m <= 2^30 keeps every step in 64 bits
  std::uint64_t carry = 0;
  for (auto it = d.rbegin(); it != d.rend(); ++it) {
    const std::uint64_t v = static_cast<std::uint64_t>(*it - '0') * m + carry;
    *it = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  for (; carry != 0; carry /= 10) d.insert(d.begin(), static_cast<char>('0' + carry % 10));
}

void mul_pow2(std::string& d, std::int64_t k) {
  for (; k > 0; k -= 30) mul_small(d, std::uint64_t{1} << std::min<std::int64_t>(k, 30));
}

std::uint64_t div_small(std::string& d, std::uint64_t m) {  // d /= m; returns the remainder
  std::uint64_t rem = 0;
  for (char& c : d) {
    const std::uint64_t v = rem * 10 + static_cast<std::uint64_t>(c - '0');
    c = static_cast<char>('0' + v / m);
    rem = v % m;
  }
  strip_leading_zeros(d);
  return rem;
}

void increment(std::string& d) {
  for (auto it = d.rbegin(); it != d.rend(); ++it) {
    if (*it != '9') {
      ++*it;
      return;
    }
    *it = '0';
  }
  d.insert(d.begin(), '1');
}

// Rounds away from zero to a multiple of 10^scale (inf.RoundUp); false if that lost digits.
bool round_away(std::string& d, std::int64_t& exp, std::int64_t scale) {
  if (d.empty() || exp >= scale) return true;
  const std::int64_t drop = scale - exp;
  exp = scale;
  if (drop >= length(d)) {
    d = "1";
    return false;
  }
  const std::size_t keep = d.size() - static_cast<std::size_t>(drop);
  const bool exact = d.find_first_not_of('0', keep) == std::string::npos;
  d.resize(keep);
  if (!exact) increment(d);
  return exact;
}

// d×10^shift (shift >= 0) as an integer when it is at most limit.
std::optional<std::uint64_t> to_u64(std::string_view d, std::int64_t shift, std::uint64_t limit) {
  if (length(d) + shift > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : d) {
    if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, c - '0', &v)) {
      return std::nullopt;
    }
  }
  for (; shift > 0; --shift) {
    if (__builtin_mul_overflow(v, 10u, &v)) return std::nullopt;
  }
  return v <= limit ? std::optional(v) : std::nullopt;
}

// ---- Suffixes (suffix.go) ----

struct Suffix {
  int base;
  std::int64_t exponent;
  QuantityFormat format;
};

// strconv.ParseInt(s, 10, 64): an optional sign and at least one digit, within int64.
std::optional<std::int64_t> go_parse_int64(std::string_view s) {
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty() || !std::all_of(s.begin(), s.end(), is_digit)) return std::nullopt;
  const std::uint64_t limit = std::uint64_t{1} << 63;
  const auto mag = to_u64(s.substr(std::min(s.find_first_not_of('0'), s.size())), 0,
                          negative ? limit : limit - 1);
  if (!mag) return std::nullopt;
  return negative ? static_cast<std::int64_t>(0 - *mag) : static_cast<std::int64_t>(*mag);
}

std::optional<Suffix> interpret(std::string_view s) {
  static constexpr std::pair<std::string_view, int> kDecimal[] = {
      {"n", -9}, {"u", -6}, {"m", -3}, {"", 0},   {"k", 3},
      {"M", 6},  {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
  for (const auto& [name, exp] : kDecimal) {
    if (s == name) return Suffix{10, exp, QuantityFormat::DecimalSI};
  }
  for (int i = 1; i <= 6; ++i) {
    if (s == kBinarySuffixes[i]) return Suffix{2, 10 * i, QuantityFormat::BinarySI};
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    // Upstream narrows the parsed int64 with int32(), which wraps: "1e4294967296" is 1.
    if (const auto exp = go_parse_int64(s.substr(1))) {
      return Suffix{10, static_cast<std::int32_t>(*exp), QuantityFormat::DecimalExponent};
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- Parsing ----

Quantity::Quantity() = default;

bool Quantity::split(std::string_view s, Parts& p) {
  p = Parts{};
  std::size_t pos = 0;
  const std::size_t end = s.size();
  if (pos < end && (s[0] == '-' || s[0] == '+')) p.positive = s[pos++] == '+';
  while (pos < end && s[pos] == '0') ++pos;
  if (pos == end) {  // only zeros (or nothing) after the sign
    p.num = p.value = "0";
    return true;
  }
  std::size_t i = pos;
  while (i < end && is_digit(s[i])) ++i;
  p.num = s.substr(pos, i - pos);
  if (i == end) {
    p.value = s;
    return true;
  }
  pos = i;
  if (p.num.empty()) p.num = "0";
  if (s[pos] == '.') {
    for (i = ++pos; i < end && is_digit(s[i]);) ++i;
    p.denom = s.substr(pos, i - pos);
    if (i == end) {
      p.value = s;
      return true;
    }
    pos = i;
  }
  p.value = s.substr(0, pos);
  p.suffix = s.substr(pos);
  while (pos < end && std::string_view("eEinumkKMGTP").find(s[pos]) != std::string_view::npos) {
    ++pos;
  }
  if (pos < end && (s[pos] == '-' || s[pos] == '+')) ++pos;
  while (pos < end && is_digit(s[pos])) ++pos;
  return pos == end;
}

std::string_view Quantity::parse_into(std::string_view str, Quantity& q) {
  q = Quantity();
  if (str.empty()) return kErrFormatWrong;
  if (str == "0") {
    q.verbatim_ = "0";
    return {};
  }
  Parts p;
  if (!split(str, p)) return kErrFormatWrong;
  const std::optional<Suffix> suffix = interpret(p.suffix);
  if (!suffix) return kErrSuffix;

  // Upstream first tries an int64 fast path; only there does String() echo the input, when it
  // already looks canonical (e.g. "1.", "1.G", "100.035k", "1E-3", "+1Ki", "007").
  const std::string shifted = std::string(p.num) + std::string(p.denom);
  const std::int64_t num_len = length(p.num), denom_len = length(p.denom);
  bool fast = false, verbatim = false;
  if (suffix->base == 10) {
    const std::int64_t scale = suffix->exponent - denom_len;
    if (num_len + denom_len <= 18 && scale >= kNano) {
      fast = true;
      verbatim = scale % 3 == 0 && !shifted.ends_with("000") && shifted[0] != '0';
    }
  } else if (denom_len == 0 && 15 - num_len - suffix->exponent * 3 / 10 - 1 >= 0) {
    fast = true;  // at most 14 digits here, so the int64 never overflows
    verbatim = (*to_u64(shifted, 0, std::numeric_limits<std::uint64_t>::max()) & 7) != 0;
  }
  // The slow path reads the number with inf.Dec, which needs a digit: "Pi" fails, "Ki" is 0.
  if (!fast && std::none_of(p.value.begin(), p.value.end(), is_digit)) return kErrNumeric;

  q.negative_ = !p.positive;
  q.format_ = suffix->format;
  q.digits_ = shifted;
  strip_leading_zeros(q.digits_);
  if (suffix->base == 10) {
    q.exponent_ = suffix->exponent - denom_len;
  } else {
    q.exponent_ = -denom_len;
    mul_pow2(q.digits_, suffix->exponent);
  }
  if (fast) {
    if (verbatim) q.verbatim_ = std::string(str);
  } else {
    // Any non-zero amount is worth at least 1n; BinarySI is capped, and below 1 prints decimal.
    round_away(q.digits_, q.exponent_, kNano);
    if (q.format_ == QuantityFormat::BinarySI) {
      if (cmp_mag(q.digits_, q.exponent_, kMaxInt64, 0) > 0) {
        q.digits_ = kMaxInt64;
        q.exponent_ = 0;
      }
      if (!q.digits_.empty() && cmp_mag(q.digits_, q.exponent_, "1", 0) < 0) {
        q.format_ = QuantityFormat::DecimalSI;
      }
    }
  }
  if (q.digits_.empty()) q.negative_ = false;
  return {};
}

Quantity Quantity::parse(std::string_view text) {
  Quantity q;
  if (const std::string_view err = parse_into(text, q); !err.empty()) {
    throw QuantityError(quote(text) + " is not a valid quantity: " + std::string(err));
  }
  return q;
}

bool Quantity::try_parse(std::string_view text, Quantity& out, std::string* error) {
  try {
    out = parse(text);
    return true;
  } catch (const QuantityError& e) {
    if (error != nullptr) *error = e.what();
    return false;
  }
}

Quantity Quantity::from_json_text(std::string_view raw) {
  if (raw == "null") return Quantity();
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
    raw = raw.substr(1, raw.size() - 2);
  }
  return parse(trim_space(raw));
}

// ---- Construction ----

Quantity Quantity::from_int(std::int64_t value, QuantityFormat format) {
  Quantity q;
  q.format_ = format;
  q.negative_ = value < 0;
  const std::uint64_t mag =
      q.negative_ ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  if (mag != 0) q.digits_ = std::to_string(mag);
  return q;
}

Quantity Quantity::from_milli(std::int64_t milli, QuantityFormat format) {
  Quantity q = from_int(milli, format);
  q.exponent_ = -3;
  return q;
}

Quantity Quantity::from_scaled(std::int64_t value, int scale) {
  Quantity q = from_int(value, QuantityFormat::DecimalSI);
  q.exponent_ = scale;
  return q;
}

Quantity Quantity::from_decimal(std::string_view text, QuantityFormat format) {
  std::string_view s = text;
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  const std::size_t dot = std::min(s.find('.'), s.size());
  const std::string_view whole = s.substr(0, dot), frac = s.substr(std::min(dot + 1, s.size()));
  const auto digits = [](std::string_view d) { return std::all_of(d.begin(), d.end(), is_digit); };
  if (whole.size() + frac.size() == 0 || !digits(whole) || !digits(frac)) {
    throw QuantityError(quote(text) + " is not an exact decimal");
  }
  Quantity q;
  q.format_ = format;
  q.digits_ = std::string(whole) + std::string(frac);
  strip_leading_zeros(q.digits_);
  q.exponent_ = -length(frac);
  q.negative_ = negative && !q.digits_.empty();
  return q;
}

// ---- Printing ----

std::string Quantity::binary_form() const {
  // Upstream prints BinarySI only for whole numbers of magnitude 1024 or more.
  if (cmp_mag(digits_, exponent_, "1024", 0) < 0 || !is_integer() ||
      length(digits_) + exponent_ > kMaxAlignDigits) {
    return "";
  }
  std::string m = digits_;
  if (exponent_ >= 0) {
    m.append(static_cast<std::size_t>(exponent_), '0');
  } else {
    // is_integer() means the dropped digits are zeros and fewer than the mantissa has.
    const auto drop = static_cast<std::size_t>(-exponent_);
    m = drop < m.size() ? m.substr(0, m.size() - drop) : std::string("0");
  }
  std::size_t k = 0;
  for (std::string q = m; k < 7 && div_small(q, 1024) == 0; ++k) m = q;
  // Past Ei upstream drops the suffix altogether (printing 2^70 as "1"); print decimal instead.
  return k < 7 ? m + std::string(kBinarySuffixes[k]) : "";
}

std::string Quantity::to_string() const {
  if (!verbatim_.empty()) return verbatim_;
  if (digits_.empty()) return "0";
  const std::string sign = negative_ ? "-" : "";
  if (format_ == QuantityFormat::BinarySI) {
    if (std::string b = binary_form(); !b.empty()) return sign + b;
  }
  // Canonical decimal: no trailing zeros in the mantissa, exponent a multiple of 3 below it.
  std::string d = digits_;
  std::int64_t e = exponent_;
  const std::size_t last = d.find_last_not_of('0');
  e += length(d) - static_cast<std::int64_t>(last) - 1;
  d.resize(last + 1);
  const std::int64_t extra = (e % 3 + 3) % 3;
  d.append(static_cast<std::size_t>(extra), '0');
  e -= extra;
  if (format_ != QuantityFormat::DecimalExponent && e >= -9 && e <= 18) {
    static constexpr std::string_view kSi[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    return sign + d + std::string(kSi[(e + 9) / 3]);
  }
  // Exponents are read as int32 (upstream narrows them, wrapping): past the largest multiple of 3
  // that fits, zeros move into the mantissa so the string parses back to this value. Upstream
  // itself wraps here ("9000E2147483647" prints with a negative exponent); the fuzzer found it.
  constexpr std::int64_t kMaxPrintedExponent = 2147483646;
  if (e > kMaxPrintedExponent) {
    d.append(static_cast<std::size_t>(e - kMaxPrintedExponent), '0');
    e = kMaxPrintedExponent;
  }
  // DecimalSI has no suffix beyond n..E; like upstream since #140459, use an exponent there.
  return sign + d + (e == 0 ? "" : "e" + std::to_string(e));
}

QuantityFormat Quantity::format() const { return format_; }

// ---- Reading values ----

std::int64_t Quantity::scaled_value(int scale) const {
  if (digits_.empty()) return 0;
  std::string d = digits_;
  std::int64_t e = exponent_;
  round_away(d, e, scale);
  const std::uint64_t limit = (std::uint64_t{1} << 63) - (negative_ ? 0 : 1);
  const std::optional<std::uint64_t> mag = to_u64(d, e - scale, limit);
  if (!mag) {
    return negative_ ? std::numeric_limits<std::int64_t>::min()
                     : std::numeric_limits<std::int64_t>::max();
  }
  return negative_ ? static_cast<std::int64_t>(0 - *mag) : static_cast<std::int64_t>(*mag);
}

std::int64_t Quantity::value() const { return scaled_value(0); }
std::int64_t Quantity::milli_value() const { return scaled_value(-3); }

double Quantity::as_double() const {
  if (digits_.empty()) return 0.0;
  // from_chars rounds the exact decimal correctly and is the one float step here.
  const std::string text = (negative_ ? "-" : "") + digits_ + "e" + std::to_string(exponent_);
  double v = 0.0;
  if (std::from_chars(text.data(), text.data() + text.size(), v).ec ==
      std::errc::result_out_of_range) {
    const double mag =
        length(digits_) + exponent_ > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return negative_ ? -mag : mag;
  }
  return v;
}

bool Quantity::is_zero() const { return digits_.empty(); }
int Quantity::sign() const { return digits_.empty() ? 0 : (negative_ ? -1 : 1); }

bool Quantity::is_integer() const {
  if (digits_.empty() || exponent_ >= 0) return true;
  if (-exponent_ >= length(digits_)) return false;
  return digits_.find_first_not_of('0', digits_.size() - static_cast<std::size_t>(-exponent_)) ==
         std::string::npos;
}

bool Quantity::round_up(int scale) {
  // Upstream leaves a value already at this scale alone, its cached string included.
  if (exponent_ >= scale) return true;
  verbatim_.clear();
  return round_away(digits_, exponent_, scale);
}

// ---- Arithmetic ----

int Quantity::cmp(const Quantity& other) const {
  const int a = sign(), b = other.sign();
  if (a != b) return a < b ? -1 : 1;
  const int m = cmp_mag(digits_, exponent_, other.digits_, other.exponent_);
  return a < 0 ? -m : m;
}

Quantity& Quantity::operator+=(const Quantity& other) {
  if (digits_.empty()) {
    *this = other;  // zero + y is y, in y's format (upstream Add)
    verbatim_.clear();
    return *this;
  }
  verbatim_.clear();
  if (other.digits_.empty()) return *this;
  std::string a = digits_, b = other.digits_;
  const std::int64_t e = align(a, exponent_, b, other.exponent_);
  if (negative_ == other.negative_) {
    digits_ = add_aligned(a, b);
  } else if (a >= b) {  // equal lengths, so string order is numeric order
    digits_ = sub_aligned(a, b);
  } else {
    digits_ = sub_aligned(b, a);
    negative_ = other.negative_;
  }
  exponent_ = e;
  if (digits_.empty()) negative_ = false;
  return *this;
}

Quantity& Quantity::operator-=(const Quantity& other) { return *this += other.negated(); }

Quantity Quantity::negated() const {
  Quantity q = *this;
  q.verbatim_.clear();
  q.negative_ = !digits_.empty() && !negative_;
  return q;
}

}  // namespace gpuadmit::k8s
