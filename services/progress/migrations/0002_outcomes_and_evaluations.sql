-- Outcome re-measures scored by the assessment service, and progress evaluations.
CREATE TABLE ${schema}.outcome_measures (
  tenant_id    text        NOT NULL,
  measure_id   text        NOT NULL,
  patient_id   text        NOT NULL,
  instrument   text        NOT NULL,
  measure_time timestamptz NOT NULL,
  body         jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, measure_id)
);
CREATE INDEX outcome_measures_by_patient ON ${schema}.outcome_measures (tenant_id, patient_id, measure_time);

CREATE TABLE ${schema}.evaluations (
  tenant_id     text        NOT NULL,
  evaluation_id text        NOT NULL,
  patient_id    text        NOT NULL,
  decision      text        NOT NULL,
  body          jsonb       NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, evaluation_id)
);
CREATE INDEX evaluations_by_patient ON ${schema}.evaluations (tenant_id, patient_id, created_at);
