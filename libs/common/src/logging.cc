#include "physio/common/logging.h"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

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
  // One bounded queue and one writer thread for the whole process; a full queue
  // makes the caller wait (lines are not dropped).
  static std::once_flag pool_once;
  std::call_once(pool_once, [] {
    spdlog::init_thread_pool(8192, 1);
    spdlog::flush_every(std::chrono::seconds(1));
  });
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // Not registered by name: tests start several services in one process.
  auto logger = std::make_shared<spdlog::async_logger>("physio", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
  logger->set_formatter(Formatter(LinePrefix(service) + R"("thread":%t,"msg":"%j"})"));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);

  auto access = std::make_shared<spdlog::async_logger>("physio-access", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
  access->set_formatter(Formatter(LinePrefix(service) + R"("kind":"access",%v})"));
  access->set_level(spdlog::level::from_str(level));
  access->flush_on(spdlog::level::warn);
  std::lock_guard lock(access_logger_mutex);
  access_logger = access;
}

void LogAccess(const AccessRecord& record) {
  std::shared_ptr<spdlog::logger> logger;
  {
    std::lock_guard lock(access_logger_mutex);
    logger = access_logger;
  }
  if (!logger || !logger->should_log(spdlog::level::info)) return;
  const double ms = std::chrono::duration<double, std::milli>(record.duration).count();
  logger->info(R"("method":"{}","tenant":"{}","principal":"{}","request_id":"{}","code":"{}","duration_ms":{:.3f})",
               JsonEscape(record.method), JsonEscape(record.tenant), JsonEscape(record.principal),
               JsonEscape(record.request_id), record.code, ms);
}

}  // namespace physio
