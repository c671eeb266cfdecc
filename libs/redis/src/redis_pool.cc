#include "physio/redis/redis_pool.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/text_list.h"

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

std::vector<std::pair<std::string, int>> ParseRedisAddresses(const std::string& list) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& item : SplitCommaList(list)) {
    if (item.empty()) continue;
    const auto colon = item.rfind(':');
    const std::string port = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (colon == 0 || !IsPortNumber(port)) {
      throw std::invalid_argument("redis-sentinels: '" + item + "' is not host:port");
    }
    out.emplace_back(item.substr(0, colon), std::stoi(port));
  }
  return out;
}

RedisConnection::Context RedisConnection::Dial(const std::string& host, int port, std::chrono::milliseconds budget,
                                               const std::string& user, const std::string& password) {
  Context context(redisConnectWithTimeout(host.c_str(), port, ToTimeval(budget)));
  if (!context || context->err) {
    std::string why = context ? context->errstr : "out of memory";
    Unavailable("connect to " + host + ":" + std::to_string(port) + " failed: " + why);
  }
  if (redisSetTimeout(context.get(), ToTimeval(budget)) != REDIS_OK) Unavailable("cannot set timeout");
  if (!password.empty()) {
    std::vector<const char*> args{"AUTH"};
    if (!user.empty()) args.push_back(user.c_str());
    args.push_back(password.c_str());
    RedisReply reply(static_cast<redisReply*>(
        redisCommandArgv(context.get(), static_cast<int>(args.size()), args.data(), nullptr)));
    // The server's text may name the user; the log gets that it was refused, not why.
    if (!reply || reply->type == REDIS_REPLY_ERROR) Unavailable("authentication refused by " + host + ":" + std::to_string(port));
  }
  return context;
}

namespace {
// One sentinel's answer: where it says the master is, and the configuration epoch of that
// answer (each failover gets a higher one; -1 when the sentinel would not say).
struct MasterAnswer {
  std::string host;
  int port = 0;
  long long config_epoch = -1;
};

std::string_view TextOf(const redisReply* reply) {
  return reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS)
             ? std::string_view(reply->str, reply->len)
             : std::string_view();
}

// SENTINEL MASTER's reply: a flat array of names and values; the configuration epoch in it
// (-1 when the reply has none: an ACL refusing the subcommand, say).
long long ConfigEpochOf(const redisReply* reply) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return -1;
  for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
    if (TextOf(reply->element[i]) != "config-epoch") continue;
    const auto epoch = TextOf(reply->element[i + 1]);
    long long told = -1;
    const auto [end, error] = std::from_chars(epoch.data(), epoch.data() + epoch.size(), told);
    return error == std::errc() && end == epoch.data() + epoch.size() && told >= 0 ? told : -1;
  }
  return -1;
}

// SENTINEL get-master-addr-by-name's reply: [host, port]. During a failover it already names
// the promoted replica, while SENTINEL MASTER still gives the old address.
std::optional<MasterAnswer> ReadMasterAddress(const redisReply* reply) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
  const std::string port(TextOf(reply->element[1]));
  if (TextOf(reply->element[0]).empty() || !IsPortNumber(port)) return std::nullopt;
  return MasterAnswer{std::string(TextOf(reply->element[0])), std::stoi(port), -1};
}
}  // namespace

std::vector<std::size_t> SentinelSilence::ToAsk(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::vector<std::size_t> ask;
  for (std::size_t i = 0; i < quiet_until_.size(); ++i) {
    if (quiet_until_[i] <= now) ask.push_back(i);
  }
  if (ask.size() < quiet_until_.size() / 2 + 1) {
    ask.resize(quiet_until_.size());
    for (std::size_t i = 0; i < ask.size(); ++i) ask[i] = i;
  }
  return ask;
}

void SentinelSilence::NoAnswer(std::size_t index, Clock::time_point until) {
  std::lock_guard lock(mutex_);
  quiet_until_.at(index) = until;
  ++silences_.at(index);
}

std::vector<SentinelSilence::State> SentinelSilence::States(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::vector<State> states(quiet_until_.size());
  for (std::size_t i = 0; i < states.size(); ++i) states[i] = {quiet_until_[i] > now, silences_[i]};
  return states;
}

void SentinelSilence::Answered(std::size_t index) {
  std::lock_guard lock(mutex_);
  quiet_until_.at(index) = Clock::time_point{};
}

namespace {
// What one sentinel said: its answer, or why there is none (`silent`: it did not answer at all,
// as opposed to answering that it does not know the master).
struct SentinelReply {
  std::optional<MasterAnswer> answer;
  std::string failure;
  bool silent = false;
};
}  // namespace

