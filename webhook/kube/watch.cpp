#include "webhook/kube/watch.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <random>
#include <unordered_set>

#include "engine/input_limits.h"
#include "webhook/kube/client.h"
#include "webhook/kube/list_page.h"
#include "webhook/kube/objects.h"
#include "webhook/log/heap.h"
#include "webhook/log/json_log.h"

namespace gpuadmit::kube {

using nlohmann::json;

namespace {

// What the API server sends is parsed under the same limits as any input; a value that does not
// parse comes back discarded, with why in *error.
json parse_or_discarded(std::string_view text, std::string* error = nullptr) {
  try {
    return parse_json(text);
  } catch (const InputError& e) {
    if (error) *error = e.what();
    return json(json::value_t::discarded);
  }
}

// The versions a kind is listed at, in order of preference: the first one served is used.
std::vector<std::string> versions_to_try(ObjectKind kind, const WatchOptions& options) {
  if (is_dra_kind(kind)) return {options.dra_api_version};
  if (kind == ObjectKind::PodDisruptionBudget) return {"v1", "v1beta1"};  // policy/v1 is GA from 1.21
  return {"v1"};
}

// A kind a cluster may not serve at all: a 404 at every version means it holds none.
bool may_be_unserved(ObjectKind kind) { return is_dra_kind(kind) || kind == ObjectKind::PodDisruptionBudget; }

bool watched(ObjectKind kind, const WatchOptions& options) {
  if (is_dra_kind(kind)) return options.dra_api_version != "off";
  if (kind == ObjectKind::PodDisruptionBudget) return options.watch_disruption_budgets;
  if (kind == ObjectKind::PriorityClass) return options.watch_priority_classes;
  return true;
}

}  // namespace

bool is_api_version(std::string_view text) {
  // v<major>, optionally followed by alpha<n> or beta<n>.
  auto digits = [&](size_t& at) {
    const size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    return at > start;
  };
  size_t at = 0;
  if (text.empty() || text[at++] != 'v' || !digits(at)) return false;
  if (at == text.size()) return true;
  for (std::string_view stage : {"alpha", "beta"})
    if (text.substr(at).starts_with(stage)) {
      at += stage.size();
      return digits(at) && at == text.size();
    }
  return false;
}

// ---------------------------------------------------------------------------------------------
// WatchStatus

static_assert(static_cast<size_t>(kWatchedKinds[std::size(kWatchedKinds) - 1]) + 1 == std::size(kWatchedKinds),
              "statuses are indexed by kind: kWatchedKinds holds every kind, in order");

KindStatus WatchStatus::kind(ObjectKind kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return kinds_[static_cast<size_t>(kind)];
}

bool WatchStatus::synced() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::all_of(kinds_.begin(), kinds_.end(), [](const KindStatus& k) { return k.synced; });
}

bool WatchStatus::stale(std::chrono::milliseconds bound, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::any_of(kinds_.begin(), kinds_.end(),
                     [&](const KindStatus& k) { return !k.synced || (!k.not_served && now - k.last_heard > bound); });
}

double WatchStatus::seconds_since_last_heard(ObjectKind kind, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const KindStatus& k = kinds_[static_cast<size_t>(kind)];
  if (!k.synced || k.not_served) return -1;
  return std::chrono::duration<double>(now - k.last_heard).count();
}

json WatchStatus::to_json(Clock::time_point now) const {
  json out = json::object();
  for (ObjectKind kind : kWatchedKinds) {
    KindStatus k = this->kind(kind);
    json events = json::object();
    for (const auto& [type, count] : k.events) events[type] = count;
    out[std::string(kind_name(kind))] = {
        {"synced", k.synced},
        {"served", !k.not_served},
        {"apiVersion", k.api_version},
        {"objects", k.objects},
        {"resourceVersion", k.resource_version},
        {"secondsSinceLastHeard", seconds_since_last_heard(kind, now)},
        {"lists", k.lists},
        {"relists", k.relists},
        {"watchRestarts", k.watch_restarts},
        {"failures", k.failures},
        {"events", events},
        {"lastError", k.last_error}};
  }
  return out;
}

