-- Dashboard sessions: the table exists since 0001; add idle expiry (last_seen_at beside the
-- absolute expires_at) and what a person would want to see about a session.
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
CREATE INDEX sessions_user ON sessions(user_id);
-- The dashboard's "recent failures" and "running now" read runs by team and status.
CREATE INDEX runs_team_status ON runs(team_id, status, updated_at);
