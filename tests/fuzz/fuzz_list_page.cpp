// A page of a list from the API server, read by ListPageReader (simdjson): it never throws or
// crashes, and whenever it reads a page, every item is what trim_object() makes of the same item
// from nlohmann's parse (parse_json_nlohmann), the reference. A page the reference cannot parse
// must not read either. The first byte picks the kind.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>

#include "engine/input_limits.h"
#include "tests/fuzz/fuzz_common.h"
#include "webhook/kube/list_page.h"

namespace kube = gpuadmit::kube;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t kinds = std::size(kube::kWatchedKinds);
  const kube::ObjectKind kind = kube::kWatchedKinds[data[0] % kinds];
  // The version listed, which a list item without its own apiVersion gets (a fallback changes it).
  const char* version = data[0] / kinds % 2 ? "v1beta1" : "v1";
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (gpuadmit::fuzz::skip_known_classes(body)) return -1;
  json reference;
  bool reference_ok = true;
  try {
    reference = gpuadmit::parse_json_nlohmann(body);
  } catch (const gpuadmit::InputError&) {
    reference_ok = false;
  }
  static kube::ListPageReader reader;  // reused, as the watch reuses it from page to page
  reader.set_version(version);
  kube::ListPage page;
  std::string error;
  if (!reader.read(kind, body, page, error)) {
    if (error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  // simdjson validates the whole page as the reference does (it is only stricter: integers past
  // 64 bits), so what it reads the reference reads too, and they agree item by item.
  if (!reference_ok) std::abort();
  const json& items = reference["items"];
  if (!items.is_array() && !items.is_null()) std::abort();
  const std::size_t count = items.is_array() ? items.size() : 0;
  if (page.items.size() != count) std::abort();
  for (std::size_t i = 0; i < count; ++i)
    if (page.items[i] != kube::trim_object(kind, items[i], version)) std::abort();
  return 0;
}
