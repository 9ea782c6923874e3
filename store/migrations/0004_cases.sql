-- Queues and cases: durable work items, their labels and event history, full-text search,
-- and the case triggers that bind an agent to a queue.

CREATE TABLE queues (
    id             TEXT PRIMARY KEY,
    team_id        TEXT NOT NULL REFERENCES teams(id),
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    folder_id      TEXT,
    automation_id  TEXT,
    created_by     TEXT REFERENCES users(id),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX queues_name ON queues(team_id, name);

-- A case is in progress exactly while a run holds it (claimed_by_run_id): the run is its
-- lease. priority is 0 none, 1 medium, 2 high, so it sorts.
CREATE TABLE cases (
    id                   TEXT PRIMARY KEY,
    queue_id             TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    team_id              TEXT NOT NULL REFERENCES teams(id),
    title                TEXT NOT NULL,
    data                 TEXT NOT NULL DEFAULT '',
    priority             INTEGER NOT NULL DEFAULT 0 CHECK (priority IN (0, 1, 2)),
    status               TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','completed','failed')),
    attempt              INTEGER NOT NULL DEFAULT 0,
    run_after            INTEGER NOT NULL,
    postponed_to         INTEGER,
    claimed_by_run_id    TEXT,
    claimed_by_agent_id  TEXT,
    claimed_at           INTEGER,
    last_error           TEXT,
    result               TEXT,
    source_file          TEXT,
    created_by           TEXT REFERENCES users(id),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    completed_at         INTEGER
);
-- The dispatcher's claim: the next due, unclaimed, pending case of a queue by priority.
CREATE INDEX cases_dispatch ON cases(queue_id, priority DESC, run_after, id) WHERE status = 'pending' AND claimed_by_run_id IS NULL;
-- Concurrency: how many cases of a queue an agent's runs hold right now.
CREATE INDEX cases_claimed ON cases(queue_id, claimed_by_agent_id) WHERE status = 'pending' AND claimed_by_run_id IS NOT NULL;
CREATE INDEX cases_list ON cases(queue_id, created_at);
CREATE INDEX cases_run ON cases(claimed_by_run_id);

CREATE VIRTUAL TABLE cases_fts USING fts5(title, data, content='cases', content_rowid='rowid');
CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN
    INSERT INTO cases_fts(rowid, title, data) VALUES (new.rowid, new.title, new.data);
END;
CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN
    INSERT INTO cases_fts(cases_fts, rowid, title, data) VALUES ('delete', old.rowid, old.title, old.data);
END;
CREATE TRIGGER cases_fts_update AFTER UPDATE OF title, data ON cases BEGIN
    INSERT INTO cases_fts(cases_fts, rowid, title, data) VALUES ('delete', old.rowid, old.title, old.data);
    INSERT INTO cases_fts(rowid, title, data) VALUES (new.rowid, new.title, new.data);
END;

CREATE TABLE queue_labels (
    id          TEXT PRIMARY KEY,
    queue_id    TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    key         TEXT NOT NULL DEFAULT '',
    value       TEXT NOT NULL,
    color_hue   INTEGER NOT NULL DEFAULT 210,
    created_at  INTEGER NOT NULL,
    UNIQUE (queue_id, key, value)
);

CREATE TABLE case_labels (
    case_id   TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    label_id  TEXT NOT NULL REFERENCES queue_labels(id) ON DELETE CASCADE,
    PRIMARY KEY (case_id, label_id)
);
CREATE INDEX case_labels_label ON case_labels(label_id);

-- Append-only history: who (user, key, agent, run) did what (type) when, from → to.
CREATE TABLE case_events (
    id                TEXT PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    type              TEXT NOT NULL,
    from_status       TEXT,
    to_status         TEXT,
    reason            TEXT,
    run_id            TEXT,
    human_request_id  TEXT,
    agent_id          TEXT,
    user_id           TEXT,
    api_key_id        TEXT,
    channel           TEXT NOT NULL,
    detail            TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX case_events_case ON case_events(case_id, created_at);

CREATE TABLE case_triggers (
    id             TEXT PRIMARY KEY,
    team_id        TEXT NOT NULL REFERENCES teams(id),
    agent_id       TEXT NOT NULL UNIQUE REFERENCES agents(id) ON DELETE CASCADE,
    case_queue_id  TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    enabled        INTEGER NOT NULL DEFAULT 1,
    concurrency    INTEGER NOT NULL DEFAULT 1 CHECK (concurrency >= 1),
    max_attempts   INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    user_id        TEXT REFERENCES users(id),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX case_triggers_queue ON case_triggers(case_queue_id, enabled);
