#include "intake_store.h"

#include <google/protobuf/util/time_util.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "intake_sections.h"
#include "physio/common/error.h"
#include "physio/redis/redis_keys.h"
#include "physio/redis/redis_script.h"

namespace physio::assessment {

namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
// Session hash layout: meta fields ("patient_id", "status", "created_by",
// "instruments" as "nprs,odi", "assessment_id"), the sections (serialized
// messages), and one field per answer "a:<instrument>:<item>" whose value is
// "<int>", "<int>\t<text>" (PSFS) or "declined".
constexpr const char* kAnswerPrefix = "a:";
constexpr const char* kHistoryField = "s:history";
constexpr const char* kExaminationField = "s:examination";
constexpr const char* kRedFlagField = "s:red_flags";
constexpr const char* kDeclined = "declined";

const RedisScript kStartScript{R"LUA(
redis.call('HSET', KEYS[1], 'patient_id', ARGV[2], 'status', 'open', 'created_by', ARGV[3], 'instruments', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)LUA"};

// The scripts that touch an existing session check that it exists, belongs to
// the required patient (ARGV[1], '' for staff) and is still open, atomically
// with the change.
//
// A submission, exactly once per request id, in one round trip (issue 33): KEYS[2] is the request's
// idempotency record. A hash there is this request's earlier outcome: the session as that
// submission left it, its expiry ('#expires_ms', Redis's clock) and the request's fingerprint
// ('#fingerprint'; '#' starts no session field); it is answered again and nothing changes. A
// string there is a record of the generic protocol (RedisIdempotency, which stored this method's
// records before): handed back as {'legacy', record}. Otherwise the checks, the change, and the
// record of its outcome (kept ARGV[5] seconds), all in one script: no claim can be left pending.
// ARGV[2]: the session's idle ttl in ms; ARGV[3]: the instrument codes the answers belong to;
// ARGV[4]: the request's fingerprint; ARGV[6..]: field, value pairs. Answers {expires_ms, HGETALL}.
const RedisScript kSubmitOnceScript{OnceScriptBody(R"LUA(
local patient = redis.call('HGET', KEYS[1], 'patient_id')
if not patient or (ARGV[1] ~= '' and ARGV[1] ~= patient) then return redis.error_reply('NOT_FOUND intake session') end
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return redis.error_reply('COMPLETED intake session') end
local chosen = ',' .. (redis.call('HGET', KEYS[1], 'instruments') or '') .. ','
for code in string.gmatch(ARGV[3], '[^,]+') do
  if not string.find(chosen, ',' .. code .. ',', 1, true) then return redis.error_reply('NOT_IN_INTAKE ' .. code) end
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
)LUA", /*fingerprint_arg=*/4, /*retention_arg=*/5)};

// Reading an open session is activity too: it renews the TTL.
const RedisScript kReadScript{R"LUA(
local patient = redis.call('HGET', KEYS[1], 'patient_id')
if not patient or (ARGV[1] ~= '' and ARGV[1] ~= patient) then return redis.error_reply('NOT_FOUND intake session') end
if redis.call('HGET', KEYS[1], 'status') == 'open' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}
)LUA"};

const RedisScript kMarkCompletedScript{R"LUA(
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'completed', 'assessment_id', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)LUA"};

// A session that expired, never existed, or was lost with Redis (see docs/reliability.md).
constexpr const char* kIntakeGone =
    "intake session not found or expired; start a new intake (StartIntake) and submit the answers again";

void ThrowIfRefused(const redisReply* reply) {
  ThrowIfScriptRefused(reply, {{"NOT_FOUND", ErrorCode::kNotFound, kIntakeGone},
                               {"COMPLETED", ErrorCode::kFailedPrecondition, "intake session is already completed"}});
}

// Staff see every session of the tenant; a patient only their own.
std::string PatientFilter(const CallContext& ctx) { return IsStaff(ctx) ? "" : ctx.patient_id; }

std::vector<InstrumentKind> ParseInstrumentList(const std::string& codes) {
  std::vector<InstrumentKind> kinds;
  size_t start = 0;
  while (start < codes.size()) {
    size_t comma = codes.find(',', start);
    if (comma == std::string::npos) comma = codes.size();
    if (auto kind = KindOfCode(codes.substr(start, comma - start))) kinds.push_back(*kind);
    start = comma + 1;
  }
  return kinds;
}

// An answer's stored value (written by the submit script from a validated int), read as std::stoi
// would: the leading number.
int StoredInt(std::string_view text) {
  int value = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc()) {
    throw std::invalid_argument("stored intake answer is not a number");
  }
  return value;
}

// The session from a script's HGETALL of it (fields starting '#' are not the session's) and its
// expiry, if it has one.
v1::IntakeSession SessionFromFields(const std::string& session_id, const redisReply* fields,
                                    std::optional<google::protobuf::Timestamp> expire_time) {
  v1::IntakeSession session;
  session.set_session_id(session_id);
  std::vector<InstrumentKind> instruments = kDefaultIntakeInstruments;
  // The answers, read in place from the reply and then ordered by instrument and item (each
  // answer's strings are copied once, into the session).
  struct FoundAnswer {
    InstrumentKind kind;
    std::string_view item_id;
    std::string_view value;
  };
  std::vector<FoundAnswer> found;
  found.reserve(fields->elements / 2);
  const auto view = [&](size_t i) { return std::string_view(fields->element[i]->str, fields->element[i]->len); };
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const std::string_view field = view(i);
    const std::string_view value = view(i + 1);
    if (field == "patient_id") {
      session.set_patient_id(std::string(value));
    } else if (field == "status") {
      session.set_status(value == "open" ? v1::INTAKE_STATUS_OPEN : v1::INTAKE_STATUS_COMPLETED);
    } else if (field == "assessment_id") {
      session.set_assessment_id(std::string(value));
    } else if (field == "instruments") {
      instruments = ParseInstrumentList(std::string(value));
    } else if (field == kHistoryField) {
      session.mutable_history()->ParseFromArray(value.data(), static_cast<int>(value.size()));
    } else if (field == kExaminationField) {
      session.mutable_examination()->ParseFromArray(value.data(), static_cast<int>(value.size()));
    } else if (field == kRedFlagField) {
      session.mutable_red_flag_screen()->ParseFromArray(value.data(), static_cast<int>(value.size()));
    } else if (field.starts_with(kAnswerPrefix)) {
      const auto colon = field.find(':', 2);
      if (colon == std::string_view::npos) continue;
      const auto kind = KindOfCode(field.substr(2, colon - 2));
      if (!kind) continue;
      found.push_back({*kind, field.substr(colon + 1), value});
    }
  }
  // Each (instrument, item) is one hash field, since each instrument has one code: no two are equal.
  std::sort(found.begin(), found.end(), [](const FoundAnswer& a, const FoundAnswer& b) {
    return std::pair(static_cast<int>(a.kind), a.item_id) < std::pair(static_cast<int>(b.kind), b.item_id);
  });
  session.mutable_answers()->Reserve(static_cast<int>(found.size()));
  for (const FoundAnswer& item : found) {
    cpb::InstrumentAnswer* answer = session.add_answers();
    answer->set_instrument(ProtoOf(item.kind));
    answer->set_item_id(std::string(item.item_id));
    if (item.value == kDeclined) {
      answer->set_declined(true);
    } else {
      const auto tab = item.value.find('\t');
      answer->set_value(StoredInt(item.value.substr(0, tab)));
      if (tab != std::string_view::npos) answer->set_text(std::string(item.value.substr(tab + 1)));
    }
  }
  for (InstrumentKind kind : instruments) session.add_instruments(ProtoOf(kind));
  if (expire_time) *session.mutable_expire_time() = *expire_time;
  return session;
}

