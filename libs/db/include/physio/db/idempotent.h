#pragma once
// Idempotent writes to PostgreSQL as the use cases make them: the seam over a
// service's records (IdempotentRecords), its PostgreSQL form over the records of
// idempotency.h (kept in the write's own transaction), and the typed forms that
// hold the request's fingerprint, the response's serialization and its replay.
#include <google/protobuf/message.h>

#include <functional>
#include <optional>
#include <type_traits>

#include "physio/common/stored_message.h"
#include "physio/db/idempotency.h"

namespace physio {

// A service's PostgreSQL records as its use cases see them (the seam a fake
// replaces in tests): writes that run once per request id, where `Writer` is the
// service's view of one write transaction. A record store adds its reads.
template <typename Writer>
class IdempotentRecords {
 public:
  virtual ~IdempotentRecords() = default;
  // As RunIdempotentWrite: `write` runs in the transaction that stores the
  // idempotency record and the call's audit record, and returns the serialized response.
  virtual std::string WriteOnce(const PgIdempotencyKey& key, const std::string& fingerprint, Clock::time_point deadline,
                                const std::function<std::string(Writer&)>& write,
                                const std::function<void(const std::string&)>& describe) = 0;
  // As FindIdempotentReplay.
  virtual std::optional<std::string> FindReplay(const PgIdempotencyKey& key, const std::string& fingerprint,
                                                Clock::time_point deadline) = 0;
};

// The PostgreSQL form of a record store: `PgWriter` (constructed over the
// transaction's connection) is the service's Writer.
template <typename Records, typename PgWriter>
class PgIdempotentRecords : public Records {
 public:
  explicit PgIdempotentRecords(PgPool& pool) : pool_(pool) {}
  using Writer = typename PgWriter::Interface;

  std::string WriteOnce(const PgIdempotencyKey& key, const std::string& fingerprint, Clock::time_point deadline,
                        const std::function<std::string(Writer&)>& write,
                        const std::function<void(const std::string&)>& describe) override {
    return RunIdempotentWrite(
        pool_, deadline, key, fingerprint,
        [&](PgConnection& conn) {
          PgWriter writer(conn);
          return write(writer);
        },
        describe);
  }
  std::optional<std::string> FindReplay(const PgIdempotencyKey& key, const std::string& fingerprint,
                                        Clock::time_point deadline) override {
    return FindIdempotentReplay(pool_, deadline, key, fingerprint);
  }

 protected:
  PgPool& pool_;
};

// `write` runs inside the transaction that also stores the idempotency record
// and the call's audit record; `describe` fills the audit target from the
// response (new or replayed) before that record is written.
template <typename Response, typename Writer>
Response IdempotentWrite(IdempotentRecords<Writer>& records, Clock::time_point deadline, const PgIdempotencyKey& key,
                         const google::protobuf::Message& request,
                         const std::type_identity_t<std::function<Response(Writer&)>>& write,
                         const std::type_identity_t<std::function<void(const Response&)>>& describe = {}) {
  std::function<void(const std::string&)> describe_bytes;
  if (describe) describe_bytes = [&](const std::string& bytes) { describe(ParseStoredResponse<Response>(bytes)); };
  return ParseStoredResponse<Response>(records.WriteOnce(
      key, RequestFingerprint(request), deadline, [&](Writer& writer) { return write(writer).SerializeAsString(); },
      describe_bytes));
}

// A request already done: its stored response, looked up before any remote call.
template <typename Response, typename Writer>
std::optional<Response> IdempotentReplay(IdempotentRecords<Writer>& records, Clock::time_point deadline,
                                         const PgIdempotencyKey& key, const google::protobuf::Message& request) {
  auto stored = records.FindReplay(key, RequestFingerprint(request), deadline);
  if (!stored) return std::nullopt;
  return ParseStoredResponse<Response>(*stored);
}

}  // namespace physio
