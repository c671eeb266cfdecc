-- Every change to a plan, with who, when, why and the plan as it was after it.
CREATE TABLE ${schema}.plan_revisions (
  tenant_id  text        NOT NULL,
  plan_id    text        NOT NULL,
  revision   integer     NOT NULL,
  change     text        NOT NULL,
  reason     text        NOT NULL,
  changed_by text        NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  body       jsonb       NOT NULL,
  PRIMARY KEY (tenant_id, plan_id, revision)
);
