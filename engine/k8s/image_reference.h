// Container image references exactly as github.com/distribution/reference parses them
// (the library Docker, containerd and Kubernetes tooling use), with the digest checks of
// github.com/opencontainers/go-digest v1.0.0 where only sha256 is registered.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace gpuadmit::k8s {

// One parsed reference; an empty field is absent. A bare digest reference (what
// parse_any_reference returns for "sha256:<hex>" or a 64-hex identifier) has only `digest`.
struct ImageReference {
  std::string domain, path, tag, digest;

  std::string name() const;             // Name(): domain + "/" + path, or path alone
  std::string string() const;           // String(): name[:tag][@digest]
  std::string familiar_name() const;    // FamiliarName(): "ubuntu" for docker.io/library/ubuntu
  std::string familiar_string() const;  // FamiliarString(): familiar name[:tag][@digest]
  bool digest_only() const { return path.empty(); }

  bool operator==(const ImageReference&) const = default;
};

// `code` is the upstream Go error variable ("ErrNameContainsUppercase",
// "digest.ErrDigestUnsupported", "path.ErrBadPattern", ...). Upstream builds two errors with
// fmt.Errorf and no variable; they get the codes "HexIdentifierName" and "UppercaseRemoteName".
// `message` is upstream's error text.
struct ImageReferenceError {
  std::string code;
  std::string message;
};

template <class T>
using ImageResult = std::variant<T, ImageReferenceError>;

// Parse: the reference as written, no normalization ("ubuntu" stays "ubuntu").
ImageResult<ImageReference> parse_image_reference(std::string_view s);
// ParseNormalizedNamed: what Kubernetes and containerd do with a pod's `image` field
// ("ubuntu" -> "docker.io/library/ubuntu"; upper case is allowed only in a domain).
ImageResult<ImageReference> parse_normalized_named(std::string_view s);
// ParseNamed: like parse_normalized_named, but the input must already be canonical.
ImageResult<ImageReference> parse_named(std::string_view s);
// ParseAnyReference: a 64-hex identifier, a bare digest, or a familiar name.
ImageResult<ImageReference> parse_any_reference(std::string_view s);
// ParseDockerRef: normalized, ":latest" added when there is neither tag nor digest, and the
// tag dropped when there are both.
ImageResult<ImageReference> parse_docker_ref(std::string_view s);

// WithName / WithTag / WithDigest. with_tag keeps a digest and with_digest keeps a tag, as
// upstream does; with_digest checks the digest grammar only, not the algorithm or length.
ImageResult<ImageReference> with_name(std::string_view name);
ImageResult<ImageReference> with_tag(const ImageReference& named, std::string_view tag);
ImageResult<ImageReference> with_digest(const ImageReference& named, std::string_view digest);

// FamiliarMatch: Go's path.Match of `pattern` against the familiar string, then against the
// familiar name. An ill-formed pattern gives path.ErrBadPattern.
std::variant<bool, ImageReferenceError> familiar_match(std::string_view pattern,
                                                       const ImageReference& ref);
// Go's path.Match, which familiar_match uses: '*' and '?' stop at '/', '[...]' classes, a
// backslash escapes. nullopt means ErrBadPattern.
std::optional<bool> go_path_match(std::string_view pattern, std::string_view name);

// The grammar regexes of upstream regexp.go, matched against the whole string.
namespace image_grammar {
struct NameMatch {
  std::string domain, path;
};
struct ReferenceMatch {
  std::string name, tag, digest;
};
bool is_domain(std::string_view s);      // DomainRegexp: host with optional port
bool is_tag(std::string_view s);         // TagRegexp
bool is_digest(std::string_view s);      // DigestRegexp: "<algorithm>:<32+ hex>"
bool is_identifier(std::string_view s);  // IdentifierRegexp: 64 lower-case hex
std::optional<NameMatch> match_name(std::string_view s);            // anchoredNameRegexp
std::optional<ReferenceMatch> match_reference(std::string_view s);  // ReferenceRegexp
}  // namespace image_grammar

}  // namespace gpuadmit::k8s
