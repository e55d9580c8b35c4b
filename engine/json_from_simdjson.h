// nlohmann JSON built from a simdjson DOM value, as nlohmann's own parser builds it from the same
// text: the fast path of parse_json (engine/input_limits.h) and of the API server's list pages
// (webhook/kube/list_page.h). simdjson validates the whole text (UTF-8, escapes, numbers) before
// anything is built; what it refuses goes to nlohmann's parser, whose messages are the errors.
#pragma once

#include <simdjson.h>

#include <nlohmann/json.hpp>

namespace gpuadmit {

// Where the two parsers' results differ, simdjson refuses first (a number beyond 64 bits, a UTF-8
// byte-order mark: nlohmann reads them), except for one value: "-0", which nlohmann keeps a
// signed integer and simdjson cannot tell from "0", is built as an unsigned 0 (equal, and written
// the same). A repeated key: the last one wins, as in nlohmann's DOM. The recursion is bounded by
// the nesting the parser allowed (its max_depth).
nlohmann::json json_from_simdjson(simdjson::dom::element value);

}  // namespace gpuadmit
