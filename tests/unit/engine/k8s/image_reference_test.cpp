// The upstream distribution/reference table (shared/fixtures/upstream/image_reference.json),
// one test per case, plus GPU-workload images of our own.
#include "engine/k8s/image_reference.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

constexpr std::size_t kUpstreamCases = 352;

std::vector<json> load_cases() {
  std::ifstream in(GPUADMIT_SHARED_DIR "/fixtures/upstream/image_reference.json");
  if (!in) return {};  // ImageRefUpstreamTableFile.LoadsEveryCase reports it
  return json::parse(in).at("cases").get<std::vector<json>>();
}

const std::vector<json>& cases() {
  static const std::vector<json> all = load_cases();
  return all;
}

std::string str(const json& c, const char* key) { return c.value(key, std::string()); }

// What the case's `func` returns: a reference or an error.
ImageResult<ImageReference> run_reference_case(const json& c) {
  const std::string kind = c.at("kind");
  const std::string input = str(c, "input");
  if (kind == "parse" || kind == "json_field") return parse_image_reference(input);
  if (kind == "parse_normalized_named") return parse_normalized_named(input);
  if (kind == "parse_named") return parse_named(input);
  if (kind == "parse_any_reference") return parse_any_reference(input);
  if (kind == "parse_docker_ref") return parse_docker_ref(input);
  if (kind == "with_name") return with_name(input);

  // with_tag / with_digest: build the name, add the other part, then the one under test.
  const std::string func = c.at("func");
  auto ref = func.starts_with("ParseNormalizedNamed") ? parse_normalized_named(str(c, "name"))
                                                      : with_name(str(c, "name"));
  const auto then = [&ref](auto add, const std::string& part) {
    if (auto* r = std::get_if<ImageReference>(&ref)) ref = add(*r, part);
  };
  if (kind == "with_tag") {
    if (!str(c, "digest").empty()) then(with_digest, str(c, "digest"));
    then(with_tag, str(c, "tag"));
  } else if (kind == "with_digest") {
    if (!str(c, "tag").empty()) then(with_tag, str(c, "tag"));
    then(with_digest, str(c, "digest"));
  } else {
    ADD_FAILURE() << "unknown kind " << kind;
  }
  return ref;
}

// Compares every part that `parts` names (expect or computed) with the reference.
void check_parts(const ImageReference& ref, const json& parts, const char* source,
                 const std::string& input) {
  for (const auto& [key, want] : parts.items()) {
    SCOPED_TRACE(std::string(source) + "." + key);
    if (key == "string") EXPECT_EQ(ref.string(), want);
    else if (key == "name") EXPECT_EQ(ref.name(), want);
    else if (key == "domain") EXPECT_EQ(ref.domain, want);
    else if (key == "path") EXPECT_EQ(ref.path, want);
    else if (key == "tag") EXPECT_EQ(ref.tag, want);
    else if (key == "digest") EXPECT_EQ(ref.digest, want);
    else if (key == "familiarName") EXPECT_EQ(ref.familiar_name(), want);
    else if (key == "familiarString") EXPECT_EQ(ref.familiar_string(), want);
    else if (key == "isTagged") EXPECT_EQ(!ref.tag.empty(), want);
    else if (key == "isDigested") EXPECT_EQ(!ref.digest.empty(), want);
    else if (key == "digestOnlyReference") EXPECT_EQ(ref.digest_only(), want);
    // Field.MarshalText writes String(), so the round trip is String() == input.
    else if (key == "json_roundtrip_identical") EXPECT_EQ(ref.string() == input, want);
    else ADD_FAILURE() << "unhandled " << source << " field " << key;
  }
}

void check_reference_case(const json& c) {
  const auto result = run_reference_case(c);
  const auto* ref = std::get_if<ImageReference>(&result);
  const auto* err = std::get_if<ImageReferenceError>(&result);
  if (!c.at("ok").get<bool>()) {
    ASSERT_NE(err, nullptr) << "expected an error, got " << ref->string();
    if (c.contains("expectError")) {
      EXPECT_EQ(err->code, c["expectError"].at("go"));
      EXPECT_EQ(err->message, c["expectError"].at("message"));
    }
    return;
  }
  ASSERT_NE(ref, nullptr) << "unexpected error " << err->code << ": " << err->message;
  const std::string input = str(c, "input");
  if (c.contains("expect")) check_parts(*ref, c["expect"], "expect", input);
  if (c.contains("computed")) {
    json computed = c["computed"];
    // computed lists every part the library reports; a missing tag or digest means none.
    for (const char* optional_part : {"tag", "digest"}) {
      if (!computed.contains(optional_part)) computed[optional_part] = "";
    }
    check_parts(*ref, computed, "computed", input);
  }
}

