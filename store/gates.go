package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Gate kinds: why a gate opened.
const (
	// GateModel: the model asked (request_human_approval, ask_human); the decision is the
	// tool's result.
	GateModel = "model"
	// GatePolicy: the Setup's approval.require holds the tool; approval lets the call run.
	GatePolicy = "policy"
	// GateRecovery: a non-idempotent call was cut off by a crash; approval retries it.
	GateRecovery = "recovery"
)

// Gate is a human request: a run waits on it until a person decides.
type Gate struct {
	ID               string
	RunID            string
	TeamID           string
	AgentID          string
	AgentName        string
	RunTitle         string
	Type             string // approval or question
	Kind             string
	Title            string
	Description      *string
	Details          json.RawMessage
	Questions        json.RawMessage
	ToolCallID       *string
	ConsentHash      *string
	Status           string
	OnExpiry         string
	DistinctApprover bool
	DecidedBy        *string
	DecidedByEmail   *string
	DecidedByKey     *string
	Channel          *string
	Reason           *string
	Answers          map[string]string
	CreatedAt        time.Time
	ExpiresAt        *time.Time
	DecidedAt        *time.Time
}

// NewGate is what an executor opens.
type NewGate struct {
	Type             string
	Kind             string
	Title            string
	Description      string
	Details          any
	Questions        json.RawMessage
	ToolCallID       string
	ConsentHash      string
	ExpiresAt        *time.Time
	OnExpiry         string
	DistinctApprover bool
}

const gateCols = `h.id, h.run_id, h.team_id, r.agent_id, a.name, r.title, h.type, h.kind, h.title, h.description, h.details, h.questions,
	h.tool_call_id, h.consent_hash, h.status, h.on_expiry, h.distinct_approver, h.decided_by, u.email, h.decided_by_key, h.channel,
	h.reason, h.answers, h.created_at, h.expires_at, h.decided_at`

const gateFrom = ` FROM human_requests h JOIN runs r ON r.id = h.run_id JOIN agents a ON a.id = r.agent_id
	LEFT JOIN users u ON u.id = h.decided_by`

func scanGate(sc scanner) (Gate, error) {
	var g Gate
	var desc, details, questions, call, consent, by, email, key, channel, reason, answers sql.NullString
	var created int64
	var expires, decided sql.NullInt64
	err := sc.Scan(&g.ID, &g.RunID, &g.TeamID, &g.AgentID, &g.AgentName, &g.RunTitle, &g.Type, &g.Kind, &g.Title, &desc, &details, &questions,
		&call, &consent, &g.Status, &g.OnExpiry, &g.DistinctApprover, &by, &email, &key, &channel, &reason, &answers, &created, &expires, &decided)
	if err != nil {
		return Gate{}, err
	}
	g.Description, g.ToolCallID, g.ConsentHash = strPtr(desc), strPtr(call), strPtr(consent)
	g.DecidedBy, g.DecidedByEmail, g.DecidedByKey, g.Channel, g.Reason = strPtr(by), strPtr(email), strPtr(key), strPtr(channel), strPtr(reason)
	if details.Valid {
		g.Details = json.RawMessage(details.String)
	}
	if questions.Valid {
		g.Questions = json.RawMessage(questions.String)
	}
	if answers.Valid {
		json.Unmarshal([]byte(answers.String), &g.Answers)
	}
	g.CreatedAt, g.ExpiresAt, g.DecidedAt = Time(created), timePtr(expires), timePtr(decided)
	return g, nil
}

