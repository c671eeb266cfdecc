#include "physio/redis/async_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "physio/common/error.h"
#include "physio/common/no_blocking.h"

namespace physio {

namespace {
// hiredis frees each reply right after its callback; OnReply takes the reply instead, and the
// reader's freeObject skips the one reply taken on this thread (every other object, such as a
// partial reply on a protocol error, is freed as usual).
thread_local void* taken_reply = nullptr;
void FreeUnlessTaken(void* object) {
  if (object != nullptr && object == taken_reply) {
    taken_reply = nullptr;
    return;
  }
  freeReplyObject(object);
}

AsyncRedis* Owner(const redisAsyncContext* ac) { return static_cast<AsyncRedis*>(ac->data); }
}  // namespace

std::size_t AsyncRedisReply::size() const {
  return reply_->type == REDIS_REPLY_ARRAY ? reply_->elements : 1;
}

std::optional<std::string_view> AsyncRedisReply::value(std::size_t i) const {
  const redisReply* r = reply_->type == REDIS_REPLY_ARRAY ? (i < reply_->elements ? reply_->element[i] : nullptr)
                                                          : (i == 0 ? reply_.get() : nullptr);
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return std::nullopt;
  return std::string_view(r->str, r->len);
}

AsyncRedis::AsyncRedis(RedisPool& pool, AsyncRedisOptions options) : pool_(pool), options_(options) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "async redis loop");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  loop_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

AsyncRedis::~AsyncRedis() {
  loop_.request_stop();
  Wake();
  loop_.join();
  std::vector<Completion> last;
  {
    std::lock_guard lock(mutex_);
    if (ac_ != nullptr) Drop("shutting down");
    last.swap(completions_);
  }
  for (auto& completion : last) completion.done(std::nullopt);
  close(wake_fd_);
  close(epoll_fd_);
}

void AsyncRedis::Wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
}

bool AsyncRedis::Send(const std::vector<std::string>& argv, Clock::time_point deadline, Done done) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto& pending = pending_.emplace_back();
  pending.done = std::move(done);
  pending.deadline = std::min(deadline, Clock::now() + options_.command_timeout);
  pending.self = std::prev(pending_.end());
  if (redisAsyncCommandArgv(ac_, &AsyncRedis::OnReply, &pending, static_cast<int>(args.size()), args.data(),
                            lengths.data()) != REDIS_OK) {
    pending_.pop_back();
    return false;
  }
  return true;
}

void AsyncRedis::WriteOrCork(bool loop_will_write) {
  if (loop_will_write) {
    corked_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Written from this thread: the loop is not woken to start a command.
  redisAsyncHandleWrite(ac_);
  ApplyInterest();
  // A write that failed dropped the connection and completed the command with no
  // answer: the loop runs its `done` (never this call).
  if (!completions_.empty()) Wake();
}

bool AsyncRedis::Command(const std::vector<std::string>& argv, Clock::time_point deadline, Done done) {
  if (!ready_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mutex_);
  if (ac_ == nullptr || !ready_.load() || pool_.epoch() != dialled_epoch_) return false;
  // A command sent earlier and not yet answered will wake the loop, which writes
  // whatever commands queued up meanwhile in one go (see Loop): no write here.
  const bool loop_will_write = !pending_.empty();
  if (!Send(argv, deadline, std::move(done))) return false;
  WriteOrCork(loop_will_write);
  return true;
}

bool AsyncRedis::EvalDurable(const RedisScript& script, const std::vector<std::string>& keys,
                             std::vector<std::string> args, Clock::time_point deadline, Done done) {
  if (!ready_.load(std::memory_order_acquire)) return false;
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.insert(argv.end(), {"EVALSHA", script.sha1(), std::to_string(keys.size())});
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  const int replicas = pool_.options().wait_replicas;
  std::lock_guard lock(mutex_);
  if (ac_ == nullptr || !ready_.load() || pool_.epoch() != dialled_epoch_) return false;
  const bool loop_will_write = !pending_.empty();
  if (replicas <= 0) {
    if (!Send(argv, deadline, std::move(done))) return false;
    WriteOrCork(loop_will_write);
    return true;
  }
  // WAIT must end before the command timeout drops the connection; a write the replicas
  // acknowledge later is "no answer" here, and the ordinary way replays it and waits longer.
  const auto now = Clock::now();
  const auto budget = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                               options_.command_timeout) -
                      std::chrono::milliseconds(50);
  const auto wait = std::max(std::chrono::milliseconds(1), std::min(pool_.options().wait_timeout, budget));
  // The script's reply, kept until WAIT's (replies come in order, on the loop thread).
  auto script_reply = std::make_shared<std::optional<AsyncRedisReply>>();
  if (!Send(argv, deadline, [script_reply](std::optional<AsyncRedisReply> reply) { *script_reply = std::move(reply); })) {
    return false;
  }
  const bool waited = Send({"WAIT", std::to_string(replicas), std::to_string(wait.count())}, deadline,
                           [script_reply, replicas, done](std::optional<AsyncRedisReply> reply) {
                             const redisReply* acknowledged = reply ? reply->get() : nullptr;
                             if (acknowledged == nullptr || acknowledged->type != REDIS_REPLY_INTEGER ||
                                 acknowledged->integer < replicas) {
                               done(std::nullopt);
                             } else {
                               done(std::move(*script_reply));
                             }
                           });
  if (!waited) {
    // hiredis took the script and refused WAIT (the connection is going): the script's reply
    // must not be handed out unacknowledged, so the connection goes and every command with it.
    pending_.back().done = [done](std::optional<AsyncRedisReply>) { done(std::nullopt); };
    Drop("could not queue WAIT");
    Wake();
    return true;
  }
  WriteOrCork(loop_will_write);
  return true;
}

