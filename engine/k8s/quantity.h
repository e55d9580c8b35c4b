// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource), exactly:
// the same grammar, the same exact decimal value, the same canonical printing.
#pragma once

#include <compare>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gpuadmit::k8s {

enum class QuantityFormat { DecimalSI, BinarySI, DecimalExponent };

class QuantityError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An exact decimal: mantissa × 10^exponent with an arbitrary-precision mantissa (kept as
// decimal digits), plus the format the value was written in, as Kubernetes keeps it.
class Quantity {
 public:
  Quantity();  // zero, DecimalSI

  // ParseQuantity: throws QuantityError with a message that quotes the input.
  static Quantity parse(std::string_view text);
  // Same as parse, without throwing; on failure *error (if given) gets the message.
  static bool try_parse(std::string_view text, Quantity& out, std::string* error = nullptr);

  static Quantity from_int(std::int64_t value, QuantityFormat format);        // NewQuantity
  static Quantity from_milli(std::int64_t milli, QuantityFormat format);      // NewMilliQuantity
  static Quantity from_scaled(std::int64_t value, int scale);                 // NewScaledQuantity
  // An exact decimal such as "-1.5" or "1073741824", not rounded, in the given format: for
  // building values in code and tests. Throws QuantityError unless it is [+-]digits[.digits].
  static Quantity from_decimal(std::string_view decimal, QuantityFormat format);
  // UnmarshalJSON: the raw JSON text of a value. "null" is zero; one pair of surrounding quotes
  // and then surrounding whitespace are dropped (JSON is more lenient than parse).
  static Quantity from_json_text(std::string_view raw);

  // The pieces the upstream scanner (parseQuantityString) finds; they view the text given to
  // split (num may be the literal "0"). split returns false where the scanner reports an error.
  struct Parts {
    bool positive = true;
    std::string_view value, num, denom, suffix;
  };
  static bool split(std::string_view text, Parts& out);

  // String(): the canonical form Kubernetes prints (e.g. "1Gi", "500m", "1500M").
  std::string to_string() const;
  QuantityFormat format() const;

  std::int64_t value() const;        // Value(): rounded up to an integer, saturating
  std::int64_t milli_value() const;  // MilliValue(): rounded up, saturating
  std::int64_t scaled_value(int scale) const;  // ScaledValue(): rounded up
  double as_double() const;          // AsApproximateFloat64()

  bool is_zero() const;
  int sign() const;                  // -1, 0, 1
  bool is_integer() const;           // a whole number (extended resources must be)
  // RoundUp(scale): rounds up to 10^scale; returns whether the value was already exact.
  bool round_up(int scale);

  int cmp(const Quantity& other) const;  // Cmp: -1, 0, 1 on the value alone
  friend bool operator==(const Quantity& a, const Quantity& b) { return a.cmp(b) == 0; }
  friend std::strong_ordering operator<=>(const Quantity& a, const Quantity& b) {
    return a.cmp(b) <=> 0;
  }
  // Add/Sub keep this format (a zero adopts other's, as upstream). Exponents that lie more than
  // kMaxAlignDigits apart throw QuantityError rather than spelling out that many digits.
  static constexpr std::int64_t kMaxAlignDigits = 100000;
  Quantity& operator+=(const Quantity& other);  // Add
  Quantity& operator-=(const Quantity& other);  // Sub
  friend Quantity operator+(Quantity a, const Quantity& b) { return a += b; }
  friend Quantity operator-(Quantity a, const Quantity& b) { return a -= b; }
  Quantity negated() const;

 private:
  bool negative_ = false;
  std::string digits_;      // mantissa digits, no leading zeros; empty means zero
  std::int64_t exponent_ = 0;  // value = digits × 10^exponent (int64: parsed ones are int32)
  QuantityFormat format_ = QuantityFormat::DecimalSI;
  std::string verbatim_;    // String() keeps an input already in canonical-ish form (upstream quirk)
  friend struct QuantityAccess;
  // ParseQuantity into q; returns upstream's error text, or an empty view on success.
  static std::string_view parse_into(std::string_view text, Quantity& q);
  std::string binary_form() const;  // BinarySI digits+suffix, or "" where it prints as DecimalSI
};

}  // namespace gpuadmit::k8s
