-- Files: content-addressed blobs, the team file tree that points at them, and sandboxes
-- (scratch file sets a run can be started with). A blob's bytes live on disk under
-- <data>/blobs/sha256/ab/cd/<hash>; this schema only knows about them.

-- refs counts the rows that point at a blob (files, sandbox_files). The triggers below keep it
-- right on every insert, delete, re-point and cascade, whoever writes; a blob with refs = 0 is
-- garbage the GC may remove. Any later table that points at a blob adds the same triggers.
CREATE TABLE blobs (
    sha256        TEXT PRIMARY KEY,
    size          INTEGER NOT NULL CHECK (size >= 0),
    content_type  TEXT NOT NULL,
    refs          INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),
    created_at    INTEGER NOT NULL
);
CREATE INDEX blobs_unreferenced ON blobs(sha256) WHERE refs = 0;

-- A team file is a path (invoices/2026/a.pdf: relative, cleaned, no empty or dot segments)
-- pointing at a blob. size and content_type are the blob's, copied so listings need no join.
-- run_id and case_id are lineage: the run that wrote it (runs/<run_id>/…) or the case it came
-- in with; neither has a foreign key, so a file outlives what made it.
CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES blobs(sha256),
    size          INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    created_by    TEXT REFERENCES users(id),
    run_id        TEXT,
    case_id       TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (team_id, path)
);
CREATE INDEX files_blob ON files(sha256);
CREATE INDEX files_run ON files(run_id) WHERE run_id IS NOT NULL;
CREATE INDEX files_case ON files(case_id) WHERE case_id IS NOT NULL;

CREATE TRIGGER files_blob_ref_insert AFTER INSERT ON files BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE sha256 = new.sha256;
END;
CREATE TRIGGER files_blob_ref_delete AFTER DELETE ON files BEGIN
    UPDATE blobs SET refs = refs - 1 WHERE sha256 = old.sha256;
END;
CREATE TRIGGER files_blob_ref_update AFTER UPDATE OF sha256 ON files WHEN old.sha256 != new.sha256 BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE sha256 = new.sha256;
    UPDATE blobs SET refs = refs - 1 WHERE sha256 = old.sha256;
END;

-- A sandbox holds files for runs started with its id until it expires. Expired sandboxes no
-- run still uses are deleted by the GC (their files cascade, releasing their blobs).
CREATE TABLE sandboxes (
    id          TEXT PRIMARY KEY,
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    created_by  TEXT REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sandboxes_team ON sandboxes(team_id, created_at);
CREATE INDEX sandboxes_expiry ON sandboxes(expires_at);

-- Paths inside a sandbox are absolute, as the reference shows them (/workspace/data.csv).
CREATE TABLE sandbox_files (
    sandbox_id    TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES blobs(sha256),
    size          INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, path)
);
CREATE INDEX sandbox_files_blob ON sandbox_files(sha256);

CREATE TRIGGER sandbox_files_blob_ref_insert AFTER INSERT ON sandbox_files BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE sha256 = new.sha256;
END;
CREATE TRIGGER sandbox_files_blob_ref_delete AFTER DELETE ON sandbox_files BEGIN
    UPDATE blobs SET refs = refs - 1 WHERE sha256 = old.sha256;
END;
CREATE TRIGGER sandbox_files_blob_ref_update AFTER UPDATE OF sha256 ON sandbox_files WHEN old.sha256 != new.sha256 BEGIN
    UPDATE blobs SET refs = refs + 1 WHERE sha256 = new.sha256;
    UPDATE blobs SET refs = refs - 1 WHERE sha256 = old.sha256;
END;

CREATE INDEX runs_sandbox ON runs(sandbox_id) WHERE sandbox_id IS NOT NULL;
