-- Foundation schema: tenancy, credentials, assignments and their setups, audit, idempotency.
-- Times are unix milliseconds (UTC); ids are UUIDv7 strings.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT,
    password_hash  TEXT,
    created_at     INTEGER NOT NULL
);

CREATE TABLE memberships (
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner','admin','member','viewer')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_team ON api_keys(team_id, created_at);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE agent_folders (
    id                TEXT PRIMARY KEY,
    team_id           TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    parent_folder_id  TEXT REFERENCES agent_folders(id),
    name              TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
-- One name per parent; '' stands for the team's root so NULL parents collide too.
CREATE UNIQUE INDEX agent_folders_name ON agent_folders(team_id, coalesce(parent_folder_id, ''), name);

CREATE TABLE agents (
    id                       TEXT PRIMARY KEY,
    team_id                  TEXT NOT NULL REFERENCES teams(id),
    folder_id                TEXT REFERENCES agent_folders(id),
    name                     TEXT NOT NULL,
    description              TEXT NOT NULL DEFAULT '',
    thread_id                TEXT,
    automation_id            TEXT,
    slack_enabled            INTEGER NOT NULL DEFAULT 0,
    microsoft_teams_enabled  INTEGER NOT NULL DEFAULT 0,
    agentic_memory_enabled   INTEGER NOT NULL DEFAULT 0,
    live_build_id            TEXT,
    created_by               TEXT REFERENCES users(id),
    updated_by               TEXT REFERENCES users(id),
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    last_run_at              INTEGER,
    deleted_at               INTEGER
);
CREATE INDEX agents_team ON agents(team_id, deleted_at, created_at);
CREATE INDEX agents_folder ON agents(folder_id);

CREATE TABLE agent_pins (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pinned_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, user_id)
);

-- A build is a Setup: an immutable-once-used configuration of an agent.
CREATE TABLE builds (
    id                    TEXT PRIMARY KEY,
    agent_id              TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    revision_number       INTEGER NOT NULL,
    revision_name         TEXT,
    revision_description  TEXT,
    status                TEXT NOT NULL CHECK (status IN ('draft','live','archived')),
    config                TEXT NOT NULL,
    handover_target_ids   TEXT NOT NULL DEFAULT '[]',
    parent_build_id       TEXT,
    created_by            TEXT REFERENCES users(id),
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    promoted_at           INTEGER,
    -- Set in the transaction that starts the first run pinned to this build; from then on the build is immutable.
    first_run_at          INTEGER,
    UNIQUE (agent_id, revision_number)
);

-- Hash-chained: hash = sha256(prev_hash || canonical row). seq orders the chain.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    ts            INTEGER NOT NULL,
    team_id       TEXT NOT NULL,
    user_id       TEXT,
    api_key_id    TEXT,
    api_key_name  TEXT,
    channel       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    ip            TEXT,
    detail        TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_team ON audit_log(team_id, ts);

-- Replays of POSTs carrying an Idempotency-Key, per credential, for 24 h.
CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER,
    body          BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);
