#include "engine/k8s/glob.h"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace gpuadmit::k8s {

// Dynamic programming over the text rather than backtracking, so that patterns with many
// stars stay linear per pattern token: reach[j] says whether the pattern read so far can
// match text[0, j).
bool glob_match(std::string_view pattern, std::string_view text) {
  // Most namespace and registry patterns are literal: compare without allocating.
  if (pattern.find_first_of("*?") == std::string_view::npos) return pattern == text;
  const std::size_t n = text.size();
  std::vector<bool> reach(n + 1, false), next(n + 1);
  reach[0] = true;
  for (std::size_t i = 0; i < pattern.size();) {
    std::fill(next.begin(), next.end(), false);
    const char p = pattern[i];
    if (p == '*') {
      std::size_t stars = 0;
      while (i < pattern.size() && pattern[i] == '*') ++i, ++stars;
      const bool cross_slash = stars >= 2;
      for (std::size_t j = 0; j <= n; ++j) {
        next[j] = reach[j] || (j > 0 && next[j - 1] && (cross_slash || text[j - 1] != '/'));
      }
    } else {
      ++i;
      for (std::size_t j = 0; j < n; ++j) {
        next[j + 1] = reach[j] && (p == '?' ? text[j] != '/' : text[j] == p);
      }
    }
    reach.swap(next);
  }
  return reach[n];
}

}  // namespace gpuadmit::k8s
