#include "engine/input_limits.h"

#include "engine/json_from_simdjson.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <unordered_map>

namespace gpuadmit {
namespace {

using nlohmann::json;

InputLimits g_limits;

// Where yaml-cpp 0.7's DepthGuard stops its recursive parser, whatever max_depth says.
constexpr int kYamlParserDepth = 500;

std::string depth_message() {
  return "nesting deeper than " + std::to_string(g_limits.max_depth) + " levels (the limit, --max-depth)";
}

// nlohmann's DOM builder with the depth counted as objects and arrays open, so a deep document is
// refused at the first level too many instead of being built (and later walked recursively).
class BoundedDomBuilder {
 public:
  explicit BoundedDomBuilder(json& root) : dom_(root, false) {}

  bool null() { return dom_.null(); }
  bool boolean(bool value) { return dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) { return dom_.number_integer(value); }
  bool number_unsigned(json::number_unsigned_t value) { return dom_.number_unsigned(value); }
  bool number_float(json::number_float_t value, const json::string_t& text) { return dom_.number_float(value, text); }
  bool string(json::string_t& value) { return dom_.string(value); }
  bool binary(json::binary_t& value) { return dom_.binary(value); }
  bool start_object(std::size_t size) { return open() && dom_.start_object(size); }
  bool key(json::string_t& value) { return dom_.key(value); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t size) { return open() && dom_.start_array(size); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
    error_ = describe_json_error(static_cast<const json::exception&>(error));
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool open() {
    if (++depth_ <= g_limits.max_depth) return true;
    error_ = depth_message();
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t depth_ = 0;
  std::string error_;
};

// A position in the text, 0-based as both parsers count.
struct TextMark {
  std::size_t line = 0, column = 0;
};

// "line:column: " of a position, 1-based, as every YAML error here begins.
std::string at(const TextMark& mark) {
  return std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}
std::string at(const YAML::Mark& mark) {  // yaml-cpp's (configs, suites); its null mark is -1
  return std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}
TextMark mark_of(const yaml_mark_t& mark) { return {mark.line, mark.column}; }

constexpr const char* kAliasBudgetMessage =
    "the document expands to more values than its size allows (YAML aliases that repeat other aliases?)";

// Walks a loaded YAML document as a reader following its aliases would, counting values against
// the budget and levels against the depth limit; stops at the first value over either.
void check_yaml_expansion(const YAML::Node& node, std::size_t depth, std::size_t& budget) {
  if (budget == 0)
    throw InputError(at(node.Mark()) + kAliasBudgetMessage);
  --budget;
  if (!node.IsSequence() && !node.IsMap()) return;
  if (depth >= g_limits.max_depth)
    throw InputError(at(node.Mark()) + depth_message());
  for (const auto& entry : node) {
    if (node.IsMap()) {
      check_yaml_expansion(entry.first, depth + 1, budget);
      check_yaml_expansion(entry.second, depth + 1, budget);
    } else {
      check_yaml_expansion(entry, depth + 1, budget);
    }
  }
}

// Where the first byte that is not part of a well-formed UTF-8 sequence is, or npos. YAML is
// UTF-8 (what kubectl reads), and a string with a stray byte cannot be written back as JSON.
std::size_t invalid_utf8_at(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  for (std::size_t i = 0; i < size;) {
    const unsigned char c = bytes[i];
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // no overlong forms
      if (c == 0xED) high = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;  // nothing past U+10FFFF
    } else {
      return i;
    }
    if (i + length > size || bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k)
      if ((bytes[i + k] & 0xC0) != 0x80) return i;
    i += length;
  }
  return std::string_view::npos;
}

void require_utf8(std::string_view text) {
  const std::size_t at = invalid_utf8_at(text);
  if (at == std::string_view::npos) return;
  const std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
  const std::size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  const std::size_t column = at - (line_start == std::string_view::npos || at == 0 ? 0 : line_start + 1) + 1;
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[at]));
  throw InputError(std::to_string(line) + ":" + std::to_string(column) + ": invalid UTF-8 (byte " + hex +
                   "): YAML must be UTF-8");
}

std::string yaml_error(const YAML::Exception& error) {
  // yaml-cpp's parser stops at its own depth guard (500 levels in 0.7) with the message "bad file".
  if (dynamic_cast<const YAML::DeepRecursion*>(&error))
    return at(error.mark) + "nesting too deep for the YAML parser (at most " + std::to_string(kYamlParserDepth) + " levels)";
  return at(error.mark) + "invalid YAML: " + error.msg;
}

// One document's JSON built from libyaml's events. The limits are those check_yaml_expansion
// applies to a loaded tree: the depth of every value an alias expands to, and a value budget
// shared by all documents of the text. Copying an anchored value (so an alias can repeat it) is
// paid from the budget too, so the work stays linear in the text whatever the anchors nest.
class JsonFromEvents {
 public:
  JsonFromEvents(YamlJsonReader::ScalarRule scalar, std::size_t budget) : scalar_(scalar), budget_(budget) {}

