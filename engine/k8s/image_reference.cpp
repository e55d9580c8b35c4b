#include "engine/k8s/image_reference.h"

#include <array>
#include <functional>
#include <optional>

#include <re2/re2.h>

#include <cstddef>
#include <stdexcept>
#include <utility>

namespace gpuadmit::k8s {
namespace {

constexpr std::size_t kNameTotalLengthMax = 255;  // RepositoryNameTotalLengthMax
constexpr std::string_view kDefaultDomain = "docker.io";
constexpr std::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr std::string_view kOfficialRepoPrefix = "library/";
constexpr std::string_view kLocalhost = "localhost";

std::string optional(const std::string& re) { return "(?:" + re + ")?"; }
std::string any_times(const std::string& re) { return "(?:" + re + ")*"; }
std::string capture(const std::string& re) { return "(" + re + ")"; }
std::string anchored(const std::string& re) { return "^" + re + "$"; }

// The pieces of upstream regexp.go, combined the same way so that the grammar stays
// recognisably the same. Members, not globals: grammar() may run during static init.
struct Patterns {
  std::string alphanumeric = "[a-z0-9]+";
  std::string separator = "(?:[._]|__|[-]+)";
  std::string domain_name_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
  std::string optional_port = "(?::[0-9]+)?";
  std::string tag = R"([\w][\w.-]{0,127})";
  std::string digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
  std::string identifier = "([a-f0-9]{64})";
  std::string ipv6_address = R"(\[(?:[a-fA-F0-9:]+)\])";
  std::string domain_name = domain_name_component + any_times(R"(\.)" + domain_name_component);
  std::string host = "(?:" + domain_name + "|" + ipv6_address + ")";
  std::string domain_and_port = host + optional_port;
  std::string path_component = alphanumeric + any_times(separator + alphanumeric);
  std::string remote_name = path_component + any_times("/" + path_component);
  std::string name = optional(domain_and_port + "/") + remote_name;
};

// Compiled once; RE2 is thread-safe for matching. Go's regexp and RE2 share leftmost-first
// submatch semantics, so the captured parts are the ones upstream sees.
struct Grammar {
  explicit Grammar(const Patterns& p = {})
      : domain(anchored(p.domain_and_port)),
        tag(anchored(p.tag)),
        digest(anchored(p.digest)),
        identifier(anchored(p.identifier)),
        name(anchored(optional(capture(p.domain_and_port) + "/") + capture(p.remote_name))),
        reference(anchored(capture(p.name) + optional(":" + capture(p.tag)) +
                           optional("@" + capture(p.digest)))) {
    for (const RE2* re : {&domain, &tag, &digest, &identifier, &name, &reference, &go_digest}) {
      if (!re->ok()) throw std::logic_error("image reference grammar: " + re->error());
    }
  }

  RE2 domain, tag, digest, identifier, name, reference;
  // go-digest's DigestRegexpAnchored, which tells "unsupported" from "invalid format".
  RE2 go_digest{"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"};
};

const Grammar& grammar() {
  static const Grammar g;
  return g;
}

ImageReferenceError error(std::string code, std::string message) {
  return {std::move(code), std::move(message)};
}
ImageReferenceError err_invalid_format() {
  return error("ErrReferenceInvalidFormat", "invalid reference format");
}
ImageReferenceError err_name_empty() {
  return error("ErrNameEmpty", "repository name must have at least one component");
}
ImageReferenceError err_name_too_long() {
  return error("ErrNameTooLong", "repository name must not be more than 255 characters");
}

// Upstream lowers with Unicode strings.ToLower. The grammar is ASCII-only, so lowering ASCII
// gives the same accept/reject verdicts; only the error code for a few exotic inputs can
// differ (Go lowers U+212A KELVIN SIGN to 'k' and then reports upper case).
std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}
bool has_ascii_upper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

// go-digest v1.0.0 Digest.Validate with only sha256 registered, as in upstream's tests.
std::optional<ImageReferenceError> validate_digest(std::string_view d) {
  const auto invalid = [] {
    return error("digest.ErrDigestInvalidFormat", "invalid checksum digest format");
  };
  const std::size_t colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == d.size()) return invalid();
  const std::string_view algorithm = d.substr(0, colon);
  const std::string_view encoded = d.substr(colon + 1);
  if (algorithm != "sha256") {
    if (!RE2::FullMatch(d, grammar().go_digest)) return invalid();
    return error("digest.ErrDigestUnsupported", "unsupported digest algorithm");
  }
  if (encoded.size() != 64) {
    return error("digest.ErrDigestInvalidLength", "invalid checksum digest length");
  }
  for (char c : encoded) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return invalid();
  }
  return std::nullopt;
}

