-- Treatment plans: the clinical record of the planning service.
CREATE TABLE ${schema}.plans (
  tenant_id     text        NOT NULL,
  plan_id       text        NOT NULL,
  patient_id    text        NOT NULL,
  assessment_id text        NOT NULL,
  status        text        NOT NULL,
  version       bigint      NOT NULL,
  body          jsonb       NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plan_id)
);
-- At most one active plan per patient, even when two approvals race.
CREATE UNIQUE INDEX plans_one_active ON ${schema}.plans (tenant_id, patient_id) WHERE status = 'ACTIVE';
CREATE INDEX plans_by_patient ON ${schema}.plans (tenant_id, patient_id, created_at);
