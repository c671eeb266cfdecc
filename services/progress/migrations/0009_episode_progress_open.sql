-- Whether an episode's figures still move (issue 33, "flat with data"): true while the figures'
-- plan is its episode's plan and the episode is open. The refresher's daily recompute of open
-- episodes then walks only the figures that are due (the partial index episode_progress_open_due,
-- built concurrently: kProgressIndexes), not every open episode of every tenant once a minute.
-- Rows from before this migration start as open; those of ended episodes and superseded plans are
-- set false as they come due (PgOutcomeReports::StaleOpen), so no read of planning's schema here.
ALTER TABLE ${schema}.episode_progress ADD COLUMN episode_open boolean NOT NULL DEFAULT true;
