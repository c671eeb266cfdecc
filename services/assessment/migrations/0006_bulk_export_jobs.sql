-- FHIR Bulk Data export jobs (docs/fhir.md#bulk): who asked, for what (the tenant or one clinic's
-- patients, the resource types, since when), until when the files are kept. Every service's
-- export worker reads the jobs (ids, scope and types only: no patient data) and writes its own
-- part of each (bulk_export_runs, bulk_export_files in its own schema).
CREATE TABLE ${schema}.bulk_export_jobs (
  job_id       text        PRIMARY KEY,
  tenant_id    text        NOT NULL,
  requested_by text        NOT NULL,
  group_id     text,
  types        text        NOT NULL,
  since        timestamptz,
  request_url  text        NOT NULL,
  status       text        NOT NULL DEFAULT 'active',
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX bulk_export_jobs_open ON ${schema}.bulk_export_jobs (created_at) WHERE status = 'active';
GRANT SELECT ON ${schema}.bulk_export_jobs TO PUBLIC;
