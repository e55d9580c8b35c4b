// The background log writer (webhook/log/json_log.h) loses and reorders nothing, and its JSON
// line format stays as it is.
#include <gtest/gtest.h>

#include <spdlog/logger.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "webhook/log/json_log.h"

namespace gpuadmit {
namespace {

std::string read_all(std::FILE* file) {
  std::rewind(file);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  return text;
}

// Lines logged from many threads all arrive, each thread's in order; flush() has written
// everything logged before it when it returns (what the SIGTERM path relies on).
void check_background_sink(std::size_t max_pending) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    auto logger = std::make_shared<spdlog::logger>("test", webhook::make_background_sink(file, max_pending));
    logger->set_pattern("%v");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) logger->info("{} {}", t, i);
      });
    for (std::thread& thread : threads) thread.join();
    logger->flush();
    const std::string text = read_all(file);
    std::istringstream lines(text);
    std::vector<int> next(4, 0);
    int total = 0;
    for (int t, i; lines >> t >> i; ++total) {
      ASSERT_TRUE(t >= 0 && t < 4);
      EXPECT_EQ(i, next[static_cast<std::size_t>(t)]) << "thread " << t << " out of order";
      next[static_cast<std::size_t>(t)] = i + 1;
    }
    EXPECT_EQ(total, 8000);
    logger->info("last");
  }  // the sink's destruction writes what is still pending
  EXPECT_TRUE(read_all(file).ends_with("1999\nlast\n"));
  std::fclose(file);
}

TEST(BackgroundLog, LosesAndReordersNothing) { check_background_sink(1 << 20); }
TEST(BackgroundLog, LosesAndReordersNothingWhenTheLoggersWriteThemselves) { check_background_sink(64); }

TEST(BackgroundLog, JsonLineFormatIsUnchanged) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  auto logger = std::make_shared<spdlog::logger>("test", webhook::make_background_sink(file));
  logger->set_pattern(R"({"level":"%l",%v})");
  webhook::log_event(*logger, spdlog::level::info, "review",
                     {{"route", "mutate"}, {"status", 200}, {"zeta", true}, {"msg", "overridden"}});
  logger->flush();
  EXPECT_EQ(read_all(file), R"({"level":"info","msg":"overridden","route":"mutate","status":200,"zeta":true})"
                            "\n");
  std::fclose(file);
}

}  // namespace
}  // namespace gpuadmit
