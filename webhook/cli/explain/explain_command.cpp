// `gpu-admit explain [POLICY|settings]`: what each built-in policy does, its keys, their types
// and defaults, printed from the policies' own declarations (PolicyInfo::keys), so it cannot
// drift from what the config parser accepts. `-o markdown` prints the README's key table.
#include <iostream>

#include "webhook/cli/commands.h"

namespace gpuadmit::cli {

std::string policy_key_table(const std::vector<PolicyKey>& keys) {
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const PolicyKey& key : keys)
    out += "| `" + std::string(key.name) + "` | " + std::string(key.type) + " | " +
           (key.fallback.empty() ? "" : std::string(key.fallback) + " ") + "| " + std::string(key.doc) + " |\n";
  return out;
}

namespace {

// `text` wrapped, every line indented by `indent` spaces.
std::string wrapped(std::string_view text, std::size_t indent) {
  return wrap_text(std::string(indent, ' '), std::string(text), indent) + "\n";
}

std::string keys_text(const std::vector<PolicyKey>& keys) {
  std::string out;
  for (const PolicyKey& key : keys) {
    out += "  " + std::string(key.name) + " (" + std::string(key.type) +
           (key.fallback.empty() ? "" : "; default " + std::string(key.fallback)) + ")\n";
    out += wrapped(key.doc, 6);
  }
  return out;
}

int explain(const Args& args) {
  const std::string format = args.text("--output");
  if (format != "text" && format != "markdown") throw UsageError("-o must be text or markdown");
  if (args.positional.size() > 1) throw UsageError("explain takes one policy name (or none)");
  if (args.positional.empty()) {
    if (format == "markdown") throw UsageError("-o markdown needs a policy name (or settings)");
    std::cout << "Built-in policies, in their default order (gpu-admit explain POLICY for its keys):\n\n";
    for (const PolicyInfo& info : policy_registry())
      std::cout << "  " << info.name << std::string(info.name.size() < 22 ? 22 - info.name.size() : 1, ' ')
                << (info.kind == PolicyKind::Mutating ? "mutating  " : "validating") << "  " << info.summary << "\n";
    std::cout << "\nEvery policy also takes the settings of `gpu-admit explain settings`.\n";
    return kExitOk;
  }
  const std::string& name = args.positional[0];
  if (name == "settings") {
    if (format == "markdown") {
      std::cout << policy_key_table(PolicySettings::keys());
      return kExitOk;
    }
    std::cout << "Settings every policy takes besides its own:\n\n" << keys_text(PolicySettings::keys());
    return kExitOk;
  }
  const PolicyInfo* info = find_policy(name);
  if (!info) {
    std::string known;
    for (const PolicyInfo& p : policy_registry()) known += (known.empty() ? "" : ", ") + std::string(p.name);
    throw UsageError("no policy '" + name + "' (built-in policies: " + known + ")");
  }
  if (format == "markdown") {
    std::cout << policy_key_table(info->keys);
    return kExitOk;
  }
  std::cout << info->name << " (" << (info->kind == PolicyKind::Mutating ? "mutating" : "validating")
            << (info->reads_cluster ? ", reads the cluster model" : "") << ")\n"
            << wrapped(info->summary, 2) << "\nkeys:\n"
            << (info->keys.empty() ? "  (none of its own)\n" : keys_text(info->keys))
            << "\nand the settings every policy takes: mode, namespaceModes, exemptNamespaces,\n"
               "exemptibleByAnnotation (gpu-admit explain settings).\n";
  return kExitOk;
}

}  // namespace

Command explain_command() {
  return {command_spec("explain", "[POLICY|settings]",
                       "    What a built-in policy does, its keys, their types and defaults (none: every policy).",
                       {{"--output", "text|markdown", "text", "markdown: the key table as the README has it", "-o"}}),
          explain};
}

}  // namespace gpuadmit::cli
