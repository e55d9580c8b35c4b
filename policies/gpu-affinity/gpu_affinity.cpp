// gpu-affinity (mutating, off by default): a pod that says what its GPUs must offer
// (gpu-admit.io/gpu-memory, cuda-version, cuda-arch) gets a required node affinity that keeps it
// off nodes whose gpu-feature-discovery labels say otherwise, so the scheduler never picks a GPU
// that is too small, a driver too old or an architecture its kernels do not run on. gpu-capacity
// denies the pod when no eligible node qualifies; this policy steers it among those that do.
//
// Node affinity has no version comparison and Gt/Lt take one integer, so each requirement is a
// list of alternatives (each a list of label expressions, ANDed), e.g. driver >= 550.54.14:
//   major > 550  |  major = 550, minor > 54  |  major = 550, minor = 54, revision > 13
// nodeSelectorTerms are ORed, so requirement R with alternatives A1..Ak ANDed with terms T1..Tn
// gives the terms Ti ∪ Aj for every i, j. A requirement is left out when every term already
// contains one of its alternatives, which makes a second review of the mutated pod a no-op.
#include <algorithm>

#include "engine/capacity/placement.h"
#include "engine/k8s/node_affinity.h"
#include "policies/policies.h"

namespace gpuadmit::policies {
namespace {

using nlohmann::json;
using Alternative = std::vector<json>;  // matchExpressions, ANDed

constexpr std::string_view kGpuMemoryAnnotation = "gpu-admit.io/gpu-memory";
constexpr std::string_view kCudaVersionAnnotation = "gpu-admit.io/cuda-version";
constexpr std::string_view kCudaArchAnnotation = "gpu-admit.io/cuda-arch";
// The most nodeSelectorTerms this policy writes (the requirements' alternatives multiply them).
constexpr std::size_t kMaxTerms = 64;

struct AffinityConfig {
  bool gpu_memory = true;
  bool cuda_version = true;
  bool cuda_arch = true;
  bool deprecated_driver_labels = true;  // also accept nodes labelled cuda.driver.* only
};

// A requirement: alternatives (ORed), and what it says in messages.
struct Requirement {
  std::vector<Alternative> alternatives;
  std::string description;
};

json expression(std::string_view key, std::string_view op, std::int64_t value) {
  return {{"key", key}, {"operator", op}, {"values", {std::to_string(value)}}};
}
// Label values cannot start with '-', so "Gt -1" is not a valid requirement (the scheduler's
// selector never matches it); "at least 0" is Exists, GFD writing these labels as integers.
json greater_than(std::string_view key, std::int64_t value) {
  if (value < 0) return {{"key", key}, {"operator", "Exists"}};
  return expression(key, "Gt", value);
}
json equal_to(std::string_view key, std::int64_t value) { return expression(key, "In", value); }

// Labels hold integers written without leading zeros (GFD formats them with %d), except the
// driver revision ("550.54.03"), which is only ever compared with Gt.
// version >= (major, minor[, revision]) over the labels <prefix>major/minor/revision.
std::vector<Alternative> at_least(const std::string& major_key, const std::string& minor_key,
                                  const std::string& revision_key, const capacity::Version& version) {
  const std::int64_t major = version.parts.size() > 0 ? version.parts[0] : 0;
  const std::int64_t minor = version.parts.size() > 1 ? version.parts[1] : 0;
  const std::int64_t revision = version.parts.size() > 2 ? version.parts[2] : 0;
  std::vector<Alternative> out = {{greater_than(major_key, major)}};
  if (revision == 0 || revision_key.empty()) {
    out.push_back({equal_to(major_key, major), greater_than(minor_key, minor - 1)});
  } else {
    out.push_back({equal_to(major_key, major), greater_than(minor_key, minor)});
    out.push_back({equal_to(major_key, major), equal_to(minor_key, minor), greater_than(revision_key, revision - 1)});
  }
  return out;
}

std::string expression_text(const json& e) {
  const std::string op = e["operator"].get<std::string>();
  if (op == "Exists") return e["key"].get<std::string>();
  const std::string value = e["values"][0].get<std::string>();
  return e["key"].get<std::string>() + (op == "Gt" ? ">" : op == "Lt" ? "<" : "=") + value;
}

// Whether `term` holds every expression of `alternative` (same key, operator and values).
bool contains_all(const json& term, const Alternative& alternative) {
  const json* expressions = term.contains("matchExpressions") && term["matchExpressions"].is_array()
                                ? &term["matchExpressions"] : nullptr;
  return std::all_of(alternative.begin(), alternative.end(), [&](const json& wanted) {
    return expressions && std::find(expressions->begin(), expressions->end(), wanted) != expressions->end();
  });
}

class GpuAffinity final : public Policy {
 public:
  explicit GpuAffinity(AffinityConfig config) : config_(config) {}

