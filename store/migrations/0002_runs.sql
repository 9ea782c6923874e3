-- Jobs: runs of a pinned Setup, their messages, the effect ledger of tool calls, gates
-- (human requests) and per-assignment memory files.

CREATE TABLE runs (
    id                    TEXT PRIMARY KEY,
    team_id               TEXT NOT NULL REFERENCES teams(id),
    agent_id              TEXT NOT NULL REFERENCES agents(id),
    build_id              TEXT NOT NULL REFERENCES builds(id),
    run_number            INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending','running','waiting','completed','failed','stopped')),
    source                TEXT NOT NULL,
    title                 TEXT NOT NULL DEFAULT '',
    sandbox_id            TEXT,
    case_id               TEXT,
    parent_run_id         TEXT,
    handover_from_run_id  TEXT,
    webhook_url           TEXT NOT NULL DEFAULT '',
    error                 TEXT,
    user_id               TEXT REFERENCES users(id),
    api_key_id            TEXT,
    -- The executor that holds the run while it is 'running', and until when.
    lease_owner           TEXT,
    lease_until           INTEGER,
    attempt               INTEGER NOT NULL DEFAULT 0,
    run_after             INTEGER NOT NULL,
    tool_mode             TEXT,
    prompt_tokens         INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    model_ms              INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    started_at            INTEGER,
    completed_at          INTEGER
);
CREATE INDEX runs_claim ON runs(status, run_after);
CREATE INDEX runs_team ON runs(team_id, created_at);
CREATE INDEX runs_agent ON runs(agent_id, run_number);

CREATE TABLE run_messages (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    type            TEXT NOT NULL,
    role            TEXT NOT NULL,
    text_content    TEXT,
    thinking        TEXT,
    tool_call_id    TEXT,
    tool_name       TEXT,
    tool_arguments  TEXT,
    tool_result     TEXT,
    tool_error      TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (run_id, seq)
);

-- The effect ledger: a call is 'pending' when the model asked for it, 'gated' while a
-- person decides, 'approved' once they did, 'started' just before it executes and 'done'
-- when its result message is committed.
CREATE TABLE tool_calls (
    run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    call_id          TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    name             TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending','gated','approved','started','done')),
    gate_id          TEXT,
    idempotency_key  TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    done_at          INTEGER,
    PRIMARY KEY (run_id, call_id)
);

CREATE TABLE human_requests (
    id            TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    team_id       TEXT NOT NULL REFERENCES teams(id),
    type          TEXT NOT NULL CHECK (type IN ('approval','question')),
    -- Why it opened: a model's request (request_human_approval / ask_human), the runtime
    -- enforcing approval.require, or an unknown outcome after a crash.
    kind          TEXT NOT NULL CHECK (kind IN ('model','policy','recovery')),
    title         TEXT NOT NULL,
    description   TEXT,
    details       TEXT,
    questions     TEXT,
    tool_call_id  TEXT,
    consent_hash  TEXT,
    status        TEXT NOT NULL CHECK (status IN ('open','approved','denied','answered','expired','superseded')),
    on_expiry     TEXT NOT NULL DEFAULT 'deny',
    -- Copied from the pinned Setup's approval policy when the gate opens.
    distinct_approver INTEGER NOT NULL DEFAULT 0,
    decided_by    TEXT REFERENCES users(id),
    decided_by_key TEXT,
    channel       TEXT,
    reason        TEXT,
    answers       TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    decided_at    INTEGER
);
CREATE INDEX human_requests_run ON human_requests(run_id, status);
CREATE INDEX human_requests_team ON human_requests(team_id, status, created_at);
CREATE INDEX human_requests_expiry ON human_requests(status, expires_at);

CREATE TABLE agent_memory_files (
    agent_id       TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    content        TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    source_run_id  TEXT,
    source_user_id TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (agent_id, path)
);
