-- Outcome questionnaire notices (issue 29): each scheduled task's QUESTIONNAIRE_DUE and
-- QUESTIONNAIRE_OVERDUE event is given once, whichever replica sees it first, across restarts.
CREATE TABLE ${schema}.task_notices (
  tenant_id  text        NOT NULL,
  task_id    text        NOT NULL,
  notice     text        NOT NULL CHECK (notice IN ('due', 'overdue')),
  patient_id text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, task_id, notice)
);
