// The webhook's HTTP/1.1 front end: a few epoll event loops (--io-threads, one per CPU) run every
// TLS handshake and read every request with non-blocking sockets, so slow or idle clients cost a
// few kilobytes each and never a thread. A thread of its own accepts and gives each connection to
// the loop serving the fewest, for its whole life. A loop answers a lone small request itself and
// hands the others to a bounded pool of worker threads, whose answers it writes back. Each
// connection has deadlines (handshake, headers, body, idle keep-alive, write) and the listener
// limits connections in total and per client address, request URI, header and body sizes; what
// exceeds a limit is closed, counted and logged at most once per interval. Parsing is nodejs'
// http-parser (libhttp-parser-dev).
#pragma once

#include <openssl/ssl.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gpuadmit::webhook {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // target without the query
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  // The connection presented a client certificate that the --client-ca verified (a certificate
  // that fails verification fails the handshake instead).
  bool client_certificate = false;
  // The value of the first header `name` (lower case), or "".
  const std::string& header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  void set_content(std::string text, std::string type) {
    body = std::move(text);
    content_type = std::move(type);
  }
};

// Why a connection ended: the label of gpuadmit_connections_closed_total. The rejections (all but
// the first four) are also logged, at most once per ListenerOptions::log_interval each.
enum class CloseReason {
  client_closed,     // the client closed or reset it
  done,              // answered with Connection: close (HTTP/1.0, keep-alive request limit, draining)
  idle,              // no new request within the keep-alive timeout
  shutdown,          // closed idle by a shutdown
  limit_total,       // over --max-connections at accept
  limit_per_client,  // over --max-connections-per-client at accept
  fd_exhausted,      // the process is out of file descriptors (EMFILE) at accept
  handshake_timeout,
  handshake_failed,  // not TLS, a bad client certificate, an unsupported version
  plain_http,        // plain HTTP sent to the TLS port
  header_timeout,
  body_timeout,
  write_timeout,
  too_large,         // body over --max-body-bytes (413)
  headers_too_large, // header bytes or count over their limits (431), URI too long (414)
  encoding,          // a Content-Encoding or Transfer-Encoding the webhook does not take (415)
  bad_request,       // not HTTP (400)
  kCount
};
const char* close_reason_name(CloseReason reason);

struct ListenerOptions {
  std::string name = "https";  // in log lines
  // Event loops, each a thread: TLS and HTTP of a connection all run on one.
  std::size_t io_threads = 1;
  std::size_t workers = 64;
  // Workers that requests of up to 64 KiB keep running at once (0: as many as are idle). Such a
  // request that finds them all at work waits for one of them rather than waking another thread:
  // reviews are CPU-bound, so threads beyond about two per CPU only take turns, each wake a
  // context switch. A larger request wakes a worker of its own, so a few long reviews never hold
  // up the small ones.
  std::size_t running_workers = 0;
  // A request that completes alone in its loop's turn, while none of the loop's requests is on a
  // worker, is answered by the loop when its body is at most this large (0: never): an idle
  // server then wakes one thread per request instead of three (loop, worker, loop). Others go to
  // the workers, so that under load a review holds up no other connection.
  std::size_t inline_body_bytes = 64u << 10;
  // Complete requests waiting for a worker; past it they wait in their event loop (not read further).
  std::size_t max_queued_requests = 256;
  // Bytes of request bodies handed to workers at once; a request that would pass it waits.
  std::size_t max_inflight_body_bytes = 8u << 20;
  std::size_t max_body_bytes = 3u << 20;
  std::size_t max_header_bytes = 64u << 10;  // request line and headers together
  std::size_t max_header_count = 100;
  std::size_t max_uri_bytes = 8u << 10;
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_client = 128;
  std::size_t keep_alive_max_requests = 1000;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds read_timeout{10000};  // the whole body, from the end of the headers
  std::chrono::milliseconds keep_alive_timeout{5000};
  std::chrono::milliseconds write_timeout{10000};  // the whole answer
  std::chrono::milliseconds log_interval{10000};
};

struct ListenerHooks {
  // Runs on a worker thread for every complete request; exceptions become a 500.
  std::function<void(const HttpRequest&, HttpResponse&)> handle;
  // Every answer the listener gives itself (400, 413, 414, 415, 431), with the request path when
  // it was read ("" before that).
  std::function<void(const std::string& path, int status)> on_rejected_request;
  std::function<void()> on_open;
  std::function<void(CloseReason)> on_close;
};

class HttpListener {
 public:
  // `tls`: the context every connection's handshake uses (not owned; it must outlive the
  // listener); null serves plain HTTP.
  HttpListener(ListenerOptions options, SSL_CTX* tls, ListenerHooks hooks, std::shared_ptr<spdlog::logger> logger);
  ~HttpListener();  // closes everything now (stop())
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and listens; returns the port (a free one for port 0). Throws std::runtime_error.
  int bind(const std::string& host, int port);
  // Starts the event loops and the workers.
  void start();
  // Stops accepting (the port is closed), closes connections that hold no partly read request,
  // and closes each remaining one once its request is answered. Thread-safe, returns at once.
  void begin_shutdown();
  // After begin_shutdown: waits until no connection is left or `until` passes; whether none is.
  bool wait_drained(std::chrono::steady_clock::time_point until);
  // Closes every connection, stops the threads. Idempotent.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuadmit::webhook