  // Ready for the next document; returns the finished one.
  json take(int& line) {
    line = line_;
    json document = std::move(root_);
    root_ = nullptr;
    line_ = 0;
    stack_.clear();
    anchors_.resize(1);
    anchor_ids_.clear();
    return document;
  }

  void on_null(const TextMark& mark, const char* anchor) {
    if (expecting_key()) throw InputError(at(mark) + "map keys must be strings");
    leaf(mark, nullptr, define(anchor), nullptr);
  }
  void on_scalar(const TextMark& mark, const std::string& tag, const char* anchor, const std::string& text) {
    const std::size_t id = define(anchor);
    if (expecting_key()) {
      spend(mark, 1);
      ++built_;
      if (id) keep(id, {scalar_(tag, text), 1, 0, text, true});
      stack_.back().key = text;
      return;
    }
    leaf(mark, scalar_(tag, text), id, &text);
  }
  void on_alias(const TextMark& mark, const char* anchor) {
    const auto id = anchor_ids_.find(anchor);
    if (id == anchor_ids_.end()) throw InputError(at(mark) + "an alias names no anchor defined before it");
    if (!anchors_[id->second].complete) throw InputError(at(mark) + "an alias refers to a value that contains it");
    const Anchored& target = anchors_[id->second];
    if (stack_.size() + target.height > g_limits.max_depth) throw InputError(at(mark) + depth_message());
    spend(mark, target.values);
    if (expecting_key()) {
      if (!target.text) throw InputError(at(mark) + "map keys must be strings");
      built_ += target.values;
      stack_.back().key = *target.text;
      return;
    }
    first(mark);
    built_ += target.values;
    attach(json(target.value), target.height);
  }
  void on_open(const TextMark& mark, json value, const char* anchor) { open(mark, std::move(value), define(anchor)); }
  void on_close(const TextMark& mark) { close(mark); }

 private:
  struct Anchored {
    json value;
    std::size_t values = 0;  // values a reader following the alias meets
    std::size_t height = 0;  // levels of arrays and objects in it
    std::optional<std::string> text;  // a scalar's own text: what it reads as when it is a map key
    bool complete = false;
  };
  struct Frame {
    json value;
    std::size_t anchor;
    std::size_t built_at_open;
    std::size_t height = 1;
    std::optional<std::string> key;  // in an object: the key whose value comes next
  };

  // The number of an anchor defined here (0: none). A name defined again names the new value
  // from here on, as YAML says; numbers restart in each document, as anchors do.
  std::size_t define(const char* anchor) {
    if (!anchor) return 0;
    anchors_.emplace_back();
    anchor_ids_[anchor] = anchors_.size() - 1;
    return anchors_.size() - 1;
  }

  bool expecting_key() const { return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().key; }

  void spend(const TextMark& mark, std::size_t values) {
    if (values > budget_) throw InputError(at(mark) + kAliasBudgetMessage);
    budget_ -= values;
  }

  void first(const TextMark& mark) {
    if (line_ == 0) line_ = static_cast<int>(mark.line + 1);
  }

  void keep(std::size_t anchor, Anchored anchored) { anchors_[anchor] = std::move(anchored); }

  void leaf(const TextMark& mark, json value, std::size_t anchor, const std::string* text) {
    first(mark);
    spend(mark, 1);
    ++built_;
    if (anchor) {
      spend(mark, 1);
      keep(anchor, {value, 1, 0, text ? std::optional<std::string>(*text) : std::nullopt, true});
    }
    attach(std::move(value), 0);
  }

  void open(const TextMark& mark, json value, std::size_t anchor) {
    if (expecting_key()) throw InputError(at(mark) + "map keys must be strings");
    first(mark);
    if (stack_.size() >= g_limits.max_depth) throw InputError(at(mark) + depth_message());
    spend(mark, 1);
    ++built_;
    // An anchor is known but not complete while its value is read: an alias inside it is refused.
    stack_.push_back({std::move(value), anchor, built_ - 1, 1, std::nullopt});
  }

  void close(const TextMark& mark) {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.anchor) {
      const std::size_t values = built_ - frame.built_at_open;
      spend(mark, values);  // the copy
      keep(frame.anchor, {frame.value, values, frame.height, std::nullopt, true});
    }
    attach(std::move(frame.value), frame.height);
  }