// splitDockerDomain: decides whether the first component is a registry.
std::pair<std::string, std::string> split_docker_domain(std::string_view name) {
  const std::size_t slash = name.find('/');
  if (slash == std::string_view::npos) {
    // Familiar single-component names ("ubuntu:22.04") are never a host:port.
    return {std::string(kDefaultDomain), std::string(kOfficialRepoPrefix) + std::string(name)};
  }
  const std::string_view maybe_domain = name.substr(0, slash);
  const std::string_view maybe_remote = name.substr(slash + 1);
  std::string domain(kDefaultDomain), remote(name);
  if (maybe_domain == kLegacyDefaultDomain) {
    remote = maybe_remote;
  } else if (maybe_domain == kLocalhost ||
             maybe_domain.find_first_of(".:") != std::string_view::npos ||
             has_ascii_upper(maybe_domain)) {
    // localhost, a host name, an IP address, or (namespaces being lower case) an upper-case
    // first component: a registry.
    domain = maybe_domain;
    remote = maybe_remote;
  }
  if (domain == kDefaultDomain && remote.find('/') == std::string::npos) {
    remote = std::string(kOfficialRepoPrefix) + remote;
  }
  return {std::move(domain), std::move(remote)};
}

// The pieces of Go's path.Match.
namespace gopath {

// utf8.DecodeRuneInString: an invalid or truncated sequence is U+FFFD, one byte long.
constexpr char32_t kRuneError = 0xFFFD;
std::pair<char32_t, std::size_t> decode_rune(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return {c, 1};
  std::size_t n = 0;
  char32_t r = 0, min = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, r = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, r = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, r = c & 0x07, min = 0x10000;
  } else {
    return {kRuneError, 1};
  }
  if (s.size() < n) return {kRuneError, 1};
  for (std::size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return {kRuneError, 1};
    r = (r << 6) | (byte(i) & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return {kRuneError, 1};
  return {r, n};
}

// getEsc: one possibly-escaped character of a class; nullopt for a bad pattern.
std::optional<char32_t> get_esc(std::string_view& chunk) {
  if (chunk.empty() || chunk[0] == '-' || chunk[0] == ']') return std::nullopt;
  if (chunk[0] == '\\') {
    chunk.remove_prefix(1);
    if (chunk.empty()) return std::nullopt;
  }
  const auto [r, n] = decode_rune(chunk);
  if (r == kRuneError && n == 1) return std::nullopt;
  chunk.remove_prefix(n);
  if (chunk.empty()) return std::nullopt;  // a class must still be closed
  return r;
}

// scanChunk: the next run of non-star pattern, and whether stars preceded it.
std::pair<bool, std::string_view> scan_chunk(std::string_view& pattern) {
  bool star = false;
  while (!pattern.empty() && pattern[0] == '*') {
    pattern.remove_prefix(1);
    star = true;
  }
  bool in_range = false;
  std::size_t i = 0;
  for (; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 < pattern.size()) ++i;
    } else if (c == '[') {
      in_range = true;
    } else if (c == ']') {
      in_range = false;
    } else if (c == '*' && !in_range) {
      break;
    }
  }
  const std::string_view chunk = pattern.substr(0, i);
  pattern.remove_prefix(i);
  return {star, chunk};
}

struct ChunkMatch {
  std::string_view rest;
  bool ok = false;
  bool bad_pattern = false;
};

// matchChunk: after a mismatch it keeps reading the chunk only to validate it.
ChunkMatch match_chunk(std::string_view chunk, std::string_view s) {
  bool failed = false;
  while (!chunk.empty()) {
    if (!failed && s.empty()) failed = true;
    switch (chunk[0]) {
      case '[': {
        char32_t r = 0;
        if (!failed) {
          const auto [rune, n] = decode_rune(s);
          r = rune;
          s.remove_prefix(n);
        }
        chunk.remove_prefix(1);
        bool negated = false;
        if (!chunk.empty() && chunk[0] == '^') {
          negated = true;
          chunk.remove_prefix(1);
        }
        bool match = false;
        for (int nrange = 0;; ++nrange) {
          if (!chunk.empty() && chunk[0] == ']' && nrange > 0) {
            chunk.remove_prefix(1);
            break;
          }
          const auto lo = get_esc(chunk);
          if (!lo) return {.bad_pattern = true};
          char32_t hi = *lo;
          if (chunk[0] == '-') {
            chunk.remove_prefix(1);
            const auto h = get_esc(chunk);
            if (!h) return {.bad_pattern = true};
            hi = *h;
          }
          if (*lo <= r && r <= hi) match = true;
        }
        if (match == negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (s[0] == '/') failed = true;
          s.remove_prefix(decode_rune(s).second);
        }
        chunk.remove_prefix(1);
        break;
      case '\\':
        chunk.remove_prefix(1);
        if (chunk.empty()) return {.bad_pattern = true};
        [[fallthrough]];
      default:
        if (!failed) {
          if (chunk[0] != s[0]) failed = true;
          s.remove_prefix(1);
        }
        chunk.remove_prefix(1);
    }
  }
  if (failed) return {};
  return {.rest = s, .ok = true};
}

}  // namespace gopath
}  // namespace

