#include "visit_session_store.h"

#include <google/protobuf/util/time_util.h>
#include <hiredis/hiredis.h>

#include <algorithm>

#include "physio/common/error.h"
#include "physio/redis/redis_keys.h"
#include "physio/redis/redis_script.h"

namespace physio::progress {

using google::protobuf::util::TimeUtil;

namespace {
// Visit session hash: "patient_id", "kind", "clinic_id", "started_at", "status",
// "pain_before", "pain_after", "red_flags" (serialized screen), "session" (serialized documentation), "visit_id", and
// one field "d:<item id>" per delivered item so concurrent updates merge.
const RedisScript kStartScript{R"LUA(
redis.call('HSET', KEYS[1], 'patient_id', ARGV[2], 'kind', ARGV[3], 'clinic_id', ARGV[4], 'started_at', ARGV[5], 'status', 'open')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)LUA"};

// ARGV: the session's idle TTL in ms, the request's fingerprint, its record's retention in
// seconds, then field/value pairs.
const RedisScript kUpdateOnceScript{OnceScriptBody(R"LUA(
if not redis.call('HGET', KEYS[1], 'patient_id') then return redis.error_reply('NOT_FOUND visit session') end
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return redis.error_reply('COMPLETED visit session') end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
)LUA", /*fingerprint_arg=*/2, /*retention_arg=*/3)};

const RedisScript kReadScript{R"LUA(
if not redis.call('HGET', KEYS[1], 'patient_id') then return redis.error_reply('NOT_FOUND visit session') end
if redis.call('HGET', KEYS[1], 'status') == 'open' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}
)LUA"};

const RedisScript kCompleteScript{R"LUA(
redis.call('HSET', KEYS[1], 'status', 'completed', 'visit_id', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)LUA"};

constexpr const char* kCompletedTtlMs = "3600000";

void ThrowIfRefused(const redisReply* reply) {
  ThrowIfScriptRefused(reply, {{"NOT_FOUND", ErrorCode::kNotFound,
                                "visit session not found or expired; start a new visit session (StartVisitSession) "
                                "and send the updates again"},
                               {"COMPLETED", ErrorCode::kFailedPrecondition, "visit session is already completed"}});
}

// The session from its hash's fields (HGETALL), expiring at `expire_time` when it is set.
v1::VisitSession SessionFromFields(const std::string& session_id, const redisReply* fields,
                                   std::optional<google::protobuf::Timestamp> expire_time) {
  v1::VisitSession session;
  session.set_session_id(session_id);
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const std::string field(fields->element[i]->str, fields->element[i]->len);
    const std::string value(fields->element[i + 1]->str, fields->element[i + 1]->len);
    if (field == "patient_id") session.set_patient_id(value);
    else if (field == "kind") session.set_kind(static_cast<v1::VisitKind>(std::stoi(value)));
    else if (field == "clinic_id") session.set_clinic_id(value);
    else if (field == "pain_before") session.set_pain_before(std::stoi(value));
    else if (field == "pain_after") session.set_pain_after(std::stoi(value));
    else if (field == "red_flags") session.mutable_red_flag_screen()->ParseFromString(value);
    else if (field == "session") session.mutable_session()->ParseFromString(value);
    else if (field == "status") session.set_completed(value == "completed");
    else if (field == "visit_id") session.set_visit_id(value);
    else if (field.rfind("d:", 0) == 0) session.add_delivered_item_ids(field.substr(2));
  }
  std::sort(session.mutable_delivered_item_ids()->begin(), session.mutable_delivered_item_ids()->end());
  if (expire_time) *session.mutable_expire_time() = *expire_time;
  return session;
}

// The session from the read script's reply {ttl in ms, HGETALL}.
v1::VisitSession SessionFromReply(const std::string& session_id, const redisReply* reply) {
  const long long ttl_ms = reply->element[0]->integer;
  return SessionFromFields(session_id, reply->element[1],
                           ttl_ms > 0 ? std::optional(TimeUtil::GetCurrentTime() + TimeUtil::MillisecondsToDuration(ttl_ms))
                                      : std::nullopt);
}
}  // namespace

std::string RedisVisitSessionStore::Key(const CallContext& ctx, const std::string& session_id) const {
  return RedisKey("prog", ctx.tenant, {"visit", session_id});
}

void RedisVisitSessionStore::Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
                               v1::VisitKind kind, const std::string& clinic_id, std::int64_t started_at_seconds,
                               Clock::time_point deadline) {
  auto created = redis_.EvalDurable(kStartScript, {Key(ctx, session_id)},
                             {TtlMs(), patient_id, std::to_string(kind), clinic_id, std::to_string(started_at_seconds)},
                             deadline);
  ThrowIfRefused(created.get());
}

