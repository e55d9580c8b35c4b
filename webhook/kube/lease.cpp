#include "webhook/kube/lease.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <random>
#include <stdexcept>

#include "engine/input_limits.h"
#include "webhook/kube/client.h"
#include "webhook/log/json_log.h"

namespace gpuadmit::kube {

using nlohmann::json;

namespace {

constexpr const char* kUnreadableHolder = "<unreadable>";
// No elector writes a lease longer than a day; a longer one would let a broken record hold off
// every replica for that long.
constexpr int64_t kMaxLeaseSeconds = 86400;

json parse_or_discarded(std::string_view text) {
  try {
    return parse_json(text);
  } catch (const std::exception&) {
    return json(json::value_t::discarded);
  }
}

// An integer in [low, high], whatever JSON number (or other value) `value` holds.
std::optional<int64_t> integer_in(const json& value, int64_t low, int64_t high) {
  if (value.is_number_unsigned()) {
    const uint64_t n = value.get<uint64_t>();
    if (n > static_cast<uint64_t>(high) || static_cast<int64_t>(n) < low) return std::nullopt;
    return static_cast<int64_t>(n);
  }
  if (value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    if (n < low || n > high) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

// A DNS-1123 subdomain (a Lease's name) or, with `label`, a DNS-1123 label (a namespace).
bool is_dns_name(const std::string& text, bool label) {
  if (text.empty() || text.size() > (label ? 63u : 253u)) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(text.front()) || !alnum(text.back())) return false;
  return std::all_of(text.begin(), text.end(), [&](char c) { return alnum(c) || c == '-' || (!label && c == '.'); });
}

// The API server's metav1.Status message, bounded: its text is untrusted and goes into logs.
std::string describe(const KubeResponse& response, const std::string& what) { return what + ": " + answer_text(response); }

// The object's metadata.resourceVersion, "" when it has none that is a non-empty string.
std::string resource_version_of(const json& object) {
  if (!object.is_object()) return "";
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto rv = metadata->find("resourceVersion");
  if (rv == metadata->end() || !rv->is_string()) return "";
  return rv->get<std::string>();
}

}  // namespace

std::string format_micro_time(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const int64_t micros = duration_cast<microseconds>(time.time_since_epoch()).count();
  int64_t seconds = micros / 1'000'000;
  int64_t fraction = micros % 1'000'000;
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  const std::time_t whole = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[64];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%06dZ", static_cast<int>(fraction));
  return text;
}

std::string lease_path(const std::string& lease_namespace, const std::string& name) {
  return "/apis/coordination.k8s.io/v1/namespaces/" + lease_namespace + "/leases/" + name;
}

LeaderElector::LeaderElector(KubeConfig config, LeaderElectionOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  using std::chrono::milliseconds;
  if (!is_dns_name(options_.lease_namespace, true))
    throw std::invalid_argument("leader election: the lease namespace '" + options_.lease_namespace +
                                "' is not a namespace name");
  if (!is_dns_name(options_.lease_name, false))
    throw std::invalid_argument("leader election: the lease name '" + options_.lease_name +
                                "' is not a DNS subdomain name");
  if (options_.identity.empty()) throw std::invalid_argument("leader election: the identity is empty");
  if (options_.lease_duration < std::chrono::seconds(1) ||
      options_.lease_duration > std::chrono::seconds(kMaxLeaseSeconds))
    throw std::invalid_argument("leader election: the lease duration must be 1 s to a day");
  if (options_.renew_deadline >= options_.lease_duration)
    throw std::invalid_argument("leader election: the renew deadline must be shorter than the lease duration");
  if (options_.retry_period <= milliseconds(0) || !(options_.retry_jitter >= 0 && options_.retry_jitter <= 10))
    throw std::invalid_argument("leader election: the retry period must be positive, its jitter 0 to 10");
  if (options_.renew_deadline.count() <= options_.retry_period.count() * std::max(1.0, options_.retry_jitter))
    throw std::invalid_argument("leader election: the renew deadline must be longer than the retry period times "
                                "max(1, jitter)");
  if (options_.request_timeout <= milliseconds(0)) options_.request_timeout = options_.renew_deadline / 2;
  if (!options_.logger) options_.logger = webhook::make_json_logger("gpu-admit", spdlog::get_level());
  ignore_sigpipe_unless_handled();
  client_ = std::make_unique<KubeClient>(config_, options_.request_timeout);
  collection_path_ = "/apis/coordination.k8s.io/v1/namespaces/" + options_.lease_namespace + "/leases";
  path_ = lease_path(options_.lease_namespace, options_.lease_name);
  status_.lease_transitions = -1;
}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    if (stopping_ || thread_.joinable()) return;
  }
  log(spdlog::level::info, "leader election started",
      {{"leaseDurationMs", options_.lease_duration.count()}, {"renewDeadlineMs", options_.renew_deadline.count()},
       {"retryPeriodMs", options_.retry_period.count()}});
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "gpuadmit-lease");  // what top -H and perf show
    run();
  });
}

