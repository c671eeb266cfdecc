-- Consents (issue 28): a patient's decisions on treatment, spinal manipulation and
-- sharing with a named telehealth platform. Append-only: a withdrawal is a new row,
-- the latest row of a (kind, platform) is the decision in force.
CREATE TABLE ${schema}.consents (
  tenant_id         text        NOT NULL,
  consent_id        bigint      GENERATED ALWAYS AS IDENTITY,
  patient_id        text        NOT NULL,
  kind              text        NOT NULL CHECK (kind IN ('treatment', 'manipulation', 'data_sharing')),
  platform          text        NOT NULL DEFAULT '',
  decision          text        NOT NULL CHECK (decision IN ('granted', 'withdrawn')),
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  recorded_by       text        NOT NULL,
  recorded_by_role  text        NOT NULL,
  recorded_through  text        NOT NULL DEFAULT '',
  note              text        NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, consent_id),
  CHECK ((kind = 'data_sharing') = (platform <> ''))
);
CREATE INDEX consents_patient ON ${schema}.consents (tenant_id, patient_id, kind, platform, consent_id);
-- Every service's role reads the sharing decisions (a platform's access is checked everywhere).
GRANT SELECT ON ${schema}.consents TO PUBLIC;