void check_familiar_match_case(const json& c) {
  const auto ref = parse_any_reference(c.at("reference").get<std::string>());
  ASSERT_TRUE(std::holds_alternative<ImageReference>(ref));
  const auto matched = familiar_match(c.at("pattern").get<std::string>(), std::get<0>(ref));
  if (!c.at("ok").get<bool>()) {
    ASSERT_TRUE(std::holds_alternative<ImageReferenceError>(matched));
    EXPECT_EQ(std::get<ImageReferenceError>(matched).code, "path.ErrBadPattern");
    return;
  }
  ASSERT_TRUE(std::holds_alternative<bool>(matched)) << std::get<1>(matched).message;
  EXPECT_EQ(std::get<bool>(matched), c.at("expect").at("match").get<bool>());
}

void check_regexp_case(const json& c) {
  const std::string kind = c.at("kind");
  const std::string input = c.at("input");
  const bool ok = c.at("ok");
  const json expect = c.value("expect", json::object());
  if (kind == "regexp_domain") {
    EXPECT_EQ(image_grammar::is_domain(input), ok);
  } else if (kind == "regexp_identifier") {
    EXPECT_EQ(image_grammar::is_identifier(input), ok);
  } else if (kind == "regexp_full_name") {
    const auto m = image_grammar::match_name(input);
    ASSERT_EQ(m.has_value(), ok);
    if (m && !expect.empty()) {
      EXPECT_EQ(m->domain, expect.at("domain"));
      EXPECT_EQ(m->path, expect.at("path"));
    }
  } else if (kind == "regexp_reference") {
    const auto m = image_grammar::match_reference(input);
    ASSERT_EQ(m.has_value(), ok);
    if (m && !expect.empty()) {
      EXPECT_EQ(m->name, expect.at("name"));
      EXPECT_EQ(m->tag, expect.at("tag"));
      EXPECT_EQ(m->digest, expect.at("digest"));
    }
  } else {
    ADD_FAILURE() << "unknown kind " << kind;
  }
}

class ImageReferenceTable : public testing::TestWithParam<json> {};

TEST_P(ImageReferenceTable, Case) {
  const json& c = GetParam();
  SCOPED_TRACE("case " + c.at("id").get<std::string>() + " (" + c.at("file").get<std::string>() +
               ":" + std::to_string(c.value("line", 0)) + ")");
  const std::string kind = c.at("kind");
  if (kind.starts_with("regexp_")) {
    check_regexp_case(c);
  } else if (kind == "familiar_match") {
    check_familiar_match_case(c);
  } else {
    check_reference_case(c);
  }
}

INSTANTIATE_TEST_SUITE_P(ImageRef, ImageReferenceTable, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<json>& info) {
                           std::string id = info.param.at("id");
                           for (char& ch : id) {
                             if (ch == '#') ch = '_';
                           }
                           return id;
                         });

TEST(ImageRefUpstreamTableFile, LoadsEveryCase) { EXPECT_EQ(cases().size(), kUpstreamCases); }

// Our own cases: images GPU workloads actually use.
ImageReference must_parse(std::string_view image) {
  auto result = parse_normalized_named(image);
  if (auto* err = std::get_if<ImageReferenceError>(&result)) {
    ADD_FAILURE() << image << ": " << err->code << ": " << err->message;
    return {};
  }
  return std::get<ImageReference>(result);
}

std::string error_code(const ImageResult<ImageReference>& result) {
  const auto* err = std::get_if<ImageReferenceError>(&result);
  return err ? err->code : "";
}

const std::string kSha = "sha256:" + std::string(64, 'a');

TEST(ImageRefGpu, NgcTriton) {
  const auto ref = must_parse("nvcr.io/nvidia/tritonserver:24.05-py3");
  EXPECT_EQ(ref.domain, "nvcr.io");
  EXPECT_EQ(ref.path, "nvidia/tritonserver");
  EXPECT_EQ(ref.tag, "24.05-py3");
  EXPECT_EQ(ref.digest, "");
  EXPECT_EQ(ref.familiar_string(), "nvcr.io/nvidia/tritonserver:24.05-py3");
}

TEST(ImageRefGpu, DockerHubVllm) {
  const auto ref = must_parse("vllm/vllm-openai:v0.6.3");
  EXPECT_EQ(ref.string(), "docker.io/vllm/vllm-openai:v0.6.3");
  EXPECT_EQ(ref.familiar_name(), "vllm/vllm-openai");
  EXPECT_EQ(ref.familiar_string(), "vllm/vllm-openai:v0.6.3");
}

TEST(ImageRefGpu, RegistryWithPortAndDigest) {
  const auto ref = must_parse("registry:5000/a/b@" + kSha);
  EXPECT_EQ(ref.domain, "registry:5000");
  EXPECT_EQ(ref.path, "a/b");
  EXPECT_EQ(ref.tag, "");
  EXPECT_EQ(ref.digest, kSha);
  // ParseDockerRef keeps a digest-only reference as it is.
  EXPECT_EQ(std::get<ImageReference>(parse_docker_ref("registry:5000/a/b@" + kSha)).string(),
            "registry:5000/a/b@" + kSha);
}

