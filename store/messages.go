package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Message is one entry of a run's conversation, ordered by Seq.
type Message struct {
	ID         string
	RunID      string
	Seq        int
	Type       string // text, tool_call or tool_result
	Role       string // user, assistant or tool
	Text       *string
	Thinking   *string
	ToolCall   *ToolCall
	ToolResult *ToolResult
	CreatedAt  time.Time
}

// ToolCall is a call the model asked for.
type ToolCall struct {
	ID        string
	Name      string
	Arguments json.RawMessage
}

// ToolResult is what a call produced: a result, or an error the model is shown.
type ToolResult struct {
	ToolCallID string
	Name       string
	Result     *string
	Error      *string
}

// insertMessage appends m to the run with the next sequence number. Runs are written by
// one transaction at a time (the single writer), so max+1 cannot collide.
func insertMessage(ctx context.Context, tx *sql.Tx, runID string, now int64, m Message) (Message, error) {
	m.ID, m.RunID, m.CreatedAt = NewID(), runID, Time(now)
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) + 1 FROM run_messages WHERE run_id = ?", runID).Scan(&m.Seq); err != nil {
		return Message{}, err
	}
	var callID, name, args, result, errText sql.NullString
	if c := m.ToolCall; c != nil {
		callID, name, args = optional(c.ID), optional(c.Name), optional(string(c.Arguments))
	}
	if r := m.ToolResult; r != nil {
		callID, name, result, errText = optional(r.ToolCallID), optional(r.Name), nullStr(r.Result), nullStr(r.Error)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO run_messages(id, run_id, seq, type, role, text_content, thinking, tool_call_id, tool_name,
		tool_arguments, tool_result, tool_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, runID, m.Seq, m.Type, m.Role, nullStr(m.Text), nullStr(m.Thinking), callID, name, args, result, errText, now)
	if err != nil {
		return Message{}, fmt.Errorf("insert message: %w", err)
	}
	_, err = tx.ExecContext(ctx, "UPDATE runs SET updated_at = ? WHERE id = ?", now, runID)
	return m, err
}

const messageCols = "id, run_id, seq, type, role, text_content, thinking, tool_call_id, tool_name, tool_arguments, tool_result, tool_error, created_at"

func scanMessage(sc scanner) (Message, error) {
	var m Message
	var text, thinking, callID, name, args, result, errText sql.NullString
	var created int64
	if err := sc.Scan(&m.ID, &m.RunID, &m.Seq, &m.Type, &m.Role, &text, &thinking, &callID, &name, &args, &result, &errText, &created); err != nil {
		return Message{}, err
	}
	m.Text, m.Thinking, m.CreatedAt = strPtr(text), strPtr(thinking), Time(created)
	switch m.Type {
	case "tool_call":
		m.ToolCall = &ToolCall{ID: callID.String, Name: name.String, Arguments: json.RawMessage(args.String)}
	case "tool_result":
		m.ToolResult = &ToolResult{ToolCallID: callID.String, Name: name.String, Result: strPtr(result), Error: strPtr(errText)}
	}
	return m, nil
}

