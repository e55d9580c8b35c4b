// Helpers for end-to-end tests of `gpu-admit serve`: the real binary as a child process on
// loopback with dev certificates, an HTTPS client for it, and the admission oracle over the
// answers. Header-only: included by the *_e2e_test.cpp files.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/command_output.h"
#include "webhook/server/tls_reloader.h"

namespace gpuadmit::testing::e2e {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline const std::string kSource = GPUADMIT_SOURCE_DIR;
inline const std::string kBinary = std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit";
inline const std::string kOracle = std::string(GPUADMIT_BINARY_DIR) + "/oracle/oracle.mjs";

using gpuadmit::testing::read_text;

inline void write_text(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".new";
  std::ofstream(temporary, std::ios::binary) << text;
  fs::rename(temporary, path);  // as a ConfigMap or Secret update does: never half a file
}

inline std::string golden_request(const std::string& name) {
  return read_text(kSource + "/tests/golden/" + name + "/request.json");
}

// Polls `condition` every 20 ms until it holds or `limit` passes.
template <typename Condition>
inline bool eventually(Condition condition, std::chrono::milliseconds limit = 8000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "gpuadmit-e2e-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void make_certs(const fs::path& dir) {
  const std::string command = kSource + "/certs/make-dev-certs.sh " + dir.string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// The real binary as a child process; its JSON log lines go to a file the test reads.
// A client connection made by hand, for what a client library would not send (stalled, split,
// oversized requests): plain TCP, a TLS handshake left unfinished, or a full one.
class RawConnection {
 public:
  enum class Mode { tcp, tls };
  explicit RawConnection(int port, Mode mode = Mode::tls) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (!connected_ || mode == Mode::tcp) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    handshaken_ = SSL_connect(ssl_) == 1;
  }
  ~RawConnection() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  bool handshaken() const { return handshaken_; }
  int fd() const { return fd_; }
  // The serial of the certificate the server presented ("" without a handshake).
  std::string peer_serial() const {
    if (!ssl_) return {};
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl_), X509_free);
    return cert ? gpuadmit::webhook::serial_hex(cert.get()) : std::string();
  }
  bool send(const std::string& bytes) {
    if (ssl_) return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size());
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Whether the server has something to say (or closed) within `limit`.
  bool readable(std::chrono::milliseconds limit) {
    if (ssl_ && SSL_pending(ssl_) > 0) return true;
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(limit.count())) > 0;
  }
  // Reads until the peer closes or `limit` passes without data.
  std::string read_all(std::chrono::seconds limit = 10s) {
    timeval timeout{static_cast<time_t>(limit.count()), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::string text;
    char buffer[16384];
    for (;;) {
      errno = 0;
      int n = ssl_ ? SSL_read(ssl_, buffer, sizeof buffer) : static_cast<int>(::recv(fd_, buffer, sizeof buffer, 0));
      if (n <= 0) {
        closed_ = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        break;
      }
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
  }
  // After read_all: whether it ended because the server closed (not a timeout).
  bool closed() const { return closed_; }
  // Whether the server closed the connection within `limit` (TCP level: EOF or reset).
  bool closed_within(std::chrono::milliseconds limit) {
    if (!readable(limit)) return false;
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false, handshaken_ = false, closed_ = false;
};

class ServerProcess {
 public:
  static constexpr std::chrono::milliseconds kStartLimit = 30000ms;
  // max_open_files > 0: the server's RLIMIT_NOFILE.
  ServerProcess(const fs::path& dir, std::vector<std::string> extra, rlim_t max_open_files = 0)
      : log_(dir / "server.log"), output_(dir / "server.stdout") {
    std::vector<std::string> args = {kBinary, "serve", "--addr", "127.0.0.1:0",
                                     "--tls-cert", (dir / "tls.crt").string(),
                                     "--tls-key", (dir / "tls.key").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    // A client writing to a connection the server refused must fail, not kill the test process
    // (CTest runs each test in a process of its own, where nothing else ignores SIGPIPE).
    ::signal(SIGPIPE, SIG_IGN);
    // Everything the child needs is built before fork: the test process has threads (the fake
    // API server's), and one of them may hold the allocator's lock at the fork, so the child
    // must not allocate before execv.
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // Should the test process die anyway, the server goes with it instead of holding CTest's pipe.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      dup2(::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
      if (max_open_files > 0) {
        const rlimit limit{max_open_files, max_open_files};
        setrlimit(RLIMIT_NOFILE, &limit);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    std::smatch match;
    const std::regex listening(R"("msg":"listening".*"port":(\d+))");
    // Generous: a sanitizer build's first start on a busy CI machine is slow.
    const bool started = eventually(
        [&] {
          std::string text = read_text(log_);
          if (!std::regex_search(text, match, listening)) return false;
          port_ = std::stoi(match[1]);
          return true;
        },
        kStartLimit);
    if (!started) {
      // Say why, with what the server wrote, instead of leaving every later request to fail.
      const int status = wait_exit(0ms);
      ADD_FAILURE() << "gpu-admit serve did not log \"listening\" within " << kStartLimit.count() << " ms; "
                    << (status < 0 ? "it is still running" : "it exited with status " + std::to_string(status))
                    << ". Its log:\n" << log();
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_text(log_); }  // stderr: the JSON log lines
  std::string output() const { return read_text(output_); }  // stdout: nothing, ever
  void signal(int number) { kill(pid_, number); }
  // The exit status, or -1 if the process is still running after `limit`.
  int wait_exit(std::chrono::milliseconds limit) {
    int status = 0;
    bool done = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, limit);
    if (!done) return -1;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  fs::path log_, output_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool exited_ = false;
};

inline std::unique_ptr<httplib::SSLClient> client_for(int port, const fs::path& dir) {
  auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  client->set_ca_cert_path((dir / "ca.crt").c_str());
  client->enable_server_certificate_verification(true);
  client->set_keep_alive(true);
  client->set_read_timeout(10, 0);
  return client;
}

// Collects request/response pairs and has the oracle check them all at once.
class OracleCheck {
 public:
  explicit OracleCheck(const fs::path& dir) : dir_(dir / "oracle") { fs::create_directories(dir_); }
  void add(const std::string& request, const std::string& response, bool validating) {
    const std::string stem = (dir_ / std::to_string(count_++)).string();
    write_text(stem + ".request.json", request);
    write_text(stem + ".response.json", response);
    (validating ? validating_ : mutating_) += " " + stem + ".request.json " + stem + ".response.json";
  }
  void expect_all_ok() {
    ASSERT_TRUE(fs::exists(kOracle)) << "admission oracle not installed: run scripts/setup.sh";
    const std::vector<std::pair<std::string, std::string>> runs = {{mutating_, ""}, {validating_, " --validating"}};
    for (const auto& [pairs, flags] : runs) {
      if (pairs.empty()) continue;
      const std::string out = (dir_ / "result.jsonl").string();
      // Exit status 1 means a check failed: each line says which, below.
      const int status = std::system(("node " + kOracle + " check" + flags + pairs + " >" + out + " 2>&1").c_str());
      (void)status;
      std::istringstream lines(read_text(out));
      int checked = 0;
      for (std::string line; std::getline(lines, line);) {
        json result = json::parse(line, nullptr, false);
        ASSERT_FALSE(result.is_discarded()) << line;
        EXPECT_TRUE(result.value("ok", false)) << line;
        ++checked;
      }
      EXPECT_GT(checked, 0);
    }
  }

 private:
  fs::path dir_;
  int count_ = 0;
  std::string mutating_, validating_;
};


}  // namespace gpuadmit::testing::e2e
