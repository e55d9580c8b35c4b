// End-to-end tests of `gpu-admit serve` against hostile clients and hostile load: slowloris,
// idle floods, half handshakes, oversized headers, compressed and endless chunked bodies,
// pipelining, HTTP/1.0, plain HTTP on the TLS port, and the connection limits. Each attack is
// made with raw sockets and OpenSSL while a well-behaved client checks that reviews are still
// answered. Bounds are generous: these run on loaded 2-core machines.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/server_process.h"

namespace {

using namespace gpuadmit::testing::e2e;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using Conn = RawConnection;

// The value of a metric series, or -1.
double metric(int port, const fs::path& dir, const std::string& series) {
  auto client = client_for(port, dir);
  auto result = client->Get("/metrics");
  if (!result || result->status != 200) return -1;
  std::istringstream lines(result->body);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  return -1;
}

std::string closed_metric(const std::string& reason) {
  return "gpuadmit_connections_closed_total{reason=\"" + reason + "\"}";
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

std::string post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class ServerHostile : public ::testing::Test {
 protected:
  void SetUp() override { make_certs(dir_.path()); }

  // A good review over a fresh connection: whether it was answered 200, and how long it took.
  std::pair<bool, Clock::duration> good_review(int port) {
    const auto start = Clock::now();
    auto client = client_for(port, dir_.path());
    auto answer = client->Post("/mutate", golden_request("mutate--pod-gpu-basic"), "application/json");
    return {answer && answer->status == 200, Clock::now() - start};
  }

  TempDir dir_;
};

TEST_F(ServerHostile, PipelinedRequestsAreAnsweredInOrder) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn conn(server.port());
  ASSERT_TRUE(conn.handshaken());
  // Three requests in one write: each is answered, in the order sent.
  ASSERT_TRUE(conn.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
                        post("/mutate", golden_request("mutate--pod-gpu-basic")) +
                        "GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  const std::string answers = conn.read_all();
  EXPECT_TRUE(conn.closed());
  const auto first = answers.find("HTTP/1.1 200"), second = answers.find("HTTP/1.1 200", first + 1),
             third = answers.find("HTTP/1.1 404");
  ASSERT_NE(first, std::string::npos) << answers;
  ASSERT_NE(second, std::string::npos) << answers;
  ASSERT_NE(third, std::string::npos) << answers;
  EXPECT_LT(second, third);
  EXPECT_NE(answers.find("\"AdmissionReview\""), std::string::npos) << answers;
  EXPECT_EQ(answers.substr(first, second - first).find("AdmissionReview"), std::string::npos)
      << "the /healthz answer came second";
  EXPECT_EQ(count_of(answers, "HTTP/1.1 "), 3u) << answers;
}

TEST_F(ServerHostile, Http10IsAnsweredAndClosed) {
  ServerProcess server(dir_.path(), {"--keep-alive-timeout", "60"});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn conn(server.port());
  ASSERT_TRUE(conn.handshaken());
  const auto start = Clock::now();
  ASSERT_TRUE(conn.send("GET /healthz HTTP/1.0\r\n\r\n"));
  const std::string answer = conn.read_all(20s);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\nok\n")) << answer;
  EXPECT_TRUE(conn.closed());
  EXPECT_LT(Clock::now() - start, 10s) << "kept open like a keep-alive connection";
}

TEST_F(ServerHostile, ExpectContinueGetsAHundredThenTheAnswer) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn conn(server.port());
  ASSERT_TRUE(conn.handshaken());
  const std::string body = golden_request("mutate--pod-gpu-basic");
  const std::string head = post("/validate", body, "Expect: 100-continue\r\nConnection: close\r\n");
  ASSERT_TRUE(conn.send(head.substr(0, head.size() - body.size())));
  ASSERT_TRUE(conn.readable(5000ms));
  ASSERT_TRUE(conn.send(body));
  const std::string answer = conn.read_all();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")) << answer;
}

TEST_F(ServerHostile, CompressedBodiesAreRefusedNotDecoded) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  for (const std::string encoding : {"gzip", "br", "deflate"}) {
    Conn conn(server.port());
    ASSERT_TRUE(conn.handshaken());
    ASSERT_TRUE(conn.send(post("/mutate", std::string(64, 'x'), "Content-Encoding: " + encoding + "\r\n")));
    const std::string answer = conn.read_all();
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 415")) << encoding << ": " << answer;
    EXPECT_NE(answer.find("uncompressed"), std::string::npos) << answer;
  }
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("encoding")) == 3; }));
  EXPECT_EQ(metric(server.port(), dir_.path(), R"(gpuadmit_http_requests_total{code="415",route="mutate"})"), 3);
  // "identity" is no encoding at all.
  Conn plain(server.port());
  ASSERT_TRUE(plain.handshaken());
  ASSERT_TRUE(plain.send(post("/mutate", golden_request("mutate--pod-gpu-basic"), "Content-Encoding: identity\r\nConnection: close\r\n")));
  EXPECT_TRUE(plain.read_all().starts_with("HTTP/1.1 200"));
}

