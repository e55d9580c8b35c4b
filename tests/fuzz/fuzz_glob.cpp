// Registry and repository globs (image-registries, excluded namespaces): glob_match() is
// checked against a plain recursive matcher written from the documented rules.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>
#include <utility>

#include "engine/k8s/glob.h"

namespace {

struct Reference {
  std::string_view pattern, text;
  std::map<std::pair<std::size_t, std::size_t>, bool> memo;

  bool match(std::size_t p, std::size_t t) {
    if (p == pattern.size()) return t == text.size();
    auto [it, fresh] = memo.try_emplace({p, t}, false);
    if (!fresh) return it->second;
    bool result = false;
    if (pattern[p] == '*') {
      std::size_t end = p;
      while (end < pattern.size() && pattern[end] == '*') ++end;
      const bool cross = end - p >= 2;
      for (std::size_t k = t;; ++k) {  // the run takes text[t, k)
        if (match(end, k)) {
          result = true;
          break;
        }
        if (k == text.size() || (!cross && text[k] == '/')) break;
      }
    } else if (t < text.size()) {
      result = pattern[p] == '?' ? text[t] != '/' && match(p + 1, t + 1)
                                 : text[t] == pattern[p] && match(p + 1, t + 1);
    }
    memo[{p, t}] = result;
    return result;
  }
};

}  // namespace

// Input: "pattern\ntext"; without a newline the input is matched against itself.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 512) return -1;  // the reference is quadratic in memory
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view pattern = newline == std::string_view::npos ? input : input.substr(0, newline);
  const std::string_view text = newline == std::string_view::npos ? input : input.substr(newline + 1);
  Reference reference{pattern, text, {}};
  if (gpuadmit::k8s::glob_match(pattern, text) != reference.match(0, 0)) std::abort();
  return 0;
}
