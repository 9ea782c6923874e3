package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// Case priorities as the API names them; stored as 0, 1, 2 so they sort.
var priorities = []string{"none", "medium", "high"}

// PriorityRank is the stored form of a priority name; ok is false for an unknown name.
func PriorityRank(p string) (int, bool) {
	for i, name := range priorities {
		if name == p {
			return i, true
		}
	}
	return 0, false
}

// Case is a unit of work waiting in a queue (DESIGN §4).
type Case struct {
	ID       string
	QueueID  string
	TeamID   string
	Title    string
	Data     string
	Priority string
	// Status is pending, completed or failed; DisplayStatus refines pending into
	// in_progress (a run holds it), needs_input (that run waits at a gate) and postponed.
	Status           string
	DisplayStatus    string
	Attempt          int
	RunAfter         time.Time
	PostponedTo      *time.Time
	ClaimedByRunID   *string
	ClaimedByAgentID *string
	ClaimedAt        *time.Time
	LastError        *string
	Result           *string
	SourceFile       *string
	CreatedBy        *UserRef
	CreatedAt        time.Time
	UpdatedAt        time.Time
	CompletedAt      *time.Time
	// RunStatus and RunUserID describe the run that holds the case, if any.
	RunStatus *string
	RunUserID *string
	// PendingGateID is the open gate of that run, if any.
	PendingGateID *string
	Labels        []Label
}

// Label is a key/value tag defined on a queue and attached to its cases.
type Label struct {
	ID        string
	QueueID   string
	Key       string
	Value     string
	ColorHue  int
	CaseCount int
}

// caseSelect reads a case with the run that holds it and that run's open gate.
const caseSelect = `SELECT c.id, c.queue_id, c.team_id, c.title, c.data, c.priority, c.status, c.attempt, c.run_after, c.postponed_to,
	c.claimed_by_run_id, c.claimed_by_agent_id, c.claimed_at, c.last_error, c.result, c.source_file,
	cu.id, cu.email, cu.name, c.created_at, c.updated_at, c.completed_at, r.status, r.user_id,
	(SELECT h.id FROM human_requests h WHERE h.run_id = c.claimed_by_run_id AND h.status = 'open' LIMIT 1)
	FROM cases c LEFT JOIN users cu ON cu.id = c.created_by LEFT JOIN runs r ON r.id = c.claimed_by_run_id`

func scanCase(sc scanner, now time.Time) (Case, error) {
	var c Case
	var prio int
	var runAfter, created, updated int64
	var postponed, claimedAt, completed sql.NullInt64
	var runID, agentID, lastErr, result, source, cuID, cuEmail, cuName, runStatus, runUser, gate sql.NullString
	err := sc.Scan(&c.ID, &c.QueueID, &c.TeamID, &c.Title, &c.Data, &prio, &c.Status, &c.Attempt, &runAfter, &postponed,
		&runID, &agentID, &claimedAt, &lastErr, &result, &source, &cuID, &cuEmail, &cuName, &created, &updated, &completed,
		&runStatus, &runUser, &gate)
	if err != nil {
		return Case{}, err
	}
	c.Priority = priorities[prio]
	c.RunAfter, c.PostponedTo = Time(runAfter), timePtr(postponed)
	c.ClaimedByRunID, c.ClaimedByAgentID, c.ClaimedAt = strPtr(runID), strPtr(agentID), timePtr(claimedAt)
	c.LastError, c.Result, c.SourceFile = strPtr(lastErr), strPtr(result), strPtr(source)
	c.CreatedBy = scanUserRef(cuID, cuEmail, cuName)
	c.CreatedAt, c.UpdatedAt, c.CompletedAt = Time(created), Time(updated), timePtr(completed)
	c.RunStatus, c.RunUserID, c.PendingGateID = strPtr(runStatus), strPtr(runUser), strPtr(gate)
	c.DisplayStatus = displayStatus(c, now)
	return c, nil
}

// displayStatus refines a case's status for people (DESIGN §4).
func displayStatus(c Case, now time.Time) string {
	switch {
	case c.Status != "pending":
		return c.Status
	case c.ClaimedByRunID != nil:
		if c.RunStatus != nil && *c.RunStatus == RunWaiting {
			return "needs_input"
		}
		return "in_progress"
	case c.PostponedTo != nil && c.PostponedTo.After(now):
		return "postponed"
	}
	return "pending"
}

