-- Episode lifecycle (issue 32, part 4): why an episode ended, and how often it was taken up again
-- by a plan taking effect within relapse-window-days of its end (a relapse, not a new episode).
ALTER TABLE ${schema}.episodes ADD COLUMN relapses integer NOT NULL DEFAULT 0;
ALTER TABLE ${schema}.episodes ADD COLUMN discharge_reason text;