  void run(PolicyContext& context) const override {
    for (const PodTarget& pod : context.workload.pods) {
      json& spec = context.pod_spec(pod);
      if (!context.pod_uses_gpu(pod)) continue;
      const std::vector<Requirement> requirements = requirements_of(context, pod, spec);
      if (!requirements.empty()) apply(context, pod, spec, requirements);
    }
  }

 private:
  // Annotations that do not parse are left alone: gpu-capacity reports them.
  std::vector<Requirement> requirements_of(const PolicyContext& context, const PodTarget& pod, const json& spec) const {
    std::vector<Requirement> out;
    if (std::string memory = context.annotation(pod, kGpuMemoryAnnotation); config_.gpu_memory && !memory.empty()) {
      k8s::Quantity q;
      // nvidia.com/gpu.memory is the memory of one GPU in MiB (of one MIG device under the
      // single strategy, where pods ask for nvidia.com/gpu too). A pod that asks for MIG
      // devices of the mixed strategy gets no expression: the profile fixes their memory.
      if (k8s::Quantity::try_parse(memory, q, nullptr) && q.sign() > 0 && asks_whole_gpus(spec, context.gpu)) {
        const std::int64_t bytes = q.value();  // saturates at 2^63-1: no rounding up past it
        const std::int64_t mib = bytes / (1024 * 1024) + (bytes % (1024 * 1024) != 0);
        out.push_back({{{greater_than("nvidia.com/gpu.memory", mib - 1)}},
                       "GPU memory of at least " + std::to_string(mib) + " MiB (" + std::string(kGpuMemoryAnnotation) + ")"});
      }
    }
    if (std::string cuda = context.annotation(pod, kCudaVersionAnnotation); config_.cuda_version && !cuda.empty()) {
      std::optional<capacity::Version> version = capacity::Version::parse(cuda);
      if (version && version->parts.size() >= 2)
        if (std::optional<capacity::Version> driver = minimum_driver(*version)) {
          Requirement r;
          r.alternatives = at_least("nvidia.com/cuda.driver-version.major", "nvidia.com/cuda.driver-version.minor",
                                    "nvidia.com/cuda.driver-version.revision", *driver);
          if (config_.deprecated_driver_labels)
            for (Alternative& a : at_least("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor",
                                           "nvidia.com/cuda.driver.rev", *driver))
              r.alternatives.push_back(std::move(a));
          r.description = "a driver of at least " + driver->to_string() + " for CUDA " + cuda + " (" +
                          std::string(kCudaVersionAnnotation) + ")";
          out.push_back(std::move(r));
        }
    }
    if (std::string arch = context.annotation(pod, kCudaArchAnnotation); config_.cuda_arch && !arch.empty()) {
      std::vector<capacity::CudaArch> archs;
      try {
        archs = capacity::parse_cuda_archs(arch);
      } catch (const std::invalid_argument&) {
        return out;
      }
      Requirement r;
      constexpr std::string_view kMajor = "nvidia.com/gpu.compute.major", kMinor = "nvidia.com/gpu.compute.minor";
      for (const capacity::CudaArch& a : archs) {
        std::vector<Alternative> alternatives;
        switch (a.kind) {
          case capacity::CudaArch::Kind::Cubin:  // X.Y and later minors of X
            alternatives = {{equal_to(kMajor, a.major), greater_than(kMinor, a.minor - 1)}};
            break;
          case capacity::CudaArch::Kind::ArchSpecific:  // exactly X.Y
            alternatives = {{equal_to(kMajor, a.major), equal_to(kMinor, a.minor)}};
            break;
          case capacity::CudaArch::Kind::Ptx:  // X.Y and everything later
            alternatives = at_least(std::string(kMajor), std::string(kMinor), "", capacity::Version{{a.major, a.minor}});
            break;
        }
        for (Alternative& alt : alternatives)
          if (std::find(r.alternatives.begin(), r.alternatives.end(), alt) == r.alternatives.end())
            r.alternatives.push_back(std::move(alt));
      }
      r.description = "compute capability for " + arch + " (" + std::string(kCudaArchAnnotation) + ")";
      out.push_back(std::move(r));
    }
    return out;
  }

