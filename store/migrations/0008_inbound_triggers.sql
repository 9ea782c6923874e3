-- Inbound webhook triggers: per Assignment one secret URL (/v2/hooks/<token>) whose
-- deliveries start a run or create a case. The token is kept only as its SHA-256, like
-- API keys; the optional signing secret is sealed with the server's master key.

CREATE TABLE inbound_triggers (
    id                TEXT PRIMARY KEY,
    agent_id          TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id           TEXT REFERENCES users(id),
    integration_slug  TEXT NOT NULL,
    trigger_type      TEXT NOT NULL CHECK (trigger_type IN ('start_run','create_case')),
    queue_id          TEXT REFERENCES queues(id) ON DELETE SET NULL,
    enabled           INTEGER NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    token_prefix      TEXT NOT NULL,
    signing_secret    BLOB,
    signature_header  TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (agent_id, integration_slug)
);
