package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"
)

// Queue holds a team's cases (DESIGN §4).
type Queue struct {
	ID           string
	TeamID       string
	Name         string
	Description  string
	FolderID     *string
	AutomationID *string
	CreatedBy    *UserRef
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Counts       QueueCaseCounts
	// Intake is the queue's drop folder; nil when intake is off.
	Intake *Intake
}

// QueueCaseCounts is how many of a queue's cases are in each display status.
type QueueCaseCounts struct {
	Pending, InProgress, NeedsInput, Postponed, Completed, Failed, Total int
}

// HasApprovals reports whether a person is needed: some case's run waits at a gate.
func (q Queue) HasApprovals() bool { return q.Counts.NeedsInput > 0 }

// queueSelect reads a queue. A folder_id whose folder was deleted reads as null: folders
// are deleted without knowing about queues.
const queueSelect = `SELECT q.id, q.team_id, q.name, q.description,
	(SELECT f.id FROM agent_folders f WHERE f.id = q.folder_id AND f.team_id = q.team_id), q.automation_id,
	u.id, u.email, u.name, q.created_at, q.updated_at, i.dir, i.mode, i.after
	FROM queues q LEFT JOIN users u ON u.id = q.created_by LEFT JOIN queue_intake i ON i.queue_id = q.id`

func scanQueue(sc scanner) (Queue, error) {
	var q Queue
	var folder, automation, uID, uEmail, uName, dir, mode, after sql.NullString
	var created, updated int64
	if err := sc.Scan(&q.ID, &q.TeamID, &q.Name, &q.Description, &folder, &automation, &uID, &uEmail, &uName, &created, &updated,
		&dir, &mode, &after); err != nil {
		return Queue{}, err
	}
	if dir.Valid {
		q.Intake = &Intake{Dir: dir.String, Mode: mode.String, After: after.String}
	}
	q.FolderID, q.AutomationID = strPtr(folder), strPtr(automation)
	q.CreatedBy = scanUserRef(uID, uEmail, uName)
	q.CreatedAt, q.UpdatedAt = Time(created), Time(updated)
	return q, nil
}

// findQueue reads one queue of team (without case counts); another team's queue is not found.
func findQueue(ctx context.Context, q querier, team, id string) (Queue, error) {
	qu, err := scanQueue(q.QueryRowContext(ctx, queueSelect+" WHERE q.id = ? AND q.team_id = ?", id, team))
	if err == sql.ErrNoRows {
		return Queue{}, notFound("queue %s not found", id)
	}
	return qu, err
}

