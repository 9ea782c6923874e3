package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// CaseTrigger binds an agent to the queue whose cases it works on, at most Concurrency
// at a time, each retried up to MaxAttempts after infrastructure failures.
type CaseTrigger struct {
	ID                string
	TeamID            string
	AgentID           string
	CaseQueueID       string
	CaseQueueName     string
	UserID            *string
	CreatorName       *string
	Enabled           bool
	Concurrency       int
	MaxAttempts       int
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ConflictingAgents []AgentRef
}

// AgentRef names an agent.
type AgentRef struct {
	ID   string
	Name string
}

const triggerSelect = `SELECT t.id, t.team_id, t.agent_id, t.case_queue_id, q.name, t.user_id, coalesce(u.name, u.email), t.enabled,
	t.concurrency, t.max_attempts, t.created_at, t.updated_at,
	(SELECT json_group_array(json_object('id', a.id, 'name', a.name)) FROM case_triggers o JOIN agents a ON a.id = o.agent_id
	 WHERE o.case_queue_id = t.case_queue_id AND o.agent_id != t.agent_id AND o.enabled AND a.deleted_at IS NULL)
	FROM case_triggers t JOIN queues q ON q.id = t.case_queue_id LEFT JOIN users u ON u.id = t.user_id`

func scanTrigger(sc scanner) (CaseTrigger, error) {
	var t CaseTrigger
	var user, creator sql.NullString
	var created, updated int64
	var conflicts string
	err := sc.Scan(&t.ID, &t.TeamID, &t.AgentID, &t.CaseQueueID, &t.CaseQueueName, &user, &creator, &t.Enabled, &t.Concurrency,
		&t.MaxAttempts, &created, &updated, &conflicts)
	if err != nil {
		return CaseTrigger{}, err
	}
	t.UserID, t.CreatorName, t.CreatedAt, t.UpdatedAt = strPtr(user), strPtr(creator), Time(created), Time(updated)
	var refs []struct{ ID, Name string }
	json.Unmarshal([]byte(conflicts), &refs)
	t.ConflictingAgents = []AgentRef{}
	for _, r := range refs {
		t.ConflictingAgents = append(t.ConflictingAgents, AgentRef{ID: r.ID, Name: r.Name})
	}
	return t, nil
}