  void attach(json value, std::size_t height) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& parent = stack_.back();
    parent.height = std::max(parent.height, height + 1);
    if (parent.value.is_object()) {
      parent.value[*parent.key] = std::move(value);  // a repeated key: the last one wins
      parent.key.reset();
    } else {
      parent.value.push_back(std::move(value));
    }
  }

  YamlJsonReader::ScalarRule scalar_;
  std::size_t budget_;
  std::size_t built_ = 0;
  std::vector<Frame> stack_;
  std::vector<Anchored> anchors_{1};  // by number; 0 is "no anchor"
  std::unordered_map<std::string, std::size_t> anchor_ids_;
  json root_;
  int line_ = 0;
};

// One libyaml event, freed when it goes out of scope.
struct YamlEvent {
  yaml_event_t event{};
  ~YamlEvent() { yaml_event_delete(&event); }
};

// The tag a scalar reads by, as yaml-cpp named it and the ScalarRule expects: "?" for a plain
// scalar without a tag, "!" for a quoted or block one, else the tag resolved ("!!str" is
// "tag:yaml.org,2002:str").
std::string scalar_tag(const yaml_event_t& event) {
  const auto& scalar = event.data.scalar;
  if (scalar.tag) return reinterpret_cast<const char*>(scalar.tag);
  return scalar.style == YAML_PLAIN_SCALAR_STYLE ? "?" : "!";
}

const char* anchor_name(const yaml_char_t* anchor) { return reinterpret_cast<const char*>(anchor); }

}  // namespace

struct YamlJsonReader::State {
  State(std::string input, ScalarRule scalar) : builder(scalar, yaml_value_budget(input.size())), text(std::move(input)) {
    if (!yaml_parser_initialize(&parser)) throw std::bad_alloc();
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  ~State() { yaml_parser_delete(&parser); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // The next event; throws InputError where the text is not YAML.
  void parse(YamlEvent& next) {
    if (yaml_parser_parse(&parser, &next.event)) return;
    const std::string problem = parser.problem ? parser.problem : "unreadable";
    const std::string context = parser.context ? std::string(" ") + parser.context : "";
    throw InputError(at(mark_of(parser.problem_mark)) + "invalid YAML: " + problem + context);
  }

  JsonFromEvents builder;
  std::string text;  // what the parser reads: it must outlive it
  yaml_parser_t parser{};
  bool failed = false;
};

YamlJsonReader::YamlJsonReader(std::string text, ScalarRule scalar) {
  require_utf8(text);
  state_ = std::make_unique<State>(std::move(text), scalar);
}

YamlJsonReader::~YamlJsonReader() = default;

bool YamlJsonReader::next(json& document, int& line) {
  if (state_->failed) return false;
  state_->failed = true;  // until this document is read whole: the parser cannot resume after an error
  JsonFromEvents& builder = state_->builder;
  for (;;) {
    YamlEvent next;
    state_->parse(next);
    const yaml_event_t& event = next.event;
    const TextMark mark = mark_of(event.start_mark);
    switch (event.type) {
      case YAML_STREAM_END_EVENT:
        return false;
      case YAML_DOCUMENT_END_EVENT:
        document = builder.take(line);
        state_->failed = false;
        return true;
      case YAML_SCALAR_EVENT: {
        const auto& scalar = event.data.scalar;
        // An empty node ("key:" with no value) is an empty plain scalar here, and null to YAML;
        // with a tag it is the tag's empty scalar ("!!str" is ""), as yaml-cpp's node tree reads it.
        if (scalar.length == 0 && scalar.style == YAML_PLAIN_SCALAR_STYLE && !scalar.tag) {
          builder.on_null(mark, anchor_name(scalar.anchor));
          break;
        }
        builder.on_scalar(mark, scalar_tag(event), anchor_name(scalar.anchor),
                          std::string(reinterpret_cast<const char*>(scalar.value), scalar.length));
        break;
      }
      case YAML_ALIAS_EVENT:
        builder.on_alias(mark, anchor_name(event.data.alias.anchor));
        break;
      case YAML_SEQUENCE_START_EVENT:
        builder.on_open(mark, json::array(), anchor_name(event.data.sequence_start.anchor));
        break;
      case YAML_MAPPING_START_EVENT:
        builder.on_open(mark, json::object(), anchor_name(event.data.mapping_start.anchor));
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        builder.on_close(mark);
        break;
      default:  // the stream's and a document's start
        break;
    }
  }
}

const InputLimits& input_limits() { return g_limits; }

void set_input_limits(const InputLimits& limits) { g_limits = limits; }

std::string describe_json_error(const json::exception& error) {
  // 406: "number overflow parsing '1e999999'", the number quoted; everything else names the
  // position first and quotes the input after "; last read:".
  if (error.id == 406) return "a number is out of range";
  std::string text = error.what();
  if (auto bracket = text.find("] "); text.starts_with("[json.exception.") && bracket != std::string::npos)
    text.erase(0, bracket + 2);
  if (auto quoted = text.find("; last read:"); quoted != std::string::npos) text.erase(quoted);
  if (text.starts_with("parse error at ")) text.erase(0, std::strlen("parse error at "));
  return text;
}

namespace {

// simdjson's parser and a padded copy of the text (simdjson reads up to 64 bytes past its end).
// Each thread keeps one for the texts of a typical review; a larger text gets its own, freed
// after it. The parser's buffers are about 14 bytes per byte of text, so a kept one holds at
// most about 230 KB, and the server's 65 threads at most about 15 MB between them.
struct SimdParser {
  simdjson::dom::parser parser;
  std::size_t max_depth = 0;
  std::string padded;
};
constexpr std::size_t kKeptParserBytes = 16 << 10;

// The text parsed by simdjson (several times faster than nlohmann's lexer), or nullopt for
// anything it refuses: then nlohmann's parser decides, and its message is the error.
std::optional<json> parse_with_simdjson(std::string_view text) {
  thread_local SimdParser kept;
  std::unique_ptr<SimdParser> own;
  SimdParser* simd = &kept;
  if (text.size() > kKeptParserBytes) {
    own = std::make_unique<SimdParser>();
    simd = own.get();
  }
  // simdjson counts open arrays and objects as BoundedDomBuilder does (tested at the limit).
  if (simd->max_depth != g_limits.max_depth) {
    if (simd->parser.allocate(0, g_limits.max_depth) != simdjson::SUCCESS) return std::nullopt;
    simd->max_depth = g_limits.max_depth;
  }
  simd->padded.assign(text.data(), text.size());
  simd->padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  simdjson::dom::element root;
  if (simd->parser.parse(simd->padded.data(), text.size(), false).get(root) != simdjson::SUCCESS) return std::nullopt;
  return json_from_simdjson(root);
}

}  // namespace

json parse_json(std::string_view text) {
  if (std::optional<json> parsed = parse_with_simdjson(text)) return std::move(*parsed);
  return parse_json_nlohmann(text);
}

json parse_json_nlohmann(std::string_view text) {
  json root;
  BoundedDomBuilder builder(root);
  bool ok = false;
  try {
    ok = json::sax_parse(text, &builder);
  } catch (const json::exception& error) {
    throw InputError(describe_json_error(error));
  }
  if (!ok) throw InputError(builder.error().empty() ? "invalid JSON" : builder.error());
  return root;
}

json parse_json(std::istream& in, const json::parser_callback_t& callback) {
  const std::size_t max_depth = g_limits.max_depth;
  auto bounded = [&](int depth, json::parse_event_t event, json& parsed) {
    // `depth` counts the containers already open around this one.
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        static_cast<std::size_t>(depth) >= max_depth)
      throw InputError(depth_message());
    return callback(depth, event, parsed);
  };
  try {
    return json::parse(in, bounded);
  } catch (const json::exception& error) {
    throw InputError(describe_json_error(error));
  }
}

std::size_t yaml_value_budget(std::size_t bytes) { return 2 * bytes + 1024; }

YAML::Node load_yaml(const std::string& text) {
  require_utf8(text);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw InputError(yaml_error(error));
  }
  std::size_t budget = yaml_value_budget(text.size());
  check_yaml_expansion(root, 0, budget);
  return root;
}