std::string ImageReference::name() const { return domain.empty() ? path : domain + "/" + path; }

std::string ImageReference::string() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += (s.empty() ? "" : "@") + digest;
  return s;
}

// familiarizeName: drop docker.io, and "library/" when nothing is nested below it.
std::string ImageReference::familiar_name() const {
  if (domain != kDefaultDomain) return name();
  const std::string_view p = path;
  if (p.starts_with(kOfficialRepoPrefix) &&
      p.find('/', kOfficialRepoPrefix.size()) == std::string_view::npos) {
    return std::string(p.substr(kOfficialRepoPrefix.size()));
  }
  return path;
}

std::string ImageReference::familiar_string() const {
  if (digest_only()) return string();
  ImageReference familiar = *this;
  familiar.domain.clear();
  familiar.path = familiar_name();
  return familiar.string();
}

ImageResult<ImageReference> parse_image_reference(std::string_view s) {
  if (s.empty()) return err_name_empty();
  auto parts = image_grammar::match_reference(s);
  if (!parts) {
    const std::string lower = ascii_lower(s);
    if (lower != s && image_grammar::match_reference(lower)) {
      return error("ErrNameContainsUppercase", "repository name must be lowercase");
    }
    return err_invalid_format();
  }
  ImageReference ref;
  if (auto name = image_grammar::match_name(parts->name)) {
    ref.domain = std::move(name->domain);
    ref.path = std::move(name->path);
  } else {
    ref.path = std::move(parts->name);
  }
  // Upstream limits the path only; the domain does not count.
  if (ref.path.size() > kNameTotalLengthMax) return err_name_too_long();
  ref.tag = std::move(parts->tag);
  if (!parts->digest.empty()) {
    if (auto bad = validate_digest(parts->digest)) return *bad;
    ref.digest = std::move(parts->digest);
  }
  return ref;
}

namespace {

ImageResult<ImageReference> parse_normalized_named_uncached(std::string_view s) {
  if (image_grammar::is_identifier(s)) {
    return error("HexIdentifierName", "invalid repository name (" + std::string(s) +
                                          "), cannot specify 64-byte hexadecimal strings");
  }
  const auto [domain, remainder] = split_docker_domain(s);
  const std::string remote = remainder.substr(0, remainder.find(':'));
  if (has_ascii_upper(remote)) {
    return error("UppercaseRemoteName",
                 "invalid reference format: repository name (" + remote + ") must be lowercase");
  }
  return parse_image_reference(domain + "/" + remainder);
}

// The same few images come in review after review (every replica of every workload names the
// same ones), and parsing one runs the reference grammar's regular expressions: about half of
// image-registries' and image-tags' work. The parse is a pure function of its input, so each
// thread keeps the last results in a small direct-mapped table: bounded in entries and in the
// length of what it keeps, and never shared, so no lock.
struct ParseMemo {
  static constexpr std::size_t kSlots = 128;
  static constexpr std::size_t kMaxKey = 512;  // longer inputs are parsed every time
  struct Slot {
    std::string key;
    std::optional<ImageResult<ImageReference>> result;
  };
  std::array<Slot, kSlots> slots;
};

}  // namespace

ImageResult<ImageReference> parse_normalized_named(std::string_view s) {
  if (s.size() > ParseMemo::kMaxKey) return parse_normalized_named_uncached(s);
  thread_local ParseMemo memo;
  ParseMemo::Slot& slot = memo.slots[std::hash<std::string_view>{}(s) % ParseMemo::kSlots];
  if (slot.result && slot.key == s) return *slot.result;
  ImageResult<ImageReference> result = parse_normalized_named_uncached(s);
  slot.key.assign(s);
  slot.result = result;
  return result;
}

ImageResult<ImageReference> parse_named(std::string_view s) {
  auto named = parse_normalized_named(s);
  if (auto* ref = std::get_if<ImageReference>(&named); ref && ref->string() != s) {
    return error("ErrNameNotCanonical", "repository name must be canonical");
  }
  return named;
}