RedisConnection::Context RedisConnection::DialMaster(Clock::time_point deadline) {
  // Every sentinel is asked, and the newest configuration wins. Asking one in turn was not
  // enough: right after a failover the sentinels that have not heard of it yet still name
  // the old master, and an old master restarted meanwhile answers ROLE "master" (with the
  // data it had when it died) until the sentinels demote it, which takes them about 8 s. A
  // sentinel that does not tell its epoch (an ACL allowing only get-master-addr-by-name) ranks
  // below every one that does. They are asked at once, each within the same budget, so a
  // sentinel that does not answer costs that budget once, not once per sentinel listed after
  // it; and one that did not answer is left out of the dials that follow for a while.
  std::string failures;
  const auto note = [&failures](const std::string& why) { failures += (failures.empty() ? "" : "; ") + why; };
  const auto budget = std::min(options_.connect_timeout, Until(deadline));
  if (budget.count() <= 0) Unavailable("no master found through the sentinels: deadline exceeded");
  const auto asked_until = Clock::now() + budget;
  const auto ask = [&](const std::string& host, int port) {
    SentinelReply reply;
    const std::string where = host + ":" + std::to_string(port);
    try {
      auto sentinel = Dial(host, port, Until(asked_until), options_.sentinel_user, options_.sentinel_password);
      const char* address_of[] = {"SENTINEL", "get-master-addr-by-name", options_.master_name.c_str()};
      RedisReply address(static_cast<redisReply*>(redisCommandArgv(sentinel.get(), 3, address_of, nullptr)));
      reply.answer = ReadMasterAddress(address.get());
      if (!reply.answer) {
        reply.silent = !address;
        reply.failure = where + (address ? " does not know master " + options_.master_name : " did not answer");
        return reply;
      }
      // The epoch is asked within what is left of the same budget.
      const auto left = Until(asked_until);
      if (left.count() > 0 && redisSetTimeout(sentinel.get(), ToTimeval(left)) == REDIS_OK) {
        const char* record[] = {"SENTINEL", "MASTER", options_.master_name.c_str()};
        RedisReply full(static_cast<redisReply*>(redisCommandArgv(sentinel.get(), 3, record, nullptr)));
        reply.answer->config_epoch = ConfigEpochOf(full.get());
      }
    } catch (const Error& e) {
      reply.silent = true;  // not reached, or refused us (a wrong password): either way no answer
      reply.failure = e.what();
    }
    return reply;
  };
  const std::vector<std::size_t> asked = silence_.ToAsk(Clock::now());
  std::vector<SentinelReply> replies(asked.size());
  {
    // One thread per sentinel after the first, which this thread asks; each ends by `asked_until`.
    std::vector<std::jthread> others;
    for (std::size_t k = 1; k < asked.size(); ++k) {
      others.emplace_back([&, k] {
        const auto& [host, port] = options_.sentinels[asked[k]];
        replies[k] = ask(host, port);
      });
    }
    if (!asked.empty()) replies[0] = ask(options_.sentinels[asked[0]].first, options_.sentinels[asked[0]].second);
  }
  std::vector<MasterAnswer> answers;
  for (std::size_t k = 0; k < asked.size(); ++k) {
    if (replies[k].silent) {
      silence_.NoAnswer(asked[k], Clock::now() + options_.sentinel_quiet);
    } else {
      silence_.Answered(asked[k]);
    }
    if (replies[k].answer) {
      answers.push_back(std::move(*replies[k].answer));
    } else {
      note(replies[k].failure);
    }
  }
  // Only the newest configuration's master, never an older one that still answers ROLE
  // "master": when it cannot be reached the call is UNAVAILABLE and the caller retries.
  // Unknown epochs (-1) all tie, in the order the sentinels are listed.
  long long newest = -1;
  for (const auto& answer : answers) newest = std::max(newest, answer.config_epoch);
  std::vector<std::string> tried;
  for (const auto& answer : answers) {
    if (answer.config_epoch != newest) continue;
    const std::string where = answer.host + ":" + std::to_string(answer.port);
    if (std::find(tried.begin(), tried.end(), where) != tried.end()) continue;
    tried.push_back(where);
    const auto budget = std::min(options_.connect_timeout, Until(deadline));
    if (budget.count() <= 0) break;
    try {
      auto master = Dial(answer.host, answer.port, budget, options_.user, options_.password);
      // During a failover a sentinel may still name the old master, now a replica.
      const char* role[] = {"ROLE"};
      RedisReply is(static_cast<redisReply*>(redisCommandArgv(master.get(), 1, role, nullptr)));
      if (!is || is->type != REDIS_REPLY_ARRAY || is->elements == 0 || TextOf(is->element[0]) != "master") {
        note(where + " (named by a sentinel) is not the master");
        continue;
      }
      endpoint_ = where;
      return master;
    } catch (const Error& e) {
      note(e.what());
    }
  }
  Unavailable("no master found through the sentinels: " + (failures.empty() ? "deadline exceeded" : failures));
}

