-- Drop-folder intake (DESIGN §4): a queue's intake folder, and one row per distinct content
-- dropped into it, so the same bytes never make a second case in a queue.

-- A queue has intake on exactly while it has a row here. dir is relative to the data dir
-- (slash-separated), so a data dir that moves keeps its intake folders.
CREATE TABLE queue_intake (
    queue_id    TEXT PRIMARY KEY REFERENCES queues(id) ON DELETE CASCADE,
    dir         TEXT NOT NULL UNIQUE,
    mode        TEXT NOT NULL DEFAULT 'file' CHECK (mode IN ('file', 'records')),
    after       TEXT NOT NULL DEFAULT 'move' CHECK (after IN ('move', 'delete', 'keep')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- status 'ingested': the cases were made (case_ids, in record order); 'failed': the content
-- could not be ingested (error says why) and a later drop of the same bytes is tried again.
-- file_path is the team file the content was stored as; it has no foreign key, so this
-- lineage outlives a deleted file.
CREATE TABLE intake_files (
    id            TEXT PRIMARY KEY,
    queue_id      TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    team_id       TEXT NOT NULL REFERENCES teams(id),
    sha256        TEXT NOT NULL,
    name          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    content_type  TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('ingested', 'failed')),
    file_path     TEXT,
    case_count    INTEGER NOT NULL DEFAULT 0,
    case_ids      TEXT NOT NULL DEFAULT '[]',
    error         TEXT,
    -- How many later drops of the same bytes were set aside without a case.
    duplicates    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (queue_id, sha256)
);
CREATE INDEX intake_files_list ON intake_files(queue_id, created_at);
