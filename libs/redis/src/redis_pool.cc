#include "physio/redis/redis_pool.h"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <string_view>

#include "physio/common/error.h"
#include "physio/common/ids.h"

namespace physio {

namespace {
timeval ToTimeval(std::chrono::milliseconds ms) {
  if (ms.count() < 1) ms = std::chrono::milliseconds(1);
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::chrono::milliseconds Until(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

[[noreturn]] void Unavailable(const std::string& why) { throw Error(ErrorCode::kUnavailable, "redis: " + why); }
}  // namespace

void RedisConnection::NoteLostIfGone(int hiredis_error, int saved_errno) {
  if (epoch_ == nullptr) return;
  if (hiredis_error == REDIS_ERR_EOF ||
      (hiredis_error == REDIS_ERR_IO && (saved_errno == ECONNRESET || saved_errno == EPIPE))) {
    epoch_->StoreLost();
  }
}

void RedisConnection::Connect(Clock::time_point deadline) {
  auto budget = std::min(options_.connect_timeout, Until(deadline));
  if (budget.count() <= 0) Unavailable("deadline exceeded before connecting");
  dialled_epoch_ = epoch_ ? epoch_->Current() : 0;
  context_.reset(redisConnectWithTimeout(options_.host.c_str(), options_.port, ToTimeval(budget)));
  if (!context_ || context_->err) {
    std::string why = context_ ? context_->errstr : "out of memory";
    context_.reset();
    Unavailable("connect failed: " + why);
  }
  if (!options_.password.empty()) {
    if (redisSetTimeout(context_.get(), ToTimeval(budget)) != REDIS_OK) {
      context_.reset();
      Unavailable("cannot set timeout");
    }
    std::vector<const char*> args{"AUTH"};
    if (!options_.user.empty()) args.push_back(options_.user.c_str());
    args.push_back(options_.password.c_str());
    RedisReply reply(static_cast<redisReply*>(
        redisCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(), nullptr)));
    const bool refused = !reply || reply->type == REDIS_REPLY_ERROR;
    if (refused) {
      // The server's text may name the user; the log gets that it was refused, not why.
      context_.reset();
      Unavailable("authentication refused");
    }
  }
}

RedisReply RedisConnection::Command(const std::vector<std::string>& argv, Clock::time_point deadline) {
  if (context_ && epoch_ && dialled_epoch_ != epoch_->Current()) context_.reset();  // dialled before Redis went away
  if (!context_) Connect(deadline);
  auto budget = std::min(options_.command_timeout, Until(deadline));
  if (budget.count() <= 0) Unavailable("deadline exceeded");
  // Re-applied before every command: it bounds this command by the caller's deadline
  // and survives reconnects.
  if (redisSetTimeout(context_.get(), ToTimeval(budget)) != REDIS_OK) {
    context_.reset();
    Unavailable("cannot set timeout");
  }
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(), lengths.data()));
  if (raw == nullptr || context_->err) {
    const int saved_errno = errno;
    std::string why = context_->errstr;
    NoteLostIfGone(context_->err, saved_errno);
    if (raw) freeReplyObject(raw);
    context_.reset();  // a hiredis context is unusable after any error
    Unavailable("command failed: " + why);
  }
  // Redis answers these while it cannot serve yet (replaying its append-only
  // file after a restart, a script past its time limit): a store that is not
  // available, not a fault of the request.
  if (raw->type == REDIS_REPLY_ERROR) {
    const std::string_view message(raw->str, raw->len);
    for (std::string_view transient : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN"}) {
      if (message.starts_with(transient)) {
        std::string why(message);
        freeReplyObject(raw);
        Unavailable("not ready: " + why);
      }
    }
  }
  return RedisReply(raw);
}

void ReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }
void RedisConnection::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

RedisPool::RedisPool(RedisOptions options)
    : options_(std::move(options)),
      connections_(options_.pool_size, [this] { return std::make_unique<RedisConnection>(options_, &epoch_); },
                   "redis") {}

RedisReply RedisPool::Command(const std::vector<std::string>& argv, Clock::time_point deadline) {
  auto lease = Lease(deadline);
  return lease->Command(argv, deadline);
}

RedisReply RedisPool::Eval(const std::string& script, const std::vector<std::string>& keys,
                           const std::vector<std::string>& args, Clock::time_point deadline) {
  auto build = [&](const std::string& verb, const std::string& body) {
    std::vector<std::string> argv{verb, body, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  auto lease = Lease(deadline);
  auto reply = lease->Command(build("EVALSHA", Sha1Hex(script)), deadline);
  std::string message;
  if (IsErrorReply(reply.get(), &message) && message.rfind("NOSCRIPT", 0) == 0) {
    reply = lease->Command(build("EVAL", script), deadline);
  }
  return reply;
}

bool RedisPool::Ping(std::chrono::milliseconds timeout) {
  try {
    auto reply = Command({"PING"}, Clock::now() + timeout);
    return reply->type == REDIS_REPLY_STATUS;
  } catch (const Error&) {
    return false;
  }
}

std::optional<std::string> ReplyString(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) {
    return std::string(reply->str, reply->len);
  }
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  std::string message;
  if (IsErrorReply(reply, &message)) throw Error(ErrorCode::kInternal, "redis error reply: " + message);
  throw Error(ErrorCode::kInternal, "unexpected redis reply type");
}

bool IsErrorReply(const redisReply* reply, std::string* message) {
  if (reply->type != REDIS_REPLY_ERROR) return false;
  if (message) *message = std::string(reply->str, reply->len);
  return true;
}

}  // namespace physio
