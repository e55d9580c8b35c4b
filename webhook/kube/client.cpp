#include "webhook/kube/client.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <csignal>

#include "engine/input_limits.h"
#include "gpuadmit/review.h"

namespace gpuadmit::kube {
namespace {

std::string url_encode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr memory_bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// Every certificate in `pem` (a CA bundle may hold several).
X509_STORE* ca_store_from_pem(const std::string& pem, const std::string& source) {
  X509_STORE* store = X509_STORE_new();
  BioPtr bio = memory_bio(pem);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    ++added;
  }
  if (added == 0) {
    X509_STORE_free(store);
    throw KubeConfigError(source + ": the certificate authority holds no PEM certificate");
  }
  return store;
}

}  // namespace

std::string answer_text(const KubeResponse& response) {
  if (response.status == 0) return response.error.empty() ? "no answer" : response.error;
  std::string text = "HTTP " + std::to_string(response.status);
  nlohmann::json status;
  try {
    status = parse_json(response.body);
  } catch (const std::exception&) {
  }
  if (status.is_object())
    if (auto message = status.find("message"); message != status.end() && message->is_string()) {
      text += ": " + shorten(message->get<std::string>(), 303);
    }
  if (!response.error.empty()) text += " (" + response.error + ")";
  return text;
}

std::string with_query(const std::string& path, const std::map<std::string, std::string>& params) {
  std::string out = path;
  char separator = '?';
  for (const auto& [key, value] : params) {
    out += separator;
    out += url_encode(key) + "=" + url_encode(value);
    separator = '&';
  }
  return out;
}

KubeClient::KubeClient(KubeConfig config, std::chrono::milliseconds connect_timeout) : config_(std::move(config)) {
  if (config_.scheme == "http") {
    http_ = std::make_unique<httplib::ClientImpl>(config_.host, config_.port);
  } else {
    std::unique_ptr<httplib::SSLClient> ssl;
    if (!config_.client_cert_pem.empty()) {
      BioPtr cert_bio = memory_bio(config_.client_cert_pem);
      BioPtr key_bio = memory_bio(config_.client_key_pem);
      X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
      EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
      if (!cert || !key) {
        X509_free(cert);
        EVP_PKEY_free(key);
        throw KubeConfigError(config_.source + ": the client certificate or key is not valid PEM");
      }
      // SSLClient takes its own references to both.
      ssl = std::make_unique<httplib::SSLClient>(config_.host, config_.port, cert, key);
      X509_free(cert);
      EVP_PKEY_free(key);
      if (!ssl->is_valid()) throw KubeConfigError(config_.source + ": the client certificate does not match its key");
    } else {
      ssl = std::make_unique<httplib::SSLClient>(config_.host, config_.port);
    }
    if (!config_.ca_pem.empty()) ssl->set_ca_cert_store(ca_store_from_pem(config_.ca_pem, config_.source));
    ssl->enable_server_certificate_verification(!config_.insecure_skip_tls_verify);
    http_ = std::move(ssl);
  }
  http_->set_keep_alive(true);
  // As Go's clients do: a request written in more than one piece never waits on a delayed ACK.
  http_->set_tcp_nodelay(true);
  http_->set_connection_timeout(connect_timeout);
  http_->set_write_timeout(connect_timeout);
  // Watch streams are newline-delimited JSON; never let httplib buffer or decompress them.
  http_->set_decompress(false);
}

KubeClient::~KubeClient() = default;

namespace {
// A page of 500 pods is a few MiB; ten times the largest seen is still far inside memory limits.
constexpr std::size_t kMaxResponseBytes = std::size_t{256} << 20;
}  // namespace

void KubeClient::cancel() {
  std::lock_guard<std::mutex> lock(client_mutex_);
  if (http_) http_->stop();
}

KubeResponse KubeClient::get(const std::string& path_and_query, std::chrono::milliseconds read_timeout) {
  return request("GET", path_and_query, std::string(), {}, read_timeout, nullptr);
}

KubeResponse KubeClient::send(std::string_view method, const std::string& path_and_query, const std::string& body,
                              std::string_view content_type, std::chrono::milliseconds read_timeout) {
  if (method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE") {
    KubeResponse response;
    response.error = "unsupported method '" + std::string(method) + "' (POST, PUT, PATCH, DELETE)";
    return response;
  }
  return request(method, path_and_query, body, content_type, read_timeout, nullptr);
}

void ignore_sigpipe_unless_handled() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
}

