// Archives audit records past their retention (libs/db audit_archive.h): each
// schema's records older than --audit-retention-days go to JSON-lines files in
// --out-dir (fsynced) and only then leave the table. Run it as each schema's
// owner role (the services' own role may only INSERT into the audit trail),
// from a scheduled job (deploy/k8s: physio-audit-archive CronJob), e.g.:
//   physio-audit-archive --pg-user=physio_assessment_owner --pg-password-file=...
//                        --schemas=assessment --out-dir=/archive
// Prints one line per schema; exit 0 when every schema was archived.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "physio/common/config.h"
#include "physio/db/audit_archive.h"
#include "physio/server/service_config.h"

int main(int argc, char** argv) {
  try {
    physio::Config config({{"pg-host", "127.0.0.1", "PostgreSQL host (or a comma-separated list)"},
                           {"pg-port", "5432", "PostgreSQL port (or one per host)"},
                           {"pg-target-session-attrs", "read-write", "libpq target_session_attrs"},
                           {"pg-connect-timeout-ms", "2000", "upper bound for connecting to one host"},
                           {"pg-user", "postgres", "PostgreSQL user: the schemas' owner"},
                           {"pg-password", "", "PostgreSQL password (prefer pg-password-file)"},
                           {"pg-password-file", "", "file holding the PostgreSQL password"},
                           {"pg-sslmode", "prefer", "libpq sslmode"},
                           {"pg-sslrootcert", "", "CA file for verify-ca / verify-full"},
                           {"pg-database", "physio", "PostgreSQL database"},
                           {"pg-pool-size", "1", "connections"},
                           {"pg-statement-timeout-ms", "120000", "upper bound per transaction"},
                           {"schemas", "assessment,planning,progress", "comma-separated schemas to archive"},
                           {"audit-retention-days", "2190",
                            "records older than this are archived (default six years: HIPAA 45 CFR 164.316(b)(2))"},
                           {"out-dir", "", "directory the archive files are written to (required)"},
                           {"batch", "10000", "records per file"}},
                          argc, argv);
    if (config.help_requested()) {
      std::cout << config.Usage(argv[0]);
      return 0;
    }
    if (config.Get("out-dir").empty()) throw std::invalid_argument("--out-dir is required");
    const int days = config.GetInt("audit-retention-days");
    if (days < 1) throw std::invalid_argument("--audit-retention-days must be at least 1");
    physio::PgPool pool(physio::PgOptionsFrom(config));
    std::istringstream schemas(config.Get("schemas"));
    for (std::string schema; std::getline(schemas, schema, ',');) {
      if (schema.empty()) continue;
      const auto result = physio::ArchiveAuditEvents(pool, schema, std::chrono::hours(24L * days),
                                                     config.Get("out-dir"), std::max(1, config.GetInt("batch")));
      std::cout << schema << ": " << result.rows << " audit records archived in " << result.files.size()
                << " files\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "physio-audit-archive: " << e.what() << "\n";
    return 1;
  }
}
