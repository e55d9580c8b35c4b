// Structured JSON logs, one object per line, through spdlog: what an operator greps and what a
// log pipeline indexes. Every front door logs through these.
#pragma once

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/sink.h>

#include <cstdio>

#include <memory>
#include <string>

namespace gpuadmit::webhook {

// A logger writing {"time":...,"level":...,<fields>} lines to stderr. Lines are formatted on the
// caller's thread and written by a background thread (see make_background_sink), so a review
// never waits on the write; logger->flush() writes everything logged so far before it returns,
// and warnings and errors are flushed as they are logged.
std::shared_ptr<spdlog::logger> make_json_logger(const std::string& name, spdlog::level::level_enum level);

// A sink that appends formatted lines to a buffer and lets one background thread write the buffer
// to `out`: when idle a line goes out at once; after each write the thread pauses 1 ms, so under
// load the lines of that millisecond go out in one write. flush()
// is synchronous (what is logged before it is written when it returns, in order), and so is the
// sink's destruction. Past `max_pending` bytes buffered, the logging thread writes them itself
// rather than let the buffer grow.
std::shared_ptr<spdlog::sinks::sink> make_background_sink(std::FILE* out, std::size_t max_pending = 1 << 20);

// Writes `fields` (a JSON object) as the rest of one log line.
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, const std::string& message,
               nlohmann::json fields = nlohmann::json::object());

}  // namespace gpuadmit::webhook