void LeaderElector::stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    // A request that began just after one cancel is aborted by the next: cancel until the thread
    // has left its loop.
    std::unique_lock<std::mutex> lock(wake_mutex_);
    while (!finished_) {
      lock.unlock();
      client_->cancel();
      lock.lock();
      wake_.wait_for(lock, std::chrono::milliseconds(10), [&] { return finished_; });
    }
    lock.unlock();
    thread_.join();
  }
  const bool was_leading = leading();
  step_down("stopped");
  if (was_leading && options_.release_on_stop) release();
}

bool LeaderElector::leading_at(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(state_mutex_);
  return leader_ && now < renewed_at_ + options_.renew_deadline;
}

bool LeaderElector::leading() const { return leading_at(Clock::now()); }

uint64_t LeaderElector::leading_term() const {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(state_mutex_);
  return leader_ && now < renewed_at_ + options_.renew_deadline ? status_.term : 0;
}

LeaderStatus LeaderElector::status() const {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(state_mutex_);
  LeaderStatus copy = status_;
  copy.leading = leader_ && now < renewed_at_ + options_.renew_deadline;
  return copy;
}

void LeaderElector::log(spdlog::level::level_enum level, const std::string& message, json fields) const {
  if (!fields.is_object()) fields = json::object();
  fields["lease"] = options_.lease_namespace + "/" + options_.lease_name;
  fields["identity"] = options_.identity;
  webhook::log_event(*options_.logger, level, message, std::move(fields));
}

std::string LeaderElector::now_text() const {
  return format_micro_time(options_.wall_clock ? options_.wall_clock() : std::chrono::system_clock::now());
}

json LeaderElector::spec_for(const std::string& holder, int64_t duration_seconds, const std::string& acquire_time,
                             int64_t transitions) const {
  return {{"holderIdentity", holder},
          {"leaseDurationSeconds", duration_seconds},
          {"acquireTime", acquire_time},
          {"renewTime", now_text()},
          {"leaseTransitions", transitions}};
}

void LeaderElector::run() {
  std::minstd_rand random(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      if (stopping_) break;
    }
    const auto started = Clock::now();
    {
      std::lock_guard<std::mutex> lock(state_mutex_);
      ++status_.attempts;
    }
    std::string why;
    const Attempt attempt = try_acquire_or_renew(why);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      stopping = stopping_;
    }
    // A term's leading time is one stretch: past its deadline it ends before any success counts,
    // so a renewal that completes late starts a new term instead of reviving the old one.
    {
      std::unique_lock<std::mutex> lock(state_mutex_);
      const bool expired = leader_ && Clock::now() >= renewed_at_ + options_.renew_deadline;
      lock.unlock();
      if (expired) step_down("no renewal succeeded within the renew deadline");
    }
    switch (attempt) {
      case Attempt::Leader:
        became_leader(started);
        break;
      case Attempt::Follower:
        step_down(why);  // nothing when not leading
        break;
      case Attempt::Failed:
        if (!stopping) record_failure(why);
        break;
    }
    if (stopping) break;
    auto period = options_.retry_period;
    if (!leading()) period += std::chrono::duration_cast<std::chrono::milliseconds>(
                        options_.retry_period * (unit(random) * options_.retry_jitter));
    std::unique_lock<std::mutex> lock(wake_mutex_);
    wake_.wait_until(lock, started + period, [&] { return stopping_; });
  }
  std::lock_guard<std::mutex> lock(wake_mutex_);
  finished_ = true;
  wake_.notify_all();
}