func (s *Store) queryMessages(ctx context.Context, query string, args ...any) ([]Message, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListMessages returns a page of a team's run's messages in sequence order (newest first
// when desc) and how many the run has.
func (s *Store) ListMessages(ctx context.Context, team, runID string, limit, offset int, desc bool) ([]Message, int, error) {
	var total int
	err := s.r.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM run_messages WHERE run_id = r.id) FROM runs r WHERE r.id = ? AND r.team_id = ?", runID, team).Scan(&total)
	if err == sql.ErrNoRows {
		return nil, 0, notFound("run %s not found", runID)
	}
	if err != nil {
		return nil, 0, err
	}
	order := "seq"
	if desc {
		order = "seq DESC"
	}
	ms, err := s.queryMessages(ctx, "SELECT "+messageCols+" FROM run_messages WHERE run_id = ? ORDER BY "+order+" LIMIT ? OFFSET ?", runID, limit, offset)
	return ms, total, err
}

// MessagesAfter returns a run's messages with a sequence number above seq, in order: the
// whole history for the prompt (seq 0), or what an event stream missed.
func (s *Store) MessagesAfter(ctx context.Context, runID string, seq int) ([]Message, error) {
	return s.queryMessages(ctx, "SELECT "+messageCols+" FROM run_messages WHERE run_id = ? AND seq > ? ORDER BY seq", runID, seq)
}

// Turn is one model response: its text and the tool calls it asked for, with what the
// call cost.
type Turn struct {
	Text         string
	Thinking     string
	Calls        []ToolCall
	PromptTokens int64
	OutputTokens int64
	ModelMs      int64
	// Model is what the model reported for this turn (Turns is 1).
	Model ModelUsage
	// ToolMode is how the model was asked for tool calls; the run keeps the first one.
	ToolMode string
	// Final ends the run as completed in the same transaction (a turn without calls).
	Final bool
}

// ModelUsage is what Ollama reports about its own work (its durations, in ms), summed
// over Turns model calls.
type ModelUsage struct {
	Turns        int64
	TotalMs      int64
	LoadMs       int64
	PromptEvalMs int64
	EvalMs       int64
}

// IdempotencyKey is the key a tool call's side effects carry (DESIGN §5.5), stable across
// re-executions after a crash.
func IdempotencyKey(runID, callID string) string { return runID + ":" + callID }

// RecordTurn commits a model turn: the assistant's text, one message and one pending
// ledger row per tool call, the usage counters, and for a final turn the completion and
// its webhook. Nothing of a turn is ever half-written.
func (s *Store) RecordTurn(ctx context.Context, runID, owner string, t Turn) ([]Message, error) {
	var out []Message
	err := s.leased(ctx, runID, owner, func(tx *sql.Tx, r leasedRun) error {
		now := s.nowMs()
		if t.Text != "" || t.Thinking != "" || len(t.Calls) == 0 {
			m := Message{Type: "text", Role: "assistant", Text: &t.Text}
			if t.Thinking != "" {
				m.Thinking = &t.Thinking
			}
			m, err := insertMessage(ctx, tx, runID, now, m)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		for _, c := range t.Calls {
			m, err := insertMessage(ctx, tx, runID, now, Message{Type: "tool_call", Role: "assistant", ToolCall: &c})
			if err != nil {
				return err
			}
			out = append(out, m)
			_, err = tx.ExecContext(ctx, `INSERT INTO tool_calls(run_id, call_id, seq, name, arguments, state, idempotency_key, created_at)
				VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`, runID, c.ID, m.Seq, c.Name, string(c.Arguments), IdempotencyKey(runID, c.ID), now)
			if err != nil {
				return fmt.Errorf("ledger %s: %w", c.ID, err)
			}
		}
		u := t.Model
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET prompt_tokens = prompt_tokens + ?, output_tokens = output_tokens + ?, model_ms = model_ms + ?,
			model_turns = model_turns + ?, total_duration_ms = total_duration_ms + ?, load_duration_ms = load_duration_ms + ?,
			prompt_eval_duration_ms = prompt_eval_duration_ms + ?, eval_duration_ms = eval_duration_ms + ?,
			tool_mode = coalesce(tool_mode, ?) WHERE id = ?`, t.PromptTokens, t.OutputTokens, t.ModelMs,
			u.Turns, u.TotalMs, u.LoadMs, u.PromptEvalMs, u.EvalMs, optional(t.ToolMode), runID); err != nil {
			return err
		}
		if t.Final {
			return s.endRun(ctx, tx, r, RunCompleted, "", false)
		}
		return nil
	})
	return out, err
}

// Ledger states (DESIGN §5.5).
const (
	CallPending  = "pending"
	CallGated    = "gated"
	CallApproved = "approved"
	CallStarted  = "started"
	CallDone     = "done"
)

// LedgerEntry is a tool call's place in the effect ledger.
type LedgerEntry struct {
	RunID          string
	CallID         string
	Seq            int
	Name           string
	Arguments      json.RawMessage
	State          string
	GateID         *string
	IdempotencyKey string
}

// OpenCalls returns the run's calls that have no result yet, in the order the model made
// them: what an executor must finish before the next model turn.
func (s *Store) OpenCalls(ctx context.Context, runID string) ([]LedgerEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT run_id, call_id, seq, name, arguments, state, gate_id, idempotency_key FROM tool_calls
		WHERE run_id = ? AND state != 'done' ORDER BY seq`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		var e LedgerEntry
		var args string
		var gate sql.NullString
		if err := rows.Scan(&e.RunID, &e.CallID, &e.Seq, &e.Name, &args, &e.State, &gate, &e.IdempotencyKey); err != nil {
			return nil, err
		}
		e.Arguments, e.GateID = json.RawMessage(args), strPtr(gate)
		out = append(out, e)
	}
	return out, rows.Err()
}

// StartCall commits that a call is about to execute. After a crash, a call found started
// without a result has an unknown outcome.
func (s *Store) StartCall(ctx context.Context, runID, owner, callID string) error {
	return s.leased(ctx, runID, owner, func(tx *sql.Tx, _ leasedRun) error {
		_, err := tx.ExecContext(ctx, "UPDATE tool_calls SET state = 'started', started_at = ? WHERE run_id = ? AND call_id = ? AND state != 'done'",
			s.nowMs(), runID, callID)
		return err
	})
}

// FinishCall commits a call's result message and marks it done, together.
func (s *Store) FinishCall(ctx context.Context, runID, owner string, res ToolResult) (Message, error) {
	var m Message
	err := s.leased(ctx, runID, owner, func(tx *sql.Tx, _ leasedRun) error {
		var err error
		m, err = finishCall(ctx, tx, runID, s.nowMs(), res)
		return err
	})
	return m, err
}

func finishCall(ctx context.Context, tx *sql.Tx, runID string, now int64, res ToolResult) (Message, error) {
	n, err := tx.ExecContext(ctx, "UPDATE tool_calls SET state = 'done', done_at = ? WHERE run_id = ? AND call_id = ? AND state != 'done'", now, runID, res.ToolCallID)
	if err != nil {
		return Message{}, err
	}
	if k, _ := n.RowsAffected(); k == 0 {
		return Message{}, conflict("tool call %s of run %s already has a result", res.ToolCallID, runID)
	}
	return insertMessage(ctx, tx, runID, now, Message{Type: "tool_result", Role: "tool", ToolResult: &res})
}

// answerOpenCalls gives every call still without a result the same error result, so the
// conversation stays well-formed when a person redirects the run.
func answerOpenCalls(ctx context.Context, tx *sql.Tx, runID string, now int64, text string) error {
	rows, err := tx.QueryContext(ctx, "SELECT call_id, name FROM tool_calls WHERE run_id = ? AND state != 'done' ORDER BY seq", runID)
	if err != nil {
		return err
	}
	var open [][2]string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return err
		}
		open = append(open, [2]string{id, name})
	}
	rows.Close()
	for _, c := range open {
		if _, err := finishCall(ctx, tx, runID, now, ToolResult{ToolCallID: c[0], Name: c[1], Error: &text}); err != nil {
			return err
		}
	}
	return nil
}
