-- Symptoms reported at any time (ReportSymptoms): the safety-net answers, their
-- red-flag result and the advice given, whatever the plan's state.
CREATE TABLE ${schema}.symptom_reports (
  tenant_id   text        NOT NULL,
  report_id   text        NOT NULL,
  patient_id  text        NOT NULL,
  report_time timestamptz NOT NULL,
  body        jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, report_id)
);
CREATE INDEX symptom_reports_by_patient ON ${schema}.symptom_reports (tenant_id, patient_id, report_time);