TEST_F(ServerHostile, ChunkedBodyOverTheLimitIsCutOffEarly) {
  ServerProcess server(dir_.path(), {"--max-body-bytes", "65536"});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn conn(server.port());
  ASSERT_TRUE(conn.handshaken());
  ASSERT_TRUE(conn.send("POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"));
  // An endless body (up to 200 MB), sent until the server answers.
  const std::string chunk = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";
  std::size_t sent = 0;
  bool answered = false;
  while (sent < 200u * 1024 * 1024) {
    // Not before 256 KiB: TLS 1.3 session tickets make the socket readable right after the
    // handshake, and the server answers after 64 KiB.
    if (sent >= 256u * 1024 && conn.readable(0ms)) {
      answered = true;
      break;
    }
    if (!conn.send(chunk)) break;
    sent += chunk.size();
  }
  const std::string answer = conn.read_all();
  EXPECT_TRUE(answered || answer.starts_with("HTTP/1.1 413"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer.substr(0, 200);
  EXPECT_LT(sent, 32u * 1024 * 1024) << "the server read on far past the limit";
  // Counted when the connection is closed, after the answer and a short linger.
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("too_large")) == 1; }));
  EXPECT_EQ(metric(server.port(), dir_.path(), R"(gpuadmit_http_requests_total{code="413",route="mutate"})"), 1);
  EXPECT_TRUE(good_review(server.port()).first);
}

TEST_F(ServerHostile, TooManyOrTooLargeHeadersGet431) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  {
    std::string many = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < 200; ++i) many += "X-Header-" + std::to_string(i) + ": v\r\n";
    Conn conn(server.port());
    ASSERT_TRUE(conn.handshaken());
    ASSERT_TRUE(conn.send(many + "\r\n"));
    const std::string answer = conn.read_all();
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer;
    EXPECT_TRUE(conn.closed());
  }
  {
    Conn conn(server.port());
    ASSERT_TRUE(conn.handshaken());
    ASSERT_TRUE(conn.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n"));
    const std::string answer = conn.read_all();
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer.substr(0, 200);
  }
  {
    Conn conn(server.port());
    ASSERT_TRUE(conn.handshaken());
    ASSERT_TRUE(conn.send("GET /" + std::string(16 * 1024, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    EXPECT_TRUE(conn.read_all().starts_with("HTTP/1.1 414"));
  }
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("headers_too_large")) == 3; }));
  // A request with a fair number of headers is fine.
  Conn fine(server.port());
  ASSERT_TRUE(fine.handshaken());
  std::string some = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (int i = 0; i < 50; ++i) some += "X-Header-" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
  ASSERT_TRUE(fine.send(some + "\r\n"));
  EXPECT_TRUE(fine.read_all().starts_with("HTTP/1.1 200"));
}

