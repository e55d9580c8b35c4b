#include "webhook/server/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "webhook/log/heap.h"
#include "webhook/log/json_log.h"
#include "webhook/server/running_thread.h"
#include "webhook/server/worker_pool.h"

namespace gpuadmit::webhook {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kListenerKey = 1, kWakeKey = 2, kFirstConnection = 16;
constexpr std::size_t kReadChunk = 17 * 1024;          // one whole TLS record (16 KiB) and then some
constexpr std::size_t kReadBudget = 256 * 1024;         // per connection per turn, for fairness
constexpr std::size_t kTrimAfterBytes = 1 << 20;        // bodies this large give memory back
constexpr std::size_t kLongReviewBytes = 64 * 1024;     // larger bodies wake a worker of their own
constexpr auto kLinger = std::chrono::seconds(2);       // reading after a final answer, see start_linger

const char* status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string lower_trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string serialize(const HttpResponse& response, bool close, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + status_text(response.status) +
                    "\r\nContent-Type: " + response.content_type +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head) out += response.body;
  return out;
}

bool is_rejection(CloseReason reason) {
  return reason != CloseReason::client_closed && reason != CloseReason::done && reason != CloseReason::idle &&
         reason != CloseReason::shutdown;
}

}  // namespace

const std::string& HttpRequest::header(const std::string& name) const {
  static const std::string none;
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return none;
}