void WatchStatus::update(ObjectKind kind, const std::function<void(KindStatus&)>& change) {
  std::lock_guard<std::mutex> lock(mutex_);
  change(kinds_[static_cast<size_t>(kind)]);
}

// ---------------------------------------------------------------------------------------------
// One kind: list, then watch until stopped.

class ClusterWatch::KindWatcher {
 public:
  KindWatcher(ObjectKind kind, ClusterWatch& owner)
      : kind_(kind),
        owner_(owner),
        client_(owner.config_, owner.options_.connect_timeout),
        versions_(versions_to_try(kind, owner.options_)),
        path_(collection_path(kind, versions_.front())),
        rng_(std::random_device{}()),
        page_reader_(versions_.front()) {}

  void start() {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "gpuadmit-kwatch");  // what top -H and perf show
      run();
    });
  }

  void request_stop() {
    {
      std::lock_guard<std::mutex> lock(wait_mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    client_.cancel();
  }
  bool finished() const { return finished_ || !thread_.joinable(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  enum class Outcome { Ended, Gone, Failed, Stopped };
  enum class Listing { Done, NotServed, Failed };

  const WatchOptions& options() const { return owner_.options_; }
  std::string_view resource() const { return resource_name(kind_); }
  const std::string& version() const { return versions_[version_index_]; }

  // Lists and watches at versions_[index] from now on.
  void use_version(size_t index) {
    version_index_ = index;
    path_ = collection_path(kind_, version());
    page_reader_.set_version(version());
  }

  void run() {
    bool need_list = true;
    bool first_watch = true;
    // Bounded by stop(): every path below either makes a request or sleeps on wake_.
    while (!stopping_) {
      if (need_list) {
        const Listing listing = list_all();
        // Not served: asked again rarely, so that an API enabled later is picked up.
        if (listing == Listing::NotServed && !sleep_jittered(static_cast<double>(options().backoff_max.count()))) break;
        if (listing == Listing::Failed && !sleep_backoff()) break;
        if (listing != Listing::Done) continue;
        need_list = false;
        backoff_step_ = 0;
      }
      if (!first_watch) owner_.status_.update(kind_, [](KindStatus& k) { ++k.watch_restarts; });
      first_watch = false;
      bool delivered = false;
      Outcome outcome = watch_once(delivered);
      if (delivered) backoff_step_ = 0;
      if (outcome == Outcome::Stopped) break;
      if (outcome == Outcome::Ended) {
        backoff_step_ = 0;
      } else if (outcome == Outcome::Gone) {
        need_list = true;
        // A 410 straight after a list, with nothing delivered, must not spin.
        if (!delivered && !sleep_backoff()) break;
      } else if (!sleep_backoff()) {
        break;
      }
    }
    finished_ = true;
  }

  std::map<std::string, std::string> selector_params() const {
    std::map<std::string, std::string> params;
    if (kind_ == ObjectKind::Pod && !options().pod_field_selector.empty())
      params["fieldSelector"] = options().pod_field_selector;
    return params;
  }

  // "GET /api/v1/pods: HTTP 403 Forbidden: pods is forbidden: ..." or the transport error.
  std::string describe_failure(const std::string& what, const KubeResponse& response) const {
    std::string text = what + " " + std::string(resource()) + ": ";
    if (response.status == 0) return text + response.error;
    if (response.status == 200 && !response.error.empty()) return text + "the stream broke: " + response.error;
    text += "HTTP " + std::to_string(response.status);
    json status = parse_or_discarded(response.body);
    if (status.is_object() && status.value("message", json()).is_string())
      text += ": " + status["message"].get<std::string>();
    else if (!response.error.empty())
      text += " (" + response.error + ")";
    return text;
  }

  // One JSON line, with the kind ("pods") as a field.
  void log(spdlog::level::level_enum level, const std::string& message, json fields) const {
    fields["resource"] = std::string(resource());
    webhook::log_event(*owner_.options_.logger, level, message, std::move(fields));
  }

  void record_failure(const std::string& message) {
    log(spdlog::level::warn, "kube request failed", {{"error", message}});
    owner_.status_.update(kind_, [&](KindStatus& k) {
      ++k.failures;
      k.last_error = message;
    });
  }

  // A kind the API server does not serve at any version tried (DRA on a cluster before 1.32, DRA
  // disabled, or another version; policy on a cluster without it): it holds nothing, which is all
  // there is to know, so it counts as synced.
  void mark_not_served() {
    {
      std::lock_guard<std::mutex> lock(owner_.sink_mutex_);
      owner_.sink_.list_complete(kind_, {});  // whatever it held before is gone
    }
    keys_.clear();
    rv_.clear();
    bool first = false;
    owner_.status_.update(kind_, [&](KindStatus& k) {
      first = !k.not_served;
      k.synced = true;
      k.not_served = true;
      k.objects = 0;
      k.resource_version.clear();
      k.api_version.clear();
      k.last_heard = Clock::now();
    });
    if (!first) return;
    std::string detail;
    if (is_dra_kind(kind_)) {
      detail = "HTTP 404: no DRA objects are served at this path; the kind counts as synced with none "
               "(--dra-api-version picks the version)";
    } else {
      detail = "HTTP 404 at every version tried (";
      for (size_t i = 0; i < versions_.size(); ++i) detail += (i ? ", " : "") + api_version(kind_, versions_[i]);
      detail += "); the kind counts as synced with none";
    }
    log(spdlog::level::warn, "kube resource not served",
        {{"path", path_}, {"detail", detail},
         {"retrySeconds", std::chrono::duration<double>(options().backoff_max).count()}});
  }

  Listing list_all() {
    // Every list starts at the preferred version, so an upgraded cluster's newer one is taken up.
    use_version(0);
    std::unordered_set<std::string> keys;
    std::string continue_token, list_rv;
    int expired_restarts = 0;
    auto request_page = [this](const std::string& token) {
      auto params = selector_params();
      params["limit"] = std::to_string(options().page_size);
      if (!token.empty()) params["continue"] = token;
      return client_.get(with_query(path_, params), options().list_read_timeout);
    };
    // The next page is asked for as soon as this one's continue token is read, and fetched on
    // another thread while this one is trimmed and applied, so the API server builds and sends it
    // meanwhile. The client is still used by one thread at a time. Declared last: on any return
    // it is waited for before what it uses goes away.
    ListPage page;
    std::future<KubeResponse> next;
    KubeResponse response = request_page(continue_token);
    for (size_t pages = 0;; ++pages) {
      if (stopping_) return Listing::Failed;
      // An expired continue token: the snapshot is gone, list again from the start.
      if (response.status == 410 && !continue_token.empty() && expired_restarts++ < 3) {
        log(spdlog::level::info, "kube list expired, listing again",
            {{"reason", "the continue token expired"}, {"pages", pages}});
        keys.clear();
        continue_token.clear();
        response = request_page(continue_token);
        continue;
      }
      if (response.status == 404 && may_be_unserved(kind_) && continue_token.empty()) {
        if (version_index_ + 1 == versions_.size()) {
          mark_not_served();
          return Listing::NotServed;
        }
        // Not served at this version (policy/v1 before 1.21): the next one, at once.
        if (!logged_fallback_)
          log(spdlog::level::info, "kube resource not served at this version, trying the next",
              {{"path", path_}, {"next", api_version(kind_, versions_[version_index_ + 1])}});
        logged_fallback_ = true;
        use_version(version_index_ + 1);
        response = request_page(continue_token);
        continue;
      }
      if (!response.ok()) {
        record_failure(describe_failure("list", response));
        return Listing::Failed;
      }
      const size_t body_bytes = response.body.size();
      std::string why;
      if (!page_reader_.parse(response.body, page, why)) {
        record_failure("list " + std::string(resource()) + ": the answer is not a list (" +
                       std::to_string(body_bytes) + " bytes): " + why);
        return Listing::Failed;
      }
      response = KubeResponse();  // the parsed page holds what is needed
      if (!page.continue_token.empty()) next = std::async(std::launch::async, request_page, page.continue_token);
      // Each page goes to the sink as it arrives: memory holds one page, not the whole list.
      page_reader_.trim_items(kind_, page.items);
      for (const json& trimmed : page.items) keys.insert(object_key(trimmed));
      {
        std::lock_guard<std::mutex> lock(owner_.sink_mutex_);
        owner_.sink_.upsert_page(kind_, page.items);
      }
      page.items.clear();
      list_rv = page.resource_version;
      continue_token = page.continue_token;
      if (continue_token.empty()) break;
      response = next.get();
    }
    {
      std::lock_guard<std::mutex> lock(owner_.sink_mutex_);
      owner_.sink_.list_complete(kind_, keys);
    }
    keys_ = std::move(keys);
    rv_ = list_rv;
    // The pages' parsed JSON is freed: hand the heap back so the resident size follows what is kept.
    webhook::return_free_memory();
    owner_.status_.update(kind_, [&](KindStatus& k) {
      k.synced = true;
      k.not_served = false;
      k.api_version = api_version(kind_, version());
      ++k.lists;
      if (k.lists > 1) ++k.relists;
      k.objects = keys_.size();
      k.resource_version = rv_;
      k.last_heard = Clock::now();
    });
    log(spdlog::level::info, "kube list complete", {{"objects", keys_.size()}, {"resourceVersion", rv_}});
    return Listing::Done;
  }

  Outcome watch_once(bool& delivered) {
    auto params = selector_params();
    params["watch"] = "1";
    params["resourceVersion"] = rv_;
    params["allowWatchBookmarks"] = "true";
    const long base = std::max<long>(1, static_cast<long>(options().watch_timeout.count()));
    const long timeout_seconds = std::uniform_int_distribution<long>(base, 2 * base - 1)(rng_);
    params["timeoutSeconds"] = std::to_string(timeout_seconds);
    const auto silence_limit = std::chrono::seconds(timeout_seconds) + options().watch_end_grace;

    LineSplitter splitter;
    std::vector<std::string> lines;
    Outcome outcome = Outcome::Ended;
    std::string failure;
    KubeResponse response = client_.stream(with_query(path_, params), silence_limit, [&](std::string_view data) {
      if (stopping_) return false;
      lines.clear();
      if (!splitter.feed(data, lines)) {
        outcome = Outcome::Failed;
        failure = "watch " + std::string(resource()) + ": an event line exceeds the size limit";
        return false;
      }
      for (const std::string& line : lines) {
        Outcome line_outcome = handle_line(line, failure);
        if (line_outcome != Outcome::Ended) {
          outcome = line_outcome;
          return false;
        }
        delivered = true;
      }
      return true;
    });
    if (stopping_) return Outcome::Stopped;
    if (outcome == Outcome::Gone) return outcome;
    if (outcome == Outcome::Failed) {
      record_failure(failure);
      return outcome;
    }
    if (response.status == 410) {
      log(spdlog::level::info, "kube watch expired, listing again",
          {{"reason", "HTTP 410"}, {"resourceVersion", rv_}});
      return Outcome::Gone;
    }
    if (response.status == 404 && may_be_unserved(kind_)) {
      // The API went away (a downgrade, DRA disabled, policy/v1beta1 removed by an upgrade to
      // 1.25): the list finds out what is served now.
      log(spdlog::level::info, "kube watch found nothing served, listing again", {{"reason", "HTTP 404"}});
      return Outcome::Gone;
    }
    if (!response.ok()) {
      std::string message = describe_failure("watch", response);
      if (splitter.pending_bytes() > 0)
        message += "; discarded " + std::to_string(splitter.pending_bytes()) + " bytes of an unfinished event";
      record_failure(message);
      return Outcome::Failed;
    }
    if (splitter.pending_bytes() > 0)
      count_malformed("the stream ended inside an event (" + std::to_string(splitter.pending_bytes()) + " bytes)");
    owner_.status_.update(kind_, [](KindStatus& k) { k.last_heard = Clock::now(); });
    return Outcome::Ended;
  }

  void count_malformed(const std::string& reason) {
    std::string message = "watch " + std::string(resource()) + ": skipped a malformed event: " + reason;
    log(spdlog::level::warn, "kube watch event skipped", {{"error", message}});
    owner_.status_.update(kind_, [&](KindStatus& k) {
      ++k.events["MALFORMED"];
      k.last_error = message;
    });
  }

  // Applies one event line. Ended means "go on reading".
  Outcome handle_line(const std::string& line, std::string& failure) {
    std::string error;
    json event = parse_or_discarded(line, &error);
    // Neither message quotes the line: a pod's env values (secrets) travel in these events.
    if (event.is_discarded()) {
      count_malformed("not JSON: " + error);
      return Outcome::Ended;
    }
    const json* type = event.is_object() && event.contains("type") ? &event["type"] : nullptr;
    const json* object = event.is_object() && event.contains("object") ? &event["object"] : nullptr;
    if (!type || !type->is_string() || !object || !object->is_object()) {
      count_malformed("no type or object (" + std::to_string(line.size()) + " bytes)");
      return Outcome::Ended;
    }
    const std::string type_name = type->get<std::string>();
    if (type_name == "ERROR") {
      owner_.status_.update(kind_, [](KindStatus& k) { ++k.events["ERROR"]; });
      const json code = object->value("code", json());  // compared as JSON: no narrowing
      const std::string message = object->value("message", json()).is_string() ? (*object)["message"].get<std::string>() : "";
      if (code == 410) {
        log(spdlog::level::info, "kube watch expired, listing again",
            {{"reason", message}, {"resourceVersion", rv_}});
        return Outcome::Gone;
      }
      failure = "watch " + std::string(resource()) + ": ERROR event, code " + code.dump() + ": " + message;
      return Outcome::Failed;
    }
    const std::string rv = resource_version_of(*object);
    if (type_name == "BOOKMARK") {
      if (!rv.empty()) rv_ = rv;
      owner_.status_.update(kind_, [&](KindStatus& k) {
        ++k.events["BOOKMARK"];
        k.resource_version = rv_;
        k.last_heard = Clock::now();
      });
      return Outcome::Ended;
    }
    const bool removal = type_name == "DELETED";
    if (!removal && type_name != "ADDED" && type_name != "MODIFIED") {
      count_malformed("unknown event type '" + type_name + "'");
      return Outcome::Ended;
    }
    if (object->contains("kind") && object->value("kind", json()) != kind_name(kind_)) {
      count_malformed(type_name + " event for kind " + object->value("kind", json()).dump() + " on the " +
                      std::string(resource()) + " watch");
      return Outcome::Ended;
    }
    std::string key = object_key(*object);
    if (key.empty() || rv.empty()) {
      count_malformed(type_name + " event without metadata.name or metadata.resourceVersion");
      return Outcome::Ended;
    }
    json trimmed = trim_object(kind_, *object, version());
    {
      std::lock_guard<std::mutex> lock(owner_.sink_mutex_);
      if (removal)
        owner_.sink_.remove(kind_, trimmed);
      else
        owner_.sink_.upsert(kind_, trimmed);
    }
    if (removal)
      keys_.erase(key);
    else
      keys_.insert(std::move(key));
    rv_ = rv;
    owner_.status_.update(kind_, [&](KindStatus& k) {
      ++k.events[type_name];
      k.objects = keys_.size();
      k.resource_version = rv_;
      k.last_heard = Clock::now();
    });
    return Outcome::Ended;
  }

  // Sleeps the next backoff delay; false when stopped meanwhile.
  bool sleep_backoff() {
    const double initial = static_cast<double>(options().backoff_initial.count());
    const double cap = static_cast<double>(options().backoff_max.count());
    const double delay = std::min(cap, initial * static_cast<double>(uint64_t{1} << std::min(backoff_step_, 30)));
    ++backoff_step_;
    return sleep_jittered(delay);
  }

  // Sleeps `delay` ms plus up to `jitter` × that; false when stopped meanwhile.
  bool sleep_jittered(double delay) {
    using std::chrono::milliseconds;
    delay += delay * options().backoff_jitter * std::uniform_real_distribution<double>(0, 1)(rng_);
    std::unique_lock<std::mutex> lock(wait_mutex_);
    return !wake_.wait_for(lock, milliseconds(static_cast<long>(delay)), [this] { return stopping_.load(); });
  }

  ObjectKind kind_;
  ClusterWatch& owner_;
  KubeClient client_;
  const std::vector<std::string> versions_;  // versions_to_try; never empty
  size_t version_index_ = 0;                 // the one listed and watched now
  bool logged_fallback_ = false;
  std::string path_;                         // collection_path at that version
  std::mt19937_64 rng_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::mutex wait_mutex_;
  std::condition_variable wake_;
  int backoff_step_ = 0;
  std::string rv_;                           // where the next watch resumes
  std::unordered_set<std::string> keys_;     // objects held, for the objects count
  ListPageReader page_reader_;               // its buffers are kept from page to page
};

// ---------------------------------------------------------------------------------------------

ClusterWatch::ClusterWatch(KubeConfig config, ClusterObjectSink& sink, WatchOptions options)
    : config_(std::move(config)), sink_(sink), options_(std::move(options)) {
  ignore_sigpipe_unless_handled();
  if (options_.page_size < 1) throw KubeConfigError("watch: the list page size must be at least 1");
  const bool watch_dra = options_.dra_api_version != "off";
  if (watch_dra && !is_api_version(options_.dra_api_version))
    throw KubeConfigError("watch: the DRA API version must be one such as v1, v1beta2 or v1beta1, or off, not '" +
                          options_.dra_api_version + "'");
  // Its own logger follows the process-wide level (spdlog::set_level).
  if (!options_.logger) options_.logger = webhook::make_json_logger("gpu-admit", spdlog::get_level());
  for (ObjectKind kind : kWatchedKinds) {
    if (watched(kind, options_))
      watchers_.push_back(std::make_unique<KindWatcher>(kind, *this));
    else  // not watched: synced with nothing, as when not served
      status_.update(kind, [](KindStatus& k) { k.synced = k.not_served = true; });
  }
}

ClusterWatch::~ClusterWatch() { stop(); }

void ClusterWatch::start() {
  for (auto& watcher : watchers_) watcher->start();
}

void ClusterWatch::stop() {
  for (auto& watcher : watchers_) watcher->request_stop();
  // A request that began just before the first cancel is not aborted by it: cancel again until
  // every thread has left (each attempt aborts whatever is in flight now).
  const auto deadline = Clock::now() + options_.connect_timeout + std::chrono::seconds(5);
  while (Clock::now() < deadline &&
         !std::all_of(watchers_.begin(), watchers_.end(), [](const auto& w) { return w->finished(); })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (auto& watcher : watchers_) watcher->request_stop();
  }
  for (auto& watcher : watchers_) watcher->join();
}

bool ClusterWatch::wait_synced(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!status_.synced()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace gpuadmit::kube
