#include "webhook/log/json_log.h"

#include "engine/json_writer.h"

#include <pthread.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace gpuadmit::webhook {
namespace {

// Not spdlog's async_logger: its flush() only queues a flush request and returns (spdlog 1.10),
// and the flush on warnings and on SIGTERM must have written the lines when it returns.
class BackgroundSink final : public spdlog::sinks::sink {
 public:
  static constexpr std::chrono::milliseconds kBatchInterval{1};

  BackgroundSink(std::FILE* out, std::size_t max_pending)
      : out_(out), max_pending_(max_pending), formatter_(std::make_unique<spdlog::pattern_formatter>()) {
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "gpuadmit-log");  // what top -H and perf show
      write_loop();
    });
  }

  ~BackgroundSink() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    writer_.join();
    flush();
  }

  void log(const spdlog::details::log_msg& msg) override {
    bool over = false;
    {
      std::lock_guard lock(mutex_);
      const bool was_empty = pending_.size() == 0;
      formatter_->format(msg, pending_);
      over = pending_.size() > max_pending_;
      // Only the first line of a batch wakes the writer; it takes whatever piled up meanwhile.
      if (was_empty && !over) ready_.notify_one();
    }
    if (over) flush();
  }

  // Writes what is pending now, in order after every batch already taken by the writer.
  void flush() override {
    std::lock_guard write_lock(write_mutex_);
    spdlog::memory_buf_t batch;
    {
      std::lock_guard lock(mutex_);
      std::swap(batch, pending_);
    }
    write(batch);
    std::fflush(out_);
  }

  void set_pattern(const std::string& pattern) override {
    set_formatter(std::make_unique<spdlog::pattern_formatter>(pattern));
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    std::lock_guard lock(mutex_);
    formatter_ = std::move(formatter);
  }

 private:
  void write_loop() {
    spdlog::memory_buf_t batch;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || pending_.size() > 0; });
        if (stopping_) return;  // the destructor flushes what is left
      }
      {
        // Lock order: write_mutex_, then mutex_ (as flush), so batches leave in the order taken.
        std::lock_guard write_lock(write_mutex_);
        {
          std::lock_guard lock(mutex_);
          std::swap(batch, pending_);
        }
        write(batch);
        batch.clear();  // keeps its capacity for the next swap
      }
      // Under load the lines of the next millisecond go out in one write: waking the writer for
      // each line cost a futex wake, a context switch and a write(2) per review. Meanwhile no
      // one waits on ready_, so a producer's notify is a no-op; flush() still writes at once.
      std::this_thread::sleep_for(kBatchInterval);
    }
  }

  void write(const spdlog::memory_buf_t& batch) {
    if (batch.size() > 0) std::fwrite(batch.data(), 1, batch.size(), out_);
  }

  std::FILE* const out_;
  const std::size_t max_pending_;
  std::mutex write_mutex_;  // held while a batch is taken and written
  std::mutex mutex_;        // guards pending_, formatter_, stopping_
  std::condition_variable ready_;
  spdlog::memory_buf_t pending_;
  std::unique_ptr<spdlog::formatter> formatter_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace

using nlohmann::json;

std::shared_ptr<spdlog::sinks::sink> make_background_sink(std::FILE* out, std::size_t max_pending) {
  return std::make_shared<BackgroundSink>(out, max_pending);
}

std::shared_ptr<spdlog::logger> make_json_logger(const std::string& name,
                                                 spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(name, make_background_sink(stderr));
  // The message is the rest of a JSON object that log_event has already escaped.
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                      spdlog::pattern_time_type::utc);
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, const std::string& message,
               json fields) {
  if (!logger.should_log(level)) return;
  // "msg" among the fields, in key order; a field of that name wins, as it always has.
  if (!fields.is_object()) fields = json::object();
  fields.emplace("msg", message);
  const std::string text = write_json(fields, json::error_handler_t::replace);
  // Drop the braces: the logger's pattern supplies them around time and level.
  logger.log(level, "{}", std::string_view(text).substr(1, text.size() - 2));
}

}  // namespace gpuadmit::webhook
