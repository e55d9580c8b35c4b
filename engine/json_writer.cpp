#include "engine/json_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>

#include <simdjson.h>

namespace gpuadmit {
namespace {

using nlohmann::json;
using Serializer = nlohmann::detail::serializer<json>;

// The bytes nlohmann's serializer escapes: control characters, '"' and '\\'.
constexpr std::array<bool, 256> kEscaped = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) table[static_cast<std::size_t>(c)] = c < 0x20 || c == '"' || c == '\\';
  return table;
}();

// Whether `text` holds a byte the serializer escapes, and (in `seen`) every byte OR-ed together,
// whose high bits mean non-ASCII. Eight bytes are tested at a time (SWAR): a word holds a byte
// below 0x20 when (x - 0x20..) & ~x & 0x80.. is not zero, and a '"' or '\\' when x XOR that byte
// repeated holds a zero byte.
bool has_escapes(const std::string& text, std::uint64_t& seen) {
  constexpr std::uint64_t kOnes = 0x0101010101010101, kHighs = 0x8080808080808080;
  const auto below = [](std::uint64_t x, std::uint64_t n) { return (x - kOnes * n) & ~x & kHighs; };
  const char* bytes = text.data();
  const std::size_t size = text.size();
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, bytes + i, 8);
    if (below(x, 0x20) | below(x ^ (kOnes * '"'), 1) | below(x ^ (kOnes * '\\'), 1)) return true;
    seen |= x;
  }
  for (; i < size; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (kEscaped[c]) return true;
    seen |= c;
  }
  return false;
}

// Appends `text` quoted and escaped as the serializer writes it, when it is valid UTF-8 (kept as
// is; checked with simdjson's validator: messages hold '×' and '→' often enough). Returns false,
// appending nothing, for invalid UTF-8, which is the serializer's to refuse or replace.
bool append_string(std::string& out, const std::string& text) {
  std::uint64_t seen = 0;
  if (!has_escapes(text, seen)) {
    if ((seen & 0x8080808080808080) != 0 && !simdjson::validate_utf8(text.data(), text.size())) return false;
    out += '"';
    out += text;
    out += '"';
    return true;
  }
  if (!simdjson::validate_utf8(text.data(), text.size())) return false;
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!kEscaped[c]) continue;
    out.append(text, run, i - run);
    run = i + 1;
    switch (c) {
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default: {  // the other control characters, as \u00xx in lower case
        constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
      }
    }
  }
  out.append(text, run, std::string::npos);
  out += '"';
  return true;
}

class Writer {
 public:
  Writer(std::string& out, json::error_handler_t handler) : out_(out), handler_(handler) {}

  void write(const json& value) {
    switch (value.type()) {
      case json::value_t::object: {
        out_ += '{';
        bool first = true;
        for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
          if (!first) out_ += ',';
          first = false;
          write_string(key);
          out_ += ':';
          write(member);
        }
        out_ += '}';
        return;
      }
      case json::value_t::array: {
        out_ += '[';
        bool first = true;
        for (const json& element : value.get_ref<const json::array_t&>()) {
          if (!first) out_ += ',';
          first = false;
          write(element);
        }
        out_ += ']';
        return;
      }
      case json::value_t::string:
        return write_string(value.get_ref<const json::string_t&>());
      case json::value_t::number_integer:
        return append_integer(value.get<json::number_integer_t>());
      case json::value_t::number_unsigned:
        return append_integer(value.get<json::number_unsigned_t>());
      case json::value_t::boolean:
        out_ += value.get<bool>() ? "true" : "false";
        return;
      case json::value_t::null:
        out_ += "null";
        return;
      case json::value_t::number_float:
        return append_float(value.get<json::number_float_t>());
      default:  // binary and discarded values: never parsed nor built by gpu-admit
        serializer().dump(value, false, false, 0);
        return;
    }
  }

 private:
  void write_string(const std::string& text) {
    if (!append_string(out_, text)) serializer().dump(json(text), false, false, 0);  // invalid UTF-8: rare
  }
  // The serializer's own float format: the shortest text that reads back (nlohmann's Grisu2
  // to_chars), "null" for NaN and infinities.
  void append_float(double number) {
    if (!std::isfinite(number)) {
      out_ += "null";
      return;
    }
    std::array<char, 64> digits;
    const char* end = nlohmann::detail::to_chars(digits.data(), digits.data() + digits.size(), number);
    out_.append(digits.data(), static_cast<std::size_t>(end - digits.data()));
  }
  template <typename Integer>
  void append_integer(Integer number) {
    std::array<char, 24> digits;
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), number).ptr;
    out_.append(digits.data(), end);
  }
  // Made on first use, for invalid UTF-8 only: it appends to out_ and flushes its own buffer
  // before each dump() returns, so its output and ours interleave in order.
  Serializer& serializer() {
    if (!serializer_) serializer_.emplace(nlohmann::detail::output_adapter<char, std::string>(out_), ' ', handler_);
    return *serializer_;
  }

  std::string& out_;
  json::error_handler_t handler_;
  std::optional<Serializer> serializer_;
};

}  // namespace

void append_json(std::string& out, const json& value, json::error_handler_t handler) { Writer(out, handler).write(value); }

void append_json_string(std::string& out, const std::string& text, json::error_handler_t handler) {
  if (!append_string(out, text)) Writer(out, handler).write(json(text));  // invalid UTF-8: rare
}

std::string write_json(const json& value, json::error_handler_t handler) {
  std::string out;
  append_json(out, value, handler);
  return out;
}

}  // namespace gpuadmit
