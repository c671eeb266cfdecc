-- Visits and home-exercise logs: the clinical record of the progress service.
CREATE TABLE ${schema}.visits (
  tenant_id  text        NOT NULL,
  visit_id   text        NOT NULL,
  patient_id text        NOT NULL,
  visit_time timestamptz NOT NULL,
  body       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, visit_id)
);
CREATE INDEX visits_by_patient ON ${schema}.visits (tenant_id, patient_id, visit_time);

CREATE TABLE ${schema}.home_exercise_logs (
  tenant_id      text        NOT NULL,
  log_id         text        NOT NULL,
  patient_id     text        NOT NULL,
  plan_id        text        NOT NULL,
  exercise_id    text        NOT NULL,
  performed_time timestamptz NOT NULL,
  body           jsonb       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, log_id)
);
CREATE INDEX home_exercise_logs_by_patient ON ${schema}.home_exercise_logs (tenant_id, patient_id, performed_time);