TEST(ImageRefGpu, GhcrTgi) {
  const auto ref = must_parse("ghcr.io/huggingface/text-generation-inference:2.0");
  EXPECT_EQ(ref.name(), "ghcr.io/huggingface/text-generation-inference");
  EXPECT_EQ(ref.tag, "2.0");
}

TEST(ImageRefGpu, OfficialAndLegacyHubNames) {
  EXPECT_EQ(must_parse("pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime").string(),
            "docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime");
  EXPECT_EQ(must_parse("index.docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04").string(),
            "docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04");
  EXPECT_EQ(must_parse("ubuntu:22.04").string(), "docker.io/library/ubuntu:22.04");
  EXPECT_EQ(must_parse("docker.io/library/ubuntu:22.04").familiar_string(), "ubuntu:22.04");
  EXPECT_EQ(std::get<ImageReference>(parse_docker_ref("nvcr.io/nvidia/pytorch")).string(),
            "nvcr.io/nvidia/pytorch:latest");
  // Tag and digest together: ParseDockerRef keeps only the digest.
  EXPECT_EQ(std::get<ImageReference>(parse_docker_ref("nvcr.io/nvidia/pytorch:24.05-py3@" + kSha))
                .string(),
            "nvcr.io/nvidia/pytorch@" + kSha);
}

TEST(ImageRefGpu, UpperCaseOnlyInTheDomain) {
  EXPECT_EQ(must_parse("NVCR.IO/nvidia/cuda:12.4.1").domain, "NVCR.IO");
  EXPECT_EQ(error_code(parse_normalized_named("nvcr.io/NVIDIA/cuda")), "UppercaseRemoteName");
  EXPECT_EQ(error_code(parse_image_reference("nvcr.io/NVIDIA/cuda")), "ErrNameContainsUppercase");
  EXPECT_EQ(must_parse("nvcr.io/nvidia/cuda:12.4.1-CUDNN").tag, "12.4.1-CUDNN");
}

TEST(ImageRefGpu, RejectedImages) {
  // Normalization turns "" into "docker.io/library/", so it is a format error, not ErrNameEmpty.
  EXPECT_EQ(error_code(parse_normalized_named("")), "ErrReferenceInvalidFormat");
  EXPECT_EQ(error_code(parse_image_reference("")), "ErrNameEmpty");
  const std::string cuda = "nvcr.io/nvidia/cuda";
  EXPECT_EQ(error_code(parse_normalized_named(cuda + ":")), "ErrReferenceInvalidFormat");
  EXPECT_EQ(error_code(parse_normalized_named(cuda + "@sha256:abc")), "ErrReferenceInvalidFormat");
  EXPECT_EQ(error_code(parse_normalized_named(cuda + "@sha512:" + std::string(128, 'a'))),
            "digest.ErrDigestUnsupported");
  EXPECT_EQ(error_code(parse_normalized_named(cuda + "@sha256:" + std::string(63, 'a'))),
            "digest.ErrDigestInvalidLength");
  EXPECT_EQ(error_code(parse_normalized_named(cuda + "@sha256:" + std::string(64, 'A'))),
            "digest.ErrDigestInvalidFormat");
  EXPECT_EQ(error_code(parse_normalized_named(std::string(64, 'a'))), "HexIdentifierName");
  EXPECT_EQ(error_code(parse_named("vllm/vllm-openai")), "ErrNameNotCanonical");
  EXPECT_EQ(error_code(with_tag(must_parse("vllm/vllm-openai"), ".v1")), "ErrTagInvalidFormat");
  EXPECT_EQ(error_code(with_digest(must_parse("vllm/vllm-openai"), "sha256:abc")),
            "ErrDigestInvalidFormat");
}

TEST(ImageRefGpu, FamiliarMatch) {
  const auto triton = must_parse("nvcr.io/nvidia/tritonserver:24.05-py3");
  EXPECT_EQ(std::get<bool>(familiar_match("nvcr.io/nvidia/*", triton)), true);
  EXPECT_EQ(std::get<bool>(familiar_match("nvcr.io/*", triton)), false);  // '*' stops at '/'
  EXPECT_EQ(std::get<bool>(familiar_match("nvcr.io/nvidia/tritonserver:24.0?-py3", triton)), true);
  EXPECT_EQ(std::get<bool>(familiar_match("vllm/*", must_parse("vllm/vllm-openai:v0.6.3"))), true);
  EXPECT_TRUE(std::holds_alternative<ImageReferenceError>(familiar_match("nvcr.io/[", triton)));
}

