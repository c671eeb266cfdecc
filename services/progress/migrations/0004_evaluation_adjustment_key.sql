-- The adjustment an evaluation sent to planning (derived from the plan state and
-- the decision). Evaluations that race on the same state send the same one; the
-- first recorded is the one that acted on the evidence, the others record that
-- the evidence was already used. Unique so that holds even without the lock.
ALTER TABLE ${schema}.evaluations ADD COLUMN adjustment_key text;
CREATE UNIQUE INDEX evaluations_one_per_adjustment ON ${schema}.evaluations (tenant_id, adjustment_key)
  WHERE adjustment_key IS NOT NULL;