v1::VisitSession RedisVisitSessionStore::Read(const CallContext& ctx, const std::string& session_id,
                                         Clock::time_point deadline) {
  auto reply = redis_.Eval(kReadScript, {Key(ctx, session_id)}, {TtlMs()}, deadline);
  ThrowIfRefused(reply.get());
  return SessionFromReply(session_id, reply.get());
}

namespace {
// The update script's arguments: the session's idle TTL, the request's fingerprint, the record's
// retention, then field/value pairs.
std::vector<std::string> UpdateArguments(const VisitSessionChanges& changes, const SubmissionId& submission,
                                         std::string ttl_ms, std::chrono::seconds retention) {
  std::vector<std::string> args{std::move(ttl_ms), submission.fingerprint, std::to_string(retention.count())};
  if (changes.pain_before) args.insert(args.end(), {"pain_before", std::to_string(*changes.pain_before)});
  if (changes.pain_after) args.insert(args.end(), {"pain_after", std::to_string(*changes.pain_after)});
  for (const auto& item_id : changes.delivered_item_ids) args.insert(args.end(), {"d:" + item_id, "1"});
  if (changes.red_flag_screen) args.insert(args.end(), {"red_flags", changes.red_flag_screen->SerializeAsString()});
  if (changes.session) args.insert(args.end(), {"session", changes.session->SerializeAsString()});
  return args;
}

// The session from the update script's reply, or its refusal thrown.
v1::VisitSession SessionOfUpdateReply(const std::string& session_id, const SubmissionId& submission,
                                      const redisReply* reply) {
  const auto refusal = ScriptRefusalOf(reply, {"REUSED", "NOT_FOUND", "COMPLETED"});
  if (refusal && refusal->code == "REUSED") throw Error(ErrorCode::kInvalidArgument, kRequestIdReused);
  ThrowIfRefused(reply);
  return SessionOfOnceAnswer<v1::UpdateVisitSessionResponse>(
      ParseOnceScriptAnswer(reply, submission.fingerprint), [&](const redisReply* fields, long long expires_ms) {
        return SessionFromFields(session_id, fields, TimeUtil::MillisecondsToTimestamp(expires_ms));
      });
}
}  // namespace

v1::VisitSession RedisVisitSessionStore::Update(const CallContext& ctx, const std::string& session_id,
                                                const VisitSessionChanges& changes, const SubmissionId& submission,
                                                Clock::time_point deadline) {
  auto reply = redis_.EvalDurable(kUpdateOnceScript, {Key(ctx, session_id), SessionIdempotencyRedisKey(submission.key)},
                                  UpdateArguments(changes, submission, TtlMs(), retention_), deadline);
  return SessionOfUpdateReply(session_id, submission, reply.get());
}

bool RedisVisitSessionStore::UpdateAsync(const CallContext& ctx, const std::string& session_id,
                                         const VisitSessionChanges& changes, const SubmissionId& submission,
                                         Clock::time_point deadline, UpdateDone done) {
  if (async_ == nullptr) return false;
  return async_->EvalDurable(
      kUpdateOnceScript, {Key(ctx, session_id), SessionIdempotencyRedisKey(submission.key)},
      UpdateArguments(changes, submission, TtlMs(), retention_), deadline,
      [session_id, submission, done = std::move(done)](std::optional<AsyncRedisReply> reply) {
        std::optional<v1::VisitSession> session;
        if (reply) {
          try {
            session = SessionOfUpdateReply(session_id, submission, reply->get());
          } catch (const std::exception&) {
            // Not answered here: the ordinary way runs the script again, which replays or refuses alike.
          }
        }
        done(std::move(session));
      });
}

std::optional<std::int64_t> RedisVisitSessionStore::StartedAt(const CallContext& ctx, const std::string& session_id,
                                                        Clock::time_point deadline) {
  auto started = redis_.Command({"HGET", Key(ctx, session_id), "started_at"}, deadline);
  if (auto seconds = ReplyString(started.get())) return std::stoll(*seconds);
  return std::nullopt;
}

void RedisVisitSessionStore::MarkCompleted(const CallContext& ctx, const std::string& session_id,
                                      const std::string& visit_id, Clock::time_point deadline) {
  auto closed = redis_.EvalDurable(kCompleteScript, {Key(ctx, session_id)}, {visit_id, kCompletedTtlMs}, deadline);
  ThrowIfRefused(closed.get());
}

}  // namespace physio::progress