  // The driver the CUDA toolkit's table asks for: for a version between releases (12.7), that
  // of the next release; nullopt for one the table does not reach (no expression then).
  static std::optional<capacity::Version> minimum_driver(const capacity::Version& cuda) {
    capacity::Version wanted{{cuda.parts[0], cuda.parts[1]}};
    for (std::int64_t major = wanted.parts[0], minor = wanted.parts[1]; major <= wanted.parts[0] + 1; ++major, minor = 0)
      for (; minor < 100; ++minor)
        if (auto driver = capacity::minimum_driver_for_cuda(capacity::Version{{major, minor}})) return driver;
    return std::nullopt;
  }

  static bool asks_whole_gpus(const json& spec, const GpuResources& gpu) {
    try {
      const capacity::PodShape shape = capacity::PodShape::from_pod_spec(spec, gpu);
      return std::any_of(shape.requests.extended.begin(), shape.requests.extended.end(), [&](const auto& entry) {
        return gpu.is_gpu(entry.first) && !entry.first.starts_with("nvidia.com/mig-") &&
               entry.second > 0;
      });
    } catch (const std::exception&) {
      return false;  // a malformed quantity: validations report it
    }
  }

  void apply(PolicyContext& context, const PodTarget& pod, json& spec, const std::vector<Requirement>& requirements) const {
    const std::string field = field_path(field_path(field_path(pod.field, "affinity"), "nodeAffinity"),
                                         "requiredDuringSchedulingIgnoredDuringExecution");
    // The existing terms, or, when there is no required node affinity yet, one term to start
    // from that the requirements fill. Malformed or empty selectors are left to the API server.
    json terms = json::array({json::object({{"matchExpressions", json::array()}})});
    bool existing = false;
    if (auto a = spec.find("affinity"); a != spec.end() && !a->is_null()) {
      if (!a->is_object()) return;
      if (auto n = a->find("nodeAffinity"); n != a->end() && !n->is_null()) {
        if (!n->is_object()) return;
        if (auto r = n->find("requiredDuringSchedulingIgnoredDuringExecution"); r != n->end() && !r->is_null()) {
          if (!r->is_object()) return;
          auto t = r->find("nodeSelectorTerms");
          if (t == r->end() || !t->is_array() || t->empty()) return;
          for (const json& term : *t) {
            if (!term.is_object()) return;
            for (const char* list : {"matchExpressions", "matchFields"})
              if (term.contains(list) && !term[list].is_null() && !term[list].is_array()) return;
          }
          terms = *t;
          existing = true;
        }
      }
    }
    // Existing terms with neither expressions nor fields select nothing (the scheduler drops
    // them): they stay as they are, and do not need the requirement.
    const auto selects_nothing = [&](const json& term) { return existing && k8s::NodeSelectorTerm::is_empty(term, ""); };
    std::string added;
    for (const Requirement& requirement : requirements) {
      const bool implied = std::all_of(terms.begin(), terms.end(), [&](const json& term) {
        return selects_nothing(term) ||
               std::any_of(requirement.alternatives.begin(), requirement.alternatives.end(),
                           [&](const Alternative& alternative) { return contains_all(term, alternative); });
      });
      if (implied) continue;
      // Terms multiply by alternatives: refuse to build more than a scheduler should read (and
      // than a 4 KB annotation should be able to make us compute) instead of growing the pod.
      if (terms.size() * requirement.alternatives.size() > kMaxTerms) {
        context.violation(field, "cannot add " + requirement.description + ": with " + std::to_string(terms.size()) +
                                     " node selector terms and " + std::to_string(requirement.alternatives.size()) +
                                     " alternatives it needs " +
                                     std::to_string(terms.size() * requirement.alternatives.size()) +
                                     " terms, more than " + std::to_string(kMaxTerms) +
                                     "; name fewer architectures or write fewer terms");
        return;
      }
      json next = json::array();
      for (const json& term : terms) {
        if (selects_nothing(term)) {
          if (std::find(next.begin(), next.end(), term) == next.end()) next.push_back(term);
          continue;
        }
        for (const Alternative& alternative : requirement.alternatives) {
          json combined = term;
          if (!combined.contains("matchExpressions") || combined["matchExpressions"].is_null())
            combined["matchExpressions"] = json::array();
          for (const json& e : alternative)
            if (std::find(combined["matchExpressions"].begin(), combined["matchExpressions"].end(), e) ==
                combined["matchExpressions"].end())
              combined["matchExpressions"].push_back(e);
          if (std::find(next.begin(), next.end(), combined) == next.end()) next.push_back(std::move(combined));
        }
      }
      terms = std::move(next);
      std::string alternatives;
      for (const Alternative& alternative : requirement.alternatives) {
        std::string all;
        for (const json& e : alternative) all += (all.empty() ? "" : ",") + expression_text(e);
        alternatives += (alternatives.empty() ? "" : " or ") + all;
      }
      added += (added.empty() ? "" : "; ") + requirement.description + ": " + alternatives;
    }
    if (added.empty()) return;
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = terms;
    context.changed(field, std::string(existing ? "added to every required node affinity term " : "added required node affinity ") +
                               "for " + added);
  }