namespace {

// httplib names its errors in one word ("Connection", "Read"); a log line says what happened.
std::string describe_transport_error(httplib::Error error, const std::string& host) {
  const std::string name = httplib::to_string(error);
  switch (error) {
    case httplib::Error::Connection: return "cannot connect to " + host + " (" + name + ")";
    case httplib::Error::ConnectionTimeout: return "connecting to " + host + " timed out (" + name + ")";
    case httplib::Error::Read: return "the connection broke or timed out while reading (" + name + ")";
    case httplib::Error::Write: return "the connection broke while sending the request (" + name + ")";
    case httplib::Error::Canceled: return "canceled (" + name + ")";
    case httplib::Error::SSLConnection: return "the TLS handshake failed (" + name + ")";
    case httplib::Error::SSLServerVerification:
      return "the server certificate is not trusted by the configured CA, or does not name " + host + " (" + name + ")";
    default: return name;
  }
}

}  // namespace

KubeResponse KubeClient::stream(const std::string& path_and_query, std::chrono::milliseconds idle_timeout,
                                const std::function<bool(std::string_view)>& on_data) {
  return request("GET", path_and_query, std::string(), {}, idle_timeout, &on_data);
}

KubeResponse KubeClient::request(std::string_view method, const std::string& path_and_query, const std::string& body_out,
                                 std::string_view content_type, std::chrono::milliseconds read_timeout,
                                 const std::function<bool(std::string_view)>* on_data) {
  KubeResponse response;
  httplib::Headers headers = {{"Accept", "application/json"}, {"User-Agent", "gpu-admit"}};
  if (!content_type.empty()) headers.emplace("Content-Type", std::string(content_type));
  std::string token;
  try {
    token = config_.bearer_token();
  } catch (const KubeConfigError& error) {
    response.error = error.what();
    return response;
  }
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  http_->set_read_timeout(read_timeout);
  const std::string target = config_.path_prefix + path_and_query;

  int status = 0;
  std::string error_body, body;
  bool too_large = false;
  // A list page is read whole, up to kMaxResponseBytes: an answer without end (a broken or hostile
  // server) fails the request instead of growing the process.
  const std::function<bool(std::string_view)> collect = [&](std::string_view data) {
    if (body.size() + data.size() > kMaxResponseBytes) {
      too_large = true;
      return false;
    }
    body.append(data);
    return true;
  };
  if (on_data == nullptr) on_data = &collect;
  bool delivered = false;  // whether any of the answer reached on_data
  // Any 2xx answer is the answer (a 201 Created holds the object written); others are refusals,
  // whose metav1.Status is kept, bounded, for the message.
  auto success = [&] { return status >= 200 && status < 300; };
  httplib::Request req;
  req.method = std::string(method);
  req.path = target;
  req.headers = std::move(headers);
  req.body = body_out;
  req.response_handler = [&](const httplib::Response& head) {
    status = head.status;
    // One allocation for a list page instead of doubling its way up (a page of pods is a
    // few MiB), with room for the padding the list reader appends.
    const std::string length = head.get_header_value("Content-Length");
    if (success() && !length.empty() && length.size() <= 12 &&
        length.find_first_not_of("0123456789") == std::string::npos)
      body.reserve(std::min<std::size_t>(std::stoull(length), kMaxResponseBytes) + 64);
    return true;
  };
  req.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
    if (!success()) {  // an error answer: keep its Status body for the message
      if (error_body.size() < (1 << 20)) error_body.append(data, length);
      return true;
    }
    delivered = true;
    return (*on_data)(std::string_view(data, length));
  };
  // A kept-alive connection the server closed while idle fails the next request before any
  // answer; like Go's transport, try once more on a new connection, but only then, and never a
  // POST (a create that did reach the server would be made twice).
  const bool reused = http_->is_socket_open() != 0;
  httplib::Result result = http_->send(req);
  if (!result && reused && method != "POST" && status == 0 && !delivered &&
      (result.error() == httplib::Error::Read || result.error() == httplib::Error::Write)) {
    error_body.clear();
    result = http_->send(req);
  }
  if (result) {
    response.status = result->status;
    response.body = on_data == &collect && success() ? std::move(body) : std::move(error_body);
    return response;
  }
  if (too_large) {
    response.status = 0;
    response.error = "the answer is larger than " + std::to_string(kMaxResponseBytes >> 20) + " MiB";
    return response;
  }
  response.status = status;  // the head may have arrived before the body failed
  response.body = std::move(error_body);
  response.error = describe_transport_error(result.error(), config_.host);
  return response;
}

}  // namespace gpuadmit::kube
