-- The dispatcher asks after every pass when the next postponed or retrying case falls
-- due; without an index on run_after that read walked every pending case of the queue.
CREATE INDEX cases_due ON cases(run_after) WHERE status = 'pending' AND claimed_by_run_id IS NULL;