TEST_F(ServerHostile, SlowlorisConnectionsDoNotDelayReviews) {
  ServerProcess server(dir_.path(), {"--keep-alive-timeout", "60", "--header-timeout", "60",
                                     "--handshake-timeout", "60", "--read-timeout", "60"});
  ASSERT_GT(server.port(), 0) << server.log();
  std::vector<std::unique_ptr<Conn>> attackers;
  // 40 stalled handshakes (a TLS record header, then nothing), 40 stalled headers, 20 stalled bodies:
  // more than httplib's 64 workers could ever hold at once.
  for (int i = 0; i < 40; ++i) {
    attackers.push_back(std::make_unique<Conn>(server.port(), Conn::Mode::tcp));
    ASSERT_TRUE(attackers.back()->send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  }
  for (int i = 0; i < 60; ++i) {
    attackers.push_back(std::make_unique<Conn>(server.port()));
    ASSERT_TRUE(attackers.back()->handshaken()) << i;
    const std::string head = i < 40 ? "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"
                                    : "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{";
    ASSERT_TRUE(attackers.back()->send(head));
  }
  for (int round = 0; round < 3; ++round) {
    const auto [ok, took] = good_review(server.port());
    EXPECT_TRUE(ok) << server.log();
    EXPECT_LT(took, 3s) << "round " << round;
    auto client = client_for(server.port(), dir_.path());
    auto healthz = client->Get("/healthz");
    ASSERT_TRUE(healthz);
    EXPECT_EQ(healthz->status, 200);
  }
  EXPECT_GE(metric(server.port(), dir_.path(), "gpuadmit_connections_open"), 100);
}

TEST_F(ServerHostile, IdleTlsFloodDoesNotDelayReviews) {
  ServerProcess server(dir_.path(), {"--keep-alive-timeout", "60", "--max-connections-per-client", "1000"});
  ASSERT_GT(server.port(), 0) << server.log();
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<Conn>(server.port()));
    ASSERT_TRUE(idle.back()->handshaken()) << i;
  }
  for (int round = 0; round < 3; ++round) {
    const auto [ok, took] = good_review(server.port());
    EXPECT_TRUE(ok);
    EXPECT_LT(took, 3s) << "round " << round;
  }
  EXPECT_GE(metric(server.port(), dir_.path(), "gpuadmit_connections_open"), 200);
  // Every idle one still works.
  ASSERT_TRUE(idle.front()->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(idle.front()->read_all().starts_with("HTTP/1.1 200"));
}

TEST_F(ServerHostile, ConnectionsPastTheLimitsAreClosedCountedAndLoggedOnce) {
  for (const bool per_client : {true, false}) {
    fs::remove(dir_.path() / "server.log");
    ServerProcess server(dir_.path(), per_client ? std::vector<std::string>{"--max-connections-per-client", "10"}
                                                 : std::vector<std::string>{"--max-connections", "10"});
    ASSERT_GT(server.port(), 0) << server.log();
    std::vector<std::unique_ptr<Conn>> conns;
    for (int i = 0; i < 16; ++i) {
      conns.push_back(std::make_unique<Conn>(server.port(), Conn::Mode::tcp));
      ASSERT_TRUE(conns.back()->connected());
    }
    std::this_thread::sleep_for(1s);  // well before the 5 s handshake timeout closes the others
    int closed = 0;
    for (auto& conn : conns) closed += conn->closed_within(0ms) ? 1 : 0;
    EXPECT_EQ(closed, 6) << (per_client ? "per client" : "total");
    conns.clear();
    const std::string reason = per_client ? "limit_per_client" : "limit_total";
    double counted = -1;
    EXPECT_TRUE(eventually([&] {
      counted = metric(server.port(), dir_.path(), closed_metric(reason));
      return counted >= 6;  // a scrape refused before the others were closed counts too
    })) << counted;
    // One log line (the first), not one per connection; the rest are in the next line, an
    // interval later.
    const std::string log = server.log();
    EXPECT_EQ(count_of(log, "\"reason\":\"" + reason + "\""), 1u) << log;
    EXPECT_NE(log.find("\"msg\":\"connections rejected\""), std::string::npos) << log;
  }
}

// Out of descriptors, the listener takes each waiting connection with its reserve descriptor
// and closes it, instead of spinning on a listening socket that stays readable; it serves again
// once descriptors are free.
TEST_F(ServerHostile, ConnectionsPastTheDescriptorLimitAreClosedAndCounted) {
  ServerProcess server(dir_.path(), {}, /*max_open_files=*/64);
  ASSERT_GT(server.port(), 0) << server.log();
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < 100; ++i) conns.push_back(std::make_unique<Conn>(server.port(), Conn::Mode::tcp));
  int closed = 0;
  EXPECT_TRUE(eventually([&] {
    closed = 0;
    for (auto& conn : conns) closed += conn->closed_within(0ms) ? 1 : 0;
    return closed >= 40;  // 100 less the ~50 descriptors the server has for connections
  })) << closed;
  conns.clear();
  EXPECT_TRUE(eventually([&] { return good_review(server.port()).first; })) << server.log();
  // The scrape too may meet a descriptor the server has not closed yet (-1): asked again.
  double counted = -1;
  EXPECT_TRUE(eventually([&] {
    counted = metric(server.port(), dir_.path(), closed_metric("fd_exhausted"));
    return counted >= 40;
  })) << counted;
  EXPECT_EQ(count_of(server.log(), R"("reason":"fd_exhausted")"), 1u) << server.log();
}