void RedisConnection::Connect(Clock::time_point deadline) {
  auto budget = std::min(options_.connect_timeout, Until(deadline));
  if (budget.count() <= 0) Unavailable("deadline exceeded before connecting");
  dialled_epoch_ = epoch_ ? epoch_->Current() : 0;
  applied_timeout_ = std::chrono::milliseconds(-1);  // Dial left the connect budget: set before the first command
  if (!options_.sentinels.empty()) {
    context_ = DialMaster(deadline);
    return;
  }
  context_ = Dial(options_.host, options_.port, budget, options_.user, options_.password);
  endpoint_ = options_.host + ":" + std::to_string(options_.port);
}

void RedisConnection::AwaitReplicas(Clock::time_point deadline) {
  if (options_.wait_replicas <= 0) return;
  // WAIT 0 would wait forever: at least 1 ms, and within the socket timeout Command sets.
  const auto left = Until(deadline) - std::chrono::milliseconds(20);
  const auto wait = std::max(std::chrono::milliseconds(1), std::min(options_.wait_timeout, left));
  auto reply = Command({"WAIT", std::to_string(options_.wait_replicas), std::to_string(wait.count())}, deadline);
  if (reply->type != REDIS_REPLY_INTEGER) Unavailable("WAIT answered unexpectedly");
  if (reply->integer < options_.wait_replicas) {
    Unavailable("write reached " + std::to_string(reply->integer) + " of " + std::to_string(options_.wait_replicas) +
                " replicas in time (it may be lost by a failover); retry");
  }
}

