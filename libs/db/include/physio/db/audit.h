#pragma once
// The audit trail: who touched which patient's data, when, how it ended.
// Written to the service's own schema in a separate short transaction, so a
// failed or denied call is still recorded. Holds ids only, never PHI.
#include <string>

#include "physio/auth/call_context.h"
#include "physio/db/pg.h"

namespace physio {

struct AuditEvent {
  std::string action;       // the RPC, e.g. "GetAssessment"
  std::string patient_id;   // empty when not known (e.g. the record was not found)
  std::string resource_id;  // the record touched, if any
  std::string outcome;      // "OK" or a status code name
};

// What a call touched, filled in by the handler as it learns it.
struct AuditTarget {
  std::string patient_id;
  std::string resource_id;
};

class AuditTrail {
 public:
  AuditTrail(PgPool& pool, std::string schema) : pool_(pool), schema_(std::move(schema)) {}
  // Never throws: an audit write failure is logged (ids only) and reported by the return value.
  bool Record(const CallContext& ctx, const AuditEvent& event) noexcept;

 private:
  PgPool& pool_;
  std::string schema_;
};

}  // namespace physio
