#include "engine/json_writer.h"

#include <array>
#include <charconv>
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

// Whether the serializer would copy `text` unchanged: nothing to escape, and valid UTF-8 (which it
// keeps as is; invalid UTF-8 is its to refuse or replace). Messages hold '×' and '→' often enough
// that non-ASCII text is checked here, with simdjson's validator, rather than handed over. Eight
// bytes are tested at a time (SWAR): a word holds a byte below 0x20 when (x - 0x20..) & ~x & 0x80..
// is not zero, and a '"' or '\\' when x XOR that byte repeated holds a zero byte.
bool plain(const std::string& text) {
  constexpr std::uint64_t kOnes = 0x0101010101010101, kHighs = 0x8080808080808080;
  const auto below = [](std::uint64_t x, std::uint64_t n) { return (x - kOnes * n) & ~x & kHighs; };
  const char* bytes = text.data();
  const std::size_t size = text.size();
  std::uint64_t seen = 0;  // every byte OR-ed in: a high bit means non-ASCII
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, bytes + i, 8);
    if (below(x, 0x20) | below(x ^ (kOnes * '"'), 1) | below(x ^ (kOnes * '\\'), 1)) return false;
    seen |= x;
  }
  for (; i < size; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (kEscaped[c]) return false;
    seen |= c;
  }
  return (seen & kHighs) == 0 || simdjson::validate_utf8(bytes, size);
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
      case json::value_t::string: {
        const auto& text = value.get_ref<const json::string_t&>();
        if (plain(text)) return append_quoted(text);
        return serializer().dump(value, false, false, 0);
      }
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
      default:  // floats, binary values, discarded values
        serializer().dump(value, false, false, 0);
        return;
    }
  }

 private:
  void write_string(const std::string& text) {
    if (plain(text)) return append_quoted(text);
    serializer().dump(json(text), false, false, 0);  // a key to escape: rare, so a copy is fine
  }
  void append_quoted(const std::string& text) {
    out_ += '"';
    out_ += text;
    out_ += '"';
  }
  template <typename Integer>
  void append_integer(Integer number) {
    std::array<char, 24> digits;
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), number).ptr;
    out_.append(digits.data(), end);
  }
  // Made on first use: most values never need it. It appends to out_ and flushes its own buffer
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

std::string write_json(const json& value, json::error_handler_t handler) {
  std::string out;
  append_json(out, value, handler);
  return out;
}

}  // namespace gpuadmit