std::string read_input_file(const std::string& path) {
  // Opened without blocking (a FIFO with no writer would hang the reader), then checked to be a
  // regular file before a byte is read: a directory, /dev/zero or a FIFO is no input.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot read the file: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) throw InputError(path + ": cannot read the file: " + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw InputError(path + ": is a directory, not a file");
  if (!S_ISREG(info.st_mode)) throw InputError(path + ": is not a regular file");
  const std::size_t limit = g_limits.max_file_bytes;
  if (static_cast<std::size_t>(info.st_size) > limit)
    throw InputError(path + ": the file has " + std::to_string(info.st_size) + " bytes, more than the limit of " +
                     std::to_string(limit) + " (--max-file-bytes)");
  std::string text;
  text.resize(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  // Read up to the size seen, plus one byte to notice a file that grew past the limit meanwhile.
  for (;;) {
    if (done == text.size()) {
      if (text.size() > limit)
        throw InputError(path + ": the file grew past the limit of " + std::to_string(limit) +
                         " bytes (--max-file-bytes) while it was read");
      text.resize(text.size() + 4096);
    }
    const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw InputError(path + ": cannot read the file: " + std::strerror(errno));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  text.resize(done);
  return text;
}

std::string read_standard_input() {
  const std::size_t limit = g_limits.max_file_bytes;
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw InputError(std::string("cannot read standard input: ") + std::strerror(errno));
    }
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
    if (text.size() > limit)
      throw InputError("more than the limit of " + std::to_string(limit) + " bytes (--max-file-bytes)");
  }
}

}  // namespace gpuadmit