// displayStatusWhere is the SQL condition (on caseSelect's aliases) that selects cases
// with display status ds, and its arguments.
func displayStatusWhere(ds string, now int64) (string, []any, error) {
	switch ds {
	case "completed", "failed":
		return "c.status = ?", []any{ds}, nil
	case "in_progress":
		return "c.status = 'pending' AND c.claimed_by_run_id IS NOT NULL AND coalesce(r.status, '') != 'waiting'", nil, nil
	case "needs_input":
		return "c.status = 'pending' AND c.claimed_by_run_id IS NOT NULL AND r.status = 'waiting'", nil, nil
	case "postponed":
		return "c.status = 'pending' AND c.claimed_by_run_id IS NULL AND c.postponed_to > ?", []any{now}, nil
	case "pending":
		return "c.status = 'pending' AND c.claimed_by_run_id IS NULL AND coalesce(c.postponed_to, 0) <= ?", []any{now}, nil
	}
	return "", nil, invalid("display_status %q: want pending, in_progress, needs_input, postponed, completed or failed", ds)
}

// getCase reads one case of a team, with its labels.
func (s *Store) getCase(ctx context.Context, q interface {
	querier
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, team, id string) (Case, error) {
	c, err := scanCase(q.QueryRowContext(ctx, caseSelect+" WHERE c.id = ? AND c.team_id = ?", id, team), s.now())
	if err == sql.ErrNoRows {
		return Case{}, notFound("case %s not found", id)
	}
	if err != nil {
		return Case{}, err
	}
	labels, err := caseLabels(ctx, q, []string{c.ID})
	c.Labels = labels[c.ID]
	return c, err
}

// caseLabels returns the labels of each of the given cases.
func caseLabels(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, ids []string) (map[string][]Label, error) {
	out := map[string][]Label{}
	if len(ids) == 0 {
		return out, nil
	}
	b, _ := json.Marshal(ids)
	rows, err := q.QueryContext(ctx, `SELECT cl.case_id, l.id, l.queue_id, l.key, l.value, l.color_hue FROM case_labels cl
		JOIN queue_labels l ON l.id = cl.label_id WHERE cl.case_id IN (SELECT value FROM json_each(?)) ORDER BY l.key, l.value`, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var caseID string
		var l Label
		if err := rows.Scan(&caseID, &l.ID, &l.QueueID, &l.Key, &l.Value, &l.ColorHue); err != nil {
			return nil, err
		}
		out[caseID] = append(out[caseID], l)
	}
	return out, rows.Err()
}

// CaseEvent is one entry of a case's history.
type CaseEvent struct {
	ID             string
	CaseID         string
	Type           string
	FromStatus     *string
	ToStatus       *string
	Reason         *string
	RunID          *string
	HumanRequestID *string
	AgentID        *string
	AgentName      *string
	UserID         *string
	UserEmail      *string
	UserName       *string
	APIKeyID       *string
	Channel        string
	Detail         json.RawMessage
	CreatedAt      time.Time
}

// caseEvent is what appendCaseEvent records; empty strings are stored as NULL.
type caseEvent struct {
	caseID, typ, from, to, reason, runID, gateID, agentID string
	detail                                                map[string]any
}

// appendCaseEvent adds to a case's history inside the transaction of the change it
// records (DESIGN §4: every case change, in the same transaction). a says who: a person
// or key through a channel, or the system (an agent's run sets agentID/runID).
func appendCaseEvent(ctx context.Context, tx *sql.Tx, a Actor, now int64, e caseEvent) error {
	return appendCaseEvents(ctx, tx, a, now, []caseEvent{e})
}

// CaseEvents returns a case's history, oldest first.
func (s *Store) CaseEvents(ctx context.Context, caseID string) ([]CaseEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.id, e.case_id, e.type, e.from_status, e.to_status, e.reason, e.run_id, e.human_request_id,
		e.agent_id, a.name, e.user_id, u.email, u.name, e.api_key_id, e.channel, e.detail, e.created_at
		FROM case_events e LEFT JOIN agents a ON a.id = e.agent_id LEFT JOIN users u ON u.id = e.user_id
		WHERE e.case_id = ? ORDER BY e.created_at, e.rowid`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []CaseEvent{}
	for rows.Next() {
		var e CaseEvent
		var from, to, reason, run, gate, agent, agentName, user, email, name, key, detail sql.NullString
		var created int64
		if err := rows.Scan(&e.ID, &e.CaseID, &e.Type, &from, &to, &reason, &run, &gate, &agent, &agentName, &user, &email, &name, &key,
			&e.Channel, &detail, &created); err != nil {
			return nil, err
		}
		e.FromStatus, e.ToStatus, e.Reason, e.RunID, e.HumanRequestID = strPtr(from), strPtr(to), strPtr(reason), strPtr(run), strPtr(gate)
		e.AgentID, e.AgentName, e.UserID, e.UserEmail, e.UserName, e.APIKeyID = strPtr(agent), strPtr(agentName), strPtr(user), strPtr(email), strPtr(name), strPtr(key)
		if detail.Valid {
			e.Detail = json.RawMessage(detail.String)
		}
		e.CreatedAt = Time(created)
		out = append(out, e)
	}
	return out, rows.Err()
}
