// image-registries: every image must come from a registry/repository the platform team trusts.
// References are normalized exactly as the kubelet and containerd do ("ubuntu" is
// docker.io/library/ubuntu), so a pattern cannot be dodged by spelling the name differently.
#include "engine/k8s/glob.h"
#include "engine/k8s/image_reference.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

// How many allowed patterns a message quotes before "and N more".
constexpr std::size_t kPatternsQuoted = 6;

class ImageRegistries final : public Policy {
 public:
  ImageRegistries(std::vector<std::string> globs, std::vector<std::shared_ptr<const RE2>> regexes,
                  std::vector<std::string> regex_texts, bool gpu_pods_only)
      : globs_(std::move(globs)),
        regexes_(std::move(regexes)),
        gpu_pods_only_(gpu_pods_only) {
    std::vector<std::string> quoted = globs_;
    quoted.insert(quoted.end(), regex_texts.begin(), regex_texts.end());
    const std::size_t total = quoted.size();
    if (total > kPatternsQuoted) quoted.resize(kPatternsQuoted);
    allowed_text_ = join(quoted);
    if (total > kPatternsQuoted) allowed_text_ += " and " + std::to_string(total - kPatternsQuoted) + " more";
  }

  void run(PolicyContext& context) const override {
    for_each_pod_container(context, gpu_pods_only_, [&](const PodTarget&, const json&, const json& container,
                                                         const std::string& field) {
      auto image = container.find("image");
      if (image == container.end() || !image->is_string() || image->get<std::string>().empty()) return;
      check(context, image->get<std::string>(), field_path(field, "image"));
    });
  }

 private:
  bool allowed(const std::string& repository) const {
    for (const std::string& glob : globs_)
      if (k8s::glob_match(glob, repository)) return true;
    return full_match_any(regexes_, repository);
  }

  void check(PolicyContext& context, const std::string& image, const std::string& field) const {
    auto parsed = k8s::parse_normalized_named(image);
    if (auto* error = std::get_if<k8s::ImageReferenceError>(&parsed)) {
      context.violation(field, "\"" + image + "\" is not a valid image reference (" + error->message +
                                   "); the kubelet could not pull it. Write registry/repository:tag, "
                                   "e.g. nvcr.io/nvidia/pytorch:24.05-py3, with placeholders filled in");
      return;
    }
    const std::string repository = std::get<k8s::ImageReference>(parsed).name();
    if (allowed(repository)) return;
    context.violation(field, "image \"" + image + "\" (repository " + repository +
                                 ") is not from an allowed registry; allowed: " + allowed_text_ +
                                 ". Use an image from one of these, or mirror it into one");
  }

  std::vector<std::string> globs_;
  std::vector<std::shared_ptr<const RE2>> regexes_;
  bool gpu_pods_only_;
  std::string allowed_text_;
};

}  // namespace

PolicyInfo image_registries_info() {
  return {"image-registries", PolicyKind::Validating,
          "every image must come from an allowed registry/repository (globs or RE2 on the normalized name)",
          {
           {"allowed", "list of globs", "",
            "repository globs over the normalized name without tag or digest (`docker.io/library/*`, `nvcr.io/nvidia/**`, `registry.example.com:5000/ml/*`); `*` does not cross `/`, `**` does. Each needs a `/` (`nvcr.io/**` for a whole registry)"},
           {"allowedPatterns", "list of RE2 patterns", "",
            "RE2 patterns that must match the whole normalized name; a bad one is a config error. `allowed` and `allowedPatterns` together must list at least one pattern"},
           {"gpuPodsOnly", "bool", "false",
            "check only pod specs that use GPUs"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            std::vector<std::string> globs;
            for (const ConfigNode& item : node.child("allowed").items()) {
              std::string glob = item.as_string();
              // Normalized names always hold a '/', so "nvcr.io" alone would match nothing.
              if (glob.find('/') == std::string::npos)
                item.fail("'" + glob + "' matches no image: patterns match the whole repository name "
                          "(docker.io/library/ubuntu); write '" + glob + "/**' to allow a whole registry");
              globs.push_back(std::move(glob));
            }
            std::vector<std::string> regex_texts = node.strings("allowedPatterns");
            auto regexes = compile_regexes(node.child("allowedPatterns"));
            if (globs.empty() && regexes.empty())
              node.fail("allowed or allowedPatterns must list at least one repository pattern "
                        "(an empty allowlist denies every image; use mode: off to disable the policy)");
            for (std::string& text : regex_texts) text = "/" + text + "/";
            return std::make_unique<ImageRegistries>(std::move(globs), std::move(regexes), std::move(regex_texts),
                                                     node.boolean("gpuPodsOnly", false));
          }};
}

}  // namespace gpuadmit::policies
