// image-tags: a floating tag (`latest`, or none, which means latest) lets replicas and restarts
// run different images; digests pin an image exactly, and some namespaces require them.
#include "engine/k8s/glob.h"
#include "engine/k8s/image_reference.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;

struct ImageTagsConfig {
  std::vector<std::string> denied_tags;  // globs
  bool require_digest = false;
  std::vector<std::string> require_digest_namespaces;  // globs
  bool allow_tag_with_digest = true;
  bool gpu_pods_only = false;
};

class ImageTags final : public Policy {
 public:
  explicit ImageTags(ImageTagsConfig config) : config_(std::move(config)) {}

  void run(PolicyContext& context) const override {
    const std::string& ns = context.workload.namespace_;
    const bool digest_required =
        config_.require_digest ||
        std::any_of(config_.require_digest_namespaces.begin(), config_.require_digest_namespaces.end(),
                    [&](const std::string& pattern) { return namespace_matches(pattern, ns); });
    for_each_pod_container(context, config_.gpu_pods_only, [&](const PodTarget&, const json&, const json& container,
                                                                const std::string& field) {
      auto image = container.find("image");
      if (image == container.end() || !image->is_string()) return;
      check(context, image->get<std::string>(), field_path(field, "image"), digest_required, ns);
    });
  }

 private:
  void check(PolicyContext& context, const std::string& image, const std::string& field, bool digest_required,
             const std::string& ns) const {
    // An unparsable reference has no tag to judge; image-registries reports it.
    auto parsed = k8s::parse_normalized_named(image);
    if (!std::holds_alternative<k8s::ImageReference>(parsed)) return;
    const k8s::ImageReference& ref = std::get<k8s::ImageReference>(parsed);
    const std::string name = ref.familiar_name();
    if (!ref.digest.empty()) {
      if (!ref.tag.empty() && !config_.allow_tag_with_digest)
        context.violation(field, "image \"" + image + "\" has both a tag and a digest; the runtime ignores the tag, "
                                 "so it can mislead readers. Write " + name + "@" + ref.digest + " only");
      return;  // a digest pins the image whatever the tag says
    }
    if (digest_required) {
      context.violation(field, "image \"" + image + "\" is not pinned by digest, which namespace " + ns +
                                   " requires; write " + name + "@sha256:<digest> (crane digest " +
                                   ref.familiar_string() + " prints it)");
      return;
    }
    if (ref.tag.empty()) {
      context.violation(field, "image \"" + image + "\" has no tag, so each node pulls whatever 'latest' is then; "
                               "pin a version tag (" + name + ":<version>) or a digest (" + name + "@sha256:...)");
      return;
    }
    for (const std::string& pattern : config_.denied_tags)
      if (k8s::glob_match(pattern, ref.tag)) {
        context.violation(field, "image \"" + image + "\" uses the floating tag '" + ref.tag +
                                     "', so replicas and restarts can run different images; pin a version tag "
                                     "or a digest (" + name + "@sha256:...)");
        return;
      }
  }

  ImageTagsConfig config_;
};

}  // namespace

PolicyInfo image_tags_info() {
  return {"image-tags", PolicyKind::Validating,
          "denies floating image tags (latest, none); optionally requires digests",
          {
           {"deniedTags", "list of globs", "`[latest]`",
            "tag globs that float; an image without tag or digest is always denied"},
           {"requireDigest", "bool", "false",
            "every image needs an `@sha256:` digest"},
           {"requireDigestNamespaces", "list of globs", "",
            "namespace globs where images need a digest"},
           {"allowTagWithDigest", "bool", "true",
            "false: `name:tag@digest` is denied (the runtime ignores the tag)"},
           {"gpuPodsOnly", "bool", "false",
            "check only pod specs that use GPUs"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            ImageTagsConfig config;
            config.denied_tags = node.has("deniedTags") ? node.strings("deniedTags") : std::vector<std::string>{"latest"};
            config.require_digest = node.boolean("requireDigest", false);
            config.require_digest_namespaces = node.strings("requireDigestNamespaces");
            config.allow_tag_with_digest = node.boolean("allowTagWithDigest", true);
            config.gpu_pods_only = node.boolean("gpuPodsOnly", false);
            return std::make_unique<ImageTags>(std::move(config));
          }};
}

}  // namespace gpuadmit::policies