// The session from the read script's reply {ttl in ms, HGETALL}.
v1::IntakeSession SessionFromReply(const std::string& session_id, const redisReply* reply) {
  const long long ttl_ms = reply->element[0]->integer;
  return SessionFromFields(session_id, reply->element[1],
                           ttl_ms > 0 ? std::optional(TimeUtil::GetCurrentTime() + TimeUtil::MillisecondsToDuration(ttl_ms))
                                      : std::nullopt);
}
}  // namespace

std::string RedisIntakeStore::Key(const CallContext& ctx, const std::string& session_id) const {
  return RedisKey("asmt", ctx.tenant, {"intake", session_id});
}

void RedisIntakeStore::Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
                         const std::vector<InstrumentKind>& instruments, Clock::time_point deadline) {
  std::string codes;
  for (InstrumentKind kind : instruments) codes += (codes.empty() ? "" : ",") + SpecFor(kind).code;
  auto created = redis_.EvalDurable(kStartScript, {Key(ctx, session_id)},
                             {std::to_string(ttl_.count()), patient_id, ctx.principal, codes}, deadline);
  ThrowIfRefused(created.get());
}

v1::IntakeSession RedisIntakeStore::Read(const CallContext& ctx, const std::string& session_id,
                                    Clock::time_point deadline) {
  auto reply = redis_.Eval(kReadScript, {Key(ctx, session_id)}, {PatientFilter(ctx), std::to_string(ttl_.count())},
                           deadline);
  ThrowIfRefused(reply.get());
  return SessionFromReply(session_id, reply.get());
}

