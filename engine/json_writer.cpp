#include "engine/json_writer.h"

#include <array>
#include <charconv>
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
// that non-ASCII text is checked here, with simdjson's validator, rather than handed over.
bool plain(const std::string& text) {
  bool ascii = true;
  for (unsigned char c : text) {
    if (kEscaped[c]) return false;
    ascii = ascii && c < 0x80;
  }
  return ascii || simdjson::validate_utf8(text.data(), text.size());
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
