// Resource quantities (`cpu: 500m`, `memory: 16Gi`, gpu-admit.io/gpu-memory): Quantity::parse
// throws QuantityError only, try_parse agrees with it, and what parses survives every
// operation the policies use. Two properties Kubernetes guarantees are checked too: the
// canonical string parses back to an equal value, and q - q is zero.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/k8s/quantity.h"

using gpuadmit::k8s::Quantity;
using gpuadmit::k8s::QuantityError;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Quantity::Parts parts;
  Quantity::split(text, parts);
  try {
    Quantity::from_json_text(text);
  } catch (const QuantityError&) {
  }
  Quantity q;
  const bool parsed = Quantity::try_parse(text, q);
  bool threw = false;
  try {
    Quantity::parse(text);
  } catch (const QuantityError&) {
    threw = true;
  }
  if (parsed == threw) std::abort();  // parse and try_parse disagree
  if (!parsed) return 0;

  const std::string canonical = q.to_string();
  Quantity again;
  if (!Quantity::try_parse(canonical, again) || again != q) std::abort();  // String() does not round-trip
  (void)q.value();
  (void)q.milli_value();
  (void)q.scaled_value(-3);
  (void)q.as_double();
  (void)q.is_integer();
  (void)q.sign();
  try {
    if (!(q - q).is_zero()) std::abort();
    (void)(q + q).to_string();
    (void)(q + Quantity::from_milli(1, gpuadmit::k8s::QuantityFormat::DecimalSI)).value();
  } catch (const QuantityError&) {  // exponents too far apart to align, as documented
  }
  Quantity rounded = q;
  rounded.round_up(-9);
  rounded.round_up(3);
  (void)rounded.to_string();
  return 0;
}
