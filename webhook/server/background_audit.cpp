#include "webhook/server/background_audit.h"

#include <prometheus/metric_family.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <map>
#include <set>
#include <tuple>

#include "engine/input_limits.h"
#include "webhook/kube/stored_objects.h"
#include "webhook/log/json_log.h"

namespace gpuadmit::webhook {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kReportsApi = "/apis/wgpolicyk8s.io/v1alpha2";
// Thrown out of an audit when stop() is called.
struct Stopping {};
// The audit sleeps this many times as long as it worked: a quarter of one CPU at most.
constexpr int kPause = 3;
// Namespaces named in the violations metric; the rest are summed under "_other".
constexpr std::size_t kMaxMetricNamespaces = 1000;

double unix_seconds(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// The audit thread takes the CPU only when nothing else wants it.
void lower_priority() {
  sched_param param{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0)
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
}

}  // namespace

// What the last audits left for /metrics.
struct BackgroundAudit::LastRun {
  std::map<std::string, std::uint64_t> runs = {{"ok", 0}, {"failed", 0}, {"stale", 0}};
  bool any = false;  // an audit has completed
  double finished_at = 0, duration = 0;
  std::size_t objects = 0, skipped = 0;
  std::map<std::pair<std::string, std::string>, std::size_t> results;       // policy, result
  std::map<std::pair<std::string, std::string>, std::size_t> denied;        // policy, today|if_enforced
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> violations;  // policy, namespace, mode
};

class BackgroundAudit::Metrics final : public prometheus::Collectable {
 public:
  explicit Metrics(const BackgroundAudit& audit) : audit_(audit) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    using Labels = std::vector<prometheus::ClientMetric::Label>;
    auto family = [](std::string name, std::string help, MetricType type) {
      return prometheus::MetricFamily{std::move(name), std::move(help), type, {}};
    };
    auto add = [](prometheus::MetricFamily& f, double value, Labels labels = {}) {
      prometheus::ClientMetric metric;
      metric.label = std::move(labels);
      if (f.type == MetricType::Counter)
        metric.counter.value = value;
      else
        metric.gauge.value = value;
      f.metric.push_back(std::move(metric));
    };
    auto leader = family("gpuadmit_audit_leader", "1 while this replica holds the audit's lease and writes the PolicyReports",
                         MetricType::Gauge);
    auto runs = family("gpuadmit_audit_runs_total",
                       "Background audits by result: ok (reports written), failed (reading or writing failed), stale "
                       "(not run: the cluster state could not be trusted)",
                       MetricType::Counter);
    auto finished = family("gpuadmit_audit_last_success_timestamp_seconds",
                           "When the last successful audit finished (Unix time)", MetricType::Gauge);
    auto duration = family("gpuadmit_audit_duration_seconds", "How long the last successful audit took", MetricType::Gauge);
    auto objects = family("gpuadmit_audit_objects", "Objects the last audit judged (judged: audited; skipped: judged through "
                          "their owner, or not reviewed)", MetricType::Gauge);
    auto results = family("gpuadmit_audit_results", "Results of the last audit, by policy and result (pass, fail, warn, error, skip)",
                          MetricType::Gauge);
    auto denied = family("gpuadmit_audit_denied_objects",
                         "Objects of the last audit a policy denies if created today, or would deny if it were enforce",
                         MetricType::Gauge);
    auto violations = family("gpuadmit_audit_violations",
                             "Failed results of the last audit, by policy, namespace and mode (namespaces past 1000: _other)",
                             MetricType::Gauge);
    add(leader, audit_.elector_ && audit_.elector_->leading() ? 1 : 0);
    {
      std::lock_guard lock(audit_.mutex_);
      const LastRun& last = *audit_.last_;
      for (const auto& [result, count] : last.runs) add(runs, static_cast<double>(count), {{"result", result}});
      if (last.any) {
        add(finished, last.finished_at);
        add(duration, last.duration);
        add(objects, static_cast<double>(last.objects), {{"state", "judged"}});
        add(objects, static_cast<double>(last.skipped), {{"state", "skipped"}});
        for (const auto& [key, count] : last.results)
          add(results, static_cast<double>(count), {{"policy", key.first}, {"result", key.second}});
        for (const auto& [key, count] : last.denied)
          add(denied, static_cast<double>(count), {{"policy", key.first}, {"when", key.second}});
        for (const auto& [key, count] : last.violations)
          add(violations, static_cast<double>(count),
              {{"policy", std::get<0>(key)}, {"namespace", std::get<1>(key)}, {"mode", std::get<2>(key)}});
      }
    }
    return {leader, runs, finished, duration, objects, results, denied, violations};
  }