void AsyncRedis::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  AsyncRedis* self = Owner(ac);
  auto* pending = static_cast<Pending*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  std::optional<AsyncRedisReply> answer;
  // A write that reached a replica (a failover demoted the server this connection reaches):
  // the connection goes, and the next dial asks the pool for the master.
  if (r != nullptr && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("READONLY")) {
    self->drop_requested_ = true;
  }
  if (r != nullptr && r->type != REDIS_REPLY_ERROR) {
    taken_reply = r;  // ours now: FreeUnlessTaken leaves it
    answer.emplace(RedisReply(r));
  }
  (answer ? self->answered_ : self->failed_).fetch_add(1);
  self->completions_.push_back(Completion{std::move(pending->done), std::move(answer)});
  self->pending_.erase(pending->self);
}

void AsyncRedis::OnReady(redisAsyncContext* ac, void* reply, void* /*privdata*/) {
  AsyncRedis* self = Owner(ac);
  const auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;  // the connection went away first
  if (r->type == REDIS_REPLY_ERROR) {
    spdlog::warn("async redis: the server refused the connection's first command; reads use the pool");
    self->drop_requested_ = true;  // not from inside hiredis's callback
    return;
  }
  self->ready_.store(true, std::memory_order_release);
}

void AsyncRedis::OnConnect(const redisAsyncContext* ac, int status) {
  if (status != REDIS_OK) {
    AsyncRedis* self = Owner(ac);
    self->ac_ = nullptr;  // hiredis frees it after this callback
    self->ready_.store(false);
  }
}

void AsyncRedis::OnDisconnect(const redisAsyncContext* ac, int /*status*/) {
  AsyncRedis* self = Owner(ac);
  if (self->ac_ == ac) {
    self->ac_ = nullptr;  // hiredis frees it after this callback
    self->ready_.store(false);
    self->drops_.fetch_add(1);
    self->next_dial_ = Clock::now() + self->options_.reconnect_interval;
  }
}

void AsyncRedis::AddRead(void* self) { static_cast<AsyncRedis*>(self)->want_read_ = true; }
void AsyncRedis::DelRead(void* self) { static_cast<AsyncRedis*>(self)->want_read_ = false; }
void AsyncRedis::AddWrite(void* self) { static_cast<AsyncRedis*>(self)->want_write_ = true; }
void AsyncRedis::DelWrite(void* self) { static_cast<AsyncRedis*>(self)->want_write_ = false; }
void AsyncRedis::Cleanup(void* self) {
  auto* owner = static_cast<AsyncRedis*>(self);
  owner->want_read_ = owner->want_write_ = false;
  if (owner->registered_fd_ >= 0) epoll_ctl(owner->epoll_fd_, EPOLL_CTL_DEL, owner->registered_fd_, nullptr);
  owner->registered_fd_ = -1;
  owner->registered_events_ = 0;
}

void AsyncRedis::ApplyInterest() {
  if (ac_ == nullptr || registered_fd_ < 0) return;
  const unsigned events = (want_read_ ? EPOLLIN : 0u) | (want_write_ ? EPOLLOUT : 0u);
  if (events == registered_events_) return;
  epoll_event event{};
  event.events = events;
  event.data.fd = registered_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, registered_fd_, &event);
  registered_events_ = events;
}

