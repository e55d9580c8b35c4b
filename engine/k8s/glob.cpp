#include "engine/k8s/glob.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gpuadmit::k8s {

// The literal head and tail around the wildcards must equal the text's ends, byte for byte: most
// patterns of an allow list are told apart there (by the registry's name) without the walk.
// What is left goes through dynamic programming over the text rather than backtracking, so that
// patterns with many stars stay linear per pattern token: reach[j] says whether the pattern read
// so far can match text[0, j).
bool glob_match(std::string_view pattern, std::string_view text) {
  const std::size_t first = pattern.find_first_of("*?");
  if (first == std::string_view::npos) return pattern == text;
  const std::size_t last = pattern.find_last_of("*?");
  const std::string_view head = pattern.substr(0, first), tail = pattern.substr(last + 1);
  if (text.size() < head.size() + tail.size() || !text.starts_with(head) || !text.ends_with(tail)) return false;
  pattern = pattern.substr(first, last + 1 - first);
  text = text.substr(head.size(), text.size() - head.size() - tail.size());

  const std::size_t n = text.size();
  // Two rows of n + 1 flags; on the stack for the texts image references have.
  std::array<std::uint8_t, 512> small{};
  std::vector<std::uint8_t> large;
  std::uint8_t* rows = small.data();
  if (2 * (n + 1) > small.size()) {
    large.assign(2 * (n + 1), 0);
    rows = large.data();
  }
  std::uint8_t* reach = rows;
  std::uint8_t* next = rows + n + 1;
  reach[0] = 1;
  for (std::size_t i = 0; i < pattern.size();) {
    std::fill(next, next + n + 1, std::uint8_t{0});
    const char p = pattern[i];
    if (p == '*') {
      std::size_t stars = 0;
      while (i < pattern.size() && pattern[i] == '*') ++i, ++stars;
      const bool cross_slash = stars >= 2;
      for (std::size_t j = 0; j <= n; ++j)
        next[j] = reach[j] || (j > 0 && next[j - 1] && (cross_slash || text[j - 1] != '/'));
    } else {
      ++i;
      for (std::size_t j = 0; j < n; ++j) next[j + 1] = reach[j] && (p == '?' ? text[j] != '/' : text[j] == p);
    }
    std::swap(reach, next);
  }
  return reach[n] != 0;
}

}  // namespace gpuadmit::k8s