namespace {
// The submit script's arguments, and for a refusal that names an instrument, the first answer giving it.
struct SubmitScriptCall {
  std::vector<std::string> args;
  std::map<std::string, size_t> first_index_of_code;
};

SubmitScriptCall SubmitArguments(const CallContext& ctx, const IntakeChanges& changes, const SubmissionId& submission,
                                 std::chrono::milliseconds ttl, std::chrono::seconds retention) {
  SubmitScriptCall call;
  auto& args = call.args;
  args.reserve(5 + 2 * 3 + 2 * changes.answers.size());
  args.insert(args.end(), {PatientFilter(ctx), std::to_string(ttl.count()), "", submission.fingerprint,
                           std::to_string(retention.count())});
  if (changes.history) args.insert(args.end(), {kHistoryField, changes.history->SerializeAsString()});
  if (changes.examination) args.insert(args.end(), {kExaminationField, changes.examination->SerializeAsString()});
  if (changes.red_flag_screen) args.insert(args.end(), {kRedFlagField, changes.red_flag_screen->SerializeAsString()});
  for (size_t i = 0; i < changes.answers.size(); ++i) {
    const ItemAnswer& answer = changes.answers[i];
    const std::string& code = SpecFor(answer.instrument).code;
    if (call.first_index_of_code.emplace(code, i).second) args[2] += (args[2].empty() ? "" : ",") + code;
    args.push_back(std::string(kAnswerPrefix) + code + ":" + answer.item_id);
    std::string stored = answer.declined ? kDeclined : std::to_string(answer.value);
    if (!answer.declined && !answer.text.empty()) stored += "\t" + answer.text;
    args.push_back(stored);
  }
  return call;
}

// The session from the submit script's reply, or the refusal it carries thrown.
v1::IntakeSession SessionOfSubmitReply(const std::string& session_id, const SubmitScriptCall& call,
                                       const SubmissionId& submission, const redisReply* reply) {
  if (auto refusal = ScriptRefusalOf(reply, {"NOT_IN_INTAKE", "NOT_FOUND", "COMPLETED", "REUSED"})) {
    if (refusal->code == "NOT_IN_INTAKE") {
      const auto first = call.first_index_of_code.find(refusal->argument);
      const size_t index = first == call.first_index_of_code.end() ? 0 : first->second;
      ThrowInvalidArgument("answers[" + std::to_string(index) + "].instrument",
                           refusal->argument + " is not one of this intake's instruments");
    }
    if (refusal->code == "REUSED") throw Error(ErrorCode::kInvalidArgument, kRequestIdReused);
    ThrowIfRefused(reply);
  }
  auto session = SessionOfOnceAnswer<v1::SubmitIntakeAnswersResponse>(
      ParseOnceScriptAnswer(reply, submission.fingerprint), [&](const redisReply* fields, long long expires_ms) {
        return SessionFromFields(session_id, fields, TimeUtil::MillisecondsToTimestamp(expires_ms));
      });
  session.clear_progress();  // a record of the earlier protocol kept its progress: derived again by the caller
  return session;
}
}  // namespace

v1::IntakeSession RedisIntakeStore::Submit(const CallContext& ctx, const std::string& session_id,
                                           const IntakeChanges& changes, const SubmissionId& submission,
                                           Clock::time_point deadline) {
  const auto call = SubmitArguments(ctx, changes, submission, ttl_, retention_);
  auto reply = redis_.EvalDurable(kSubmitOnceScript, {Key(ctx, session_id), SessionIdempotencyRedisKey(submission.key)},
                                  call.args, deadline);
  return SessionOfSubmitReply(session_id, call, submission, reply.get());
}

bool RedisIntakeStore::SubmitAsync(const CallContext& ctx, const std::string& session_id, const IntakeChanges& changes,
                                   const SubmissionId& submission, Clock::time_point deadline, SubmitDone done) {
  if (async_ == nullptr) return false;
  auto call = std::make_shared<SubmitScriptCall>(SubmitArguments(ctx, changes, submission, ttl_, retention_));
  // The arguments go into the command; the reply needs only first_index_of_code.
  std::vector<std::string> args = std::move(call->args);
  return async_->EvalDurable(
      kSubmitOnceScript, {Key(ctx, session_id), SessionIdempotencyRedisKey(submission.key)}, std::move(args), deadline,
      [call, session_id, submission, done = std::move(done)](std::optional<AsyncRedisReply> reply) {
        std::optional<v1::IntakeSession> session;
        if (reply) {
          try {
            session = SessionOfSubmitReply(session_id, *call, submission, reply->get());
          } catch (const std::exception&) {
            // Not answered here: the ordinary way runs the script again, which replays or refuses alike.
          }
        }
        done(std::move(session));
      });
}

void RedisIntakeStore::MarkCompleted(const CallContext& ctx, const std::string& session_id,
                                const std::string& assessment_id, Clock::time_point deadline) {
  redis_.EvalDurable(kMarkCompletedScript, {Key(ctx, session_id)}, {assessment_id, std::to_string(completed_ttl_.count())},
              deadline);
}

}  // namespace physio::assessment
