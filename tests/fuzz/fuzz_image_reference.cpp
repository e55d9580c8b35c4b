// Image references (`image:` of every container, image-registries patterns): every parser
// returns its error as a value and throws nothing. What parses is printed in each form the
// policies print, re-parsed (String() must parse back to the same reference), re-tagged, and
// matched against a pattern taken from the input's first line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "engine/k8s/image_reference.h"

namespace k8s = gpuadmit::k8s;

namespace {

void use(const k8s::ImageReference& ref, std::string_view pattern) {
  (void)ref.name();
  (void)ref.familiar_name();
  (void)ref.familiar_string();
  if (!ref.digest_only()) {
    const auto again = k8s::parse_image_reference(ref.string());
    if (std::holds_alternative<k8s::ImageReference>(again) && std::get<k8s::ImageReference>(again) != ref)
      std::abort();  // String() does not round-trip
    k8s::with_tag(ref, "v1");
    k8s::with_digest(ref, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    k8s::familiar_match(pattern, ref);
  }
}

}  // namespace

// Input: "pattern\nreference"; without a newline the whole input is both.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view pattern = newline == std::string_view::npos ? input : input.substr(0, newline);
  const std::string_view s = newline == std::string_view::npos ? input : input.substr(newline + 1);

  for (auto parse : {k8s::parse_image_reference, k8s::parse_normalized_named, k8s::parse_named,
                     k8s::parse_any_reference, k8s::parse_docker_ref, k8s::with_name}) {
    const auto result = parse(s);
    if (const auto* ref = std::get_if<k8s::ImageReference>(&result)) use(*ref, pattern);
  }
  k8s::go_path_match(pattern, s);
  k8s::image_grammar::is_domain(s);
  k8s::image_grammar::is_tag(s);
  k8s::image_grammar::is_digest(s);
  k8s::image_grammar::is_identifier(s);
  k8s::image_grammar::match_name(s);
  k8s::image_grammar::match_reference(s);
  return 0;
}
