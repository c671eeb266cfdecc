#include "physio/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

namespace physio {

std::string JsonEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

namespace {
// %j: the message, escaped so that every line stays valid JSON.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string escaped = JsonEscape(std::string(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};
}  // namespace

namespace {
// Behind every logger: lines are formatted on the caller's thread and
// appended to a bounded buffer; one background thread writes the buffer to
// stderr in a single write every 50 ms (at once for warnings and errors).
// Measured: spdlog's own async logger wakes its thread for every line, which on
// 2 cores cost about a third of a cached read's throughput; this wakes it 20
// times a second. A full buffer makes the caller wait: no line is dropped.
class BatchedStderr {
 public:
  static constexpr std::size_t kMaxBuffered = 4 << 20;

  BatchedStderr() : writer_([this] { Run(); }) {}
  ~BatchedStderr() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    writer_.join();
  }

  // From a fatal-signal handler: writes what is buffered now, on this thread.
  // Gives up after a short wait if the crashed thread itself held the buffer's lock.
  void WriteNowBeforeDeath() {
    std::unique_lock lock(mutex_, std::defer_lock);
    for (int attempt = 0; attempt < 100 && !lock.try_lock(); ++attempt) usleep(2000);
    if (!lock.owns_lock()) return;
    for (std::size_t done = 0; done < buffer_.size();) {
      const ssize_t n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  void Append(const char* data, std::size_t size, bool urgent) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return stopping_ || buffer_.size() < kMaxBuffered; });
    buffer_.append(data, size);
    if (urgent || buffer_.size() >= kMaxBuffered) {
      urgent_ = true;
      wake_.notify_one();
    }
  }

 private:
  void Run() {
    std::string writing;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || urgent_; });
        urgent_ = false;
        writing.swap(buffer_);
        if (writing.empty() && stopping_) return;
      }
      room_.notify_all();
      for (std::size_t done = 0; done < writing.size();) {
        const ssize_t n = ::write(STDERR_FILENO, writing.data() + done, writing.size() - done);
        if (n <= 0) break;  // stderr gone: nothing better to do with log lines
        done += static_cast<std::size_t>(n);
      }
      writing.clear();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable room_;
  std::string buffer_;
  bool urgent_ = false;
  bool stopping_ = false;
  std::thread writer_;
};

// One sink per logger (a sink has one formatter), all appending to one BatchedStderr.
class BatchingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit BatchingSink(std::shared_ptr<BatchedStderr> out) : out_(std::move(out)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    out_->Append(formatted.data(), formatted.size(), msg.level >= spdlog::level::warn);
  }
  void flush_() override { out_->Append("", 0, true); }

 private:
  std::shared_ptr<BatchedStderr> out_;
};

// The buffer a fatal-signal handler flushes (the process's one BatchedStderr).
std::atomic<BatchedStderr*> crash_flush_target{nullptr};

// Access lines are pre-formatted JSON members ("key":value,...) spliced into the object.
std::shared_ptr<spdlog::logger> access_logger;
std::mutex access_logger_mutex;

std::string LinePrefix(const std::string& service) {
  return R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","service":")" + JsonEscape(service) + R"(",)";
}

std::unique_ptr<spdlog::pattern_formatter> Formatter(const std::string& pattern) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessageFlag>('j').set_pattern(pattern);
  return formatter;
}
}  // namespace

void InitJsonLogging(const std::string& service, const std::string& level) {
  // One buffer and writer thread for the process, shared by both loggers.
  static const auto out = std::make_shared<BatchedStderr>();
  crash_flush_target.store(out.get());
  // Not registered by name: tests start several services in one process.
  auto logger = std::make_shared<spdlog::logger>("physio", std::make_shared<BatchingSink>(out));
  logger->set_formatter(Formatter(LinePrefix(service) + R"("thread":%t,"msg":"%j"})"));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);

  auto access = std::make_shared<spdlog::logger>("physio-access", std::make_shared<BatchingSink>(out));
  access->set_formatter(Formatter(LinePrefix(service) + R"("kind":"access",%v})"));
  access->set_level(spdlog::level::from_str(level));
  std::lock_guard lock(access_logger_mutex);
  access_logger = access;
}

void FlushLogsBeforeDeath() {
  if (BatchedStderr* out = crash_flush_target.load()) out->WriteNowBeforeDeath();
}

void LogAccess(const AccessRecord& record) {
  std::shared_ptr<spdlog::logger> logger;
  {
    std::lock_guard lock(access_logger_mutex);
    logger = access_logger;
  }
  if (!logger || !logger->should_log(spdlog::level::info)) return;
  const double ms = std::chrono::duration<double, std::milli>(record.duration).count();
  if (record.trace_id.empty()) {
    logger->info(R"("method":"{}","tenant":"{}","principal":"{}","request_id":"{}","code":"{}","duration_ms":{:.3f})",
                 JsonEscape(record.method), JsonEscape(record.tenant), JsonEscape(record.principal),
                 JsonEscape(record.request_id), record.code, ms);
  } else {
    logger->info(
        R"("method":"{}","tenant":"{}","principal":"{}","request_id":"{}","code":"{}","duration_ms":{:.3f},"trace_id":"{}")",
        JsonEscape(record.method), JsonEscape(record.tenant), JsonEscape(record.principal),
        JsonEscape(record.request_id), record.code, ms, record.trace_id);
  }
}

}  // namespace physio
