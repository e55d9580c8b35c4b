// HTTPS GETs against the Kubernetes API server with cpp-httplib and OpenSSL: one request at a
// time per client (each watch thread owns one), keep-alive between list pages, streamed bodies
// for watches, cancellable from another thread.
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
};

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

  // A GET whose body is handed to `on_data` as it arrives (only for a 200 answer; other answers'
  // bodies land in KubeResponse::body). `on_data` returns false to stop reading. `idle_timeout`
  // bounds each wait for bytes: a silent connection counts as dead after it.
  KubeResponse stream(const std::string& path_and_query, std::chrono::milliseconds idle_timeout,
                      const std::function<bool(std::string_view)>& on_data);

  // Aborts the request in flight, if any (safe from another thread).
  void cancel();

  const KubeConfig& config() const { return config_; }

 private:
  KubeResponse send(const std::string& path_and_query, std::chrono::milliseconds read_timeout,
                    const std::function<bool(std::string_view)>* on_data);

  KubeConfig config_;
  std::mutex client_mutex_;  // guards the pointer, not the request (httplib's stop() is thread-safe)
  std::unique_ptr<httplib::ClientImpl> http_;
};

}  // namespace gpuadmit::kube