const char* close_reason_name(CloseReason reason) {
  switch (reason) {
    case CloseReason::client_closed: return "client_closed";
    case CloseReason::done: return "done";
    case CloseReason::idle: return "idle";
    case CloseReason::shutdown: return "shutdown";
    case CloseReason::limit_total: return "limit_total";
    case CloseReason::limit_per_client: return "limit_per_client";
    case CloseReason::fd_exhausted: return "fd_exhausted";
    case CloseReason::handshake_timeout: return "handshake_timeout";
    case CloseReason::handshake_failed: return "handshake_failed";
    case CloseReason::plain_http: return "plain_http";
    case CloseReason::header_timeout: return "header_timeout";
    case CloseReason::body_timeout: return "body_timeout";
    case CloseReason::write_timeout: return "write_timeout";
    case CloseReason::too_large: return "too_large";
    case CloseReason::headers_too_large: return "headers_too_large";
    case CloseReason::encoding: return "encoding";
    case CloseReason::bad_request: return "bad_request";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

class HttpListener::Impl {
 public:
  Impl(ListenerOptions options, SSL_CTX* tls, ListenerHooks hooks, std::shared_ptr<spdlog::logger> logger)
      : options_(std::move(options)), tls_(tls), hooks_(std::move(hooks)), logger_(std::move(logger)) {
    http_parser_settings_init(&settings_);
    settings_.on_message_begin = &Impl::on_message_begin;
    settings_.on_url = &Impl::on_url;
    settings_.on_header_field = &Impl::on_header_field;
    settings_.on_header_value = &Impl::on_header_value;
    settings_.on_headers_complete = &Impl::on_headers_complete;
    settings_.on_body = &Impl::on_body;
    settings_.on_message_complete = &Impl::on_message_complete;
  }
  ~Impl() { stop(); }

  int bind(const std::string& host, int port);
  void start();
  void begin_shutdown() {
    drain_requested_ = true;
    wake(acceptor_wake_fd_);
    for (const auto& loop : loops_) loop->wake();
  }
  bool wait_drained(Clock::time_point until) {
    std::unique_lock lock(drain_mutex_);
    return drained_changed_.wait_until(lock, until, [&] { return drained_loops_ == loops_.size(); });
  }
  void stop();

 private:
  enum class Phase { handshake, request, in_flight, closing };
  struct Loop;

  struct Connection {
    std::uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    std::string client;  // the peer's address, for the per-client limit
    Phase phase = Phase::request;
    Impl* owner = nullptr;
    Loop* loop = nullptr;  // the event loop that serves it, always the same one
    http_parser parser{};
    // The request being read.
    HttpRequest request;
    bool started = false, headers_done = false, last_was_value = false, head = false, keep_alive = true;
    std::size_t header_bytes = 0;
    int reject_status = 0;
    CloseReason reject_reason = CloseReason::bad_request;
    std::string reject_text;
    std::string pending_input;  // read past a complete request (pipelining), parsed after its answer
    std::size_t answered = 0;
    // Writing.
    std::string output;
    std::size_t output_sent = 0;
    bool close_after_answer = false, close_after_write = false;
    CloseReason close_reason = CloseReason::done;
    bool lingering = false, peeked = false, io_wants_read = false, io_wants_write = false;
    std::size_t linger_bytes = 0, linger_cap = 64 * 1024;
    // Deadlines: one for reading (its reason says which), one for the answer being written.
    Clock::time_point read_deadline, write_deadline, linger_deadline;
    CloseReason read_reason = CloseReason::idle;
    Clock::time_point scheduled{};  // its entry in the loop's deadlines, when has_scheduled
    bool has_scheduled = false, closed = false;
    std::uint32_t events = 0;
    // Input arrived while its request was with a worker (see update()).
    bool input_while_in_flight = false;
  };

  struct Completion {
    std::uint64_t id;
    std::string bytes;
    bool close;
    std::size_t body_bytes;
  };

  // A connection the acceptor took (and counted against the limits) for a loop.
  struct Accepted {
    int fd;
    std::string client;
  };

  // One event loop: a thread, its epoll set and the connections it serves, each for its whole
  // life. Only its thread touches it, but for `open` and the inbox.
  struct Loop {
    int epoll_fd = -1, wake_fd = -1;
    std::thread thread;
    std::uint64_t next_id = kFirstConnection;
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections;
    std::atomic<std::size_t> open{0};  // its connections, those in the inbox too: where the next one goes
    std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines;
    std::vector<std::uint64_t> runnable, dead;
    std::vector<std::uint64_t> inline_ready;  // small complete requests of this turn (see answer_inline)
    std::deque<std::uint64_t> waiting;  // complete requests not yet handed to a worker
    std::atomic<bool> has_waiting{false};
    // A wake written and not yet taken by take_inbox(): later wakes need not write. Under load
    // the workers' answers then cost a loop one eventfd write and read per turn, not per answer.
    std::atomic<bool> wake_pending{false};
    std::size_t handed_out = 0;  // its requests on the workers
    bool draining = false, drained = false;
    std::mutex inbox_mutex;
    std::vector<Completion> completions;  // answers from the workers
    std::vector<Accepted> accepted;
    void wake() {
      if (!wake_pending.exchange(true)) Impl::wake(wake_fd);
    }
    Connection* find(std::uint64_t id) {
      auto it = connections.find(id);
      return it == connections.end() || it->second->closed ? nullptr : it->second.get();
    }
  };

  enum class Io { ok, would_block, eof, error };

  // http_parser callbacks; a non-zero return stops the parser with an error.
  static Connection& of(http_parser* parser) { return *static_cast<Connection*>(parser->data); }
  static int on_message_begin(http_parser* parser);
  static int on_url(http_parser* parser, const char* at, std::size_t length);
  static int on_header_field(http_parser* parser, const char* at, std::size_t length);
  static int on_header_value(http_parser* parser, const char* at, std::size_t length);
  static int on_headers_complete(http_parser* parser);
  static int on_body(http_parser* parser, const char* at, std::size_t length);
  static int on_message_complete(http_parser* parser);
  static int refuse(Connection& c, int status, CloseReason reason, std::string text) {
    c.reject_status = status;
    c.reject_reason = reason;
    c.reject_text = std::move(text);
    return -1;
  }
  bool count_header_bytes(Connection& c, std::size_t length);

  static void wake(int fd) {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
  void run(Loop& loop);
  void run_acceptor();
  void accept_all(bool& paused, Clock::time_point& paused_until);
  void adopt(Loop& loop, int fd, std::string client);
  void release(Loop& loop, const std::string& client);
  void take_inbox(Loop& loop);
  void on_event(Connection& c, std::uint32_t events);
  void step(Connection& c);
  bool handshake(Connection& c);
  void read_requests(Connection& c);
  void feed(Connection& c, const char* data, std::size_t size);
  void dispatch(Connection& c);
  void try_dispatch(Loop& loop);
  void answer_inline(Loop& loop);
  Completion answer(HttpRequest& request, std::uint64_t id, bool close, bool head, std::size_t bytes) const;
  void complete(Loop& loop, Completion& completion);
  bool flush(Connection& c);
  void start_linger(Connection& c);
  void linger_read(Connection& c);
  void answer_and_close(Connection& c, int status, const std::string& text, CloseReason reason);
  void reset_request(Connection& c);
  void await_request(Connection& c, Clock::time_point now);
  void expire(Connection& c);
  void update(Connection& c);
  void close_connection(Connection& c, CloseReason reason);
  void start_drain(Loop& loop);
  void note_drained(Loop& loop);
  void note_rejection(CloseReason reason);
  void flush_rejection_logs(bool all);
  Io transport_read(Connection& c, char* buffer, std::size_t size, std::size_t& got);
  Io transport_write(Connection& c, const char* data, std::size_t size, std::size_t& put);
  // What an SSL_read (`reading`) or SSL_write that returned `n` <= 0 means. A read can need the
  // socket writable and a write readable (a key update, renegotiation refused): that is noted.
  static Io ssl_failure(Connection& c, int n, bool reading);

  const ListenerOptions options_;
  SSL_CTX* const tls_;
  const ListenerHooks hooks_;
  std::shared_ptr<spdlog::logger> logger_;
  http_parser_settings settings_{};

  // A thread of its own accepts (a loop answering a review would delay it) and gives each
  // connection to the loop serving the fewest.
  std::vector<std::unique_ptr<Loop>> loops_;
  int listen_fd_ = -1, reserve_fd_ = -1, acceptor_epoll_fd_ = -1, acceptor_wake_fd_ = -1;  // the acceptor's
  std::thread acceptor_;
  std::unique_ptr<WorkerPool> pool_;
  std::atomic<bool> drain_requested_{false}, stop_requested_{false}, accepting_closed_{false};
  bool stopped_ = false;

  // The limits on connections, shared by the loops.
  std::atomic<std::size_t> open_total_{0};
  std::mutex per_client_mutex_;
  std::unordered_map<std::string, std::size_t> per_client_;
  // What the workers hold: requests and body bytes.
  std::mutex budget_mutex_;
  std::size_t handed_out_ = 0, inflight_body_bytes_ = 0;

  struct RejectionLog {
    std::uint64_t unlogged = 0;
    Clock::time_point last{};
    bool ever = false;
  };
  std::mutex rejection_logs_mutex_;
  std::array<RejectionLog, static_cast<std::size_t>(CloseReason::kCount)> rejection_logs_{};
  void flush_rejection_logs_locked(bool all);

  std::mutex drain_mutex_;
  std::condition_variable drained_changed_;
  std::size_t drained_loops_ = 0;
};

// ---- setup and teardown --------------------------------------------------------------------

int HttpListener::Impl::bind(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const std::string where = host + ":" + service;
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0 || !found)
    throw std::runtime_error("cannot listen on " + where + ": unknown address");
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot listen on " + where + ": " + std::strerror(errno));
  const int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot listen on " + where + ": " + error);
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  listen_fd_ = fd;
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void HttpListener::Impl::start() {
  if (listen_fd_ < 0) throw std::runtime_error("HttpListener::start before bind");
  // Kept so that at EMFILE one connection can still be accepted and closed (see accept_all).
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  acceptor_epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  acceptor_wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (acceptor_epoll_fd_ < 0 || acceptor_wake_fd_ < 0) throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenerKey;
  epoll_ctl(acceptor_epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event);
  event.data.u64 = kWakeKey;
  epoll_ctl(acceptor_epoll_fd_, EPOLL_CTL_ADD, acceptor_wake_fd_, &event);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.io_threads); ++i) {
    auto loop = std::make_unique<Loop>();
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const bool failed = loop->epoll_fd < 0 || loop->wake_fd < 0;
    loops_.push_back(std::move(loop));  // closed by stop() either way
    if (failed) throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
    epoll_ctl(loops_.back()->epoll_fd, EPOLL_CTL_ADD, loops_.back()->wake_fd, &event);
  }
  pool_ = std::make_unique<WorkerPool>(std::max<std::size_t>(1, options_.workers), options_.running_workers);
  for (const auto& loop : loops_) loop->thread = start_running_thread("gpuadmit-loop", [this, &loop = *loop] { run(loop); });
  acceptor_ = start_running_thread("gpuadmit-accept", [this] { run_acceptor(); });
}

void HttpListener::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_requested_ = true;
  if (acceptor_.joinable()) {  // first: no connection goes to a loop after it stopped
    wake(acceptor_wake_fd_);
    acceptor_.join();
  }
  for (const auto& loop : loops_)
    if (loop->thread.joinable()) {
      loop->wake();
      loop->thread.join();
    }
  if (pool_) pool_->stop();
  flush_rejection_logs(true);
  for (const auto& loop : loops_)
    for (int* fd : {&loop->epoll_fd, &loop->wake_fd})
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
  for (int* fd : {&listen_fd_, &reserve_fd_, &acceptor_epoll_fd_, &acceptor_wake_fd_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

// ---- the event loops ---------------------------------------------------------------------

void HttpListener::Impl::run(Loop& loop) {
  std::array<epoll_event, 256> events;
  while (!stop_requested_) {
    auto now = Clock::now();
    int timeout_ms = 1000;  // also paces the rejection log lines
    if (!loop.runnable.empty() || !loop.inline_ready.empty()) timeout_ms = 0;
    else if (!loop.deadlines.empty())
      timeout_ms = static_cast<int>(std::clamp<long long>(
          std::chrono::ceil<std::chrono::milliseconds>(loop.deadlines.begin()->first - now).count(), 0, 1000));
    const int n = epoll_wait(loop.epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_event(*logger_, spdlog::level::critical, "event loop stopped",
                {{"listener", options_.name}, {"error", std::string("epoll_wait: ") + std::strerror(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t key = events[static_cast<std::size_t>(i)].data.u64;
      if (key == kWakeKey) {
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(loop.wake_fd, &count, sizeof count);
      } else if (Connection* c = loop.find(key)) {
        on_event(*c, events[static_cast<std::size_t>(i)].events);
      }
    }
    take_inbox(loop);
    if (loop.has_waiting) try_dispatch(loop);  // a worker of another loop may have made room
    if (drain_requested_ && !loop.draining) start_drain(loop);
    std::vector<std::uint64_t> again;
    again.swap(loop.runnable);
    for (std::uint64_t id : again)
      if (Connection* c = loop.find(id)) step(*c);
    answer_inline(loop);
    now = Clock::now();
    while (!loop.deadlines.empty() && loop.deadlines.begin()->first <= now) {
      const std::uint64_t id = loop.deadlines.begin()->second;
      loop.deadlines.erase(loop.deadlines.begin());
      if (Connection* c = loop.find(id)) {
        c->has_scheduled = false;
        expire(*c);
      }
    }
    for (std::uint64_t id : loop.dead) loop.connections.erase(id);
    loop.dead.clear();
    if (loop.draining && !loop.drained) note_drained(loop);
  }
  for (auto& [id, c] : loop.connections)
    if (!c->closed) close_connection(*c, CloseReason::shutdown);
  loop.connections.clear();
  std::lock_guard lock(loop.inbox_mutex);
  for (const Accepted& accepted : loop.accepted) {
    ::close(accepted.fd);
    release(loop, accepted.client);
  }
  loop.accepted.clear();
}

// A loop is drained once the port is closed (no connection can come to it any more) and its
// connections are gone.
void HttpListener::Impl::note_drained(Loop& loop) {
  if (!accepting_closed_ || !loop.connections.empty()) return;
  {
    std::lock_guard lock(loop.inbox_mutex);
    if (!loop.accepted.empty()) return;
  }
  loop.drained = true;
  std::lock_guard lock(drain_mutex_);
  ++drained_loops_;
  drained_changed_.notify_all();
}

// Accepts until the port is closed by a shutdown. It also paces the rejection log lines.
void HttpListener::Impl::run_acceptor() {
  std::array<epoll_event, 2> events;
  bool paused = false;
  Clock::time_point paused_until{};
  while (!stop_requested_) {
    if (drain_requested_) {
      ::close(listen_fd_);  // new connections are refused from now on
      listen_fd_ = -1;
      accepting_closed_ = true;
      for (const auto& loop : loops_) loop->wake();  // they can be drained now
      return;
    }
    const int n = epoll_wait(acceptor_epoll_fd_, events.data(), static_cast<int>(events.size()), paused ? 100 : 1000);
    if (n < 0 && errno != EINTR) {
      log_event(*logger_, spdlog::level::critical, "accepting stopped",
                {{"listener", options_.name}, {"error", std::string("epoll_wait: ") + std::strerror(errno)}});
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (events[static_cast<std::size_t>(i)].data.u64 == kListenerKey) {
        accept_all(paused, paused_until);
      } else {
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(acceptor_wake_fd_, &count, sizeof count);
      }
    }
    if (paused && Clock::now() >= paused_until) {
      paused = false;
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = kListenerKey;
      epoll_ctl(acceptor_epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event);
    }
    flush_rejection_logs(false);
  }
}

void HttpListener::Impl::accept_all(bool& paused, Clock::time_point& paused_until) {
  for (int i = 0; i < 128; ++i) {  // then the other events get a turn
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the waiting connection would keep the listener readable and the loop
        // spinning. Free the reserve, accept it, close it, take the reserve back.
        if (reserve_fd_ >= 0) {
          ::close(reserve_fd_);
          int doomed = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (doomed >= 0) ::close(doomed);
          reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          note_rejection(CloseReason::fd_exhausted);
          if (hooks_.on_close) {
            if (hooks_.on_open) hooks_.on_open();
            hooks_.on_close(CloseReason::fd_exhausted);
          }
          if (doomed >= 0) continue;
        }
        // No reserve either: stop watching the port for a moment.
        epoll_ctl(acceptor_epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        paused = true;
        paused_until = Clock::now() + std::chrono::milliseconds(100);
      }
      return;  // EAGAIN: all taken; ENOBUFS and the like: try at the next event
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (address.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, host, sizeof host);
    else if (address.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr, host, sizeof host);
    CloseReason refused = CloseReason::kCount;
    {
      std::lock_guard lock(per_client_mutex_);
      if (open_total_ >= options_.max_connections) {
        refused = CloseReason::limit_total;
      } else {
        auto it = per_client_.find(host);
        if (it != per_client_.end() && it->second >= options_.max_connections_per_client)
          refused = CloseReason::limit_per_client;
        else
          ++per_client_[host];
      }
    }
    if (refused != CloseReason::kCount) {
      ::close(fd);
      if (hooks_.on_open) hooks_.on_open();
      if (hooks_.on_close) hooks_.on_close(refused);
      note_rejection(refused);
      continue;
    }
    ++open_total_;
    const int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    // The loop serving the fewest connections takes it.
    Loop* target = loops_.front().get();
    for (const auto& loop : loops_)
      if (loop->open < target->open) target = loop.get();
    ++target->open;
    {
      std::lock_guard lock(target->inbox_mutex);
      target->accepted.push_back({fd, host});
    }
    target->wake();
  }
}

// Serves an accepted connection (counted against the limits already) on `loop`.
void HttpListener::Impl::adopt(Loop& loop, int fd, std::string client) {
  auto owned = std::make_unique<Connection>();
  Connection& c = *owned;
  c.id = loop.next_id++;
  c.fd = fd;
  c.client = std::move(client);
  c.owner = this;
  c.loop = &loop;
  loop.connections.emplace(c.id, std::move(owned));
  if (hooks_.on_open) hooks_.on_open();
  epoll_event event{};  // no events yet (update() sets them); errors and hang-ups always come
  event.data.u64 = c.id;
  epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, fd, &event);
  if (loop.draining) return close_connection(c, CloseReason::shutdown);
  const auto now = Clock::now();
  if (tls_) {
    c.ssl = SSL_new(tls_);
    if (!c.ssl) return close_connection(c, CloseReason::handshake_failed);
    SSL_set_fd(c.ssl, fd);
    SSL_set_accept_state(c.ssl);
    // Partial writes from a moving buffer; buffers freed while a connection is idle (an idle
    // flood then costs little memory).
    SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    c.phase = Phase::handshake;
    c.read_deadline = now + options_.handshake_timeout;
    c.read_reason = CloseReason::handshake_timeout;
  } else {
    await_request(c, now);
  }
  step(c);
}

// A connection of `loop` from `client` is gone: it no longer counts against the limits.
void HttpListener::Impl::release(Loop& loop, const std::string& client) {
  --loop.open;
  --open_total_;
  std::lock_guard lock(per_client_mutex_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

// Answers from the workers and connections from the acceptor.
void HttpListener::Impl::take_inbox(Loop& loop) {
  // Cleared before the inbox is read, and every turn reads it (and then the drain and stop
  // flags): whoever saw a wake pending and did not write put its work in before this turn.
  loop.wake_pending = false;
  std::vector<Completion> done;
  std::vector<Accepted> accepted;
  {
    std::lock_guard lock(loop.inbox_mutex);
    if (loop.completions.empty() && loop.accepted.empty()) return;
    done.swap(loop.completions);
    accepted.swap(loop.accepted);
  }
  for (Accepted& connection : accepted) adopt(loop, connection.fd, std::move(connection.client));
  if (done.empty()) return;
  {
    std::lock_guard lock(budget_mutex_);
    for (const Completion& completion : done) {
      --handed_out_;
      inflight_body_bytes_ -= completion.body_bytes;
    }
  }
  loop.handed_out -= done.size();
  for (Completion& completion : done) complete(loop, completion);
  // The workers' room is shared: other loops' large requests may fit now.
  try_dispatch(loop);
  for (const auto& other : loops_)
    if (other.get() != &loop && other->has_waiting) other->wake();
}

void HttpListener::Impl::on_event(Connection& c, std::uint32_t events) {
  if (events & EPOLLERR) return close_connection(c, CloseReason::client_closed);
  if ((events & EPOLLIN) && c.phase == Phase::in_flight) c.input_while_in_flight = true;
  // A request with a worker is not read; a hang-up then would be reported again and again.
  if ((events & EPOLLHUP) && c.phase == Phase::in_flight) return close_connection(c, CloseReason::client_closed);
  step(c);
  if (!c.closed && (events & EPOLLHUP) && !(c.events & EPOLLIN)) close_connection(c, CloseReason::client_closed);
}

// Does whatever the connection can do now: handshake, write, read (or discard), then waits.
void HttpListener::Impl::step(Connection& c) {
  if (c.phase == Phase::handshake && !handshake(c)) {
    if (!c.closed) update(c);
    return;
  }
  if (!flush(c)) return;
  if (c.phase == Phase::request && c.output.empty() && !c.lingering) {
    read_requests(c);
    // An answer the loop gave itself (an error, 100 Continue) goes out now.
    if (c.closed || !flush(c)) return;
  }
  if (c.lingering) linger_read(c);
  if (c.closed) return;
  if (c.loop->draining && c.phase == Phase::request && !c.started && c.output.empty())
    return close_connection(c, CloseReason::shutdown);
  update(c);
}

bool HttpListener::Impl::handshake(Connection& c) {
  if (!c.peeked) {
    // A TLS connection starts with a handshake record (0x16); anything else is most likely plain
    // HTTP on the TLS port, which OpenSSL would only answer with an alert.
    unsigned char first = 0;
    const ssize_t n = ::recv(c.fd, &first, 1, MSG_PEEK);
    if (n == 0) {
      close_connection(c, CloseReason::client_closed);
      return false;
    }
    if (n < 0) {
      // SSL_accept is not called before the first byte is seen: it could read part of a record,
      // and the next peek would see the middle of the stream.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close_connection(c, CloseReason::client_closed);
      return false;
    }
    c.peeked = true;
    if (first != 0x16) {
      static const std::string kText = "this port serves HTTPS, not plain HTTP\n";
      static const std::string kAnswer =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
          "Content-Length: " + std::to_string(kText.size()) + "\r\n\r\n" + kText;
      [[maybe_unused]] ssize_t sent = ::send(c.fd, kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (hooks_.on_rejected_request) hooks_.on_rejected_request("", 400);
      close_connection(c, CloseReason::plain_http);
      return false;
    }
  }
  ERR_clear_error();
  const int result = SSL_accept(c.ssl);
  if (result == 1) {
    c.io_wants_read = c.io_wants_write = false;
    await_request(c, Clock::now());
    return true;
  }
  const int error = SSL_get_error(c.ssl, result);
  c.io_wants_write = error == SSL_ERROR_WANT_WRITE;
  if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    close_connection(c, CloseReason::handshake_failed);
  }
  return false;
}

// ---- reading and parsing ------------------------------------------------------------------

HttpListener::Impl::Io HttpListener::Impl::transport_read(Connection& c, char* buffer, std::size_t size,
                                                          std::size_t& got) {
  got = 0;
  if (c.ssl) {
    ERR_clear_error();
    const int n = SSL_read(c.ssl, buffer, static_cast<int>(size));
    if (n > 0) {
      got = static_cast<std::size_t>(n);
      c.io_wants_write = false;
      return Io::ok;
    }
    return ssl_failure(c, n, true);
  }
  const ssize_t n = ::recv(c.fd, buffer, size, 0);
  if (n > 0) {
    got = static_cast<std::size_t>(n);
    return Io::ok;
  }
  if (n == 0) return Io::eof;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::would_block : Io::error;
}

void HttpListener::Impl::read_requests(Connection& c) {
  if (!c.pending_input.empty()) {
    const std::string data = std::move(c.pending_input);
    c.pending_input.clear();
    feed(c, data.data(), data.size());
    if (c.closed || c.phase != Phase::request || !c.output.empty()) return;
  }
  char buffer[kReadChunk];
  std::size_t budget = kReadBudget;
  while (budget > 0) {
    std::size_t got = 0;
    const Io io = transport_read(c, buffer, sizeof buffer, got);
    if (io == Io::would_block) return;
    if (io != Io::ok) return close_connection(c, CloseReason::client_closed);
    budget -= std::min(budget, got);
    feed(c, buffer, got);
    if (c.closed || c.phase != Phase::request || !c.output.empty()) return;
  }
  c.loop->runnable.push_back(c.id);  // more may be waiting; the others go first
}

void HttpListener::Impl::feed(Connection& c, const char* data, std::size_t size) {
  const std::size_t parsed = http_parser_execute(&c.parser, &settings_, data, size);
  const auto error = HTTP_PARSER_ERRNO(&c.parser);
  if (error == HPE_PAUSED) {
    // One complete request: what follows waits until it is answered.
    c.pending_input.assign(data + parsed, size - parsed);
    return dispatch(c);
  }
  if (c.reject_status != 0) return answer_and_close(c, c.reject_status, c.reject_text, c.reject_reason);
  if (error == HPE_HEADER_OVERFLOW)
    return answer_and_close(c, 431, "request header fields too large", CloseReason::headers_too_large);
  if (error != HPE_OK)
    return answer_and_close(c, 400, std::string("bad request: ") + http_errno_description(error),
                            CloseReason::bad_request);
}

bool HttpListener::Impl::count_header_bytes(Connection& c, std::size_t length) {
  c.header_bytes += length;
  return c.header_bytes <= options_.max_header_bytes;
}

int HttpListener::Impl::on_message_begin(http_parser* parser) {
  Connection& c = of(parser);
  c.started = true;
  c.read_deadline = Clock::now() + c.owner->options_.header_timeout;
  c.read_reason = CloseReason::header_timeout;
  return 0;
}

int HttpListener::Impl::on_url(http_parser* parser, const char* at, std::size_t length) {
  Connection& c = of(parser);
  c.request.target.append(at, length);
  if (c.request.target.size() > c.owner->options_.max_uri_bytes)
    return refuse(c, 414, CloseReason::headers_too_large, "request URI too long");
  if (!c.owner->count_header_bytes(c, length))
    return refuse(c, 431, CloseReason::headers_too_large, "request header fields too large");
  return 0;
}

int HttpListener::Impl::on_header_field(http_parser* parser, const char* at, std::size_t length) {
  Connection& c = of(parser);
  if (c.last_was_value || c.request.headers.empty()) {
    if (c.request.headers.size() >= c.owner->options_.max_header_count)
      return refuse(c, 431, CloseReason::headers_too_large, "too many request header fields");
    c.request.headers.emplace_back();
    c.last_was_value = false;
  }
  std::string& name = c.request.headers.back().first;
  for (std::size_t i = 0; i < length; ++i)
    name += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
  if (!c.owner->count_header_bytes(c, length + 4))  // ": " and CRLF too
    return refuse(c, 431, CloseReason::headers_too_large, "request header fields too large");
  return 0;
}

int HttpListener::Impl::on_header_value(http_parser* parser, const char* at, std::size_t length) {
  Connection& c = of(parser);
  c.last_was_value = true;
  c.request.headers.back().second.append(at, length);
  if (!c.owner->count_header_bytes(c, length))
    return refuse(c, 431, CloseReason::headers_too_large, "request header fields too large");
  return 0;
}

int HttpListener::Impl::on_headers_complete(http_parser* parser) {
  Connection& c = of(parser);
  Impl& self = *c.owner;
  HttpRequest& request = c.request;
  request.method = http_method_str(static_cast<http_method>(parser->method));
  request.path = request.target.substr(0, request.target.find('?'));
  request.client_certificate = c.ssl != nullptr && SSL_get0_peer_certificate(c.ssl) != nullptr &&
                               SSL_get_verify_result(c.ssl) == X509_V_OK;
  c.head = parser->method == HTTP_HEAD;
  c.headers_done = true;
  for (const auto& [name, value] : request.headers) {
    // A webhook needs no compression; decoding it would let a few bytes become gigabytes.
    if (name == "content-encoding" && !value.empty() && lower_trimmed(value) != "identity")
      return refuse(c, 415, CloseReason::encoding,
                    "Content-Encoding '" + value.substr(0, 100) + "' is not accepted: send the body uncompressed");
    if (name == "transfer-encoding" && lower_trimmed(value) != "chunked")
      return refuse(c, 415, CloseReason::encoding,
                    "Transfer-Encoding '" + value.substr(0, 100) + "' is not accepted: only chunked");
  }
  if ((parser->flags & F_CONTENTLENGTH) && parser->content_length > self.options_.max_body_bytes)
    return refuse(c, 413, CloseReason::too_large, "request body too large");
  if (parser->http_minor >= 1 && lower_trimmed(request.header("expect")) == "100-continue") {
    c.output += "HTTP/1.1 100 Continue\r\n\r\n";
    c.write_deadline = Clock::now() + self.options_.write_timeout;
  }
  c.read_deadline = Clock::now() + self.options_.read_timeout;
  c.read_reason = CloseReason::body_timeout;
  return 0;
}

int HttpListener::Impl::on_body(http_parser* parser, const char* at, std::size_t length) {
  Connection& c = of(parser);
  // Chunked bodies count here, as they are decoded, so none grows past the limit.
  if (c.request.body.size() + length > c.owner->options_.max_body_bytes)
    return refuse(c, 413, CloseReason::too_large, "request body too large");
  c.request.body.append(at, length);
  return 0;
}

int HttpListener::Impl::on_message_complete(http_parser* parser) {
  Connection& c = of(parser);
  c.keep_alive = http_should_keep_alive(parser) != 0 && !parser->upgrade;
  http_parser_pause(parser, 1);  // one request at a time; the rest of the input waits
  return 0;
}

// ---- answering: inline or on a worker --------------------------------------------------------

// A complete request: a small one waits for the end of the loop's turn (see answer_inline), a
// large one goes to a worker at once, so that it holds up no other connection of the loop and
// the in-flight bound applies.
void HttpListener::Impl::dispatch(Connection& c) {
  c.phase = Phase::in_flight;
  ++c.answered;
  c.close_after_answer = !c.keep_alive || c.answered >= options_.keep_alive_max_requests || c.loop->draining;
  if (options_.inline_body_bytes > 0 && c.request.body.size() <= options_.inline_body_bytes) {
    c.loop->inline_ready.push_back(c.id);
    return;
  }
  c.loop->waiting.push_back(c.id);
  try_dispatch(*c.loop);
}

// The small requests of a turn: the only one, while none of the loop's requests is on a worker,
// is answered here, so no other thread is woken (one instead of three: most of a small review's
// cost at low load). Several go to the workers, like those of a loop with work on them: under
// load, answering all on the loop cost as much CPU per request and gave a longer tail (one loop's
// connections wait for all its reviews), bench/README.md 2026-12-07 (session 15).
void HttpListener::Impl::answer_inline(Loop& loop) {
  if (loop.inline_ready.empty()) return;
  if (loop.inline_ready.size() > 1 || loop.handed_out > 0) {
    for (std::uint64_t id : loop.inline_ready) loop.waiting.push_back(id);
    loop.inline_ready.clear();
    return try_dispatch(loop);
  }
  const std::uint64_t id = loop.inline_ready.front();
  loop.inline_ready.clear();  // answering may read the connection's next request into it
  Connection* c = loop.find(id);
  if (!c || c->phase != Phase::in_flight) return;
  HttpRequest request = std::move(c->request);
  c->request = HttpRequest();
  Completion done = answer(request, id, c->close_after_answer, c->head, 0);
  complete(loop, done);
}

// The hooks' answer to one request, serialized; never throws. Runs on a worker or, inline, on
// an event loop.
HttpListener::Impl::Completion HttpListener::Impl::answer(HttpRequest& request, std::uint64_t id, bool close,
                                                         bool head, std::size_t bytes) const {
  HttpResponse response;
  try {
    hooks_.handle(request, response);
  } catch (const std::exception& error) {
    response = HttpResponse();
    response.status = 500;
    response.body = std::string("internal error: ") + error.what() + "\n";
  } catch (...) {
    response = HttpResponse();
    response.status = 500;
    response.body = "internal error\n";
  }
  request = HttpRequest();
  return Completion{id, serialize(response, close, head), close, bytes};
}

void HttpListener::Impl::try_dispatch(Loop& loop) {
  while (!loop.waiting.empty()) {
    Connection* c = loop.find(loop.waiting.front());
    if (!c || c->phase != Phase::in_flight) {
      loop.waiting.pop_front();
      continue;
    }
    const std::size_t bytes = c->request.body.size();
    {
      std::lock_guard lock(budget_mutex_);
      if (handed_out_ >= options_.workers + options_.max_queued_requests) break;
      // Bodies being reviewed at once are bounded; one alone always runs.
      if (inflight_body_bytes_ > 0 && inflight_body_bytes_ + bytes > options_.max_inflight_body_bytes) break;
      ++handed_out_;
      inflight_body_bytes_ += bytes;
    }
    ++loop.handed_out;
    loop.waiting.pop_front();
    auto request = std::make_shared<HttpRequest>(std::move(c->request));
    c->request = HttpRequest();
    const bool close = c->close_after_answer, head = c->head;
    const std::uint64_t id = c->id;
    pool_->submit([this, &loop, request = std::move(request), close, head, id, bytes]() mutable {
      Completion done = answer(*request, id, close, head, bytes);
      request.reset();
      // The allocator keeps freed memory for reuse; after a large body, give it back.
      if (bytes >= kTrimAfterBytes) return_free_memory();
      {
        std::lock_guard lock(loop.inbox_mutex);
        loop.completions.push_back(std::move(done));
      }
      loop.wake();
    }, bytes > kLongReviewBytes);
  }
  loop.has_waiting = !loop.waiting.empty();
}

// An answer goes out on its connection (if the client is still there).
void HttpListener::Impl::complete(Loop& loop, Completion& completion) {
  Connection* c = loop.find(completion.id);
  if (!c) return;
  c->output += completion.bytes;
  c->write_deadline = Clock::now() + options_.write_timeout;
  if (completion.close || loop.draining) {
    c->phase = Phase::closing;
    c->close_after_write = true;
    c->close_reason = CloseReason::done;
  } else {
    reset_request(*c);
    await_request(*c, Clock::now());
  }
  step(*c);
}

void HttpListener::Impl::reset_request(Connection& c) {
  c.input_while_in_flight = false;
  c.request = HttpRequest();
  c.started = c.headers_done = c.last_was_value = c.head = false;
  c.keep_alive = true;
  c.header_bytes = 0;
  c.phase = Phase::request;
  http_parser_pause(&c.parser, 0);
}

void HttpListener::Impl::await_request(Connection& c, Clock::time_point now) {
  if (c.phase == Phase::handshake || c.parser.data == nullptr) {
    http_parser_init(&c.parser, HTTP_REQUEST);
    c.parser.data = &c;
  }
  c.phase = Phase::request;
  c.read_deadline = now + options_.keep_alive_timeout;
  c.read_reason = CloseReason::idle;
}

// ---- writing and closing -------------------------------------------------------------------

HttpListener::Impl::Io HttpListener::Impl::ssl_failure(Connection& c, int n, bool reading) {
  const int error = SSL_get_error(c.ssl, n);
  if (error == (reading ? SSL_ERROR_WANT_READ : SSL_ERROR_WANT_WRITE)) return Io::would_block;
  if (error == (reading ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ)) {
    (reading ? c.io_wants_write : c.io_wants_read) = true;
    return Io::would_block;
  }
  ERR_clear_error();
  return reading && error == SSL_ERROR_ZERO_RETURN ? Io::eof : Io::error;
}

HttpListener::Impl::Io HttpListener::Impl::transport_write(Connection& c, const char* data, std::size_t size,
                                                           std::size_t& put) {
  put = 0;
  if (c.ssl) {
    ERR_clear_error();
    const int n = SSL_write(c.ssl, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
    if (n > 0) {
      put = static_cast<std::size_t>(n);
      c.io_wants_read = false;
      return Io::ok;
    }
    return ssl_failure(c, n, false);
  }
  const ssize_t n = ::send(c.fd, data, size, MSG_NOSIGNAL);
  if (n >= 0) {
    put = static_cast<std::size_t>(n);
    return Io::ok;
  }
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Io::would_block : Io::error;
}

// Writes what it can; false when the connection was closed.
bool HttpListener::Impl::flush(Connection& c) {
  while (c.output_sent < c.output.size()) {
    std::size_t put = 0;
    const Io io = transport_write(c, c.output.data() + c.output_sent, c.output.size() - c.output_sent, put);
    if (io == Io::would_block) return true;
    if (io != Io::ok) {
      close_connection(c, CloseReason::client_closed);
      return false;
    }
    c.output_sent += put;
  }
  if (!c.output.empty()) {
    c.output.clear();
    c.output.shrink_to_fit();
    c.output_sent = 0;
  }
  if (c.close_after_write && !c.lingering) start_linger(c);
  return !c.closed;
}

// After a final answer the client may still be sending (a body over the limit, pipelined
// requests): closing with unread data would reset the connection and lose the answer. So the
// write side is shut and what arrives is read and dropped for a bounded time and amount.
void HttpListener::Impl::start_linger(Connection& c) {
  c.lingering = true;
  c.linger_deadline = Clock::now() + kLinger;
  if (c.ssl) {
    ERR_clear_error();
    SSL_shutdown(c.ssl);  // close_notify; a client reading to the end stops here
    ERR_clear_error();
  }
  ::shutdown(c.fd, SHUT_WR);
}

void HttpListener::Impl::linger_read(Connection& c) {
  char buffer[kReadChunk];
  for (;;) {
    std::size_t got = 0;
    const Io io = transport_read(c, buffer, sizeof buffer, got);
    if (io == Io::would_block) return;
    if (io != Io::ok) return close_connection(c, c.close_reason);
    c.linger_bytes += got;
    if (c.linger_bytes > c.linger_cap) return close_connection(c, c.close_reason);
  }
}

void HttpListener::Impl::answer_and_close(Connection& c, int status, const std::string& text, CloseReason reason) {
  if (hooks_.on_rejected_request) hooks_.on_rejected_request(c.request.path, status);
  HttpResponse response;
  response.status = status;
  response.body = text + "\n";
  c.output += serialize(response, true, false);
  c.write_deadline = Clock::now() + options_.write_timeout;
  // What the client still sends is read and dropped (see start_linger): the rest of a declared
  // body, up to twice the limit, so that a client that writes it all before reading sees the
  // answer; a chunked or unknown rest only briefly, not to decrypt an endless stream.
  c.linger_cap = 64 * 1024;
  if (c.parser.data && c.headers_done && (c.parser.flags & F_CONTENTLENGTH) && !(c.parser.flags & F_CHUNKED))
    c.linger_cap += static_cast<std::size_t>(std::min<std::uint64_t>(c.parser.content_length, 2 * options_.max_body_bytes));
  c.phase = Phase::closing;
  c.close_after_write = true;
  c.close_reason = reason;
  c.request = HttpRequest();
  c.pending_input.clear();
}

void HttpListener::Impl::expire(Connection& c) {
  const auto now = Clock::now();
  if (c.lingering) {
    if (now >= c.linger_deadline) return close_connection(c, c.close_reason);
  } else if (!c.output.empty()) {
    if (now >= c.write_deadline) return close_connection(c, CloseReason::write_timeout);
  } else if (c.phase == Phase::handshake || (c.phase == Phase::request && !c.started)) {
    if (now >= c.read_deadline) return close_connection(c, c.read_reason);
  } else if (c.phase == Phase::request) {
    if (now >= c.read_deadline) {
      const auto limit = c.headers_done ? options_.read_timeout : options_.header_timeout;
      answer_and_close(c, 400,
                       std::string("bad request: the request ") + (c.headers_done ? "body" : "headers") +
                           " did not arrive within " + std::to_string(limit.count()) + " ms",
                       c.read_reason);
      return step(c);
    }
  }
  update(c);
}

// Re-arms the connection's deadline and the events it waits for.
void HttpListener::Impl::update(Connection& c) {
  std::optional<Clock::time_point> deadline;
  if (c.lingering) deadline = c.linger_deadline;
  else if (!c.output.empty()) deadline = c.write_deadline;
  else if (c.phase == Phase::handshake || c.phase == Phase::request) deadline = c.read_deadline;
  if (c.has_scheduled && (!deadline || *deadline != c.scheduled)) {
    c.loop->deadlines.erase({c.scheduled, c.id});
    c.has_scheduled = false;
  }
  if (deadline && !c.has_scheduled) {
    c.loop->deadlines.emplace(*deadline, c.id);
    c.scheduled = *deadline;
    c.has_scheduled = true;
  }

  std::uint32_t events = 0;
  if (c.phase == Phase::handshake) {
    events = c.io_wants_write ? EPOLLOUT : EPOLLIN;
  } else {
    if (!c.output.empty() || c.io_wants_write) events |= EPOLLOUT;
    if (c.lingering || c.io_wants_read || (c.phase == Phase::request && c.output.empty())) events |= EPOLLIN;
    // A request with a worker is not read, but EPOLLIN stays registered until input comes (a
    // pipelined request or a close, which would otherwise be reported again and again): the
    // usual request-and-answer turn then changes nothing in the epoll set, where it took two
    // epoll_ctl calls.
    if (c.phase == Phase::in_flight && !c.input_while_in_flight) events |= c.events & EPOLLIN;
  }
  if (events == c.events) return;
  epoll_event event{};
  event.events = events;
  event.data.u64 = c.id;
  epoll_ctl(c.loop->epoll_fd, EPOLL_CTL_MOD, c.fd, &event);
  c.events = events;
}

void HttpListener::Impl::close_connection(Connection& c, CloseReason reason) {
  if (c.closed) return;
  c.closed = true;
  if (c.has_scheduled) c.loop->deadlines.erase({c.scheduled, c.id});
  c.has_scheduled = false;
  epoll_ctl(c.loop->epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.ssl && c.phase == Phase::handshake && !c.peeked) {
    // It never sent a byte: start the handshake so that SSL_free counts it as failed, like every
    // other unfinished one (tls_handshake_failures_total).
    ERR_clear_error();
    SSL_accept(c.ssl);
    ERR_clear_error();
  }
  if (c.ssl) SSL_free(c.ssl);  // counts a handshake that never finished (count_handshake_failures)
  c.ssl = nullptr;
  ::close(c.fd);
  release(*c.loop, c.client);
  if (hooks_.on_close) hooks_.on_close(reason);
  note_rejection(reason);
  c.loop->dead.push_back(c.id);
}

void HttpListener::Impl::start_drain(Loop& loop) {
  loop.draining = true;
  for (auto& [id, c] : loop.connections) {
    if (c->closed) continue;
    // Nothing of a request read: nothing to finish.
    if (c->phase == Phase::handshake || (c->phase == Phase::request && !c->started && c->output.empty()))
      close_connection(*c, CloseReason::shutdown);
  }
}

void HttpListener::Impl::note_rejection(CloseReason reason) {
  if (!is_rejection(reason)) return;
  std::lock_guard lock(rejection_logs_mutex_);
  RejectionLog& log = rejection_logs_[static_cast<std::size_t>(reason)];
  ++log.unlogged;
  if (!log.ever || Clock::now() - log.last >= options_.log_interval) flush_rejection_logs_locked(false);
}

void HttpListener::Impl::flush_rejection_logs(bool all) {
  std::lock_guard lock(rejection_logs_mutex_);
  flush_rejection_logs_locked(all);
}

// One line per reason per interval at most, with the count since the last line.
void HttpListener::Impl::flush_rejection_logs_locked(bool all) {
  const auto now = Clock::now();
  for (std::size_t i = 0; i < rejection_logs_.size(); ++i) {
    RejectionLog& log = rejection_logs_[i];
    if (log.unlogged == 0 || (!all && log.ever && now - log.last < options_.log_interval)) continue;
    log_event(*logger_, spdlog::level::warn, "connections rejected",
              {{"listener", options_.name},
               {"reason", close_reason_name(static_cast<CloseReason>(i))},
               {"count", log.unlogged},
               {"interval_s", std::chrono::duration<double>(options_.log_interval).count()}});
    log.unlogged = 0;
    log.last = now;
    log.ever = true;
  }
}

// ---- the public face ----------------------------------------------------------------------

HttpListener::HttpListener(ListenerOptions options, SSL_CTX* tls, ListenerHooks hooks,
                           std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>(std::move(options), tls, std::move(hooks), std::move(logger))) {}
HttpListener::~HttpListener() = default;
int HttpListener::bind(const std::string& host, int port) { return impl_->bind(host, port); }
void HttpListener::start() { impl_->start(); }
void HttpListener::begin_shutdown() { impl_->begin_shutdown(); }
bool HttpListener::wait_drained(std::chrono::steady_clock::time_point until) { return impl_->wait_drained(until); }
void HttpListener::stop() { impl_->stop(); }

}  // namespace gpuadmit::webhook
