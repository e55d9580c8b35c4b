// `gpu-admit check`: review manifests offline, as the webhook would review their creation.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "engine/manifests.h"
#include "engine/k8s/json_fields.h"
#include "engine/k8s/scheduling_objects.h"
#include "webhook/cli/commands.h"

namespace gpuadmit::cli {
namespace {

using nlohmann::json;

std::string describe(const Workload& workload, const json& object) {
  std::string kind = workload.kind.empty() ? k8s::json_fields::string_or(object, "kind", "<no kind>") : workload.kind;
  std::string name = workload.name.empty() ? std::string("<unnamed>") : workload.name;
  return kind + " " + (workload.namespace_.empty() ? "" : workload.namespace_ + "/") + name;
}

json result_json(const ManifestDocument& document, const ReviewOutcome& outcome, bool show_mutated) {
  const Response& response = outcome.response;
  json result = {{"file", document.file},
                 {"document", document.document},
                 {"line", document.line},
                 {"kind", outcome.workload.kind},
                 {"namespace", outcome.workload.namespace_},
                 {"name", outcome.workload.name},
                 {"allowed", response.allowed}};
  if (!outcome.skipped.empty()) result["skipped"] = outcome.skipped;
  if (!response.allowed) result["message"] = response.status_message;
  result["warnings"] = response.warnings;
  result["patch"] = response.patch.is_array() ? response.patch : json::array();
  result["auditAnnotations"] = response.audit_annotations;
  json policies = json::array();
  for (const PolicyOutcome& p : outcome.policies)
    if (p.fired || p.exempted)
      policies.push_back({{"policy", p.policy}, {"mode", std::string(to_string(p.mode))},
                          {"denied", p.denied}, {"exempted", p.exempted}, {"error", p.error}});
  result["policies"] = policies;
  if (show_mutated && !outcome.mutated.is_null()) result["mutated"] = outcome.mutated;
  return result;
}

void print_text(const ManifestDocument& document, const ReviewOutcome& outcome, bool show_mutated) {
  const Response& response = outcome.response;
  std::cout << document.file << ":" << document.line << ": " << describe(outcome.workload, document.object) << ": ";
  if (!outcome.skipped.empty()) {
    std::cout << "skipped (" << outcome.skipped << ")\n";
    return;
  }
  const std::size_t operations = response.patch.is_array() ? response.patch.size() : 0;
  if (!response.allowed) {
    std::cout << "DENIED\n";
    for (const Denial& denial : outcome.denials) std::cout << "  denied: " << denial.text() << "\n";
    // A denial without a policy's reason: the request itself was refused (a malformed object).
    if (outcome.denials.empty()) std::cout << "  denied: " << response.status_message << "\n";
  } else {
    std::cout << "allowed";
    if (operations) std::cout << ", mutated (" << operations << " patch operation" << (operations == 1 ? "" : "s") << ")";
    std::cout << "\n";
  }
  for (const std::string& warning : response.warnings) std::cout << "  warning: " << warning << "\n";
  for (const auto& [key, value] : response.audit_annotations) std::cout << "  audit: " << key << ": " << value << "\n";
  if (response.allowed)
    for (const json& op : response.patch) {
      std::cout << "  patch: " << op["op"].get<std::string>() << " " << op["path"].get<std::string>();
      if (op.contains("value")) std::cout << " " << op["value"].dump();
      std::cout << "\n";
    }
  if (show_mutated && response.allowed && !outcome.mutated.is_null()) {
    std::cout << "  mutated manifest:\n---\n" << to_yaml(outcome.mutated);
  }
}

// Which of `words` the file's bytes hold (a bit each, in order), read a chunk at a time; stops
// reading once every word is found.
unsigned mentions(const std::string& file, std::initializer_list<std::string_view> words) {
  std::ifstream in(file, std::ios::binary);
  std::string chunk(1 << 20, '\0');
  std::string window;
  std::size_t longest = 1;
  for (std::string_view word : words) longest = std::max(longest, word.size());
  const unsigned all = (1u << words.size()) - 1;
  unsigned found = 0;
  while (in && found != all) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    window.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    unsigned bit = 1;
    for (std::string_view word : words) {
      if (window.find(word) != std::string::npos) found |= bit;
      bit <<= 1;
    }
    window.erase(0, window.size() - std::min(window.size(), longest - 1));
  }
  return found;
}

int check(const Args& args) {
  const std::string format = args.text("--output");
  if (format != "text" && format != "json") throw UsageError("-o must be text or json");
  if (args.positional.empty()) throw UsageError("check needs at least one PATH (a file, a directory or -)");
  const std::string ns = args.text("--namespace");
  const bool show_mutated = args.flag("--show-mutated");

  auto engine = load_engine(args);
  auto cluster = load_cluster(args, *engine);
  std::vector<std::string> files;
  try {
    files = manifest_files(args.positional);
  } catch (const ManifestError& error) {
    std::cerr << "gpu-admit check: " << error.what() << "\n";
    return kExitBadInput;
  }

  // The snapshot given to --cluster describes the cluster; it is not a set of manifests to apply
  // (`check --cluster manifests/examples/cluster.json manifests/examples/`).
  if (auto it = args.values.find("--cluster"); it != args.values.end()) {
    std::vector<std::filesystem::path> snapshots;
    for (const std::string& path : it->second) snapshots.push_back(std::filesystem::weakly_canonical(path));
    std::erase_if(files, [&](const std::string& name) {
      if (name == "-") return false;
      const std::filesystem::path file = std::filesystem::weakly_canonical(name);
      return std::any_of(snapshots.begin(), snapshots.end(), [&](const std::filesystem::path& snapshot) {
        auto [end, rest] = std::mismatch(snapshot.begin(), snapshot.end(), file.begin(), file.end());
        return end == snapshot.end();
      });
    });
  }

  // The objects a review consults beside its object (ResourceClaims and templates,
  // PodDisruptionBudgets, PriorityClasses: k8s::ObjectCatalog) count wherever in the input they
  // come: a pod is reviewed with the claims of a later file. Files that mention none of those
  // kinds are not parsed twice; stdin's count from where they are read.
  k8s::ObjectCatalog catalog;
  auto note_object = [&](const ManifestDocument& document) { return catalog_object(catalog, document.object, ns); };
  // An autoscaler names its target by kind and name: the target's GPUs per pod and model-load
  // time come from wherever in the input it is written. Only when some file mentions an
  // autoscaler is every workload summarized (a second parse of each file, after the claims are
  // known); without one, a 10,000-Deployment file is parsed once, as before.
  auto note_workload = [&](const ManifestDocument& document) { catalog_workload(catalog, document.object, ns, *engine); };
  bool autoscalers = false;
  for (const std::string& file : files) {
    if (file == "-") continue;
    const unsigned found = mentions(file, {"ResourceClaim", "PodDisruptionBudget", "PriorityClass", "HorizontalPodAutoscaler", "ScaledObject"});
    autoscalers = autoscalers || (found & 0b11000u) != 0;
    if ((found & 0b00111u) == 0) continue;
    try {
      for_each_manifest(file, [&](ManifestDocument&& document) { note_object(document); });
    } catch (const ManifestError&) {
      // reported by the pass below
    }
  }
  for (const std::string& file : files) {
    if (!autoscalers || file == "-") break;
    try {
      for_each_manifest(file, [&](ManifestDocument&& document) { note_workload(document); });
    } catch (const ManifestError&) {
      // reported by the pass below
    }
  }

  // File by file: a bad file is reported (naming it) and the others are still checked; the JSON
  // report is written as it goes, so its size in memory is one file's, not the whole run's.
  int allowed = 0, mutated = 0, denied = 0, skipped = 0, unreadable = 0;
  std::size_t objects = 0;
  bool first_result = true;
  // Laid out byte for byte as json::dump(2) lays out the whole array.
  auto emit_json = [&](const json& entry) {
    std::string text = entry.dump(2, ' ', false, json::error_handler_t::replace);
    std::cout << (first_result ? "[\n  " : ",\n  ");
    for (char c : text) {
      std::cout << c;
      if (c == '\n') std::cout << "  ";
    }
    first_result = false;
  };
  auto review_document = [&](const ManifestDocument& document) {
    ReviewOutcome outcome;
    if (!document.object.is_object() || !document.object.contains("kind")) {
      outcome.skipped = "not a Kubernetes object: no kind";
    } else if (document.object["kind"] == "AdmissionReview") {
      // A recorded AdmissionReview is reviewed as the webhook would, with its own operation.
      try {
        outcome = engine->review(decode_admission_review(document.object));
      } catch (const ReviewError& error) {
        ++unreadable;
        std::cerr << "gpu-admit check: " << document.file << ": " << error.what() << "\n";
        if (format == "json") emit_json({{"file", document.file}, {"line", document.line}, {"error", error.what()}});
        return;
      }
    } else {
      if (document.file == "<stdin>" || document.file == "-") {
        note_object(document);
        note_workload(document);  // stdin is read once: its workloads count from where they are read
      }
      outcome = engine->review(request_for_manifest(document.object, ns, engine->config().kinds), cluster.get(),
                               ReviewPhases::All, {}, &catalog);
    }
    ++objects;
    if (!outcome.skipped.empty())
      ++skipped;
    else if (!outcome.response.allowed)
      ++denied;
    else {
      ++allowed;
      if (!outcome.response.patch.empty()) ++mutated;
    }
    if (format == "json")
      emit_json(result_json(document, outcome, show_mutated));
    else
      print_text(document, outcome, show_mutated);
  };
  // Each document is reviewed as it is read and then dropped: a 10,000-object file is never held
  // whole. A bad document ends its file (after the ones before it were reported).
  for (const std::string& file : files) {
    try {
      for_each_manifest(file, review_document);
    } catch (const ManifestError& error) {
      ++unreadable;
      std::cerr << "gpu-admit check: " << error.what() << "\n";
      if (format == "json") emit_json({{"file", file == "-" ? "<stdin>" : file}, {"error", error.what()}});
    }
  }
  if (format == "json") {
    std::cout << (first_result ? "[]\n" : "\n]\n");
  } else {
    std::cout << "\n" << objects << " objects: " << allowed << " allowed (" << mutated << " mutated), "
              << denied << " denied, " << skipped << " skipped";
    if (unreadable) std::cout << ", " << unreadable << " unreadable";
    std::cout << "\n";
  }
  if (unreadable) return kExitBadInput;
  return denied ? kExitDenied : kExitOk;
}

}  // namespace

Command check_command() {
  return {command_spec("check", "PATH...",
                       "    Review manifests (files, directories, - for stdin) as if each were being created.\n"
                       "    Exit 0 all allowed, 1 any denied, 2 unreadable input or bad config.",
                       {config_flag(), cluster_flag(),
                        {"--output", "text|json", "text", "the report's format", "-o"},
                        {"--show-mutated", "", "", "print each allowed object as the mutations leave it"},
                        {"--namespace", "NS", "default", "the namespace of manifests that name none", "-n"}}),
          check};
}

}  // namespace gpuadmit::cli
