-- Outbound webhooks: team subscriptions and the delivery outbox. Outbox rows are written in the
-- transaction of the state change they report and delivered by the webhook worker.

CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY,
    team_id      TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    -- JSON list of event names; an empty list subscribes to every event.
    events       TEXT NOT NULL DEFAULT '[]',
    enabled      INTEGER NOT NULL DEFAULT 1,
    description  TEXT NOT NULL DEFAULT '',
    created_by   TEXT REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX webhooks_team ON webhooks(team_id, created_at);

-- One row per message to one URL. id is the Standard Webhooks webhook-id: it stays the same
-- across retries so receivers can drop duplicates. webhook_id is NULL for a run's own
-- webhook_url and has no foreign key, so the log outlives a deleted subscription; run_id has
-- none either, so this table does not depend on the runs schema.
CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    team_id           TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    webhook_id        TEXT,
    run_id            TEXT,
    url               TEXT NOT NULL,
    event             TEXT NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending','delivering','delivered','failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_until       INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    delivered_at      INTEGER
);
-- The claim and the worker's next wake-up: due pending rows, and expired leases.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_lease ON webhook_deliveries(status, lease_until);
-- The delivery log, newest first, and its filters.
CREATE INDEX webhook_deliveries_team ON webhook_deliveries(team_id, created_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at);
CREATE INDEX webhook_deliveries_run ON webhook_deliveries(run_id, created_at);
