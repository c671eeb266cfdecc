#pragma once
// The audit read API's store: the audit trails of the three services
// (<schema>.audit_events, written by every service's call pipeline), read
// together, newest first. The assessment service's database role reads the
// other services' trails as a member of physio_audit_reader (docs/security.md);
// each migration grants that role SELECT on its audit table and nothing else.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/db/page_token.h"
#include "physio/db/pg.h"

namespace physio::assessment {

// The trails read: every service's schema.
inline const std::vector<std::string> kAuditedSchemas = {"assessment", "planning", "progress"};

struct AuditFilter {
  std::string patient_id;  // empty: any
  std::string actor;
  std::string outcome;
  std::string service;     // one of kAuditedSchemas; empty: all
  // Patients enrolled (now or before) at one of these clinics; empty: no clinic condition.
  std::set<std::string> clinics;
  std::string from_time;   // RFC 3339 or empty
  std::string to_time;
};

// Where the next page starts: the last record returned (occurred_at as PostgreSQL's text, "<service>:<event_id>").
struct AuditPage {
  std::vector<v1::AuditRecord> events;
  std::optional<KeysetPosition> next;
};

class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Up to `page_size` records of the tenant matching `filter`, after `after`, newest first.
  // FAILED_PRECONDITION when a service's trail exists but this service may not read it.
  virtual AuditPage List(const std::string& tenant, const AuditFilter& filter, const KeysetPosition& after,
                         int page_size, Clock::time_point deadline) = 0;
};

class PgAuditLog final : public AuditLog {
 public:
  explicit PgAuditLog(PgPool& pool) : pool_(pool) {}
  AuditPage List(const std::string& tenant, const AuditFilter& filter, const KeysetPosition& after, int page_size,
                 Clock::time_point deadline) override;

 private:
  PgPool& pool_;
};

}  // namespace physio::assessment