// Go's own table for path.Match (src/path/match_test.go), which FamiliarMatch relies on.
TEST(ImageRefGoPathMatch, GoTable) {
  enum Want { kNo, kYes, kBadPattern };
  struct Case {
    const char* pattern;
    const char* name;
    Want want;
  };
  const Case table[] = {
      {"abc", "abc", kYes}, {"*", "abc", kYes}, {"*c", "abc", kYes}, {"a*", "a", kYes},
      {"a*", "abc", kYes}, {"a*", "ab/c", kNo}, {"a*/b", "abc/b", kYes}, {"a*/b", "a/c/b", kNo},
      {"a*b*c*d*e*/f", "axbxcxdxe/f", kYes}, {"a*b*c*d*e*/f", "axbxcxdxexxx/f", kYes},
      {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", kNo}, {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", kNo},
      {"a*b?c*x", "abxbbxdbxebxczzx", kYes}, {"a*b?c*x", "abxbbxdbxebxczzy", kNo},
      {"ab[c]", "abc", kYes}, {"ab[b-d]", "abc", kYes}, {"ab[e-g]", "abc", kNo},
      {"ab[^c]", "abc", kNo}, {"ab[^b-d]", "abc", kNo}, {"ab[^e-g]", "abc", kYes},
      {"a\\*b", "a*b", kYes}, {"a\\*b", "ab", kNo}, {"a?b", "a\u263Ab", kYes},
      {"a[^a]b", "a\u263Ab", kYes}, {"a???b", "a\u263Ab", kNo},
      {"a[^a][^a][^a]b", "a\u263Ab", kNo}, {"[a-\u03B6]*", "\u03B1", kYes},
      {"*[a-\u03B6]", "A", kNo}, {"a?b", "a/b", kNo}, {"a*b", "a/b", kNo},
      {"[\\]a]", "]", kYes}, {"[\\-]", "-", kYes}, {"[x\\-]", "x", kYes},
      {"[x\\-]", "-", kYes}, {"[x\\-]", "z", kNo}, {"[\\-x]", "x", kYes},
      {"[\\-x]", "-", kYes}, {"[\\-x]", "a", kNo}, {"[]a]", "]", kBadPattern},
      {"[-]", "-", kBadPattern}, {"[x-]", "x", kBadPattern}, {"[x-]", "-", kBadPattern},
      {"[x-]", "z", kBadPattern}, {"[-x]", "x", kBadPattern}, {"[-x]", "-", kBadPattern},
      {"[-x]", "a", kBadPattern}, {"\\", "a", kBadPattern}, {"[a-b-c]", "a", kBadPattern},
      {"[", "a", kBadPattern}, {"[^", "a", kBadPattern}, {"[^bc", "a", kBadPattern},
      {"a[", "a", kBadPattern}, {"a[", "ab", kBadPattern}, {"a[", "x", kBadPattern},
      {"a/b[", "x", kBadPattern}, {"*x", "xxx", kYes},
  };
  for (const Case& c : table) {
    const auto got = go_path_match(c.pattern, c.name);
    const Want want = got ? (*got ? kYes : kNo) : kBadPattern;
    EXPECT_EQ(want, c.want) << "pattern " << c.pattern << " name " << c.name;
  }
}

// parse_normalized_named keeps each thread's last results (128 slots): a repeated input, and
// inputs that share a slot, get exactly what a first parse gives, good or bad; an input longer
// than the memo keeps is parsed every time, with the same answer.
std::string result_text(const ImageResult<ImageReference>& r) {
  if (const auto* ref = std::get_if<ImageReference>(&r)) return "ok " + ref->string();
  return "error " + std::get<ImageReferenceError>(r).code + ": " + std::get<ImageReferenceError>(r).message;
}

TEST(ImageRefMemo, RepeatedAndCollidingInputsGetTheirOwnAnswers) {
  std::vector<std::string> inputs;
  for (int i = 0; i < 600; ++i) {
    inputs.push_back("registry.example.com/team" + std::to_string(i) + "/model:v" + std::to_string(i % 7));
    if (i % 5 == 0) inputs.push_back("Bad/Upper" + std::to_string(i));  // an error, remembered too
  }
  inputs.push_back(std::string(600, 'a'));  // longer than the memo keeps
  std::vector<std::string> first;
  for (const std::string& in : inputs) first.push_back(result_text(parse_normalized_named(in)));
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t i = inputs.size(); i-- > 0;)
      EXPECT_EQ(result_text(parse_normalized_named(inputs[i])), first[i]) << inputs[i];
  EXPECT_EQ(first.front(), "ok registry.example.com/team0/model:v0");
  EXPECT_EQ(first[1].rfind("error UppercaseRemoteName", 0), 0u) << first[1];
}

}  // namespace
}  // namespace gpuadmit::k8s
