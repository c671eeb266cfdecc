-- Outcome reports (issue 31, docs/reports.md): each episode's progress figures, computed with the
-- progress summary's rules from the plan in use (planning.episodes) and the patient's records,
-- by the episode refresher after every change (episode_changes) and daily for open episodes.
CREATE TABLE ${schema}.episode_progress (
  tenant_id            text             NOT NULL,
  plan_id              text             NOT NULL,
  patient_id           text             NOT NULL,
  latest_pain          double precision,
  pain_judged          boolean          NOT NULL DEFAULT false,
  pain_improved        boolean          NOT NULL DEFAULT false,
  latest_odi           double precision,
  latest_rmdq          double precision,
  disability_judged    boolean          NOT NULL DEFAULT false,
  disability_improved  boolean          NOT NULL DEFAULT false,
  adherence_percent    double precision,
  course_status        text             NOT NULL DEFAULT '',
  red_flag_alerts      integer          NOT NULL DEFAULT 0,
  computed_at          timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plan_id)
);
CREATE INDEX episode_progress_computed ON ${schema}.episode_progress (computed_at);
-- Patients whose records changed since their figures were computed: a row per record written,
-- in the same transaction (insert only, so writers never wait for each other), taken and
-- deleted by the refresher.
CREATE TABLE ${schema}.episode_changes (
  change_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  text        NOT NULL,
  patient_id text        NOT NULL
);
CREATE INDEX episode_changes_patient ON ${schema}.episode_changes (tenant_id, patient_id, change_id);
CREATE INDEX alerts_by_patient ON ${schema}.alerts (tenant_id, patient_id, created_at);
