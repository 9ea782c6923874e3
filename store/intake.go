package store

import (
	"context"
	"database/sql"
	"fmt"
	"path"
	"path/filepath"
	"strings"
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
	IntakeFile    = "file"
	IntakeRecords = "records"
	AfterMove     = "move"
	AfterDelete   = "delete"
	AfterKeep     = "keep"
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
	in := Intake{Mode: IntakeFile, After: AfterMove}
	if cur != nil {
		in = *cur
	}
	if spec.Mode != "" {
		in.Mode = spec.Mode
	}
	if spec.After != "" {
		in.After = spec.After
	}
	if in.Mode != IntakeFile && in.Mode != IntakeRecords {
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
