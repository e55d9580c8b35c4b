// Helpers for end-to-end tests of `gpu-admit serve`: the real binary as a child process on
// loopback with dev certificates, an HTTPS client for it, and the admission oracle over the
// answers. Header-only: included by the *_e2e_test.cpp files.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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

namespace gpuadmit::testing::e2e {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline const std::string kSource = GPUADMIT_SOURCE_DIR;
inline const std::string kBinary = std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit";
inline const std::string kOracle = std::string(GPUADMIT_BINARY_DIR) + "/oracle/oracle.mjs";

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

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
class ServerProcess {
 public:
  ServerProcess(const fs::path& dir, std::vector<std::string> extra) : log_(dir / "server.log") {
    std::vector<std::string> args = {kBinary, "serve", "--addr", "127.0.0.1:0",
                                     "--tls-cert", (dir / "tls.crt").string(),
                                     "--tls-key", (dir / "tls.key").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    // A client writing to a connection the server refused must fail, not kill the test process
    // (CTest runs each test in a process of its own, where nothing else ignores SIGPIPE).
    ::signal(SIGPIPE, SIG_IGN);
    pid_ = fork();
    if (pid_ == 0) {
      // Should the test process die anyway, the server goes with it instead of holding CTest's pipe.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    std::smatch match;
    const std::regex listening(R"("msg":"listening".*"port":(\d+))");
    eventually([&] {
      std::string text = read_text(log_);
      if (!std::regex_search(text, match, listening)) return false;
      port_ = std::stoi(match[1]);
      return true;
    });
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_text(log_); }
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
  fs::path log_;
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
