// `gpu-admit audit`: judge every workload of a cluster snapshot as the webhook would judge its
// creation today (engine/audit.h), and say what would be denied if each policy were enforce.
#include <iomanip>
#include <iostream>
#include <set>

#include "engine/audit.h"
#include "engine/manifests.h"
#include "webhook/cli/commands.h"

namespace gpuadmit::cli {
namespace {

using nlohmann::json;

json findings_json(const std::vector<Finding>& findings) {
  json out = json::array();
  for (const Finding& finding : findings)
    out.push_back({{"severity", finding.severity == Finding::Severity::Violation ? "violation"
                                : finding.severity == Finding::Severity::Advice  ? "advice"
                                                                                 : "change"},
                   {"field", finding.field},
                   {"message", finding.message}});
  return out;
}

json report_json(const audit::AuditReport& report) {
  json objects = json::array();
  for (const audit::AuditedObject& object : report.flagged) {
    json results = json::array();
    for (const audit::PolicyResult& result : object.results) {
      if (result.result == audit::Result::Pass) continue;
      results.push_back({{"policy", result.policy},
                         {"mode", std::string(to_string(result.mode))},
                         {"result", std::string(audit::to_string(result.result))},
                         {"deniedToday", result.denied_today},
                         {"deniedIfEnforced", result.denied_if_enforced},
                         {"findings", findings_json(result.findings)}});
    }
    objects.push_back({{"apiVersion", object.ref.api_version},
                       {"kind", object.ref.kind},
                       {"namespace", object.ref.namespace_},
                       {"name", object.ref.name},
                       {"uid", object.ref.uid},
                       {"deniedToday", object.denied_today},
                       {"results", results}});
  }
  json policies = json::object();
  for (const auto& [name, tally] : report.policies)
    policies[name] = {{"mode", std::string(to_string(tally.mode))},
                      {"pass", tally.results.pass},
                      {"fail", tally.results.fail},
                      {"warn", tally.results.warn},
                      {"error", tally.results.error},
                      {"skip", tally.results.skip},
                      {"deniedToday", tally.denied_today},
                      {"deniedIfEnforced", tally.denied_if_enforced}};
  return {{"audited", report.objects},
          {"skipped", report.skipped},
          {"deniedToday", report.denied_today},
          {"deniedIfEnforced", report.denied_if_enforced},
          {"objectsLeftOut", report.left_out},
          {"policies", policies},
          {"objects", objects}};
}

void print_text(const audit::AuditReport& report) {
  for (const audit::AuditedObject& object : report.flagged) {
    std::cout << object.ref.text() << (object.denied_today ? ": DENIED if created today" : "") << "\n";
    for (const audit::PolicyResult& result : object.results) {
      if (result.result == audit::Result::Pass) continue;
      std::cout << "  " << audit::to_string(result.result) << " [" << result.policy << "] (" << to_string(result.mode);
      if (result.denied_today) std::cout << ", denied today";
      if (result.denied_if_enforced) std::cout << ", would be denied if enforce";
      std::cout << ")";
      if (result.result == audit::Result::Skip) std::cout << " exempt";
      std::cout << "\n";
      for (const Finding& finding : result.findings)
        std::cout << "      " << (finding.severity == Finding::Severity::Change ? "not applied: " : "")
                  << (finding.field.empty() ? "" : finding.field + ": ") << finding.message << "\n";
    }
  }
  if (report.left_out) std::cout << "(" << report.left_out << " more flagged objects left out)\n";
  if (!report.flagged.empty()) std::cout << "\n";
  std::cout << std::left << std::setw(26) << "policy" << std::setw(9) << "mode" << std::right << std::setw(7) << "pass"
            << std::setw(7) << "fail" << std::setw(7) << "warn" << std::setw(7) << "error" << std::setw(7) << "skip"
            << std::setw(14) << "denied-today" << std::setw(20) << "denied-if-enforce" << "\n";
  for (const auto& [name, tally] : report.policies)
    std::cout << std::left << std::setw(26) << name << std::setw(9) << to_string(tally.mode) << std::right
              << std::setw(7) << tally.results.pass << std::setw(7) << tally.results.fail << std::setw(7)
              << tally.results.warn << std::setw(7) << tally.results.error << std::setw(7) << tally.results.skip
              << std::setw(14) << tally.denied_today << std::setw(20) << tally.denied_if_enforced << "\n";
  std::cout << "\n"
            << report.objects << " objects audited, " << report.skipped << " skipped: " << report.denied_today
            << " would be denied if created today, " << report.denied_if_enforced
            << " more if every policy were enforce\n";
}

int audit(const Args& args) {
  const std::string format = args.text("--output");
  if (format != "text" && format != "json" && format != "policyreport")
    throw UsageError("-o must be text, json or policyreport");
  auto cluster_paths = args.values.find("--cluster");
  if (cluster_paths == args.values.end() || cluster_paths->second.empty())
    throw UsageError("audit needs --cluster: the snapshot whose workloads it judges");
  if (!args.positional.empty()) throw UsageError("audit takes no operands; the workloads are the --cluster snapshot's");

  auto engine = load_engine(args);
  auto cluster = load_cluster(args, *engine);
  std::vector<ManifestDocument> documents;
  try {
    for (const std::string& file : manifest_files(cluster_paths->second))
      for (ManifestDocument& document : load_manifest_file(file)) documents.push_back(std::move(document));
  } catch (const ManifestError& error) {
    std::cerr << "gpu-admit audit: " << error.what() << "\n";
    return kExitBadInput;
  }
  // A pod whose ReplicaSet is in the snapshot is judged through the ReplicaSet's template, and
  // that one through its Deployment's: each template once.
  std::set<std::string> kinds;
  for (const ManifestDocument& document : documents) kinds.insert(audit::kind_key(document.object));
  // The claims, budgets, classes and autoscalers' targets of the snapshot, as `check` reads its files.
  k8s::ObjectCatalog catalog;
  for (const ManifestDocument& document : documents) catalog_object(catalog, document.object, "default");
  for (const ManifestDocument& document : documents) catalog_workload(catalog, document.object, "default", *engine);
  audit::AuditReport report;
  for (const ManifestDocument& document : documents) {
    if (audit::judged_through_owner(document.object, kinds)) {
      report.skip();
      continue;
    }
    if (auto audited = audit::audit_object(*engine, document.object, cluster.get(), &catalog))
      report.add(std::move(*audited));
    else
      report.skip();
  }

  if (format == "json") {
    std::cout << report_json(report).dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else if (format == "policyreport") {
    json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", audit::policy_reports(report)}};
    std::cout << list.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    print_text(report);
  }
  return report.denied_today ? kExitDenied : kExitOk;
}

}  // namespace

Command audit_command() {
  return {command_spec("audit", "",
                       "    Judge every workload of a cluster snapshot as its creation would be judged today, and\n"
                       "    what would be denied if each policy were enforce. Exit 0 none denied today, 1 some,\n"
                       "    2 unreadable input or bad config.",
                       {config_flag(), cluster_flag(),
                        {"--output", "text|json|policyreport", "text",
                         "the report's format (policyreport: wgpolicyk8s.io/v1alpha2 objects, as serve writes them)", "-o"}}),
          audit};
}

}  // namespace gpuadmit::cli