RedisReply RedisConnection::Command(const std::vector<std::string>& argv, Clock::time_point deadline) {
  if (context_ && epoch_ && dialled_epoch_ != epoch_->Current()) context_.reset();  // dialled before Redis went away
  if (!context_) Connect(deadline);
  auto budget = std::min(options_.command_timeout, Until(deadline));
  if (budget.count() <= 0) Unavailable("deadline exceeded");
  // Bounds this command by the caller's deadline. Set again whenever it differs from the
  // one this connection has (a new connection has none): with the deadline far off it is
  // the command timeout every time, and two setsockopt calls per command were ~1% of a read.
  if (budget != applied_timeout_) {
    if (redisSetTimeout(context_.get(), ToTimeval(budget)) != REDIS_OK) {
      context_.reset();
      Unavailable("cannot set timeout");
    }
    applied_timeout_ = budget;
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
    // A master demoted to a replica (a failover), or one that lost its replicas:
    // every pooled connection asks the sentinels again.
    for (std::string_view moved : {"READONLY", "NOREPLICAS"}) {
      if (message.starts_with(moved)) {
        std::string why(message);
        freeReplyObject(raw);
        context_.reset();
        if (epoch_) epoch_->StoreLost();
        Unavailable("not the master: " + why);
      }
    }
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
      silence_(options_.sentinels.size()),
      connections_(options_.pool_size,
                   [this] { return std::make_unique<RedisConnection>(options_, silence_, &epoch_); }, "redis") {
  if (options_.sentinels.empty()) return;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw std::runtime_error("redis: eventfd failed");
  for (std::size_t i = 0; i < options_.sentinels.size(); ++i) {
    watchers_.emplace_back([this, i](std::stop_token stop) { WatchSentinel(i, stop); });
  }
}

RedisPool::~RedisPool() {
  if (stop_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = write(stop_fd_, &one, sizeof one);
  watchers_.clear();  // each sees stop_fd_ readable and returns; joined here
  close(stop_fd_);
}

void RedisPool::WatchSentinel(std::size_t index, std::stop_token stop) {
  const auto& [host, port] = options_.sentinels[index];
  const std::string where = host + ":" + std::to_string(port);
  const std::string prefix = options_.master_name + " ";
  bool warned = false;
  int retry_ms = 1000;
  // True when the pool is going (stop_fd_ readable) within `timeout_ms` (-1: no limit) or `fd` is readable.
  const auto stopping = [this, &stop](int fd, int timeout_ms) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    while (poll(fds, fd < 0 ? 1 : 2, timeout_ms) < 0 && errno == EINTR) {
    }
    return stop.stop_requested() || (fds[0].revents & POLLIN) != 0;
  };
  while (!stop.stop_requested()) {
    retry_ms = 1000;
    try {
      auto sentinel = RedisConnection::Dial(host, port, options_.connect_timeout, options_.sentinel_user,
                                            options_.sentinel_password);
      const char* subscribe[] = {"SUBSCRIBE", "+switch-master"};
      redisEnableKeepAlive(sentinel.get());  // a sentinel gone without a word is noticed
      RedisReply subscribed(static_cast<redisReply*>(redisCommandArgv(sentinel.get(), 2, subscribe, nullptr)));
      if (!subscribed || subscribed->type != REDIS_REPLY_ARRAY) {
        retry_ms = subscribed ? 10000 : 1000;  // a refusal (an ACL) is not asked again each second
        Unavailable(subscribed ? "SUBSCRIBE +switch-master was refused" : "the sentinel did not answer SUBSCRIBE");
      }
      warned = false;
      // Messages: ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"].
      // The socket timeout Dial set bounds reading the rest of a message poll saw begin.
      while (!stopping(sentinel->fd, -1)) {
        void* raw = nullptr;
        if (redisGetReply(sentinel.get(), &raw) != REDIS_OK) Unavailable("the sentinel closed the subscription");
        // One read may bring several messages: those already read are parsed without waiting.
        for (; raw != nullptr; raw = nullptr, redisGetReplyFromReader(sentinel.get(), &raw)) {
          RedisReply message(static_cast<redisReply*>(raw));
          if (message->type != REDIS_REPLY_ARRAY || message->elements != 3) continue;
          const auto text = TextOf(message->element[2]);
          if (!text.starts_with(prefix)) continue;
          {
            // Each sentinel announces the same failover as it learns of it: once is enough.
            std::lock_guard lock(last_switch_mutex_);
            if (text == last_switch_) continue;
            last_switch_ = std::string(text);
          }
          spdlog::warn("redis: sentinel {} announced a new master ({}); every connection dials again", where,
                       text.substr(prefix.size()));
          failovers_heard_.fetch_add(1);
          epoch_.StoreLost();
        }
      }
      return;
    } catch (const std::exception& e) {
      if (!warned) {
        spdlog::warn("redis: not listening to sentinel {} for failovers, trying again every {} s: {}", where,
                     retry_ms / 1000, e.what());
      }
      warned = true;
    }
    if (stopping(-1, retry_ms)) return;
  }
}

RedisReply RedisPool::Command(const std::vector<std::string>& argv, Clock::time_point deadline) {
  auto lease = Lease(deadline);
  return lease->Command(argv, deadline);
}

RedisScript::RedisScript(std::string body) : body_(std::move(body)), sha1_(Sha1Hex(body_)) {}

RedisReply RedisPool::EvalOn(RedisConnection& connection, const RedisScript& script,
                             const std::vector<std::string>& keys, const std::vector<std::string>& args,
                             Clock::time_point deadline) {
  auto build = [&](const std::string& verb, const std::string& body) {
    std::vector<std::string> argv{verb, body, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  auto reply = connection.Command(build("EVALSHA", script.sha1()), deadline);
  std::string message;
  if (IsErrorReply(reply.get(), &message) && message.rfind("NOSCRIPT", 0) == 0) {
    reply = connection.Command(build("EVAL", script.body()), deadline);
  }
  return reply;
}

RedisReply RedisPool::Eval(const RedisScript& script, const std::vector<std::string>& keys,
                           const std::vector<std::string>& args, Clock::time_point deadline) {
  auto lease = Lease(deadline);
  return EvalOn(*lease, script, keys, args, deadline);
}

RedisReply RedisPool::CommandDurable(const std::vector<std::string>& argv, Clock::time_point deadline) {
  auto lease = Lease(deadline);
  auto reply = lease->Command(argv, deadline);
  if (!IsErrorReply(reply.get())) lease->AwaitReplicas(deadline);
  return reply;
}

RedisReply RedisPool::EvalDurable(const RedisScript& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args, Clock::time_point deadline) {
  auto lease = Lease(deadline);
  auto reply = EvalOn(*lease, script, keys, args, deadline);
  if (!IsErrorReply(reply.get())) lease->AwaitReplicas(deadline);
  return reply;
}

std::pair<std::string, int> RedisPool::Endpoint(Clock::time_point deadline) {
  auto lease = Lease(deadline);
  lease->Command({"PING"}, deadline);
  const std::string endpoint = lease->endpoint();
  const auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) Unavailable("no endpoint known");
  return {endpoint.substr(0, colon), std::stoi(endpoint.substr(colon + 1))};
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