void AsyncRedis::Dial() {
  next_dial_ = Clock::now() + options_.reconnect_interval;
  dialled_epoch_ = pool_.epoch();  // before asking: a failover announced meanwhile dials again
  std::pair<std::string, int> endpoint;
  try {
    endpoint = pool_.Endpoint(Clock::now() + pool_.options().connect_timeout);
  } catch (const Error& e) {
    return;  // the pool logs and reports its own failures; try again later
  }
  redisAsyncContext* ac = redisAsyncConnect(endpoint.first.c_str(), endpoint.second);
  if (ac == nullptr) return;
  if (ac->err) {
    redisAsyncFree(ac);
    return;
  }
  ac->data = this;
  // The reader's functions, with freeObject replaced (see FreeUnlessTaken); the same for every reader.
  static redisReplyObjectFunctions functions = [&] {
    redisReplyObjectFunctions copy = *ac->c.reader->fn;
    copy.freeObject = &FreeUnlessTaken;
    return copy;
  }();
  ac->c.reader->fn = &functions;
  ac->ev.data = this;
  ac->ev.addRead = &AsyncRedis::AddRead;
  ac->ev.delRead = &AsyncRedis::DelRead;
  ac->ev.addWrite = &AsyncRedis::AddWrite;
  ac->ev.delWrite = &AsyncRedis::DelWrite;
  ac->ev.cleanup = &AsyncRedis::Cleanup;
  redisAsyncSetConnectCallback(ac, &AsyncRedis::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &AsyncRedis::OnDisconnect);
  ac_ = ac;
  dial_deadline_ = Clock::now() + pool_.options().connect_timeout + options_.command_timeout;
  registered_fd_ = ac->c.fd;
  registered_events_ = 0;
  epoll_event event{};
  event.data.fd = registered_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, registered_fd_, &event);
  // The first command authenticates (or only PINGs); the connection is ready when it is answered.
  const auto& options = pool_.options();
  std::vector<const char*> args;
  if (!options.password.empty()) {
    args.push_back("AUTH");
    if (!options.user.empty()) args.push_back(options.user.c_str());
    args.push_back(options.password.c_str());
  } else {
    args.push_back("PING");
  }
  redisAsyncCommandArgv(ac_, &AsyncRedis::OnReady, nullptr, static_cast<int>(args.size()), args.data(), nullptr);
  if (ac_ != nullptr) ApplyInterest();
}

void AsyncRedis::Drop(const char* why) {
  if (ac_ == nullptr) return;
  spdlog::warn("async redis: connection dropped ({}); reads use the pool until it is back", why);
  redisAsyncContext* ac = ac_;
  ac_ = nullptr;
  ready_.store(false);
  drops_.fetch_add(1);
  next_dial_ = Clock::now() + options_.reconnect_interval;
  redisAsyncFree(ac);  // every pending command's callback runs with no reply
  // redisAsyncFree runs the cleanup hook itself, except when called from one of hiredis's own
  // callbacks: then the free (and the hook) is deferred until the callback returns, and the
  // descriptor must leave epoll now. Cleanup is idempotent.
  Cleanup(this);
}

void AsyncRedis::Loop(std::stop_token stop) {
  epoll_event events[4];
  while (!stop.stop_requested()) {
    int timeout_ms = 200;
    {
      std::lock_guard lock(mutex_);
      if (ac_ != nullptr && !ready_.load()) {
        timeout_ms = 10;
      } else if (!pending_.empty()) {
        const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(pending_.front().deadline - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<long>(until.count() + 1, 0, 200));
      } else if (ac_ == nullptr) {
        const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(next_dial_ - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<long>(until.count() + 1, 0, 200));
      }
    }
    const int n = epoll_wait(epoll_fd_, events, 4, timeout_ms);
    std::vector<Completion> done;
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_fd_) {
          std::uint64_t count;
          [[maybe_unused]] auto read_back = read(wake_fd_, &count, sizeof count);
          continue;
        }
        if (ac_ == nullptr || events[i].data.fd != registered_fd_) continue;
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) redisAsyncHandleRead(ac_);
        if (ac_ != nullptr && (events[i].events & EPOLLOUT)) redisAsyncHandleWrite(ac_);
      }
      // The commands that queued up behind an unanswered one (Command), one write for all of them.
      if (ac_ != nullptr && want_write_ && ready_.load()) redisAsyncHandleWrite(ac_);
      if (drop_requested_) {
        drop_requested_ = false;
        Drop("refused");
      }
      // Replies come in order: an overdue first command means Redis is slow or frozen.
      if (!pending_.empty() && pending_.front().deadline < Clock::now()) Drop("no reply before the deadline");
      if (ac_ != nullptr && !ready_.load() && Clock::now() > dial_deadline_) Drop("not ready in time");
      if (ac_ != nullptr && pool_.epoch() != dialled_epoch_) {
        Drop("a new master was announced, or the pool lost Redis");
        next_dial_ = Clock::now();  // at once: the pool has the new master's address
      }
      if (ac_ == nullptr && !stop.stop_requested() && Clock::now() >= next_dial_) Dial();
      ApplyInterest();
      done.swap(completions_);
    }
    NoBlockingScope no_blocking;  // a completion that needs a store hands its call to a worker
    for (auto& completion : done) {
      try {
        completion.done(std::move(completion.reply));
      } catch (const std::exception& e) {
        spdlog::error("async redis: a completion threw: {}", e.what());
      }
    }
  }
}

}  // namespace physio