// queueCounts counts the cases of each of the given queues by display status, with the
// same conditions listCases filters by.
func (s *Store) queueCounts(ctx context.Context, ids []string) (map[string]QueueCaseCounts, error) {
	out := map[string]QueueCaseCounts{}
	if len(ids) == 0 {
		return out, nil
	}
	now := s.nowMs()
	statuses := []string{"pending", "in_progress", "needs_input", "postponed", "completed", "failed"}
	var cols []string
	var args []any
	for _, st := range statuses {
		cond, a, err := displayStatusWhere(st, now)
		if err != nil {
			return nil, err
		}
		cols = append(cols, "coalesce(sum(CASE WHEN "+cond+" THEN 1 ELSE 0 END), 0)")
		args = append(args, a...)
	}
	b, _ := json.Marshal(ids)
	rows, err := s.r.QueryContext(ctx, "SELECT c.queue_id, "+strings.Join(cols, ", ")+`, count(*)
		FROM cases c LEFT JOIN runs r ON r.id = c.claimed_by_run_id
		WHERE c.queue_id IN (SELECT value FROM json_each(?)) GROUP BY c.queue_id`, append(args, string(b))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var c QueueCaseCounts
		if err := rows.Scan(&id, &c.Pending, &c.InProgress, &c.NeedsInput, &c.Postponed, &c.Completed, &c.Failed, &c.Total); err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, rows.Err()
}

// QueueFilter narrows ListQueues.
type QueueFilter struct {
	AutomationID string
	Limit        int
	Offset       int
	// SkipCounts leaves Counts zero, for lists that only name the queues: counting reads
	// every case of every queue listed.
	SkipCounts bool
}

// ListQueues returns a page of a team's queues by name, with their case counts, and how
// many match in all.
func (s *Store) ListQueues(ctx context.Context, team string, f QueueFilter) ([]Queue, int, error) {
	where, args := " WHERE q.team_id = ?", []any{team}
	if f.AutomationID != "" {
		where += " AND q.automation_id = ?"
		args = append(args, f.AutomationID)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM queues q"+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, queueSelect+where+" ORDER BY lower(q.name), q.id LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Queue{}
	var ids []string
	for rows.Next() {
		q, err := scanQueue(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, q)
		ids = append(ids, q.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if f.SkipCounts {
		return out, total, nil
	}
	counts, err := s.queueCounts(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	for i := range out {
		out[i].Counts = counts[out[i].ID]
	}
	return out, total, nil
}

// FindQueue reads one of team's queues without its case counts.
func (s *Store) FindQueue(ctx context.Context, team, id string) (Queue, error) {
	return findQueue(ctx, s.r, team, id)
}

// GetQueue reads one of team's queues with its case counts.
func (s *Store) GetQueue(ctx context.Context, team, id string) (Queue, error) {
	q, err := findQueue(ctx, s.r, team, id)
	if err != nil {
		return Queue{}, err
	}
	counts, err := s.queueCounts(ctx, []string{id})
	q.Counts = counts[id]
	return q, err
}

// NewQueue is what CreateQueue needs.
type NewQueue struct {
	Name         string
	Description  string
	FolderID     *string
	AutomationID *string
	// Intake, when set, turns the queue's drop folder on.
	Intake *IntakeSpec
}

func queueName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", invalid("name must be 1 to 100 characters")
	}
	return name, nil
}

func queueDescription(d string) (string, error) {
	if len(d) > 500 {
		return "", invalid("description must be at most 500 characters (got %d)", len(d))
	}
	return d, nil
}

// queueNameTaken refuses a second queue of the same name in a team.
func queueNameTaken(ctx context.Context, tx *sql.Tx, team, name, except string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM queues WHERE team_id = ? AND name = ? AND id != ?", team, name, except).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return conflict("a queue named %q already exists in this team: pick another name", name)
	}
	return nil
}

// queueFolder checks that a queue's folder_id names one of the team's folders.
func queueFolder(ctx context.Context, tx *sql.Tx, team string, folder *string) error {
	if folder == nil {
		return nil
	}
	if _, err := folderByID(ctx, tx, team, *folder); err != nil {
		return invalid("folder_id: %s", err.Error())
	}
	return nil
}

// CreateQueue creates a queue; its name must be free in the team.
func (s *Store) CreateQueue(ctx context.Context, a Actor, nq NewQueue) (Queue, error) {
	name, err := queueName(nq.Name)
	if err != nil {
		return Queue{}, err
	}
	desc, err := queueDescription(nq.Description)
	if err != nil {
		return Queue{}, err
	}
	id, now := NewID(), s.nowMs()
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := queueFolder(ctx, tx, a.TeamID, nq.FolderID); err != nil {
			return Target{}, err
		}
		if err := queueNameTaken(ctx, tx, a.TeamID, name, ""); err != nil {
			return Target{}, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO queues(id, team_id, name, description, folder_id, automation_id, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, a.TeamID, name, desc, nullStr(nq.FolderID), nullStr(nq.AutomationID), optional(a.UserID), now, now)
		if err != nil {
			return Target{}, err
		}
		detail := map[string]any{"name": name}
		if nq.Intake != nil {
			in, err := setIntakeTx(ctx, tx, id, name, nil, *nq.Intake, now)
			if err != nil {
				return Target{}, err
			}
			detail["intake"] = intakeDetail(&in)
		}
		return Target{Type: "queue", ID: id, Detail: detail}, nil
	})
	if err != nil {
		return Queue{}, err
	}
	return s.GetQueue(ctx, a.TeamID, id)
}

// QueuePatch changes a queue. Set* with a nil value clears the field.
type QueuePatch struct {
	Name           *string
	SetDescription bool
	Description    *string
	SetFolder      bool
	FolderID       *string
	// SetIntake with a nil Intake turns intake off; the folder and its files stay.
	SetIntake bool
	Intake    *IntakeSpec
}

// UpdateQueue applies p.
func (s *Store) UpdateQueue(ctx context.Context, a Actor, id string, p QueuePatch) (Queue, error) {
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		q, err := findQueue(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		if p.Name != nil {
			if q.Name, err = queueName(*p.Name); err != nil {
				return Target{}, err
			}
			if err := queueNameTaken(ctx, tx, a.TeamID, q.Name, id); err != nil {
				return Target{}, err
			}
		}
		if p.SetDescription {
			q.Description = ""
			if p.Description != nil {
				if q.Description, err = queueDescription(*p.Description); err != nil {
					return Target{}, err
				}
			}
		}
		if p.SetFolder {
			if err := queueFolder(ctx, tx, a.TeamID, p.FolderID); err != nil {
				return Target{}, err
			}
			q.FolderID = p.FolderID
		}
		now := s.nowMs()
		detail := map[string]any{"name": q.Name}
		if p.SetIntake {
			if p.Intake == nil {
				if _, err := tx.ExecContext(ctx, "DELETE FROM queue_intake WHERE queue_id = ?", id); err != nil {
					return Target{}, err
				}
				q.Intake = nil
			} else {
				in, err := setIntakeTx(ctx, tx, id, q.Name, q.Intake, *p.Intake, now)
				if err != nil {
					return Target{}, err
				}
				q.Intake = &in
			}
			detail["intake"] = intakeDetail(q.Intake)
		}
		_, err = tx.ExecContext(ctx, "UPDATE queues SET name = ?, description = ?, folder_id = ?, updated_at = ? WHERE id = ?",
			q.Name, q.Description, nullStr(q.FolderID), now, id)
		return Target{Type: "queue", ID: id, Detail: detail}, err
	})
	if err != nil {
		return Queue{}, err
	}
	return s.GetQueue(ctx, a.TeamID, id)
}