  AffinityConfig config_;
};

}  // namespace

PolicyInfo gpu_affinity_info() {
  return {"gpu-affinity", PolicyKind::Mutating,
          "adds required node affinity that keeps pods with GPU memory or CUDA annotations on GPUs that meet them",
          {
           {"gpuMemory", "bool", "true",
            "`gpu-admit.io/gpu-memory: 40Gi` adds `nvidia.com/gpu.memory` Gt 40959 (the label is MiB per GPU; per MIG device under the single strategy). Not for pods that ask only for MIG devices of the mixed strategy: the profile fixes their memory, and `gpu.memory` is the whole GPU's"},
           {"cudaVersion", "bool", "true",
            "`gpu-admit.io/cuda-version: \"12.4\"` adds driver ≥ 550.54.14 (the toolkit's minimum-driver table; a version between releases takes the next release's driver, one past the table adds nothing) as alternatives: major Gt 550, or major 550 and minor Gt 54, or 550.54 and revision Gt 13"},
           {"cudaArch", "bool", "true",
            "`gpu-admit.io/cuda-arch: \"sm_80,sm_90\"` adds one alternative per architecture: `sm_XY` compute major X and minor Gt Y−1 (Exists for Y = 0: label values cannot be negative), `sm_XYa` exactly X.Y, `compute_XY` X.Y or later"},
           {"deprecatedDriverLabels", "bool", "true",
            "the driver alternatives also match nodes labelled only `nvidia.com/cuda.driver.major/minor/rev` (older GFD)"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            AffinityConfig config;
            config.gpu_memory = node.boolean("gpuMemory", true);
            config.cuda_version = node.boolean("cudaVersion", true);
            config.cuda_arch = node.boolean("cudaArch", true);
            config.deprecated_driver_labels = node.boolean("deprecatedDriverLabels", true);
            return std::make_unique<GpuAffinity>(config);
          }};
}

}  // namespace gpuadmit::policies
