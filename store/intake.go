package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Intake is a queue's drop folder (DESIGN §4): files dropped into Dir become cases.
type Intake struct {
	// Dir is relative to the data dir, slash-separated (e.g. intake/inbox).
	Dir string
	// Mode is file (one case per file) or records (one case per JSONL line or CSV row).
	Mode string
	// After is what happens to an ingested file: move (to processed/<date>/), delete or keep.
	After string
}

// Intake modes and after-actions.
const (
	ModeFile    = "file"
	ModeRecords = "records"
	AfterMove   = "move"
	AfterDelete = "delete"
	AfterKeep   = "keep"
)

// IntakeSpec turns a queue's intake on or changes it. Empty fields keep the queue's
// current value, or take the default when intake was off: the folder
// intake/<queue-slug> (made unique), mode file, after move.
type IntakeSpec struct {
	Dir   string
	Mode  string
	After string
	// Prepare makes sure the chosen folder (relative to the data dir) exists and may be
	// used; it runs before the change commits, so a folder that cannot be created
	// leaves the queue unchanged.
	Prepare func(dir string) error
}

// IntakeQueue is a queue with intake on, as the watcher needs it.
type IntakeQueue struct {
	QueueID string
	TeamID  string
	Name    string
	Intake
}

// Slug is a queue name made fit for a folder name: lower-case ASCII letters, digits and
// dashes ("Invoices 2026" → "invoices-2026").
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	if b.Len() == 0 {
		return "queue"
	}
	return b.String()
}