// QueueDeletion is what deleting a queue removed.
type QueueDeletion struct {
	DeletedCases int
	// InterruptedRunIDs are the runs that held the queue's cases and were stopped.
	InterruptedRunIDs []string
}

// DeleteQueue deletes a queue with its cases, labels and the case triggers that consume
// it. While runs hold some of its cases it refuses, unless force: then those runs are
// stopped in the same transaction (their webhooks queued, their gates superseded), so
// no run is left working on a case that no longer exists.
func (s *Store) DeleteQueue(ctx context.Context, a Actor, id string, force bool) (QueueDeletion, error) {
	d := QueueDeletion{InterruptedRunIDs: []string{}}
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		q, err := findQueue(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT claimed_by_run_id FROM cases
			WHERE queue_id = ? AND status = 'pending' AND claimed_by_run_id IS NOT NULL ORDER BY claimed_by_run_id`, id)
		if err != nil {
			return Target{}, err
		}
		var holders []string
		for rows.Next() {
			var run string
			if err := rows.Scan(&run); err != nil {
				rows.Close()
				return Target{}, err
			}
			holders = append(holders, run)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Target{}, err
		}
		if len(holders) > 0 && !force {
			return Target{}, conflict("queue %q has %d case(s) in progress: wait until their runs end, or pass force=true to stop those runs and delete the queue", q.Name, len(holders))
		}
		now := s.nowMs()
		for _, runID := range holders {
			r, err := getRun(ctx, tx, a.TeamID, runID)
			if err != nil {
				return Target{}, err
			}
			if r.Ended() {
				continue
			}
			if _, err := tx.ExecContext(ctx, "UPDATE human_requests SET status = 'superseded', decided_at = ? WHERE run_id = ? AND status = 'open'", now, runID); err != nil {
				return Target{}, err
			}
			lr := leasedRun{id: runID, team: r.TeamID, agent: r.AgentID, build: r.BuildID, webhookURL: r.WebhookURL, caseID: nullStr(r.CaseID)}
			if err := s.endRun(ctx, tx, lr, RunStopped, "queue "+q.Name+" was deleted", false); err != nil {
				return Target{}, err
			}
			d.InterruptedRunIDs = append(d.InterruptedRunIDs, runID)
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE queue_id = ?", id).Scan(&d.DeletedCases); err != nil {
			return Target{}, err
		}
		// Cases, their labels and events, the queue's labels and its case triggers go
		// with it (ON DELETE CASCADE); the FTS triggers drop the cases from the index.
		if _, err := tx.ExecContext(ctx, "DELETE FROM queues WHERE id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "queue", ID: id, Detail: map[string]any{"name": q.Name, "force": force,
			"deleted_case_count": d.DeletedCases, "interrupted_run_ids": d.InterruptedRunIDs}}, nil
	})
	if err != nil {
		return QueueDeletion{}, err
	}
	return d, nil
}

// QueueConsumer is an agent whose case trigger consumes a queue.
type QueueConsumer struct {
	AgentID     string
	AgentName   string
	TriggerID   string
	Enabled     bool
	Concurrency int
	MaxAttempts int
	// InProgress is how many of the queue's cases the agent's runs hold now.
	InProgress int
	// IsHandoverTarget: another agent's live setup may hand work over to this one.
	IsHandoverTarget bool
}

// AtLimit reports whether the agent holds as many of the queue's cases as it may.
func (c QueueConsumer) AtLimit() bool { return c.InProgress >= c.Concurrency }

// QueueAgents returns a queue's name and the agents that consume it through a case
// trigger, by name.
func (s *Store) QueueAgents(ctx context.Context, team, id string) (string, []QueueConsumer, error) {
	q, err := findQueue(ctx, s.r, team, id)
	if err != nil {
		return "", nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, a.name, t.id, t.enabled, t.concurrency, t.max_attempts,
		(SELECT count(*) FROM cases c WHERE c.queue_id = t.case_queue_id AND c.claimed_by_agent_id = a.id
			AND c.status = 'pending' AND c.claimed_by_run_id IS NOT NULL),
		EXISTS (SELECT 1 FROM agents o JOIN builds b ON b.id = o.live_build_id, json_each(b.handover_target_ids) h
			WHERE o.team_id = a.team_id AND o.deleted_at IS NULL AND o.id != a.id AND h.value = a.id)
		FROM case_triggers t JOIN agents a ON a.id = t.agent_id
		WHERE t.case_queue_id = ? AND t.team_id = ? AND a.deleted_at IS NULL
		ORDER BY lower(a.name), a.id`, id, team)
	if err != nil {
		return "", nil, err
	}
	defer rows.Close()
	out := []QueueConsumer{}
	for rows.Next() {
		var c QueueConsumer
		if err := rows.Scan(&c.AgentID, &c.AgentName, &c.TriggerID, &c.Enabled, &c.Concurrency, &c.MaxAttempts, &c.InProgress, &c.IsHandoverTarget); err != nil {
			return "", nil, err
		}
		out = append(out, c)
	}
	return q.Name, out, rows.Err()
}
