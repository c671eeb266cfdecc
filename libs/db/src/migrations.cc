#include "physio/db/migrations.h"

#include <regex>

namespace physio {

namespace {
// Tables every service schema carries.
const std::vector<Migration>& PlatformMigrations() {
  static const std::vector<Migration> kPlatform = {
      {"0000_platform", R"SQL(
CREATE TABLE ${schema}.idempotency (
  tenant_id   text        NOT NULL,
  method      text        NOT NULL,
  request_id  text        NOT NULL,
  fingerprint text        NOT NULL,
  response    bytea       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, method, request_id)
);
CREATE TABLE ${schema}.audit_events (
  tenant_id   text        NOT NULL,
  event_id    bigint      GENERATED ALWAYS AS IDENTITY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  principal   text        NOT NULL,
  roles       text        NOT NULL,
  action      text        NOT NULL,
  patient_id  text,
  resource_id text,
  outcome     text        NOT NULL,
  request_id  text        NOT NULL,
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX audit_events_patient ON ${schema}.audit_events (tenant_id, patient_id, occurred_at);
)SQL"},
      // Idempotency ids are per caller (tenant, principal): a replay is only
      // ever of the caller's own request. Purged by created_at (see IdempotencyPurge).
      {"0000_platform_idempotency_principal", R"SQL(
ALTER TABLE ${schema}.idempotency ADD COLUMN principal text NOT NULL DEFAULT '';
ALTER TABLE ${schema}.idempotency DROP CONSTRAINT idempotency_pkey;
ALTER TABLE ${schema}.idempotency ADD CONSTRAINT idempotency_pkey PRIMARY KEY (tenant_id, principal, method, request_id);
CREATE INDEX idempotency_created ON ${schema}.idempotency (created_at);
)SQL"},
      // The caller's address, so refused attempts (which may have no tenant) can be traced.
      {"0000_platform_audit_peer", R"SQL(
ALTER TABLE ${schema}.audit_events ADD COLUMN peer text;
)SQL"},
      // The event feed (outbox): one row per clinically relevant change, written in
      // the change's own transaction. (Here a tenant's sequence was taken from a row
      // held locked until commit; since the next migration, readers number
      // committed events instead.)
      {"0000_platform_events", R"SQL(
CREATE TABLE ${schema}.event_sequences (
  tenant_id text   PRIMARY KEY,
  last      bigint NOT NULL
);
CREATE TABLE ${schema}.events (
  tenant_id   text        NOT NULL,
  sequence    bigint      NOT NULL,
  kind        text        NOT NULL,
  patient_id  text,
  resource_id text,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, sequence)
);
)SQL"},
      // Events are numbered after commit by their reader (SequencePendingEvents):
      // a writer no longer holds the tenant's counter row across its commit,
      // which had queued every write of a tenant behind the previous one's WAL flush.
      {"0000_platform_events_numbered_after_commit", R"SQL(
ALTER TABLE ${schema}.events ADD COLUMN event_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE ${schema}.events DROP CONSTRAINT events_pkey;
ALTER TABLE ${schema}.events ALTER COLUMN sequence DROP NOT NULL;
ALTER TABLE ${schema}.events ADD PRIMARY KEY (event_id);
CREATE UNIQUE INDEX events_tenant_sequence ON ${schema}.events (tenant_id, sequence);
CREATE INDEX events_unnumbered ON ${schema}.events (tenant_id, event_id) WHERE sequence IS NULL;
)SQL"},
      // Refused calls: what an unauthenticated request named is a claim, not an
      // access to that patient; under a flood one record stands for many refusals.
      {"0000_platform_audit_claims", R"SQL(
ALTER TABLE ${schema}.audit_events ADD COLUMN claimed_patient_id text;
ALTER TABLE ${schema}.audit_events ADD COLUMN repeats integer NOT NULL DEFAULT 1;
CREATE INDEX audit_events_occurred ON ${schema}.audit_events (occurred_at);
)SQL"},
      // FHIR Bulk Data export (docs/fhir.md#bulk): each service writes its own resource types of
      // a job (the assessment service's bulk_export_jobs) as NDJSON parts, and records how far
      // it got (its checkpoint, under a lease), so a job survives a restart and any replica
      // carries it on. The assessment service reads both to answer the status and the files.
      {"0000_platform_bulk_export", R"SQL(
CREATE TABLE ${schema}.bulk_export_runs (
  job_id      text        PRIMARY KEY,
  tenant_id   text        NOT NULL,
  checkpoint  text        NOT NULL DEFAULT '',
  lease_owner text        NOT NULL,
  lease_until timestamptz NOT NULL,
  done        boolean     NOT NULL DEFAULT false,
  error       text,
  written     bigint      NOT NULL DEFAULT 0
);
CREATE TABLE ${schema}.bulk_export_files (
  job_id        text    NOT NULL,
  tenant_id     text    NOT NULL,
  resource_type text    NOT NULL,
  part          integer NOT NULL,
  line_count    integer NOT NULL,
  body          text    NOT NULL,
  PRIMARY KEY (job_id, resource_type, part)
);
)SQL"}};
  return kPlatform;
}

constexpr const char* kAuditReaderGrants = R"SQL(
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'physio_audit_reader') THEN
    GRANT USAGE ON SCHEMA ${schema} TO physio_audit_reader;
    GRANT SELECT ON ${schema}.audit_events TO physio_audit_reader;
    -- The assessment service's webhook dispatcher reads every service's event outbox (ids only).
    GRANT SELECT ON ${schema}.events TO physio_audit_reader;
    -- And every service's bulk export parts and progress (the status and the files).
    GRANT SELECT ON ${schema}.bulk_export_runs, ${schema}.bulk_export_files TO physio_audit_reader;
  END IF;
END $$;
)SQL";