 private:
  const BackgroundAudit& audit_;
};

BackgroundAudit::BackgroundAudit(kube::KubeConfig config, BackgroundAuditOptions options,
                                 std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)), logger_(std::move(logger)), config_(std::move(config)), last_(std::make_unique<LastRun>()) {
  metrics_ = std::make_shared<Metrics>(*this);
}

BackgroundAudit::~BackgroundAudit() { stop(); }

void BackgroundAudit::start(AuditInputs inputs) {
  inputs_ = std::move(inputs);
  client_ = std::make_unique<kube::KubeClient>(config_, std::chrono::milliseconds(5000));
  kube::LeaderElectionOptions lease = options_.lease;
  lease.logger = logger_;
  elector_ = std::make_unique<kube::LeaderElector>(config_, std::move(lease));
  elector_->start();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "gpuadmit-audit");  // what top -H and perf show
    loop();
  });
}

void BackgroundAudit::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (client_) client_->cancel();
  if (thread_.joinable()) thread_.join();
  if (elector_) elector_->stop();
}

void BackgroundAudit::loop() {
  if (options_.idle_priority) lower_priority();
  std::shared_ptr<const Engine> audited_engine;
  std::uint64_t audited_changes = 0;
  bool was_leading = false;
  auto last_start = Clock::now() - options_.interval;
  auto next_due = Clock::now();
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      if (stopping_) return;
    }
    const bool leading = elector_->leading();
    const bool became_leader = leading && !was_leading;
    was_leading = leading;
    if (!leading) continue;  // readers keep no reports
    const auto now = Clock::now();
    const std::shared_ptr<const Engine> engine = inputs_.engine();
    const std::uint64_t changes = inputs_.changes ? inputs_.changes() : 0;
    const char* why = became_leader                   ? "became the writer"
                      : now >= next_due               ? "interval"
                      : engine != audited_engine      ? "config changed"
                      : (changes != audited_changes && now - last_start >= options_.min_interval) ? "cluster changed"
                                                                                                 : nullptr;
    if (!why) continue;
    const std::string stale = inputs_.staleness ? inputs_.staleness() : std::string();
    if (!stale.empty()) {
      {
        std::lock_guard lock(mutex_);
        ++last_->runs["stale"];
      }
      log_event(*logger_, spdlog::level::warn, "audit not run: the cluster state is stale", {{"reason", stale}});
      last_start = now;  // changes meanwhile try again no sooner than min_interval
      next_due = now + std::min<Clock::duration>(options_.interval, options_.min_interval);
      continue;
    }
    last_start = now;
    next_due = now + options_.interval;
    audited_engine = engine;
    audited_changes = changes;
    try {
      log_event(*logger_, spdlog::level::info, "audit started", {{"trigger", why}});
      run_once(engine);
    } catch (const Stopping&) {
      return;
    } catch (const std::exception& error) {
      {
        std::lock_guard lock(mutex_);
        ++last_->runs["failed"];
      }
      log_event(*logger_, spdlog::level::err, "audit failed", {{"error", error.what()}});
      // Retried sooner than the interval: a failed audit leaves the reports as they were.
      next_due = Clock::now() + std::min<Clock::duration>(options_.interval, options_.min_interval);
    }
  }
}