// OpenGate opens a gate on owner's run: the run waits (and gives up its lease), the call
// it guards is marked gated, and human_request_created is queued, all in one transaction.
func (s *Store) OpenGate(ctx context.Context, runID, owner string, ng NewGate) (Gate, error) {
	var id string
	err := s.leased(ctx, runID, owner, func(tx *sql.Tx, r leasedRun) error {
		now := s.nowMs()
		id = NewID()
		var details, questions sql.NullString
		if ng.Details != nil {
			b, err := json.Marshal(ng.Details)
			if err != nil {
				return fmt.Errorf("gate details: %w", err)
			}
			details = optional(string(b))
		}
		if len(ng.Questions) > 0 {
			questions = optional(string(ng.Questions))
		}
		var expires sql.NullInt64
		if ng.ExpiresAt != nil {
			expires = sql.NullInt64{Int64: ng.ExpiresAt.UnixMilli(), Valid: true}
		}
		onExpiry := ng.OnExpiry
		if onExpiry == "" {
			onExpiry = "deny"
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO human_requests(id, run_id, team_id, type, kind, title, description, details, questions,
			tool_call_id, consent_hash, status, on_expiry, distinct_approver, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)`,
			id, runID, r.team, ng.Type, ng.Kind, ng.Title, optional(ng.Description), details, questions,
			optional(ng.ToolCallID), optional(ng.ConsentHash), onExpiry, ng.DistinctApprover, now, expires)
		if err != nil {
			return fmt.Errorf("insert gate: %w", err)
		}
		if ng.ToolCallID != "" {
			if _, err := tx.ExecContext(ctx, "UPDATE tool_calls SET state = 'gated', gate_id = ? WHERE run_id = ? AND call_id = ?", id, runID, ng.ToolCallID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE runs SET status = 'waiting', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?", now, runID); err != nil {
			return err
		}
		ev := r.event("human_request_created", RunWaiting, now)
		ev.RequestID, ev.Title, ev.Description = id, ng.Title, ng.Description
		return s.enqueueWebhooks(ctx, tx, r.team, r.webhookURL, ev)
	})
	if err != nil {
		return Gate{}, err
	}
	return scanGate(s.r.QueryRowContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.id = ?", id))
}

// GetGate returns one of a run's gates.
func (s *Store) GetGate(ctx context.Context, team, runID, id string) (Gate, error) {
	g, err := scanGate(s.r.QueryRowContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.id = ? AND h.run_id = ? AND h.team_id = ?", id, runID, team))
	if err == sql.ErrNoRows {
		return Gate{}, notFound("human request %s not found on run %s", id, runID)
	}
	return g, err
}

// GateByID returns one of a team's gates by its id alone (the inbox links to gates).
func (s *Store) GateByID(ctx context.Context, team, id string) (Gate, error) {
	g, err := scanGate(s.r.QueryRowContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.id = ? AND h.team_id = ?", id, team))
	if err == sql.ErrNoRows {
		return Gate{}, notFound("human request %s not found", id)
	}
	return g, err
}

// OpenGateOf returns the run's open gate, or nil.
func (s *Store) OpenGateOf(ctx context.Context, runID string) (*Gate, error) {
	g, err := scanGate(s.r.QueryRowContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.run_id = ? AND h.status = 'open' ORDER BY h.created_at DESC LIMIT 1", runID))
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// GateFilter narrows ListGates.
type GateFilter struct {
	Status string
	RunID  string
	// After keeps only gates opened after this time.
	After  *time.Time
	Limit  int
	Offset int
}

// ListGates returns a team's gates, oldest open first (the order an inbox works through).
func (s *Store) ListGates(ctx context.Context, team string, f GateFilter) ([]Gate, int, error) {
	where, args := []string{"h.team_id = ?"}, []any{team}
	if f.Status != "" {
		where = append(where, "h.status = ?")
		args = append(args, f.Status)
	}
	if f.RunID != "" {
		where = append(where, "h.run_id = ?")
		args = append(args, f.RunID)
	}
	if f.After != nil {
		where = append(where, "h.created_at > ?")
		args = append(args, f.After.UnixMilli())
	}
	cond := " WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM human_requests h"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+gateCols+gateFrom+cond+" ORDER BY h.created_at, h.id LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Gate{}
	for rows.Next() {
		g, err := scanGate(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, g)
	}
	return out, total, rows.Err()
}

// GateResponse is a person's decision: Approved for approval gates, Answers (question
// text → answer) for question gates.
type GateResponse struct {
	Approved *bool
	Reason   string
	Answers  map[string]string
}

// RespondGate records the one decision a gate takes and its consequences in the same
// transaction: the guarded call's result or approval, the run back in the queue, the
// audit entry. A second response answers ErrConflict naming the first decision.
func (s *Store) RespondGate(ctx context.Context, a Actor, runID, gateID string, resp GateResponse) (Gate, error) {
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		g, err := scanGate(tx.QueryRowContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.id = ? AND h.run_id = ? AND h.team_id = ?", gateID, runID, a.TeamID))
		if err == sql.ErrNoRows {
			return Target{}, notFound("human request %s not found on run %s", gateID, runID)
		}
		if err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		if g.Status != "open" {
			return Target{}, conflict("human request %s was already decided: %s", gateID, describeDecision(g))
		}
		if g.ExpiresAt != nil && g.ExpiresAt.UnixMilli() <= now {
			return Target{}, conflict("human request %s expired at %s: nobody can decide it any more", gateID, g.ExpiresAt.Format(time.RFC3339))
		}
		var status, result, errText string
		who := actorName(ctx, tx, a)
		switch g.Type {
		case "approval":
			if resp.Approved == nil {
				return Target{}, invalid("approved: required for approval requests (true to approve, false to deny)")
			}
			if len(resp.Answers) > 0 {
				return Target{}, invalid("answers: only for question requests; this one needs approved")
			}
			if g.DistinctApprover {
				var starter, starterKey sql.NullString
				tx.QueryRowContext(ctx, "SELECT user_id, api_key_id FROM runs WHERE id = ?", runID).Scan(&starter, &starterKey)
				if (starter.Valid && starter.String == a.UserID) || (starterKey.Valid && starterKey.String == a.APIKeyID) {
					return Target{}, forbidden("this setup requires a distinct approver: whoever started run %s cannot approve its requests; ask another team member", runID)
				}
			}
			status = "denied"
			if *resp.Approved {
				status = "approved"
			}
			if status == "denied" {
				errText = "denied by " + who
				if resp.Reason != "" {
					errText += ": " + resp.Reason
				}
			} else if g.Kind == GateModel {
				result = "approved by " + who
				if resp.Reason != "" {
					result += ": " + resp.Reason
				}
			}
		case "question":
			if resp.Approved != nil {
				return Target{}, invalid("approved: only for approval requests; this one is a question and needs answers")
			}
			if len(resp.Answers) == 0 {
				return Target{}, invalid("answers: required for question requests, as {\"<question>\": \"<answer>\"}")
			}
			var qs []struct {
				Question string `json:"question"`
			}
			json.Unmarshal(g.Questions, &qs)
			known := make([]string, len(qs))
			for i, q := range qs {
				known[i] = q.Question
			}
			for q := range resp.Answers {
				if !slices.Contains(known, q) {
					return Target{}, invalid("answers: %q is not one of this request's questions (%s)", q, strings.Join(known, "; "))
				}
			}
			status = "answered"
			b, _ := json.Marshal(resp.Answers)
			result = string(b)
		}
		answers := sql.NullString{}
		if len(resp.Answers) > 0 {
			b, _ := json.Marshal(resp.Answers)
			answers = optional(string(b))
		}
		_, err = tx.ExecContext(ctx, `UPDATE human_requests SET status = ?, decided_by = ?, decided_by_key = ?, channel = ?, reason = ?, answers = ?, decided_at = ?
			WHERE id = ?`, status, optional(a.UserID), optional(a.APIKeyID), channelOf(a), optional(resp.Reason), answers, now, gateID)
		if err != nil {
			return Target{}, err
		}
		if g.ToolCallID != nil {
			if err := settleCall(ctx, tx, runID, *g.ToolCallID, g.Kind, status, result, errText, now); err != nil {
				return Target{}, err
			}
		}
		if err := makePending(ctx, tx, runID, now); err != nil {
			return Target{}, err
		}
		return Target{Type: "human_request", ID: gateID, Detail: map[string]any{"run_id": runID, "decision": status, "kind": g.Kind}}, nil
	})
	if err != nil {
		return Gate{}, err
	}
	return s.GetGate(ctx, a.TeamID, runID, gateID)
}

// settleCall applies a decision to the call a gate guards: an approved policy or recovery
// gate lets the call run; anything else becomes the call's result.
func settleCall(ctx context.Context, tx *sql.Tx, runID, callID, kind, status, result, errText string, now int64) error {
	if status == "approved" && kind != GateModel {
		_, err := tx.ExecContext(ctx, "UPDATE tool_calls SET state = 'approved' WHERE run_id = ? AND call_id = ?", runID, callID)
		return err
	}
	var name string
	tx.QueryRowContext(ctx, "SELECT name FROM tool_calls WHERE run_id = ? AND call_id = ?", runID, callID).Scan(&name)
	res := ToolResult{ToolCallID: callID, Name: name}
	if errText != "" {
		if kind == GateRecovery {
			errText = "not retried: " + errText + " after its outcome was unknown"
		}
		res.Error = &errText
	} else {
		res.Result = &result
	}
	_, err := finishCall(ctx, tx, runID, now, res)
	return err
}

func channelOf(a Actor) string {
	if a.Channel == "" {
		return "system"
	}
	return a.Channel
}

func describeDecision(g Gate) string {
	who := "docket"
	if g.DecidedByEmail != nil {
		who = *g.DecidedByEmail
	}
	at := ""
	if g.DecidedAt != nil {
		at = " at " + g.DecidedAt.Format(time.RFC3339)
	}
	switch g.Status {
	case "expired":
		return "it expired" + at
	case "superseded":
		return "it was superseded" + at + " (the run was stopped or got a new message)"
	}
	s := g.Status + " by " + who + at
	if g.Reason != nil {
		s += " (" + *g.Reason + ")"
	}
	return s
}

// ExpireGates applies on_expiry to every open gate past its deadline: "deny" answers the
// guarded call as denied and resumes the run; "fail" fails the run. It returns how many
// expired.
func (s *Store) ExpireGates(ctx context.Context) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		rows, err := tx.QueryContext(ctx, "SELECT "+gateCols+gateFrom+" WHERE h.status = 'open' AND h.expires_at <= ? LIMIT 200", now)
		if err != nil {
			return err
		}
		var due []Gate
		for rows.Next() {
			g, err := scanGate(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, g)
		}
		rows.Close()
		for _, g := range due {
			if _, err := tx.ExecContext(ctx, "UPDATE human_requests SET status = 'expired', decided_at = ? WHERE id = ?", now, g.ID); err != nil {
				return err
			}
			at := g.ExpiresAt.Format(time.RFC3339)
			if g.OnExpiry == "fail" {
				var lr leasedRun
				err := tx.QueryRowContext(ctx, "SELECT id, team_id, agent_id, build_id, webhook_url, case_id FROM runs WHERE id = ?", g.RunID).
					Scan(&lr.id, &lr.team, &lr.agent, &lr.build, &lr.webhookURL, &lr.caseID)
				if err != nil {
					return err
				}
				if err := s.endRun(ctx, tx, lr, RunFailed, fmt.Sprintf("human request %q expired at %s without a decision", g.Title, at), false); err != nil {
					return err
				}
			} else {
				if g.ToolCallID != nil {
					msg := "denied: nobody decided before the request expired at " + at
					if err := settleCall(ctx, tx, g.RunID, *g.ToolCallID, GateModel, "expired", "", msg, now); err != nil {
						return err
					}
				}
				if err := makePending(ctx, tx, g.RunID, now); err != nil {
					return err
				}
			}
			a := Actor{TeamID: g.TeamID, Channel: "system", Operation: "expireHumanRequest"}
			if err := s.appendAudit(ctx, tx, a, g.TeamID, Target{Type: "human_request", ID: g.ID, Detail: map[string]any{"run_id": g.RunID, "on_expiry": g.OnExpiry}}, "success"); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// NextGateExpiry is the earliest deadline of an open gate; ok is false when none has one.
func (s *Store) NextGateExpiry(ctx context.Context) (time.Time, bool, error) {
	var t sql.NullInt64
	if err := s.r.QueryRowContext(ctx, "SELECT min(expires_at) FROM human_requests WHERE status = 'open'").Scan(&t); err != nil || !t.Valid {
		return time.Time{}, false, err
	}
	return Time(t.Int64), true, nil
}

// GateConsent is the consent hash of the gate that approved a call, if any.
func (s *Store) GateConsent(ctx context.Context, gateID string) (string, string, error) {
	var hash sql.NullString
	var status string
	err := s.r.QueryRowContext(ctx, "SELECT consent_hash, status FROM human_requests WHERE id = ?", gateID).Scan(&hash, &status)
	return hash.String, status, err
}
