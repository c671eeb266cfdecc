#include "physio/db/idempotency.h"

#include "physio/db/audit.h"

namespace physio {

namespace {
PgStatement ReplayStatement(const PgIdempotencyKey& key) {
  return {"SELECT fingerprint, response FROM " + key.schema +
              ".idempotency WHERE tenant_id = $1 AND principal = $2 AND method = $3 AND request_id = $4",
          {key.tenant, key.principal, key.method, key.request_id}};
}

// The stored response of this key, if any; INVALID_ARGUMENT when it was for another request.
std::optional<std::string> StoredResponse(const PgResult& rows, const std::string& fingerprint) {
  if (rows.rows() == 0) return std::nullopt;
  if (rows.Get(0, 0) != fingerprint) {
    throw Error(ErrorCode::kInvalidArgument, "request_id: already used for a different request");
  }
  return rows.GetBytes(0, 1);
}
}  // namespace

std::optional<std::string> FindIdempotentReplay(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                                                const std::string& fingerprint) {
  return StoredResponse(QueryOnce(pool, deadline, ReplayStatement(key)), fingerprint);
}

std::string RunIdempotentWrite(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                               const std::string& fingerprint,
                               const std::function<std::string(PgConnection&)>& write,
                               const std::function<void(const std::string&)>& describe) {
  // The call's audit record commits with the write (or with its replay).
  CallAudit* call_audit = CallAudit::Current();
  // The first attempt does not look for a replay: a request seen for the first time (nearly
  // every one) is then one round trip, BEGIN, its writes, the idempotency record, the audit
  // record and COMMIT together. A request already done fails on the idempotency record's key
  // (or first on another unique key its first attempt took) and is rolled back; the attempts
  // after it look for the replay with BEGIN and answer with it.
  for (int attempt = 0;; ++attempt) {
    const bool look_first = attempt > 0;
    std::vector<PgStatement> opening;
    if (look_first) opening.push_back(ReplayStatement(key));
    std::string response;
    try {
      WithPipelinedTransaction(pool, deadline, opening, [&](PgConnection& conn, std::vector<PgResult>& opened) {
        std::vector<PgStatement> closing;
        std::optional<std::string> stored;
        if (look_first) stored = StoredResponse(opened.at(0), fingerprint);
        if (stored) {
          response = std::move(*stored);
        } else {
          response = write(conn);
          closing.push_back({"INSERT INTO " + key.schema +
                                 ".idempotency (tenant_id, principal, method, request_id,"
                                 " fingerprint, response) VALUES ($1,$2,$3,$4,$5,$6)",
                             {key.tenant, key.principal, key.method, key.request_id, fingerprint, PgBytes(response)}});
        }
        if (describe) describe(response);
        if (call_audit != nullptr) closing.push_back(call_audit->InsertStatement());
        return closing;
      });
      if (call_audit != nullptr) call_audit->MarkCommitted();
      return response;
    } catch (const PgUniqueViolation& violation) {
      // After the first attempt, only a concurrent attempt with the same request_id that
      // committed first (between the look and the insert) is worth another look.
      if (attempt >= 2 || (attempt == 1 && violation.constraint() != "idempotency_pkey")) throw;
    } catch (const Error& refused) {
      // The write refused what it found (a stale etag, a state already changed). What changed it
      // may be this request's own first attempt, committed while this one ran: a retry sent after
      // a lost answer (a replica killed after sending its COMMIT) before the first attempt had
      // finished. Any look for a replay came before that commit; look again, and answer
      // with the first attempt's response if it is there. The call's audit record then goes by
      // the batching writer, as for any call whose write did not carry it.
      if (refused.code() == ErrorCode::kUnavailable || refused.code() == ErrorCode::kDeadlineExceeded) throw;
      auto stored = FindIdempotentReplay(pool, deadline, key, fingerprint);
      if (!stored) throw;
      if (describe) describe(*stored);
      return std::move(*stored);
    }
  }
}

}  // namespace physio