// dirsOverlap reports whether one folder is, or is inside, the other: two queues
// watching nested folders would take each other's files and processed/ folders.
func dirsOverlap(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// intakeDirsTaken returns the intake folders of every queue but except, of every team:
// folders are on one disk, so they are unique across teams.
func intakeDirsTaken(ctx context.Context, tx *sql.Tx, except string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT dir FROM queue_intake WHERE queue_id != ?", except)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// setIntakeTx turns intake on for a queue or changes it, inside tx. cur is the queue's
// intake before the change (nil when off); name is the queue's name, for the default dir.
func setIntakeTx(ctx context.Context, tx *sql.Tx, queueID, name string, cur *Intake, spec IntakeSpec, now int64) (Intake, error) {
	in := Intake{Mode: ModeFile, After: AfterMove}
	if cur != nil {
		in = *cur
	}
	if spec.Mode != "" {
		in.Mode = spec.Mode
	}
	if spec.After != "" {
		in.After = spec.After
	}
	if in.Mode != ModeFile && in.Mode != ModeRecords {
		return Intake{}, invalid("intake.mode %q: want file (one case per file) or records (one case per JSONL line or CSV row)", in.Mode)
	}
	if in.After != AfterMove && in.After != AfterDelete && in.After != AfterKeep {
		return Intake{}, invalid("intake.after %q: want move (to processed/<date>/), delete or keep", in.After)
	}
	taken, err := intakeDirsTaken(ctx, tx, queueID)
	if err != nil {
		return Intake{}, err
	}
	switch {
	case spec.Dir != "":
		d := spec.Dir
		if !filepath.IsLocal(filepath.FromSlash(d)) || path.Clean(d) != d || strings.Contains(d, "\\") {
			return Intake{}, invalid("intake.dir %q: want a clean folder path inside the data dir", d)
		}
		for _, t := range taken {
			if dirsOverlap(d, t) {
				return Intake{}, conflict("intake.dir %q overlaps the intake folder %q of another queue: pick a folder outside it", d, t)
			}
		}
		in.Dir = d
	case cur == nil:
		base := "intake/" + Slug(name)
		for i := 1; in.Dir == ""; i++ {
			d := base
			if i > 1 {
				d = fmt.Sprintf("%s-%d", base, i)
			}
			free := true
			for _, t := range taken {
				free = free && !dirsOverlap(d, t)
			}
			if free {
				in.Dir = d
			} else if i == 100 {
				return Intake{}, conflict("no free default intake folder for queue %q: set intake.dir", name)
			}
		}
	}
	if spec.Prepare != nil {
		if err := spec.Prepare(in.Dir); err != nil {
			return Intake{}, invalid("intake.dir %q cannot be used: %v", in.Dir, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO queue_intake(queue_id, dir, mode, after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (queue_id) DO UPDATE SET dir = excluded.dir, mode = excluded.mode, after = excluded.after, updated_at = excluded.updated_at`,
		queueID, in.Dir, in.Mode, in.After, now, now)
	if err != nil {
		return Intake{}, fmt.Errorf("set intake: %w", err)
	}
	return in, nil
}

// IntakeQueues lists every queue with intake on, of every team, by folder.
func (s *Store) IntakeQueues(ctx context.Context) ([]IntakeQueue, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT q.id, q.team_id, q.name, i.dir, i.mode, i.after
		FROM queue_intake i JOIN queues q ON q.id = i.queue_id ORDER BY i.dir`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IntakeQueue
	for rows.Next() {
		var q IntakeQueue
		if err := rows.Scan(&q.QueueID, &q.TeamID, &q.Name, &q.Dir, &q.Mode, &q.After); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// intakeDetail is how the audit log records a queue's intake.
func intakeDetail(in *Intake) any {
	if in == nil {
		return nil
	}
	return map[string]any{"dir": in.Dir, "mode": in.Mode, "after": in.After}
}

// CheckLabel trims a label and checks it as case creation will, so a parser can name the
// record a bad label came from.
func CheckLabel(kv LabelKV) (LabelKV, error) { return cleanLabel("", kv) }

// IntakeDrop is a dropped file ready to become cases: its bytes are already stored as a
// blob and its records (if any) parsed.
type IntakeDrop struct {
	QueueID string
	TeamID  string
	// Folder is the team-file folder the file is filed under (e.g. intake/inbox/2026-03-14);
	// Name is the file's name as dropped. Both must already be valid team-path parts.
	Folder      string
	Name        string
	SHA256      string
	Size        int64
	ContentType string
	// Cases builds the cases once the team file's path is chosen, so a case can name it.
	Cases func(filePath string) []NewCase
}

// IntakeOutcome is what ingesting a drop did.
type IntakeOutcome struct {
	// Duplicate: the queue already made cases from these bytes; nothing was created.
	Duplicate bool
	// FilePath is the team file holding the content (for a duplicate, the first drop's).
	FilePath string
	CaseIDs  []string
}

// intakeActor is who the audit log and case histories name for dropped files.
func intakeActor(team string) Actor {
	return Actor{TeamID: team, Channel: "intake", Operation: "intake"}
}

// IngestDrops commits dropped files in one transaction (group commit: the writer's cost
// per commit is shared). Each drop is all or nothing on its own, inside a savepoint: its
// cases, its team file (named in d.Folder, with a "-2", "-3"… suffix before the extension
// when the name is taken, so no drop replaces an earlier file) and its intake_files row;
// or, when the queue already ingested the same bytes, only the duplicate count. A drop the
// store refuses (its queue is gone, a case is invalid) gets its error in errs and leaves
// no trace; err is for the batch as a whole (nothing committed).
func (s *Store) IngestDrops(ctx context.Context, ds []IntakeDrop) (outs []IntakeOutcome, errs []error, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		outs, errs = make([]IntakeOutcome, len(ds)), make([]error, len(ds))
		for i, d := range ds {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT intake_drop"); err != nil {
				return err
			}
			out, err := s.ingestDropTx(ctx, tx, d)
			var se *Error
			switch {
			case errors.As(err, &se):
				errs[i] = err
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO intake_drop"); err != nil {
					return err
				}
			case err != nil:
				return err
			}
			if _, err := tx.ExecContext(ctx, "RELEASE intake_drop"); err != nil {
				return err
			}
			outs[i] = out
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return outs, errs, nil
}

func (s *Store) ingestDropTx(ctx context.Context, tx *sql.Tx, d IntakeDrop) (IntakeOutcome, error) {
	var out IntakeOutcome
	a := intakeActor(d.TeamID)
	var status, ids string
	var filePath sql.NullString
	err := tx.QueryRowContext(ctx, "SELECT status, file_path, case_ids FROM intake_files WHERE queue_id = ? AND sha256 = ?",
		d.QueueID, d.SHA256).Scan(&status, &filePath, &ids)
	if err != nil && err != sql.ErrNoRows {
		return out, err
	}
	now := s.nowMs()
	if status == "ingested" {
		out.Duplicate, out.FilePath = true, filePath.String
		json.Unmarshal([]byte(ids), &out.CaseIDs)
		_, err := tx.ExecContext(ctx, "UPDATE intake_files SET duplicates = duplicates + 1, updated_at = ? WHERE queue_id = ? AND sha256 = ?",
			now, d.QueueID, d.SHA256)
		return out, err
	}
	if out.FilePath, err = freeFilePath(ctx, tx, d.TeamID, d.Folder, d.Name); err != nil {
		return out, err
	}
	cs := d.Cases(out.FilePath)
	for i := range cs {
		cs[i].SourceFile = &out.FilePath
	}
	if err := validateNewCases(cs); err != nil {
		return out, err
	}
	made, err := s.createCasesTx(ctx, tx, a, d.QueueID, cs)
	if err != nil {
		return out, err
	}
	out.CaseIDs = make([]string, len(made))
	for i, c := range made {
		out.CaseIDs[i] = c.ID
	}
	if _, err := s.insertFileTx(ctx, tx, NewFile{TeamID: d.TeamID, Path: out.FilePath, SHA256: d.SHA256, Size: d.Size,
		ContentType: d.ContentType, CaseID: out.CaseIDs[0]}); err != nil {
		return out, err
	}
	caseIDs, _ := json.Marshal(out.CaseIDs)
	_, err = tx.ExecContext(ctx, `INSERT INTO intake_files(id, queue_id, team_id, sha256, name, size, content_type, status, file_path,
		case_count, case_ids, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'ingested', ?, ?, ?, ?, ?)
		ON CONFLICT (queue_id, sha256) DO UPDATE SET name = excluded.name, status = 'ingested', file_path = excluded.file_path,
			case_count = excluded.case_count, case_ids = excluded.case_ids, error = NULL, updated_at = excluded.updated_at`,
		NewID(), d.QueueID, d.TeamID, d.SHA256, d.Name, d.Size, d.ContentType, out.FilePath, len(out.CaseIDs), string(caseIDs), now, now)
	if err != nil {
		return out, fmt.Errorf("record intake file: %w", err)
	}
	detail := map[string]any{"file": d.Name, "path": out.FilePath, "sha256": d.SHA256, "case_count": len(out.CaseIDs)}
	if len(out.CaseIDs) == 1 {
		detail["case_id"] = out.CaseIDs[0]
	}
	return out, s.appendAudit(ctx, tx, a, d.TeamID, Target{Type: "queue", ID: d.QueueID, Detail: detail}, "success")
}

// freeFilePath is folder/name, or folder/stem-N.ext for the first N ≥ 2 not yet a file of
// the team.
func freeFilePath(ctx context.Context, tx *sql.Tx, team, folder, name string) (string, error) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" {
		stem, ext = name, ""
	}
	for i := 1; ; i++ {
		p := folder + "/" + name
		if i > 1 {
			p = fmt.Sprintf("%s/%s-%d%s", folder, stem, i, ext)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM files WHERE team_id = ? AND path = ?", team, p).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return p, nil
		}
	}
}

// RecordIntakeFailure notes that content dropped into a queue could not be ingested, and
// why. Bytes already ingested stay so; a later drop of failed bytes is tried again.
func (s *Store) RecordIntakeFailure(ctx context.Context, queueID, team, sha, name string, size int64, contentType, reason string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		_, err := tx.ExecContext(ctx, `INSERT INTO intake_files(id, queue_id, team_id, sha256, name, size, content_type, status, error, created_at, updated_at)
			SELECT ?, ?, ?, ?, ?, ?, ?, 'failed', ?, ?, ? WHERE EXISTS (SELECT 1 FROM queues WHERE id = ?)
			ON CONFLICT (queue_id, sha256) DO UPDATE SET name = excluded.name, error = excluded.error, updated_at = excluded.updated_at
				WHERE intake_files.status = 'failed'`,
			NewID(), queueID, team, sha, name, size, contentType, reason, now, now, queueID)
		return err
	})
}

// IntakeFile is one distinct content dropped into a queue.
type IntakeFile struct {
	ID          string
	QueueID     string
	SHA256      string
	Name        string
	Size        int64
	ContentType string
	Status      string
	FilePath    *string
	CaseIDs     []string
	Error       *string
	Duplicates  int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// IntakeFiles lists what was dropped into a queue, newest first.
func (s *Store) IntakeFiles(ctx context.Context, queueID string, limit int) ([]IntakeFile, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, queue_id, sha256, name, size, content_type, status, file_path, case_ids, error, duplicates,
		created_at, updated_at FROM intake_files WHERE queue_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, queueID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IntakeFile
	for rows.Next() {
		var f IntakeFile
		var path, errText sql.NullString
		var ids string
		var created, updated int64
		if err := rows.Scan(&f.ID, &f.QueueID, &f.SHA256, &f.Name, &f.Size, &f.ContentType, &f.Status, &path, &ids, &errText, &f.Duplicates,
			&created, &updated); err != nil {
			return nil, err
		}
		f.FilePath, f.Error = strPtr(path), strPtr(errText)
		json.Unmarshal([]byte(ids), &f.CaseIDs)
		f.CreatedAt, f.UpdatedAt = Time(created), Time(updated)
		out = append(out, f)
	}
	return out, rows.Err()
}