TEST_F(ServerHostile, PlainHttpOnTheTlsPortIsClosedAndTheServerCarriesOn) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  for (int i = 0; i < 5; ++i) {
    Conn conn(server.port(), Conn::Mode::tcp);
    ASSERT_TRUE(conn.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto start = Clock::now();
    const std::string answer = conn.read_all();
    EXPECT_TRUE(answer.empty() || answer.starts_with("HTTP/1.1 400")) << answer;
    EXPECT_LT(Clock::now() - start, 5s);
  }
  EXPECT_TRUE(good_review(server.port()).first);
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("plain_http")) == 5; }));
}

// A handshake whose first record arrives in pieces (a slow or fragmenting network) is TLS, not
// plain HTTP: the check of the first byte must not look into the middle of the stream.
TEST_F(ServerHostile, AClientHelloSplitAcrossPacketsStillHandshakes) {
  ServerProcess server(dir_.path(), {});
  ASSERT_GT(server.port(), 0) << server.log();
  for (const std::size_t split : {1u, 3u, 7u}) {
    Conn tcp(server.port(), Conn::Mode::tcp);
    ASSERT_TRUE(tcp.connected());
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    bool done = false, first = true;
    for (int round = 0; round < 20 && !done; ++round) {
      done = SSL_do_handshake(ssl) == 1;
      char buffer[16384];
      std::string pending;
      for (int n; (n = BIO_read(out, buffer, sizeof buffer)) > 0;) pending.append(buffer, static_cast<std::size_t>(n));
      if (first && pending.size() > split) {
        ASSERT_EQ(::send(tcp.fd(), pending.data(), split, MSG_NOSIGNAL), static_cast<ssize_t>(split));
        std::this_thread::sleep_for(300ms);  // the server sees the first bytes alone
        pending.erase(0, split);
        first = false;
      }
      if (!pending.empty()) {
        ASSERT_TRUE(tcp.send(pending));
      }
      if (done) break;
      const ssize_t n = ::recv(tcp.fd(), buffer, sizeof buffer, 0);
      if (n <= 0) break;
      BIO_write(in, buffer, static_cast<int>(n));
    }
    EXPECT_TRUE(done) << "split after " << split << " bytes";
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("plain_http")) == 0; }));
}

TEST_F(ServerHostile, HandshakeTimeoutClosesUnfinishedHandshakes) {
  ServerProcess server(dir_.path(), {"--handshake-timeout", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn silent(server.port(), Conn::Mode::tcp);
  Conn partial(server.port(), Conn::Mode::tcp);
  ASSERT_TRUE(partial.send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  const auto start = Clock::now();
  EXPECT_TRUE(silent.closed_within(6000ms));
  EXPECT_TRUE(partial.closed_within(6000ms));
  EXPECT_GT(Clock::now() - start, 500ms);
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("handshake_timeout")) == 2; }));
  EXPECT_GE(metric(server.port(), dir_.path(), "gpuadmit_tls_handshake_failures_total"), 2);
}

TEST_F(ServerHostile, IdleKeepAliveAndStalledBodiesAreClosed) {
  ServerProcess server(dir_.path(), {"--keep-alive-timeout", "1", "--read-timeout", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  Conn idle(server.port());
  ASSERT_TRUE(idle.handshaken());
  Conn stalled(server.port());
  ASSERT_TRUE(stalled.handshaken());
  ASSERT_TRUE(stalled.send("POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"));
  EXPECT_EQ(idle.read_all(), "");
  EXPECT_TRUE(idle.closed());
  EXPECT_TRUE(stalled.read_all().starts_with("HTTP/1.1 400"));
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("idle")) >= 1; }));
  EXPECT_TRUE(eventually([&] { return metric(server.port(), dir_.path(), closed_metric("body_timeout")) == 1; }));
}

}  // namespace
