#include "engine/k8s/glob.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace gpuadmit::k8s {
namespace {

TEST(ImageRefGlob, Literal) {
  EXPECT_TRUE(glob_match("nvcr.io/nvidia/cuda", "nvcr.io/nvidia/cuda"));
  EXPECT_FALSE(glob_match("nvcr.io/nvidia/cuda", "nvcr.io/nvidia/cudaX"));
  EXPECT_FALSE(glob_match("nvcr.io/nvidia/cuda", "nvcr.io/nvidia/cud"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  // Only '*' and '?' are special: brackets, dots and backslashes are literal.
  EXPECT_TRUE(glob_match("a[b].c\\d", "a[b].c\\d"));
  EXPECT_FALSE(glob_match("a.c", "abc"));
  EXPECT_FALSE(glob_match("a[b]", "ab"));
}

TEST(ImageRefGlob, SingleStarStaysInOneComponent) {
  EXPECT_TRUE(glob_match("nvcr.io/nvidia/*", "nvcr.io/nvidia/tritonserver"));
  EXPECT_TRUE(glob_match("nvcr.io/nvidia/*", "nvcr.io/nvidia/"));
  EXPECT_FALSE(glob_match("nvcr.io/nvidia/*", "nvcr.io/nvidia/k8s/device-plugin"));
  EXPECT_FALSE(glob_match("nvcr.io/*", "nvcr.io/nvidia/cuda"));
  EXPECT_TRUE(glob_match("*.io/*/cuda", "nvcr.io/nvidia/cuda"));
  EXPECT_FALSE(glob_match("*.io/*/cuda", "a/b.io/nvidia/cuda"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(glob_match("a*b", "abbb"));
  EXPECT_FALSE(glob_match("a*b", "abbc"));
}

TEST(ImageRefGlob, DoubleStarCrossesSlashes) {
  EXPECT_TRUE(glob_match("nvcr.io/**", "nvcr.io/nvidia/k8s/device-plugin"));
  EXPECT_TRUE(glob_match("nvcr.io/**", "nvcr.io/"));
  EXPECT_FALSE(glob_match("nvcr.io/**", "nvcr.io"));
  EXPECT_TRUE(glob_match("**", "a/b/c"));
  EXPECT_TRUE(glob_match("**/cuda", "nvcr.io/nvidia/cuda"));
  EXPECT_TRUE(glob_match("ghcr.io/**/text-generation-inference",
                         "ghcr.io/huggingface/text-generation-inference"));
  // "/**/" is literal around the stars, so it needs at least the two slashes.
  EXPECT_FALSE(glob_match("docker.io/**/ubuntu", "docker.io/ubuntu"));
  EXPECT_TRUE(glob_match("docker.io/**/ubuntu", "docker.io/library/ubuntu"));
  // Three or more stars behave like two.
  EXPECT_TRUE(glob_match("a/***", "a/b/c"));
  EXPECT_TRUE(glob_match("**.example.com/*", "a.b.example.com/x"));
}

TEST(ImageRefGlob, QuestionMarkIsOneNonSlashCharacter) {
  EXPECT_TRUE(glob_match("registry:500?/a", "registry:5000/a"));
  EXPECT_FALSE(glob_match("registry:500?/a", "registry:500/a"));
  EXPECT_FALSE(glob_match("a?b", "a/b"));
  EXPECT_TRUE(glob_match("??", "ab"));
  EXPECT_FALSE(glob_match("??", "abc"));
}

TEST(ImageRefGlob, LiteralHeadAndTailMatchTheTextsEndsWithoutOverlapping) {
  EXPECT_FALSE(glob_match("ab*ba", "aba"));  // head and tail would share the middle 'b'
  EXPECT_TRUE(glob_match("ab*ba", "abba"));
  EXPECT_TRUE(glob_match("ab**ba", "ab/x/ba"));
  EXPECT_FALSE(glob_match("nvcr.io/**", "docker.io/nvcr.io/x"));
  EXPECT_FALSE(glob_match("**/cuda", "nvcr.io/cuda/x"));
  EXPECT_TRUE(glob_match("a?", "ab"));
  EXPECT_FALSE(glob_match("a?", "a"));
}

TEST(ImageRefGlob, LongTextsMatchAsShortOnes) {
  // Past 255 bytes between the head and the tail, the walk's rows move from the stack to the heap.
  const std::string middle(600, 'x');
  EXPECT_TRUE(glob_match("reg/*/tail", "reg/" + middle + "/tail"));
  EXPECT_FALSE(glob_match("reg/*/tail", "reg/" + middle + "/x/tail"));
  EXPECT_TRUE(glob_match("reg/**/tail", "reg/" + middle + "/x/tail"));
  EXPECT_FALSE(glob_match("reg/" + std::string(601, '?') + "/tail", "reg/" + middle + "/tail"));
  EXPECT_TRUE(glob_match("reg/" + std::string(600, '?') + "/tail", "reg/" + middle + "/tail"));
}

TEST(ImageRefGlob, ManyStarsStayFast) {
  const std::string text(5000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(glob_match("**a**a**a**a**a**a**a**a", text));
}

// The reference: the glob's definition as plain backtracking, exponential but obviously right.
bool reference_match(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern[0] == '*') {
    std::size_t stars = 0;
    while (stars < pattern.size() && pattern[stars] == '*') ++stars;
    for (std::size_t taken = 0; taken <= text.size(); ++taken) {
      if (reference_match(pattern.substr(stars), text.substr(taken))) return true;
      if (taken < text.size() && text[taken] == '/' && stars < 2) return false;
    }
    return false;
  }
  if (text.empty()) return false;
  const bool one = pattern[0] == '?' ? text[0] != '/' : text[0] == pattern[0];
  return one && reference_match(pattern.substr(1), text.substr(1));
}

TEST(ImageRefGlob, AgreesWithABacktrackingReference) {
  std::mt19937 random(20261206);
  auto word = [&](const char* alphabet, std::size_t length) {
    std::string out;
    const std::size_t size = std::char_traits<char>::length(alphabet);
    for (std::size_t i = 0; i < length; ++i) out += alphabet[random() % size];
    return out;
  };
  for (int round = 0; round < 20000; ++round) {
    const std::string pattern = word("ab/*?", random() % 7);
    const std::string text = word("ab/", random() % 8);
    EXPECT_EQ(glob_match(pattern, text), reference_match(pattern, text)) << pattern << " vs " << text;
  }
}

}  // namespace
}  // namespace gpuadmit::k8s
