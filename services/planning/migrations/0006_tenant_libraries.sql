-- Tenant libraries and templates (issue 32, part 2.6): each published version of a tenant's own
-- interventions and plan templates, immutable once written (a plan records the version it used).
CREATE TABLE ${schema}.tenant_libraries (
  tenant_id text NOT NULL,
  version integer NOT NULL,
  document text NOT NULL,
  published_by text NOT NULL,
  reason text NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, version)
);
