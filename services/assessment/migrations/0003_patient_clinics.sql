-- Clinics (issue 28): which clinics of the tenant a patient is enrolled at, and the
-- history of enrolments and transfers. Every service scopes staff access by it.
CREATE TABLE ${schema}.patient_clinics (
  tenant_id   text        NOT NULL,
  patient_id  text        NOT NULL,
  clinic_id   text        NOT NULL,
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  enrolled_by text        NOT NULL,
  PRIMARY KEY (tenant_id, patient_id, clinic_id)
);
CREATE INDEX patient_clinics_clinic ON ${schema}.patient_clinics (tenant_id, clinic_id);
CREATE TABLE ${schema}.patient_clinic_history (
  tenant_id  text        NOT NULL,
  entry_id   bigint      GENERATED ALWAYS AS IDENTITY,
  patient_id text        NOT NULL,
  clinic_id  text        NOT NULL,
  change     text        NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  changed_by text        NOT NULL,
  reason     text        NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, entry_id)
);
CREATE INDEX patient_clinic_history_patient ON ${schema}.patient_clinic_history (tenant_id, patient_id, entry_id);
-- The directory is read by the planning and progress services' own roles too (clinic scoping):
-- this one table, read only. Nothing else of the schema is opened to them.
GRANT USAGE ON SCHEMA ${schema} TO PUBLIC;
GRANT SELECT ON ${schema}.patient_clinics TO PUBLIC;