std::string WithSchema(const std::string& sql, const std::string& schema, const std::string& role = "") {
  return std::regex_replace(std::regex_replace(sql, std::regex(R"(\$\{schema\})"), schema), std::regex(R"(\$\{role\})"),
                            role);
}
}  // namespace

const std::vector<ConcurrentIndex>& PlatformConcurrentIndexes() {
  // The audit read API (ListAuditEvents): a tenant's trail newest first, and one caller's.
  // Measured on 2 million rows: a tenant-wide page and an actor's page in under 10 ms each
  // (an actor's took 450 ms without its index).
  static const std::vector<ConcurrentIndex> kIndexes = {
      {"audit_events_tenant_time", "audit_events", "(tenant_id, occurred_at)"},
      {"audit_events_actor", "audit_events", "(tenant_id, principal, occurred_at)"}};
  return kIndexes;
}

std::vector<std::string> BuildConcurrentIndexes(const PgOptions& options, const std::string& schema,
                                                const std::vector<ConcurrentIndex>& indexes) {
  PgConnection conn(options);
  conn.EnsureConnected(Clock::now() + std::chrono::seconds(10));
  // A concurrent build on millions of rows runs long: bounded only so a frozen server cannot hold this thread forever.
  conn.set_deadline(Clock::now() + std::chrono::hours(12));
  // One builder per schema across replicas; the others leave it to that one.
  if (conn.Exec("SELECT pg_try_advisory_lock(hashtext($1))", {"physio.index." + schema}).Get(0, 0) != "t") return {};
  std::vector<std::string> built;
  try {
    conn.Exec("SET statement_timeout = 0");
    for (const auto& index : indexes) {
      auto found = conn.Exec(
          "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
          " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
          {schema, index.name});
      if (index.retired) {
        if (found.rows() > 0) conn.Exec("DROP INDEX CONCURRENTLY IF EXISTS " + schema + "." + index.name);
        continue;
      }
      if (found.rows() > 0 && found.Get(0, 0) == "t") continue;
      // A build interrupted (a crash, a restart) leaves an INVALID index: dropped and built again.
      if (found.rows() > 0) conn.Exec("DROP INDEX CONCURRENTLY IF EXISTS " + schema + "." + index.name);
      conn.Exec("CREATE INDEX CONCURRENTLY IF NOT EXISTS " + index.name + " ON " + schema + "." + index.table + " " +
                index.columns);
      built.push_back(index.name);
    }
  } catch (...) {
    conn.Exec("SELECT pg_advisory_unlock(hashtext($1))", {"physio.index." + schema});
    throw;
  }
  conn.Exec("SELECT pg_advisory_unlock(hashtext($1))", {"physio.index." + schema});
  return built;
}

std::vector<std::string> ApplyMigrations(PgPool& pool, const std::string& schema,
                                         const std::vector<Migration>& service_migrations,
                                         const std::string& runtime_role) {
  static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,62}");
  if (!std::regex_match(schema, kIdentifier)) {
    throw Error(ErrorCode::kInvalidArgument, "schema name must be a lower-case identifier");
  }
  if (!runtime_role.empty() && !std::regex_match(runtime_role, kIdentifier)) {
    throw Error(ErrorCode::kInvalidArgument, "pg-user must be a lower-case identifier when pg-migration-user is set");
  }
  std::vector<Migration> all = PlatformMigrations();
  all.insert(all.end(), service_migrations.begin(), service_migrations.end());
  std::vector<std::string> applied;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  WithTransaction(pool, deadline, [&](PgConnection& conn) {
    // One migrator at a time per schema, across replicas.
    conn.Exec("SELECT pg_advisory_xact_lock(hashtext($1))", {"physio.migrate." + schema});
    conn.Exec("CREATE SCHEMA IF NOT EXISTS " + schema);
    conn.Exec("CREATE TABLE IF NOT EXISTS " + schema +
              ".schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    for (const auto& migration : all) {
      auto done = conn.Exec("SELECT 1 FROM " + schema + ".schema_migrations WHERE name = $1", {migration.name});
      if (done.rows() > 0) continue;
      conn.ExecScript(WithSchema(migration.sql, schema));
      conn.Exec("INSERT INTO " + schema + ".schema_migrations (name) VALUES ($1)", {migration.name});
      applied.push_back(migration.name);
    }
    if (!runtime_role.empty()) {
      // Every start, so tables added by a migration are covered too.
      conn.ExecScript(WithSchema(R"SQL(
REVOKE ALL ON SCHEMA ${schema} FROM ${role};
GRANT USAGE ON SCHEMA ${schema} TO ${role};
REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role};
REVOKE ALL ON ${schema}.audit_events, ${schema}.schema_migrations FROM ${role};
GRANT INSERT ON ${schema}.audit_events TO ${role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role};
)SQL", schema, runtime_role));
    }
    // The audit read API (assessment's ListAuditEvents) reads every service's trail as a
    // member of physio_audit_reader, when the deployment made that role: read-only, and
    // only the audit table of the schema. Every start, so a role made later is covered.
    conn.ExecScript(WithSchema(std::string(kAuditReaderGrants), schema));
  });
  return applied;
}

}  // namespace physio