void BackgroundAudit::run_once(const std::shared_ptr<const Engine>& engine) {
  const auto started = Clock::now();
  const std::vector<kube::StoredKind> kinds = kube::audited_kinds(engine->config().kinds);
  std::set<std::string> keys;
  for (const kube::StoredKind& kind : kinds) keys.insert(kind.key());
  audit::AuditReport report;
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> violations;
  std::set<std::string> metric_namespaces;
  json read = json::object();
  // SCHED_IDLE yields the CPU to reviews, not the core: on the other hyperthread of a core, or
  // through the caches, an audit that runs flat out still slows the reviews beside it (18 % at
  // the p99 in bench/audit_load.sh). It works a quarter of the time at most: after each object
  // it sleeps three times as long as it worked since it last slept (list pages included).
  auto worked_since = Clock::now();
  auto pace = [&] {
    const auto pause = std::min<Clock::duration>((Clock::now() - worked_since) * kPause, std::chrono::milliseconds(100));
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, pause, [this] { return stopping_; })) throw Stopping();  // stop() is not kept waiting
    worked_since = Clock::now();
  };
  for (const kube::StoredKind& kind : kinds) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) throw Stopping();
    }
    const kube::ListedKind listed =
        kube::list_stored(*client_, kind, options_.page_size, options_.request_timeout, [&](json&& object) {
          if (audit::judged_through_owner(object, keys)) return report.skip();
          std::optional<audit::AuditedObject> audited;
          try {
            audited = audit::audit_object(*engine, object, inputs_.cluster.get());
          } catch (const std::exception& error) {
            // One object the engine cannot take (it answers a review's errors itself; this is
            // beyond them) does not cost the audit of every other.
            log_event(*logger_, spdlog::level::warn, "audit: an object could not be judged",
                      {{"kind", kind.kind}, {"error", error.what()}});
          }
          if (!audited) return report.skip();
          for (const audit::PolicyResult& result : audited->results) {
            if (result.result != audit::Result::Fail) continue;
            std::string ns = audited->ref.namespace_;
            if (!metric_namespaces.count(ns)) {
              if (metric_namespaces.size() < kMaxMetricNamespaces)
                metric_namespaces.insert(ns);
              else
                ns = "_other";
            }
            ++violations[{result.policy, ns, std::string(to_string(result.mode))}];
          }
          report.add(std::move(*audited));
          pace();
        });
    if (!listed.api_version.empty()) read[listed.api_version + "/" + kind.plural] = listed.objects;
  }
  write_reports(report);
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  {
    std::lock_guard lock(mutex_);
    LastRun& last = *last_;
    ++last.runs["ok"];
    last.any = true;
    last.finished_at = unix_seconds(std::chrono::system_clock::now());
    last.duration = took;
    last.objects = report.objects;
    last.skipped = report.skipped;
    last.results.clear();
    last.denied.clear();
    for (const auto& [policy, tally] : report.policies) {
      last.results[{policy, "pass"}] = tally.results.pass;
      last.results[{policy, "fail"}] = tally.results.fail;
      last.results[{policy, "warn"}] = tally.results.warn;
      last.results[{policy, "error"}] = tally.results.error;
      last.results[{policy, "skip"}] = tally.results.skip;
      last.denied[{policy, "today"}] = tally.denied_today;
      last.denied[{policy, "if_enforced"}] = tally.denied_if_enforced;
    }
    last.violations = std::move(violations);
  }
  log_event(*logger_, spdlog::level::info, "audit finished",
            {{"objects", report.objects},
             {"skipped", report.skipped},
             {"denied_today", report.denied_today},
             {"denied_if_enforced", report.denied_if_enforced},
             {"namespaces", report.namespaces.size()},
             {"read", read},
             {"duration_s", took}});
}

