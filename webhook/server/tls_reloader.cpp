#include "webhook/server/tls_reloader.h"

#include "engine/input_limits.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <sstream>

namespace gpuadmit::webhook {
namespace {

// Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange, AEAD ciphers. TLS 1.3 suites are
// all modern and keep OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += (text.empty() ? "" : "; ") + std::string(buffer);
  }
  return text.empty() ? "no detail from OpenSSL" : text;
}

// Regular files of bounded size only: a FIFO in place of a key must not block the reload thread.
std::string read_file(const std::string& path, const std::string& what) {
  try {
    return read_input_file(path);
  } catch (const InputError& error) {
    throw TlsError(what + " " + error.what());
  }
}

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string format_time(std::chrono::system_clock::time_point time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// Ex-data slots: on each connection, the failure callback while its handshake is unfinished; on
// the context, that callback.
int connection_slot = -1;
int context_slot = -1;

void on_connection_freed(void*, void* pending, CRYPTO_EX_DATA*, int, long, void*) {
  if (pending) (*static_cast<std::function<void()>*>(pending))();
}

void on_handshake_progress(const SSL* ssl, int where, int) {
  SSL* mutable_ssl = const_cast<SSL*>(ssl);
  if (where & SSL_CB_HANDSHAKE_START) {
    if (SSL_is_init_finished(ssl)) return;  // a renegotiation or a TLS 1.3 post-handshake message
    SSL_set_ex_data(mutable_ssl, connection_slot,
                    SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), context_slot));
  } else if (where & SSL_CB_HANDSHAKE_DONE) {
    SSL_set_ex_data(mutable_ssl, connection_slot, nullptr);
  }
}

}  // namespace

FileStamp stamp_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  return {true, static_cast<unsigned long long>(info.st_ino), static_cast<unsigned long long>(info.st_dev),
          static_cast<unsigned long long>(info.st_size),
          static_cast<long long>(info.st_mtim.tv_sec) * 1000000000LL + info.st_mtim.tv_nsec};
}

CertifiedKey::~CertifiedKey() {
  if (chain) sk_X509_pop_free(chain, X509_free);
}

std::shared_ptr<const CertifiedKey> load_certified_key(const std::string& cert_path,
                                                       const std::string& key_path) {
  const std::string cert_pem = read_file(cert_path, "certificate");
  const std::string key_pem = read_file(key_path, "private key");
  ERR_clear_error();
  auto pair = std::make_shared<CertifiedKey>();
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  pair->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!pair->cert)
    throw TlsError("certificate " + cert_path + ": no PEM certificate (" + openssl_errors() + ")");
  pair->chain = sk_X509_new_null();
  while (X509* intermediate = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr))
    sk_X509_push(pair->chain, intermediate);
  ERR_clear_error();  // the loop ends on "no start line"

  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  pair->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!pair->key)
    throw TlsError("private key " + key_path + ": no PEM private key (" + openssl_errors() + ")");
  if (X509_check_private_key(pair->cert.get(), pair->key.get()) != 1)
    throw TlsError("certificate " + cert_path + " and private key " + key_path + " do not match");

  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(pair->cert.get()), subject, sizeof subject);
  pair->subject = subject;
  pair->serial = serial_hex(pair->cert.get());
  pair->not_before = to_time_point(X509_get0_notBefore(pair->cert.get()));
  pair->not_after = to_time_point(X509_get0_notAfter(pair->cert.get()));
  return pair;
}

std::string serial_hex(const X509* cert) {
  std::string text;
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      text = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  return text;
}

CertificateStore::CertificateStore(std::string cert_path, std::string key_path)
    : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {
  cert_stamp_ = stamp_of(cert_path_);
  key_stamp_ = stamp_of(key_path_);
  current_ = load_certified_key(cert_path_, key_path_);
}

std::shared_ptr<const CertifiedKey> CertificateStore::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::optional<bool> CertificateStore::reload_if_changed(std::string& error) {
  FileStamp cert_stamp = stamp_of(cert_path_), key_stamp = stamp_of(key_path_);
  {
    std::lock_guard lock(mutex_);
    if (cert_stamp == cert_stamp_ && key_stamp == key_stamp_) return std::nullopt;
    cert_stamp_ = cert_stamp;
    key_stamp_ = key_stamp;
  }
  try {
    auto pair = load_certified_key(cert_path_, key_path_);
    std::lock_guard lock(mutex_);
    current_ = std::move(pair);
    last_error_.clear();
    return true;
  } catch (const TlsError& failure) {
    error = failure.what();
    std::lock_guard lock(mutex_);
    last_error_ = error;
    return false;
  }
}

std::string CertificateStore::validity_problem() const {
  auto pair = current();
  auto now = std::chrono::system_clock::now();
  if (now < pair->not_before) return "certificate not valid before " + format_time(pair->not_before);
  if (now > pair->not_after) return "certificate expired at " + format_time(pair->not_after);
  return {};
}

std::string CertificateStore::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

int CertificateStore::select_certificate(SSL* ssl, void* self) {
  auto pair = static_cast<CertificateStore*>(self)->current();
  return SSL_use_cert_and_key(ssl, pair->cert.get(), pair->key.get(), pair->chain, 1) == 1 ? 1 : 0;
}

void CertificateStore::install(SSL_CTX* ctx) {
  auto pair = current();
  if (SSL_CTX_use_cert_and_key(ctx, pair->cert.get(), pair->key.get(), pair->chain, 1) != 1)
    throw TlsError("cannot use the certificate: " + openssl_errors());
  SSL_CTX_set_cert_cb(ctx, &CertificateStore::select_certificate, this);
}

void configure_tls_context(SSL_CTX* ctx, CertificateStore& store, const TlsSettings& settings) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1)
    throw TlsError("cannot set the TLS 1.2 ciphers: " + openssl_errors());
  store.install(ctx);
  if (!settings.client_ca_path.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.client_ca_path.c_str(), nullptr) != 1)
      throw TlsError("client CA " + settings.client_ca_path + ": " + openssl_errors());
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca_path.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
    // Asked for, verified when sent (a bad one fails the handshake), but not demanded here: the
    // kubelet's probes of /healthz and /readyz carry none. The server demands it on every other
    // route (WebhookServer::route).
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
}

void count_handshake_failures(SSL_CTX* ctx, std::function<void()>* on_failure) {
  static std::once_flag slots;
  std::call_once(slots, [] {
    connection_slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, on_connection_freed);
    context_slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  });
  SSL_CTX_set_ex_data(ctx, context_slot, on_failure);
  SSL_CTX_set_info_callback(ctx, on_handshake_progress);
}

}  // namespace gpuadmit::webhook
