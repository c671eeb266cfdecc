-- Emergency access ("break the glass", issue 28): a clinician reaches a patient outside their
-- clinics for a short time, with a reason. Read by every service's clinic scoping.
CREATE TABLE ${schema}.emergency_access (
  tenant_id  text        NOT NULL,
  grant_id   text        NOT NULL,
  principal  text        NOT NULL,
  patient_id text        NOT NULL,
  reason     text        NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, grant_id)
);
CREATE INDEX emergency_access_patient ON ${schema}.emergency_access (tenant_id, patient_id, expires_at);
-- The grants are read by the assessment and planning services' own roles too: this one table, read only.
GRANT USAGE ON SCHEMA ${schema} TO PUBLIC;
GRANT SELECT ON ${schema}.emergency_access TO PUBLIC;