void BackgroundAudit::write_reports(const audit::AuditReport& report) {
  const std::vector<json> reports = audit::policy_reports(report, std::chrono::system_clock::now());
  const std::map<std::string, std::string> apply = {{"fieldManager", "gpu-admit"}, {"force", "true"}};
  const std::string name(audit::kReportName);
  // A write that lands after the lease is lost would be another replica's to make: each write
  // waits no longer than a renewal may, and is made only while this replica still leads.
  const auto timeout = std::min(options_.request_timeout, options_.lease.renew_deadline);
  // The term it writes in: lost and won again in between is another writer's turn that came between.
  const std::uint64_t term = elector_->leading_term();
  auto must_lead = [&] {
    if (term == 0 || elector_->leading_term() != term)
      throw std::runtime_error("the audit's lease was lost: reports left as they were");
  };
  std::set<std::string> written;
  for (const json& object : reports) {
    const bool namespaced = object["kind"] == "PolicyReport";
    const std::string ns = namespaced ? object["metadata"]["namespace"].get<std::string>() : "";
    if (namespaced && !is_dns_label(ns)) continue;  // never a path segment it does not control
    const std::string path = std::string(kReportsApi) +
                             (namespaced ? "/namespaces/" + ns + "/policyreports/" : "/clusterpolicyreports/") + name;
    must_lead();
    const kube::KubeResponse response =
        client_->send("PATCH", kube::with_query(path, apply), object.dump(-1, ' ', false, json::error_handler_t::replace),
                      "application/apply-patch+yaml", timeout);
    if (response.status == 404)
      throw std::runtime_error("PATCH " + path + ": " + kube::answer_text(response) +
                               " (are the PolicyReport CRDs installed? manifests/policy-reports/)");
    if (response.status != 200 && response.status != 201)
      throw std::runtime_error("PATCH " + path + ": " + kube::answer_text(response));
    if (namespaced) written.insert(ns);
  }
  // The reports of namespaces where nothing is audited any more (their workloads deleted).
  std::string next;
  do {
    std::map<std::string, std::string> query = {
        {"labelSelector", std::string(audit::kManagedByLabel) + "=" + std::string(audit::kManagedByValue)},
        {"limit", "500"}};
    if (!next.empty()) query["continue"] = next;
    const std::string path = std::string(kReportsApi) + "/policyreports";
    const kube::KubeResponse response = client_->get(kube::with_query(path, query), options_.request_timeout);
    if (!response.ok()) throw std::runtime_error("GET " + path + ": " + kube::answer_text(response));
    json page;
    try {
      page = parse_json(response.body);
    } catch (const std::exception& error) {
      throw std::runtime_error("GET " + path + ": the answer is not JSON: " + error.what());
    }
    next.clear();
    if (page.is_object() && page.contains("metadata") && page["metadata"].is_object() &&
        page["metadata"].contains("continue") && page["metadata"]["continue"].is_string())
      next = page["metadata"]["continue"].get<std::string>();
    if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) continue;
    for (const json& item : page["items"]) {
      if (!item.is_object() || !item.contains("metadata") || !item["metadata"].is_object()) continue;
      const json& metadata = item["metadata"];
      const std::string ns = metadata.value("namespace", json()).is_string() ? metadata["namespace"].get<std::string>() : "";
      const std::string item_name = metadata.value("name", json()).is_string() ? metadata["name"].get<std::string>() : "";
      if (item_name != name || written.count(ns) || !is_dns_label(ns)) continue;
      must_lead();
      const std::string delete_path = std::string(kReportsApi) + "/namespaces/" + ns + "/policyreports/" + name;
      const kube::KubeResponse deleted = client_->send("DELETE", delete_path, "", "application/json", timeout);
      if (deleted.status != 200 && deleted.status != 202 && deleted.status != 404)
        throw std::runtime_error("DELETE " + delete_path + ": " + kube::answer_text(deleted));
      log_event(*logger_, spdlog::level::info, "audit report deleted: nothing left to audit in its namespace",
                {{"namespace", ns}});
    }
  } while (!next.empty());
}

}  // namespace gpuadmit::webhook