LeaderElector::Attempt LeaderElector::try_acquire_or_renew(std::string& why) {
  const auto timeout = options_.request_timeout;
  const int64_t duration_s =
      std::chrono::ceil<std::chrono::seconds>(options_.lease_duration).count();
  // While leading: renew the object the last write returned, one request. A 409 means the lease
  // changed since, a 404 that it was deleted: read it.
  if (written_ && leading()) {
    json object = *written_;
    object["spec"] = spec_for(options_.identity, duration_s, observed_acquire_time_, observed_transitions_);
    const KubeResponse response = client_->send("PUT", path_, object.dump(), content_type::kJson, timeout);
    if (response.created_or_ok()) {
      adopt_written(response.body);
      return Attempt::Leader;
    }
    written_.reset();
    if ((response.status != 409 && response.status != 404) || !response.error.empty()) {
      why = describe(response, "renewing the lease");
      return Attempt::Failed;
    }
  }
  const KubeResponse response = client_->get(path_, timeout);
  const auto seen = Clock::now();
  if (response.status == 404 && response.error.empty()) {
    // Whoever deleted the lease, another replica may create it now: this term is over, whatever
    // the create below brings.
    step_down("the lease was deleted");
    json object = {{"apiVersion", "coordination.k8s.io/v1"},
                   {"kind", "Lease"},
                   {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
                   {"spec", spec_for(options_.identity, duration_s, now_text(), 0)}};
    return write_lease("POST", collection_path_, std::move(object), false, why);
  }
  if (!response.ok()) {
    why = describe(response, "reading the lease");
    return Attempt::Failed;
  }
  json object = parse_or_discarded(response.body);
  const std::string rv = resource_version_of(object);
  if (rv.empty()) {
    why = object.is_discarded() ? "reading the lease: the answer is not JSON"
                                : "reading the lease: the answer is not an object with metadata.resourceVersion";
    return Attempt::Failed;
  }
  auto spec = object.find("spec");
  observe(spec == object.end() ? json() : *spec, rv, seen);
  const bool mine = observed_holder_known_ && observed_holder_ == options_.identity;
  const bool free = observed_holder_known_ && observed_holder_.empty();
  if (!mine && !free && seen < observed_at_ + std::chrono::seconds(observed_duration_s_)) {
    why = "the lease is held by " + observed_holder_;
    return Attempt::Follower;
  }
  const int64_t transitions =
      mine ? observed_transitions_ : std::min<int64_t>(observed_transitions_ + 1, std::numeric_limits<int32_t>::max());
  object["spec"] = spec_for(options_.identity, duration_s,
                            mine && !observed_acquire_time_.empty() ? observed_acquire_time_ : now_text(), transitions);
  return write_lease("PUT", path_, std::move(object), mine, why);
}

LeaderElector::Attempt LeaderElector::write_lease(const std::string& method, const std::string& path, json object,
                                                  bool mine, std::string& why) {
  const KubeResponse response =
      client_->send(method, path, object.dump(), content_type::kJson, options_.request_timeout);
  if (response.created_or_ok()) {
    adopt_written(response.body);
    return Attempt::Leader;
  }
  if (response.status == 409 && response.error.empty() && !mine) {
    why = method == "POST" ? "another replica created the lease first" : "another replica took the lease first";
    return Attempt::Follower;
  }
  why = describe(response, method == "POST" ? "creating the lease" : mine ? "renewing the lease" : "taking the lease");
  return Attempt::Failed;
}

void LeaderElector::adopt_written(const std::string& body) {
  json object = parse_or_discarded(body);
  const std::string rv = resource_version_of(object);
  if (rv.empty()) {  // written, but the answer is unreadable: read the lease next time
    written_.reset();
    return;
  }
  auto spec = object.find("spec");
  observe(spec == object.end() ? json() : *spec, rv, Clock::now());
  written_ = std::move(object);
}

void LeaderElector::observe(const json& spec, const std::string& resource_version, Clock::time_point seen) {
  const std::string spec_text = spec.dump();
  if (resource_version == observed_rv_ && spec_text == observed_spec_) return;  // unchanged: the clock runs on
  observed_rv_ = resource_version;
  observed_spec_ = spec_text;
  observed_at_ = seen;
  // Read each field on its own; one of the wrong type makes the record's holder or duration unknown.
  std::string holder = kUnreadableHolder;
  bool holder_known = false;
  std::optional<int64_t> duration, transitions;
  std::string acquire_time;
  if (spec.is_null()) {
    holder = "";
    holder_known = true;
  } else if (spec.is_object()) {
    auto h = spec.find("holderIdentity");
    if (h == spec.end() || h->is_null()) {
      holder = "";
      holder_known = true;
    } else if (h->is_string()) {
      holder = h->get<std::string>();
      holder_known = true;
      if (holder.size() > 253) holder = holder.substr(0, 253);  // a name, in logs and metrics
    }
    if (auto d = spec.find("leaseDurationSeconds"); d != spec.end()) duration = integer_in(*d, 1, kMaxLeaseSeconds);
    if (auto t = spec.find("leaseTransitions"); t != spec.end())
      transitions = integer_in(*t, 0, std::numeric_limits<int32_t>::max());
    if (auto a = spec.find("acquireTime"); a != spec.end() && a->is_string() && a->get_ref<const std::string&>().size() < 64)
      acquire_time = a->get<std::string>();
  }
  observed_duration_s_ =
      duration.value_or(std::chrono::ceil<std::chrono::seconds>(options_.lease_duration).count());
  observed_transitions_ = transitions.value_or(0);
  observed_acquire_time_ = acquire_time;
  observed_holder_known_ = holder_known;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    status_.holder = holder;
    status_.lease_transitions = observed_transitions_;
  }
  if (holder != observed_holder_) {
    observed_holder_ = holder;
    log(spdlog::level::info, "leader election: new leader observed",
        {{"holder", holder}, {"leaseTransitions", observed_transitions_}});
    if (options_.on_new_leader) options_.on_new_leader(holder);
  }
}

