// parse_json, the parser of every JSON input (simdjson, with nlohmann's parser for what simdjson
// refuses), against nlohmann's parser alone (parse_json_nlohmann), the reference: both refuse the
// same texts with the same message, or both build the same tree, types included, except the one
// documented difference ("-0" is an unsigned 0; engine/json_from_simdjson.h). What it builds is
// then written back by append_json, which must write the bytes dump() writes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "engine/input_limits.h"
#include "engine/json_writer.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/support/same_json_tree.h"

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<json> reference, parsed;
  std::string reference_error, parsed_error;
  try {
    reference = gpuadmit::parse_json_nlohmann(text);
  } catch (const gpuadmit::InputError& error) {
    reference_error = error.what();
  }
  try {
    parsed = gpuadmit::parse_json(text);
  } catch (const gpuadmit::InputError& error) {
    parsed_error = error.what();
  }
  if (reference_error != parsed_error) std::abort();
  if (reference && !gpuadmit::testing::same_tree(*reference, *parsed)) std::abort();
  if (parsed && gpuadmit::write_json(*parsed) != parsed->dump()) std::abort();
  return 0;
}
