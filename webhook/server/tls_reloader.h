// The serving certificate, re-read when its files change. cert-manager and the kubelet rotate a
// Secret in place; every new TLS handshake picks the current pair through SSL_CTX_set_cert_cb,
// so rotation needs no restart and connections already open keep going. A bad new pair (unreadable,
// mismatched key) leaves the old one serving.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpuadmit::webhook {

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What identifies a file's version without reading it: a Secret update swaps a symlink (new
// inode), an in-place write changes the size or modification time.
struct FileStamp {
  bool exists = false;
  unsigned long long inode = 0, device = 0, size = 0;
  long long mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp stamp_of(const std::string& path);

// One certificate chain and its private key, checked to match.
struct CertifiedKey {
  std::unique_ptr<X509, decltype(&X509_free)> cert{nullptr, X509_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};
  STACK_OF(X509)* chain = nullptr;  // intermediates after the leaf, owned
  std::string subject;
  std::string serial;
  std::chrono::system_clock::time_point not_before, not_after;
  ~CertifiedKey();
};

// A certificate's serial number in hex, as logs and /readyz show it ("" when it has none).
std::string serial_hex(const X509* cert);

// Reads a PEM certificate chain and key; throws TlsError saying what is wrong.
std::shared_ptr<const CertifiedKey> load_certified_key(const std::string& cert_path,
                                                       const std::string& key_path);

class CertificateStore {
 public:
  // Loads the pair; throws TlsError when it is unusable (the server cannot start without one).
  CertificateStore(std::string cert_path, std::string key_path);

  std::shared_ptr<const CertifiedKey> current() const;
  // Re-reads the files when either changed. Returns nullopt when nothing changed, else whether
  // the new pair was taken; `error` says why not.
  std::optional<bool> reload_if_changed(std::string& error);
  // Empty when the current certificate is valid now, else why not (expired, not yet valid).
  std::string validity_problem() const;
  std::string last_error() const;

  // Makes every handshake on `ctx` use current().
  void install(SSL_CTX* ctx);

 private:
  static int select_certificate(SSL* ssl, void* self);

  const std::string cert_path_, key_path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const CertifiedKey> current_;
  FileStamp cert_stamp_, key_stamp_;
  std::string last_error_;
};

struct TlsSettings {
  std::string client_ca_path;  // when set, clients must present a certificate signed by it
};

// TLS 1.2 minimum, forward-secret AEAD ciphers only (Mozilla's "intermediate" list), no
// compression or renegotiation, the store's certificate, and optional client verification.
// Throws TlsError.
void configure_tls_context(SSL_CTX* ctx, CertificateStore& store, const TlsSettings& settings);

// Calls `on_failure` for every TLS connection freed before its handshake completed.
void count_handshake_failures(SSL_CTX* ctx, std::function<void()>* on_failure);

}  // namespace gpuadmit::webhook