void LeaderElector::became_leader(Clock::time_point attempt_start) {
  uint64_t term = 0;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    renewed_at_ = attempt_start;
    if (leader_) return;
    leader_ = true;
    term = ++status_.term;
  }
  last_logged_error_.clear();
  log(spdlog::level::info, "leader election: became leader",
      {{"term", term}, {"leaseTransitions", observed_transitions_}});
  if (options_.on_started_leading) options_.on_started_leading();
}

void LeaderElector::step_down(const std::string& reason) {
  uint64_t term = 0;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (!leader_) return;
    leader_ = false;
    ++status_.lost;
    term = status_.term;
  }
  log(spdlog::level::warn, "leader election: lost leadership", {{"term", term}, {"reason", reason}});
  if (options_.on_stopped_leading) options_.on_stopped_leading();
}

void LeaderElector::record_failure(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    ++status_.failures;
    status_.last_error = why;
  }
  // Once per kind of failure, and once a minute while it lasts: a retry every period would flood.
  const auto now = Clock::now();
  if (why == last_logged_error_ && now < last_error_log_ + std::chrono::minutes(1)) return;
  last_logged_error_ = why;
  last_error_log_ = now;
  log(spdlog::level::warn, "leader election: attempt failed, retrying", {{"error", why}});
}

void LeaderElector::release() {
  // The object last written when there is one; else (or after a conflict) the lease as it is now,
  // released only while it still names this identity.
  for (int attempt = 0; attempt < 2; ++attempt) {
    json object;
    if (attempt == 0 && written_) {
      object = *written_;
    } else {
      const KubeResponse response = client_->get(path_, options_.request_timeout);
      if (!response.ok()) {
        log(spdlog::level::warn, "leader election: could not release the lease",
            {{"error", describe(response, "reading the lease")}});
        return;
      }
      object = parse_or_discarded(response.body);
      if (resource_version_of(object).empty()) return;
      auto spec = object.find("spec");
      if (spec == object.end() || !spec->is_object() || spec->value("holderIdentity", json()) != options_.identity)
        return;  // no longer ours: nothing to release
    }
    object["spec"] = spec_for("", 1, now_text(), observed_transitions_);
    const KubeResponse response = client_->send("PUT", path_, object.dump(), content_type::kJson, options_.request_timeout);
    if (response.created_or_ok()) {
      written_.reset();
      log(spdlog::level::info, "leader election: released the lease");
      return;
    }
    if (response.status != 409 || !response.error.empty()) {
      log(spdlog::level::warn, "leader election: could not release the lease",
          {{"error", describe(response, "releasing the lease")}});
      return;
    }
  }
}

}  // namespace gpuadmit::kube
