-- Assessments become editable by clinicians (red-flag judgement): optimistic concurrency.
ALTER TABLE ${schema}.assessments ADD COLUMN version bigint NOT NULL DEFAULT 1;
