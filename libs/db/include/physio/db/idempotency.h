#pragma once
// Idempotent clinical writes: the idempotency record is written in the same
// transaction as the record itself, so "acknowledged" and "remembered" are one
// commit. A retry with the same request_id returns the stored response; the same
// id with a different request is INVALID_ARGUMENT. Two concurrent first attempts
// race on the primary key: the loser rolls back and replays the winner's response.
#include <functional>
#include <optional>
#include <string>

#include "physio/db/pg.h"

namespace physio {

struct PgIdempotencyKey {
  std::string schema;  // the service's schema
  std::string tenant;
  // The caller (token subject): an id is one caller's, so two integrations in
  // one tenant never collide and nobody replays another caller's response.
  std::string principal;
  std::string method;
  std::string request_id;
};

// The stored response of a request already done, read before any call to
// another service is made for it (a retry must not depend on, or repeat, work
// elsewhere), or once such a call has refused or failed (a read the write needs
// anyway: RunIdempotentWrite replays too). INVALID_ARGUMENT when the id was used
// for a different request.
std::optional<std::string> FindIdempotentReplay(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                                                const std::string& fingerprint);

// `write` runs inside the transaction and returns the serialized response.
// `describe`, when given, sees the serialized response (written now or
// replayed) inside the transaction, before the call's audit record is written
// there (see CallAudit), so the record names what the response holds.
std::string RunIdempotentWrite(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                               const std::string& fingerprint, const std::function<std::string(PgConnection&)>& write,
                               const std::function<void(const std::string&)>& describe = {});

}  // namespace physio
