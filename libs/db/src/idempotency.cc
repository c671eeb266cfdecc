#include "physio/db/idempotency.h"

#include "physio/db/audit.h"

namespace physio {

namespace {
bool Replay(PgConnection& conn, const PgIdempotencyKey& key, const std::string& fingerprint, std::string* response) {
  auto rows = conn.Exec("SELECT fingerprint, response FROM " + key.schema +
                            ".idempotency WHERE tenant_id = $1 AND method = $2 AND request_id = $3",
                        {key.tenant, key.method, key.request_id});
  if (rows.rows() == 0) return false;
  if (rows.Get(0, 0) != fingerprint) {
    throw Error(ErrorCode::kInvalidArgument, "request_id: already used for a different request");
  }
  *response = rows.GetBytes(0, 1);
  return true;
}
}  // namespace

std::optional<std::string> FindIdempotentReplay(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                                                const std::string& fingerprint) {
  std::optional<std::string> replay;
  WithTransaction(pool, deadline, [&](PgConnection& conn) {
    std::string response;
    if (Replay(conn, key, fingerprint, &response)) replay = std::move(response);
  });
  return replay;
}

std::string RunIdempotentWrite(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                               const std::string& fingerprint,
                               const std::function<std::string(PgConnection&)>& write,
                               const std::function<void(const std::string&)>& describe) {
  // The call's audit record commits with the write (or with its replay).
  CallAudit* call_audit = CallAudit::Current();
  for (int attempt = 0;; ++attempt) {
    std::string response;
    try {
      WithTransaction(pool, deadline, [&](PgConnection& conn) {
        if (!Replay(conn, key, fingerprint, &response)) {
          response = write(conn);
          conn.Exec("INSERT INTO " + key.schema +
                        ".idempotency (tenant_id, method, request_id, fingerprint, response) VALUES ($1,$2,$3,$4,$5)",
                    {key.tenant, key.method, key.request_id, fingerprint, PgBytes(response)});
        }
        if (describe) describe(response);
        if (call_audit != nullptr) call_audit->RecordIn(conn);
      });
      if (call_audit != nullptr) call_audit->MarkCommitted();
      return response;
    } catch (const PgUniqueViolation& violation) {
      // A concurrent attempt with the same request_id won; replay its response.
      if (violation.constraint() != "idempotency_pkey" || attempt > 0) throw;
    }
  }
}

}  // namespace physio
