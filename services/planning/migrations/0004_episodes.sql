-- Episodes of care (issue 31): one row per episode, written in the same transaction as every
-- change of its plans, for the progress service's outcome reports (docs/reports.md). An episode
-- starts when a plan takes effect for a patient who has none in use, goes on through the plans
-- that supersede it (a re-assessment's plan) and ends when its plan is completed or discharged.
-- The grouping facts and the baseline are the plan in use's; `plan` is its body, from which the
-- progress service computes the episode's figures with the progress summary's own rules.
CREATE TABLE ${schema}.episodes (
  tenant_id       text        NOT NULL,
  episode_id      text        NOT NULL,  -- the id of the episode's first plan
  patient_id      text        NOT NULL,
  plan_id         text        NOT NULL,  -- the plan in use, or last in use
  clinic_id       text        NOT NULL,  -- the patient's clinic when the episode started, or 'unassigned'
  practitioner    text        NOT NULL,  -- who approved the plan in use
  risk_group      text        NOT NULL,  -- STarT Back: LOW, MEDIUM, HIGH or UNKNOWN
  subgroup        text        NOT NULL,  -- treatment-based classification, or UNKNOWN
  phase           text        NOT NULL,
  status          text        NOT NULL,  -- ACTIVE, SUSPENDED, COMPLETED, DISCHARGED
  referred        boolean     NOT NULL DEFAULT false,
  intake_red_flag boolean     NOT NULL DEFAULT false,
  started_at      timestamptz NOT NULL,
  ended_at        timestamptz,
  baseline_nprs   double precision,
  baseline_odi    double precision,
  baseline_rmdq   double precision,
  plan            jsonb       NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, episode_id)
);
-- At most one open episode per patient.
CREATE UNIQUE INDEX episodes_one_open ON ${schema}.episodes (tenant_id, patient_id) WHERE ended_at IS NULL;
CREATE INDEX episodes_by_start ON ${schema}.episodes (tenant_id, started_at);
CREATE INDEX episodes_by_plan ON ${schema}.episodes (tenant_id, plan_id);
CREATE INDEX episodes_by_update ON ${schema}.episodes (updated_at);
-- The progress service's role reads it (this table only, read only).
GRANT SELECT ON ${schema}.episodes TO PUBLIC;
-- Plans that took effect before this migration: each one an episode of its own (the lineage of
-- superseded plans was not recorded), attributed to the patient's latest clinic when the clinic
-- directory is there already.
DO $$
DECLARE
  clinic_of text := '''unassigned''';
BEGIN
  IF to_regclass('assessment.patient_clinics') IS NOT NULL THEN
    clinic_of := 'COALESCE((SELECT c.clinic_id FROM assessment.patient_clinics c WHERE c.tenant_id = p.tenant_id'
                 ' AND c.patient_id = p.patient_id ORDER BY c.enrolled_at DESC, c.clinic_id LIMIT 1), ''unassigned'')';
  END IF;
  EXECUTE format($backfill$
    INSERT INTO ${schema}.episodes (tenant_id, episode_id, patient_id, plan_id, clinic_id, practitioner, risk_group,
        subgroup, phase, status, referred, intake_red_flag, started_at, ended_at, baseline_nprs, baseline_odi,
        baseline_rmdq, plan)
    SELECT p.tenant_id, p.plan_id, p.patient_id, p.plan_id, %s,
           COALESCE(NULLIF(p.body->>'approved_by', ''), p.body->>'created_by', ''),
           CASE p.body->>'intensity' WHEN 'INTENSITY_ADVICE_AND_SELF_MANAGEMENT' THEN 'LOW'
                WHEN 'INTENSITY_PHYSIOTHERAPY_PACKAGE' THEN 'MEDIUM'
                WHEN 'INTENSITY_PSYCHOLOGICALLY_INFORMED' THEN 'HIGH' ELSE 'UNKNOWN' END,
           'UNKNOWN', COALESCE(replace(p.body->>'phase', 'PHASE_', ''), 'UNKNOWN'), p.status,
           COALESCE(p.body->>'type' = 'PLAN_TYPE_REFERRAL', false) OR COALESCE((p.body->>'referral_recommended')::boolean, false),
           COALESCE(p.body->>'type' = 'PLAN_TYPE_REFERRAL', false),
           COALESCE((p.body->>'activate_time')::timestamptz, p.created_at),
           CASE WHEN p.status IN ('COMPLETED', 'DISCHARGED') THEN p.updated_at END,
           (SELECT (s->>'score')::float8 FROM jsonb_array_elements(COALESCE(p.body->'baseline_scores', '[]')) s
             WHERE s->>'instrument' = 'INSTRUMENT_NPRS' LIMIT 1),
           (SELECT (s->>'score')::float8 FROM jsonb_array_elements(COALESCE(p.body->'baseline_scores', '[]')) s
             WHERE s->>'instrument' = 'INSTRUMENT_ODI' LIMIT 1),
           (SELECT (s->>'score')::float8 FROM jsonb_array_elements(COALESCE(p.body->'baseline_scores', '[]')) s
             WHERE s->>'instrument' = 'INSTRUMENT_RMDQ' LIMIT 1),
           p.body
      FROM ${schema}.plans p WHERE p.status IN ('ACTIVE', 'SUSPENDED', 'COMPLETED', 'DISCHARGED')
    ON CONFLICT DO NOTHING$backfill$, clinic_of);
END
$$;
