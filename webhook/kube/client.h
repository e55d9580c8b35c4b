// HTTPS requests to the Kubernetes API server with cpp-httplib and OpenSSL: one request at a
// time per client (each watch thread owns one), keep-alive between requests, streamed bodies for
// watches, writes (POST, PUT, PATCH, DELETE) for leases and reports, cancellable from another
// thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "webhook/kube/config.h"

namespace httplib {
class ClientImpl;
}

namespace gpuadmit::kube {

struct KubeResponse {
  int status = 0;     // HTTP status; 0 when no response arrived
  std::string body;   // the body (empty for streamed requests)
  std::string error;  // transport failure ("" when a response arrived), for messages
  bool ok() const { return status == 200 && error.empty(); }
  // A write that took effect: 201 Created (POST; a server-side apply that created the object) or
  // 200 (PUT, PATCH, DELETE).
  bool created_or_ok() const { return (status == 200 || status == 201) && error.empty(); }
};

// The request bodies KubeClient::send() sends.
namespace content_type {
inline constexpr std::string_view kJson = "application/json";                  // POST, PUT, DeleteOptions
inline constexpr std::string_view kMergePatch = "application/merge-patch+json";  // PATCH: RFC 7386
inline constexpr std::string_view kApplyPatch = "application/apply-patch+yaml";  // PATCH: server-side apply (JSON is YAML)
}  // namespace content_type

// OpenSSL writes with write(2): a connection the API server closed would raise SIGPIPE and kill
// the process. Ignores SIGPIPE unless the program installed its own handler.
void ignore_sigpipe_unless_handled();

// What the API server answered, for a message: "HTTP 403: <its metav1.Status message, at most
// 300 bytes>" (a body that is no Status adds nothing), or the transport error. The text is
// untrusted and goes into logs: it is bounded.
std::string answer_text(const KubeResponse& response);

// `path` plus URL-encoded query parameters, e.g. ("/api/v1/pods", {{"limit","500"}}).
std::string with_query(const std::string& path, const std::map<std::string, std::string>& params);

class KubeClient {
 public:
  // Throws KubeConfigError when the CA or the client certificate/key cannot be parsed.
  KubeClient(KubeConfig config, std::chrono::milliseconds connect_timeout);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // A GET whose whole body is returned. `read_timeout` bounds each wait for bytes.
  KubeResponse get(const std::string& path_and_query, std::chrono::milliseconds read_timeout);

  // A GET whose body is handed to `on_data` as it arrives (only for a 2xx answer; other answers'
  // bodies land in KubeResponse::body). `on_data` returns false to stop reading. `idle_timeout`
  // bounds each wait for bytes: a silent connection counts as dead after it.
  KubeResponse stream(const std::string& path_and_query, std::chrono::milliseconds idle_timeout,
                      const std::function<bool(std::string_view)>& on_data);

  // A write: `method` is POST, PUT, PATCH or DELETE (anything else fails without a request), `body`
  // is sent as `content_type` (none when both are empty: a DELETE). Authenticated and kept alive as
  // get(). The whole answer comes back whatever its status: the object written (200, 201) or the
  // metav1.Status of a refusal (404, 409 Conflict or AlreadyExists, 422). A kept-alive connection
  // found closed before any answer is retried once on a new one for PUT, PATCH and DELETE, never
  // for POST; a PUT with a resourceVersion that had in fact been applied then answers 409.
  KubeResponse send(std::string_view method, const std::string& path_and_query, const std::string& body,
                    std::string_view content_type, std::chrono::milliseconds read_timeout);

  // Aborts the request in flight, if any (safe from another thread).
  void cancel();

  const KubeConfig& config() const { return config_; }

 private:
  KubeResponse request(std::string_view method, const std::string& path_and_query, const std::string& body,
                       std::string_view content_type, std::chrono::milliseconds read_timeout,
                       const std::function<bool(std::string_view)>* on_data);

  KubeConfig config_;
  std::mutex client_mutex_;  // guards the pointer, not the request (httplib's stop() is thread-safe)
  std::unique_ptr<httplib::ClientImpl> http_;
};

}  // namespace gpuadmit::kube