// ListCaseTriggers returns an agent's case triggers (at most one).
func (s *Store) ListCaseTriggers(ctx context.Context, team, agentID string) ([]CaseTrigger, error) {
	if err := agentExists(ctx, s.r, team, agentID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, triggerSelect+" WHERE t.agent_id = ? AND t.team_id = ?", agentID, team)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []CaseTrigger{}
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetCaseTrigger returns one of an agent's case triggers.
func (s *Store) GetCaseTrigger(ctx context.Context, team, agentID, id string) (CaseTrigger, error) {
	t, err := scanTrigger(s.r.QueryRowContext(ctx, triggerSelect+" WHERE t.id = ? AND t.agent_id = ? AND t.team_id = ?", id, agentID, team))
	if err == sql.ErrNoRows {
		return CaseTrigger{}, notFound("case trigger %s not found on assignment %s", id, agentID)
	}
	return t, err
}

// EnabledCaseTriggers returns every enabled trigger whose agent exists, with what the
// dispatcher needs and nothing more: it runs on every run state change.
func (s *Store) EnabledCaseTriggers(ctx context.Context) ([]CaseTrigger, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.id, t.team_id, t.agent_id, t.case_queue_id, q.name, t.user_id, t.concurrency, t.max_attempts
		FROM case_triggers t JOIN queues q ON q.id = t.case_queue_id JOIN agents a ON a.id = t.agent_id
		WHERE t.enabled AND a.deleted_at IS NULL ORDER BY t.created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CaseTrigger
	for rows.Next() {
		t := CaseTrigger{Enabled: true}
		var user sql.NullString
		if err := rows.Scan(&t.ID, &t.TeamID, &t.AgentID, &t.CaseQueueID, &t.CaseQueueName, &user, &t.Concurrency, &t.MaxAttempts); err != nil {
			return nil, err
		}
		t.UserID = strPtr(user)
		out = append(out, t)
	}
	return out, rows.Err()
}

// queueInTeam checks, inside tx, that a queue exists in the team; field names the input
// that gave its id, since an unknown queue there is bad input, not a missing resource.
func queueInTeam(ctx context.Context, tx *sql.Tx, team, queueID, field string) error {
	err := requireCaseQueue(ctx, tx, team, queueID)
	if errors.Is(err, ErrNotFound) {
		return invalid("%s: queue %s not found in this team", field, queueID)
	}
	return err
}

// NewCaseTrigger is what CreateCaseTrigger needs; zero Concurrency/MaxAttempts mean 1 and 3.
type NewCaseTrigger struct {
	CaseQueueID string
	Enabled     bool
	Concurrency int
	MaxAttempts int
}

// CreateCaseTrigger binds an agent to a queue. An agent has at most one trigger.
func (s *Store) CreateCaseTrigger(ctx context.Context, a Actor, agentID string, nt NewCaseTrigger) (CaseTrigger, error) {
	id := NewID()
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, agentID); err != nil {
			return Target{}, err
		}
		if err := queueInTeam(ctx, tx, a.TeamID, nt.CaseQueueID, "case_queue_id"); err != nil {
			return Target{}, err
		}
		var existing string
		err := tx.QueryRowContext(ctx, "SELECT id FROM case_triggers WHERE agent_id = ?", agentID).Scan(&existing)
		if err == nil {
			return Target{}, conflict("assignment %s already has a case trigger (%s): an assignment consumes one queue; change it with PATCH /v2/agents/%s/case-triggers/%s",
				agentID, existing, agentID, existing)
		}
		if err != sql.ErrNoRows {
			return Target{}, err
		}
		if nt.Concurrency == 0 {
			nt.Concurrency = 1
		}
		if nt.MaxAttempts == 0 {
			nt.MaxAttempts = 3
		}
		now := s.nowMs()
		_, err = tx.ExecContext(ctx, `INSERT INTO case_triggers(id, team_id, agent_id, case_queue_id, enabled, concurrency, max_attempts, user_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, a.TeamID, agentID, nt.CaseQueueID, nt.Enabled, nt.Concurrency, nt.MaxAttempts, optional(a.UserID), now, now)
		return Target{Type: "case_trigger", ID: id, Detail: map[string]any{"agent_id": agentID, "case_queue_id": nt.CaseQueueID}}, err
	})
	if err != nil {
		return CaseTrigger{}, err
	}
	return s.GetCaseTrigger(ctx, a.TeamID, agentID, id)
}

// CaseTriggerPatch changes the fields that are set.
type CaseTriggerPatch struct {
	CaseQueueID *string
	Enabled     *bool
	Concurrency *int
	MaxAttempts *int
}

// UpdateCaseTrigger changes a trigger; cases already in progress keep their runs.
func (s *Store) UpdateCaseTrigger(ctx context.Context, a Actor, agentID, id string, p CaseTriggerPatch) (CaseTrigger, error) {
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM case_triggers WHERE id = ? AND agent_id = ? AND team_id = ?", id, agentID, a.TeamID).Scan(&n); err != nil {
			return Target{}, err
		}
		if n == 0 {
			return Target{}, notFound("case trigger %s not found on assignment %s", id, agentID)
		}
		sets, args, changed := []string{"updated_at = ?"}, []any{s.nowMs()}, []string{}
		if p.CaseQueueID != nil {
			if err := queueInTeam(ctx, tx, a.TeamID, *p.CaseQueueID, "case_queue_id"); err != nil {
				return Target{}, err
			}
			sets, args, changed = append(sets, "case_queue_id = ?"), append(args, *p.CaseQueueID), append(changed, "case_queue_id")
		}
		if p.Enabled != nil {
			sets, args, changed = append(sets, "enabled = ?"), append(args, *p.Enabled), append(changed, "enabled")
		}
		if p.Concurrency != nil {
			sets, args, changed = append(sets, "concurrency = ?"), append(args, *p.Concurrency), append(changed, "concurrency")
		}
		if p.MaxAttempts != nil {
			sets, args, changed = append(sets, "max_attempts = ?"), append(args, *p.MaxAttempts), append(changed, "max_attempts")
		}
		_, err := tx.ExecContext(ctx, "UPDATE case_triggers SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, id)...)
		return Target{Type: "case_trigger", ID: id, Detail: map[string]any{"changed": changed}}, err
	})
	if err != nil {
		return CaseTrigger{}, err
	}
	return s.GetCaseTrigger(ctx, a.TeamID, agentID, id)
}

// DeleteCaseTrigger unbinds an agent from its queue; its runs in progress finish.
func (s *Store) DeleteCaseTrigger(ctx context.Context, a Actor, agentID, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		res, err := tx.ExecContext(ctx, "DELETE FROM case_triggers WHERE id = ? AND agent_id = ? AND team_id = ?", id, agentID, a.TeamID)
		if err != nil {
			return Target{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Target{}, notFound("case trigger %s not found on assignment %s", id, agentID)
		}
		return Target{Type: "case_trigger", ID: id, Detail: map[string]any{"agent_id": agentID}}, nil
	})
}

// QueueConsumers returns the other agents whose enabled triggers consume a queue.
func (s *Store) QueueConsumers(ctx context.Context, team, queueID, exceptAgent string) ([]AgentRef, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, a.name FROM case_triggers t JOIN agents a ON a.id = t.agent_id
		WHERE t.case_queue_id = ? AND t.team_id = ? AND t.agent_id != ? AND t.enabled AND a.deleted_at IS NULL ORDER BY a.name`, queueID, team, exceptAgent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AgentRef{}
	for rows.Next() {
		var r AgentRef
		if err := rows.Scan(&r.ID, &r.Name); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
