#include "physio/db/audit.h"

#include <spdlog/spdlog.h>

namespace physio {

bool AuditTrail::Record(const CallContext& ctx, const AuditEvent& event) noexcept {
  try {
    std::string roles;
    for (Role role : ctx.roles) roles += (roles.empty() ? "" : ",") + RoleName(role);
    // Audit gets its own small budget so a call that used its whole deadline is still recorded.
    WithTransaction(pool_, Clock::now() + std::chrono::seconds(2), [&](PgConnection& conn) {
      conn.Exec("INSERT INTO " + schema_ +
                    ".audit_events (tenant_id, principal, roles, action, patient_id, resource_id, outcome, request_id)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                {ctx.tenant, ctx.principal, roles, event.action,
                 event.patient_id.empty() ? PgParam() : PgParam(event.patient_id),
                 event.resource_id.empty() ? PgParam() : PgParam(event.resource_id), event.outcome, ctx.request_id});
    });
    return true;
  } catch (const std::exception& e) {
    spdlog::error("audit write failed action={} request_id={} error={}", event.action, ctx.request_id, e.what());
    return false;
  }
}

}  // namespace physio
