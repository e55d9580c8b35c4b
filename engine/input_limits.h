// Every document gpu-admit reads (a review body, a manifest, a config, a snapshot, a suite, a
// kubeconfig, a watch event) comes from someone who may be hostile. Its parsers enforce these
// limits while parsing, so nothing downstream (object copies, the JSON Patch diff, printing,
// YAML conversion) ever walks a value deeper than `max_depth`, and a YAML alias cannot expand a
// small file into a huge one. Messages about bad input name the place (line, column, limit),
// never the input's own text: a secret in an env var must not reach a log or an answer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <istream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
}

namespace gpuadmit {

struct InputLimits {
  // Nesting of arrays and objects in JSON and YAML. The API server's decoder stops at 10,000;
  // a Kubernetes object nests about 15 deep and the recursive walks over a value need a few
  // hundred bytes of stack a level (several times that under sanitizers), so 1,000 is far above
  // any real object and far inside the 8 MiB stack every thread runs on.
  std::size_t max_depth = 1000;
  // Bytes of one input document (a manifest or snapshot file, a config, a suite).
  std::size_t max_file_bytes = 64 * 1024 * 1024;
};

// The stack every thread of gpu-admit runs on (webhook/main.cpp sets it as the threads' default):
// a walk at the depth limit takes about a megabyte of it at -O2 (measured: 512 KiB is too little),
// several times that under sanitizers.
constexpr std::size_t kThreadStackBytes = std::size_t{8} << 20;

// The limits in force for the process; the CLI sets them from its flags before any thread starts.
const InputLimits& input_limits();
void set_input_limits(const InputLimits& limits);

// Input that is malformed or over a limit. The message says where and which limit.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses one JSON text with the depth limit applied while parsing. Throws InputError: "line 3,
// column 7: syntax error while parsing object - invalid literal", "nesting deeper than 1000
// levels (the limit, --max-depth)", "a number is out of range", never quoting the input.
// simdjson reads the text; what it refuses goes to nlohmann's parser (parse_json_nlohmann), which
// decides and words the error. The two build the same value (engine/json_from_simdjson.h).
nlohmann::json parse_json(std::string_view text);
// nlohmann's parser alone under the same limits: parse_json's fallback, and its reference in tests.
nlohmann::json parse_json_nlohmann(std::string_view text);
// As parse_json, from a stream (a large snapshot), handing each value the callback accepts to it
// as nlohmann's parser callbacks do (return false to drop the value after it is parsed).
nlohmann::json parse_json(std::istream& in, const nlohmann::json::parser_callback_t& callback);

// A nlohmann exception thrown while parsing, as a message that does not quote the input.
std::string describe_json_error(const nlohmann::json::exception& error);

// The documents of a YAML text, one at a time, converted to JSON straight from libyaml's event
// parser (which keeps its own stacks, so any nesting is read without recursion): no tree is
// built, so a reader holds one document, not the whole text's (`check` of a 10,000-object file).
// What a reader following the aliases would see is checked as it is built: at most max_depth
// levels, and at most yaml_value_budget(text.size()) values over all documents, copies of anchored
// values included. Without aliases a document has fewer values than bytes, so only an alias bomb
// ("billion laughs") is refused. `scalar` turns a scalar into JSON from its tag ("?" plain, "!"
// quoted, or the explicit tag) and text; an empty value without a tag is null. Map keys are the
// key's text; a key that is not a scalar is refused. Reads as yaml-cpp's node tree (load_yaml)
// reads the same text (tests/unit/engine/manifests_test.cpp). Throws InputError naming the line.
class YamlJsonReader {
 public:
  using ScalarRule = nlohmann::json (*)(const std::string& tag, const std::string& text);
  YamlJsonReader(std::string text, ScalarRule scalar);
  ~YamlJsonReader();
  // The next document (null for an empty one) and the 1-based line of its first value; false
  // after the last.
  bool next(nlohmann::json& document, int& line);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One YAML document as a tree under the same limits, for configs and suites, which read it with
// its marks (an empty text is a null node).
YAML::Node load_yaml(const std::string& text);
std::size_t yaml_value_budget(std::size_t bytes);

// Reads a whole regular file of at most max_file_bytes. Throws InputError naming the file for a
// directory, a FIFO, a device, an unreadable or an oversized file.
std::string read_input_file(const std::string& path);

// Standard input, up to max_file_bytes. Throws InputError past it.
std::string read_standard_input();

}  // namespace gpuadmit
