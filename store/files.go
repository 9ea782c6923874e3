package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// File is a team file: a path in the team's tree pointing at a content-addressed blob.
type File struct {
	ID          string
	TeamID      string
	Path        string
	SHA256      string
	Size        int64
	ContentType string
	CreatedBy   *string
	// RunID and CaseID are lineage: the run that wrote the file, the case it came with.
	RunID     *string
	CaseID    *string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewFile is what insertFileTx needs. Path must already be cleaned and confined by the
// caller (files.CleanPath); the blob must already be stored on disk (files.Blobs.Put).
// CreatedBy, RunID and CaseID are optional ("" for none).
type NewFile struct {
	TeamID      string
	Path        string
	SHA256      string
	Size        int64
	ContentType string
	CreatedBy   string
	RunID       string
	CaseID      string
}

const fileCols = "id, team_id, path, sha256, size, content_type, created_by, run_id, case_id, created_at, updated_at"

func scanFile(sc scanner) (File, error) {
	var f File
	var by, run, cs sql.NullString
	var created, updated int64
	if err := sc.Scan(&f.ID, &f.TeamID, &f.Path, &f.SHA256, &f.Size, &f.ContentType, &by, &run, &cs, &created, &updated); err != nil {
		return File{}, err
	}
	f.CreatedBy, f.RunID, f.CaseID = strPtr(by), strPtr(run), strPtr(cs)
	f.CreatedAt, f.UpdatedAt = Time(created), Time(updated)
	return f, nil
}

// ensureBlobTx records a stored blob so files can point at it; recording it again is a no-op.
func (s *Store) ensureBlobTx(ctx context.Context, tx *sql.Tx, sha string, size int64, contentType string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO blobs(sha256, size, content_type, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (sha256) DO NOTHING`, sha, size, contentType, s.nowMs())
	if err != nil {
		return fmt.Errorf("record blob %s: %w", sha, err)
	}
	return nil
}

// insertFileTx creates the team file at f.Path, or points the existing one at the new blob
// (keeping its id, created_at and created_by; lineage given replaces the old, lineage not
// given keeps it, so editing an intake file keeps its case). Blob reference counts
// follow through the schema's triggers, so the old blob becomes garbage when nothing else
// points at it. It runs inside the caller's transaction (e.g. intake's, with its case).
func (s *Store) insertFileTx(ctx context.Context, tx *sql.Tx, f NewFile) (File, error) {
	if f.TeamID == "" || f.Path == "" || f.SHA256 == "" {
		return File{}, invalid("a file needs a team, a path and a blob")
	}
	if err := s.ensureBlobTx(ctx, tx, f.SHA256, f.Size, f.ContentType); err != nil {
		return File{}, err
	}
	now := s.nowMs()
	out, err := scanFile(tx.QueryRowContext(ctx, `INSERT INTO files(id, team_id, path, sha256, size, content_type, created_by, run_id, case_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (team_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, content_type = excluded.content_type,
			run_id = coalesce(excluded.run_id, run_id), case_id = coalesce(excluded.case_id, case_id), updated_at = excluded.updated_at
		RETURNING `+fileCols,
		NewID(), f.TeamID, f.Path, f.SHA256, f.Size, f.ContentType, optional(f.CreatedBy), optional(f.RunID), optional(f.CaseID), now, now))
	if err != nil {
		return File{}, fmt.Errorf("insert file %s: %w", f.Path, err)
	}
	return out, nil
}

// PutFile creates or replaces a team file and audits it as the actor's operation.
func (s *Store) PutFile(ctx context.Context, a Actor, f NewFile) (File, error) {
	var out File
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var err error
		out, err = s.insertFileTx(ctx, tx, f)
		return Target{Type: "file", ID: out.ID, Detail: map[string]any{"path": out.Path, "sha256": out.SHA256, "size": out.Size}}, err
	})
	return out, err
}

// WriteRunFile is a run's write_file: the file at path (already under runs/<run_id>/) with
// the run as its lineage. Rewriting the same content changes nothing, so a replay after a
// crash is harmless; a change is audited as the run's.
func (s *Store) WriteRunFile(ctx context.Context, run Run, path, sha string, size int64, contentType string) (File, error) {
	var out File
	err := s.write(ctx, func(tx *sql.Tx) error {
		cur, err := scanFile(tx.QueryRowContext(ctx, "SELECT "+fileCols+" FROM files WHERE team_id = ? AND path = ?", run.TeamID, path))
		if err == nil && cur.SHA256 == sha {
			out = cur
			return nil
		}
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		out, err = s.insertFileTx(ctx, tx, NewFile{TeamID: run.TeamID, Path: path, SHA256: sha, Size: size, ContentType: contentType,
			RunID: run.ID, CaseID: derefStr(run.CaseID)})
		if err != nil {
			return err
		}
		a := Actor{TeamID: run.TeamID, Channel: "run", Operation: "write_file"}
		return s.appendAudit(ctx, tx, a, run.TeamID, Target{Type: "file", ID: out.ID,
			Detail: map[string]any{"path": out.Path, "sha256": out.SHA256, "size": out.Size, "run_id": run.ID}}, "success")
	})
	return out, err
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fileInTeam(ctx context.Context, q querier, team, path string) (File, error) {
	f, err := scanFile(q.QueryRowContext(ctx, "SELECT "+fileCols+" FROM files WHERE team_id = ? AND path = ?", team, path))
	if err == sql.ErrNoRows {
		return File{}, notFound("file %q not found", path)
	}
	return f, err
}

// GetFile returns a team's file at path; another team's is reported as not found.
func (s *Store) GetFile(ctx context.Context, team, path string) (File, error) {
	return fileInTeam(ctx, s.r, team, path)
}

// prefixRange turns a path prefix into [lo, hi) bounds over the (team_id, path) index.
func prefixRange(prefix string) (string, string) {
	return prefix, prefix + "\U0010FFFF"
}

// ListFiles returns a team's files whose path starts with prefix ("" for all), by path,
// and how many match in all.
func (s *Store) ListFiles(ctx context.Context, team, prefix string, limit, offset int) ([]File, int, error) {
	lo, hi := prefixRange(prefix)
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM files WHERE team_id = ? AND path >= ? AND path < ?", team, lo, hi).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+fileCols+" FROM files WHERE team_id = ? AND path >= ? AND path < ? ORDER BY path LIMIT ? OFFSET ?",
		team, lo, hi, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out, err := collectFiles(rows)
	return out, total, err
}

func collectFiles(rows *sql.Rows) ([]File, error) {
	defer rows.Close()
	out := []File{}
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// RunArtifacts returns the files a run wrote, by path.
func (s *Store) RunArtifacts(ctx context.Context, runID string) ([]File, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+fileCols+" FROM files WHERE run_id = ? ORDER BY path", runID)
	if err != nil {
		return nil, err
	}
	return collectFiles(rows)
}

// RenameFile moves a team file to a new path. A file already at the new path is a conflict:
// renaming never overwrites.
func (s *Store) RenameFile(ctx context.Context, a Actor, from, to string) (File, error) {
	var out File
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		f, err := fileInTeam(ctx, tx, a.TeamID, from)
		if err != nil {
			return Target{}, err
		}
		if from == to {
			out = f
			return Target{Type: "file", ID: f.ID, Detail: map[string]any{"from": from, "to": to}}, nil
		}
		if _, err := fileInTeam(ctx, tx, a.TeamID, to); err == nil {
			return Target{}, conflict("a file already exists at %q: delete it or choose another name", to)
		}
		out, err = scanFile(tx.QueryRowContext(ctx, "UPDATE files SET path = ?, updated_at = ? WHERE id = ? RETURNING "+fileCols, to, s.nowMs(), f.ID))
		if err != nil {
			return Target{}, fmt.Errorf("rename file: %w", err)
		}
		return Target{Type: "file", ID: f.ID, Detail: map[string]any{"from": from, "to": to}}, nil
	})
	return out, err
}

// DeleteFile removes a team file; its blob becomes garbage if nothing else points at it.
func (s *Store) DeleteFile(ctx context.Context, a Actor, path string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		f, err := fileInTeam(ctx, tx, a.TeamID, path)
		if err != nil {
			return Target{}, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM files WHERE id = ?", f.ID); err != nil {
			return Target{}, fmt.Errorf("delete file: %w", err)
		}
		return Target{Type: "file", ID: f.ID, Detail: map[string]any{"path": path, "sha256": f.SHA256}}, nil
	})
}

// Sandbox is a scratch file set runs can be started with until it expires.
type Sandbox struct {
	ID        string
	TeamID    string
	CreatedBy *string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SandboxFile is one file in a sandbox; Path is absolute inside the sandbox (/workspace/a.csv).
type SandboxFile struct {
	SandboxID   string
	Path        string
	SHA256      string
	Size        int64
	ContentType string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// CreateSandbox creates an empty sandbox that lives for ttl.
func (s *Store) CreateSandbox(ctx context.Context, a Actor, ttl time.Duration) (Sandbox, error) {
	now := s.nowMs()
	sb := Sandbox{ID: NewID(), TeamID: a.TeamID, CreatedAt: Time(now), ExpiresAt: Time(now + ttl.Milliseconds())}
	if a.UserID != "" {
		sb.CreatedBy = &a.UserID
	}
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		_, err := tx.ExecContext(ctx, "INSERT INTO sandboxes(id, team_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
			sb.ID, sb.TeamID, optional(a.UserID), now, now+ttl.Milliseconds())
		return Target{Type: "sandbox", ID: sb.ID}, err
	})
	return sb, err
}

func sandboxInTeam(ctx context.Context, q querier, team, id string) (Sandbox, error) {
	var sb Sandbox
	var by sql.NullString
	var created, expires int64
	err := q.QueryRowContext(ctx, "SELECT id, team_id, created_by, created_at, expires_at FROM sandboxes WHERE id = ? AND team_id = ?", id, team).
		Scan(&sb.ID, &sb.TeamID, &by, &created, &expires)
	if err == sql.ErrNoRows {
		return sb, notFound("sandbox %s not found", id)
	}
	sb.CreatedBy, sb.CreatedAt, sb.ExpiresAt = strPtr(by), Time(created), Time(expires)
	return sb, err
}

// GetSandbox returns a team's sandbox, expired or not; another team's is not found.
func (s *Store) GetSandbox(ctx context.Context, team, id string) (Sandbox, error) {
	return sandboxInTeam(ctx, s.r, team, id)
}

// PutSandboxFile creates or replaces a file in a live sandbox.
func (s *Store) PutSandboxFile(ctx context.Context, a Actor, sandboxID, path, sha string, size int64, contentType string) (SandboxFile, error) {
	var out SandboxFile
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		sb, err := sandboxInTeam(ctx, tx, a.TeamID, sandboxID)
		if err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		if sb.ExpiresAt.UnixMilli() <= now {
			return Target{}, conflict("sandbox %s expired at %s: create a new sandbox", sandboxID, sb.ExpiresAt.Format(time.RFC3339))
		}
		if err := s.ensureBlobTx(ctx, tx, sha, size, contentType); err != nil {
			return Target{}, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sandbox_files(sandbox_id, path, sha256, size, content_type, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (sandbox_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
				content_type = excluded.content_type, updated_at = excluded.updated_at`,
			sandboxID, path, sha, size, contentType, now, now)
		if err != nil {
			return Target{}, fmt.Errorf("insert sandbox file: %w", err)
		}
		out = SandboxFile{SandboxID: sandboxID, Path: path, SHA256: sha, Size: size, ContentType: contentType, CreatedAt: Time(now), UpdatedAt: Time(now)}
		return Target{Type: "sandbox", ID: sandboxID, Detail: map[string]any{"path": path, "sha256": sha, "size": size}}, nil
	})
	return out, err
}

const sandboxFileCols = "sandbox_id, path, sha256, size, content_type, created_at, updated_at"

func scanSandboxFile(sc scanner) (SandboxFile, error) {
	var f SandboxFile
	var created, updated int64
	err := sc.Scan(&f.SandboxID, &f.Path, &f.SHA256, &f.Size, &f.ContentType, &created, &updated)
	f.CreatedAt, f.UpdatedAt = Time(created), Time(updated)
	return f, err
}

// ListSandboxFiles returns every file of a sandbox whose path starts with prefix, by path.
func (s *Store) ListSandboxFiles(ctx context.Context, sandboxID, prefix string) ([]SandboxFile, error) {
	lo, hi := prefixRange(prefix)
	rows, err := s.r.QueryContext(ctx, "SELECT "+sandboxFileCols+" FROM sandbox_files WHERE sandbox_id = ? AND path >= ? AND path < ? ORDER BY path",
		sandboxID, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SandboxFile{}
	for rows.Next() {
		f, err := scanSandboxFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// GetSandboxFile returns one file of a sandbox.
func (s *Store) GetSandboxFile(ctx context.Context, sandboxID, path string) (SandboxFile, error) {
	f, err := scanSandboxFile(s.r.QueryRowContext(ctx, "SELECT "+sandboxFileCols+" FROM sandbox_files WHERE sandbox_id = ? AND path = ?", sandboxID, path))
	if err == sql.ErrNoRows {
		return f, notFound("sandbox file %q not found", path)
	}
	return f, err
}

// DeleteExpiredSandboxes removes sandboxes past their expiry that no unfinished run was
// started with; their files go with them and release their blobs.
func (s *Store) DeleteExpiredSandboxes(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sandboxes WHERE expires_at <= ? AND NOT EXISTS (
			SELECT 1 FROM runs WHERE runs.sandbox_id = sandboxes.id AND runs.status NOT IN ('completed','failed','stopped'))`, s.nowMs())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// UnreferencedBlobs lists up to limit blobs nothing points at (files.BlobIndex).
func (s *Store) UnreferencedBlobs(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT sha256 FROM blobs WHERE refs = 0 ORDER BY sha256 LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sha string
		if err := rows.Scan(&sha); err != nil {
			return nil, err
		}
		out = append(out, sha)
	}
	return out, rows.Err()
}

// ForgetBlob deletes a blob's row if nothing points at it; false means something does
// (again) and the blob must stay (files.BlobIndex).
func (s *Store) ForgetBlob(ctx context.Context, sha string) (bool, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM blobs WHERE sha256 = ? AND refs = 0", sha)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// BlobKnown reports whether the database has a row for the blob (files.BlobIndex).
func (s *Store) BlobKnown(ctx context.Context, sha string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM blobs WHERE sha256 = ?", sha).Scan(&n)
	return n > 0, err
}

// BlobRefs returns how many rows point at a blob; -1 when the blob is unknown.
func (s *Store) BlobRefs(ctx context.Context, sha string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT refs FROM blobs WHERE sha256 = ?", sha).Scan(&n)
	if err == sql.ErrNoRows {
		return -1, nil
	}
	return n, err
}
