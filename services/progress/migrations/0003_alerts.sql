-- Alerts for a clinic's clinicians; at most one open alert per patient and kind.
CREATE TABLE ${schema}.alerts (
  tenant_id  text        NOT NULL,
  alert_id   text        NOT NULL,
  clinic_id  text        NOT NULL,
  patient_id text        NOT NULL,
  kind       text        NOT NULL,
  status     text        NOT NULL,
  body       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, alert_id)
);
CREATE UNIQUE INDEX alerts_one_open ON ${schema}.alerts (tenant_id, patient_id, kind) WHERE status = 'OPEN';
CREATE INDEX alerts_by_clinic ON ${schema}.alerts (tenant_id, clinic_id, created_at DESC, alert_id DESC);
ALTER TABLE ${schema}.visits ADD COLUMN clinic_id text;
