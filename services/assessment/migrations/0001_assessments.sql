-- Stored, scored assessments: the clinical record of the assessment service.
CREATE TABLE ${schema}.assessments (
  tenant_id         text        NOT NULL,
  assessment_id     text        NOT NULL,
  patient_id        text        NOT NULL,
  intake_session_id text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  created_by        text        NOT NULL,
  body              jsonb       NOT NULL,
  PRIMARY KEY (tenant_id, assessment_id)
);
-- One assessment per intake session, even when two completions race.
CREATE UNIQUE INDEX assessments_one_per_intake
  ON ${schema}.assessments (tenant_id, intake_session_id) WHERE intake_session_id IS NOT NULL;
CREATE INDEX assessments_by_patient ON ${schema}.assessments (tenant_id, patient_id, created_at);