ImageResult<ImageReference> parse_any_reference(std::string_view s) {
  if (image_grammar::is_identifier(s)) return ImageReference{.digest = "sha256:" + std::string(s)};
  if (!validate_digest(s)) return ImageReference{.digest = std::string(s)};
  return parse_normalized_named(s);
}

ImageResult<ImageReference> parse_docker_ref(std::string_view s) {
  auto named = parse_normalized_named(s);
  auto* ref = std::get_if<ImageReference>(&named);
  if (!ref) return named;
  if (!ref->tag.empty() && !ref->digest.empty()) {
    auto bare = with_name(ref->name());
    if (auto* b = std::get_if<ImageReference>(&bare)) return with_digest(*b, ref->digest);
    return bare;
  }
  if (ref->tag.empty() && ref->digest.empty()) ref->tag = "latest";  // TagNameOnly
  return named;
}

ImageResult<ImageReference> with_name(std::string_view name) {
  auto parts = image_grammar::match_name(name);
  if (!parts) return err_invalid_format();
  if (parts->path.size() > kNameTotalLengthMax) return err_name_too_long();
  return ImageReference{.domain = std::move(parts->domain), .path = std::move(parts->path)};
}

// Upstream takes a Named here, which a bare digest reference is not.
ImageResult<ImageReference> with_tag(const ImageReference& named, std::string_view tag) {
  if (!image_grammar::is_tag(tag)) return error("ErrTagInvalidFormat", "invalid tag format");
  if (named.digest_only()) return err_name_empty();
  ImageReference ref = named;
  ref.tag = tag;
  return ref;
}

ImageResult<ImageReference> with_digest(const ImageReference& named, std::string_view digest) {
  if (!image_grammar::is_digest(digest)) {
    return error("ErrDigestInvalidFormat", "invalid digest format");
  }
  if (named.digest_only()) return err_name_empty();
  ImageReference ref = named;
  ref.digest = digest;
  return ref;
}

std::variant<bool, ImageReferenceError> familiar_match(std::string_view pattern,
                                                       const ImageReference& ref) {
  const auto matched = go_path_match(pattern, ref.familiar_string());
  if (!matched) return error("path.ErrBadPattern", "syntax error in pattern");
  if (*matched || ref.digest_only()) return *matched;
  return go_path_match(pattern, ref.familiar_name()).value_or(false);
}

// Go's path.Match (Go 1.16+, which also reports a bad pattern after a mismatch).
std::optional<bool> go_path_match(std::string_view pattern, std::string_view name) {
  while (!pattern.empty()) {
    const auto [star, chunk] = gopath::scan_chunk(pattern);
    if (star && chunk.empty()) return name.find('/') == std::string_view::npos;
    const gopath::ChunkMatch here = gopath::match_chunk(chunk, name);
    // The last chunk must consume the whole name, else a star may still do better.
    if (here.ok && (here.rest.empty() || !pattern.empty())) {
      name = here.rest;
      continue;
    }
    if (here.bad_pattern) return std::nullopt;
    bool advanced = false;
    if (star) {
      // The star swallows i+1 more bytes, never a '/'.
      for (std::size_t i = 0; i < name.size() && name[i] != '/'; ++i) {
        const gopath::ChunkMatch later = gopath::match_chunk(chunk, name.substr(i + 1));
        if (later.ok) {
          if (pattern.empty() && !later.rest.empty()) continue;
          name = later.rest;
          advanced = true;
          break;
        }
        if (later.bad_pattern) return std::nullopt;
      }
    }
    if (advanced) continue;
    while (!pattern.empty()) {
      const std::string_view rest = gopath::scan_chunk(pattern).second;
      if (gopath::match_chunk(rest, "").bad_pattern) return std::nullopt;
    }
    return false;
  }
  return name.empty();
}

namespace image_grammar {

bool is_domain(std::string_view s) { return RE2::FullMatch(s, grammar().domain); }
bool is_tag(std::string_view s) { return RE2::FullMatch(s, grammar().tag); }
bool is_digest(std::string_view s) { return RE2::FullMatch(s, grammar().digest); }
bool is_identifier(std::string_view s) { return RE2::FullMatch(s, grammar().identifier); }

std::optional<NameMatch> match_name(std::string_view s) {
  NameMatch m;
  if (!RE2::FullMatch(s, grammar().name, &m.domain, &m.path)) return std::nullopt;
  return m;
}

std::optional<ReferenceMatch> match_reference(std::string_view s) {
  ReferenceMatch m;
  if (!RE2::FullMatch(s, grammar().reference, &m.name, &m.tag, &m.digest)) return std::nullopt;
  return m;
}

}  // namespace image_grammar
}  // namespace gpuadmit::k8s
