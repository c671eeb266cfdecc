-- Outcome schedules (issue 29): each plan's schedule of outcome questionnaires (ids,
-- instruments and days only), written with every change of the plan, for the progress
-- service's ListDueTasks and its questionnaire scheduler. Plans approved before this
-- migration get theirs at their next change.
CREATE TABLE ${schema}.plan_schedules (
  tenant_id              text        NOT NULL,
  plan_id                text        NOT NULL,
  patient_id             text        NOT NULL,
  status                 text        NOT NULL,
  activate_at            timestamptz,
  home_sessions_per_week integer     NOT NULL DEFAULT 0,
  -- [{"instrument": "INSTRUMENT_NPRS", "day": 7, "purpose": "weekly pain"}, ...]
  schedule               jsonb       NOT NULL DEFAULT '[]',
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plan_id)
);
CREATE INDEX plan_schedules_active ON ${schema}.plan_schedules (tenant_id, patient_id) WHERE status = 'ACTIVE';
-- The progress service's role reads it (this table only, read only).
GRANT USAGE ON SCHEMA ${schema} TO PUBLIC;
GRANT SELECT ON ${schema}.plan_schedules TO PUBLIC;
