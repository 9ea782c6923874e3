package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// The case tools act for a run on its team's cases. Each is idempotent: replayed after a
// crash, a call finds the case already as it left it and changes nothing twice.

// toolCaseRow is what a case tool needs to know of a case.
type toolCaseRow struct {
	status, queue string
	holder        sql.NullString // the run holding it
	agent         string         // the acting run's agent
	postponed     sql.NullInt64
}

// heldByOther reports whether another run holds the case.
func (c toolCaseRow) heldByOther(runID string) bool {
	return c.holder.Valid && c.holder.String != runID
}

// toolCase loads, inside tx, a case of the run's team for a case tool, with the run's
// agent; the error is what the model is told.
func toolCase(ctx context.Context, tx *sql.Tx, runID, caseID string) (c toolCaseRow, err error) {
	err = tx.QueryRowContext(ctx, `SELECT c.status, c.queue_id, c.claimed_by_run_id, r.agent_id, c.postponed_to FROM cases c
		JOIN runs r ON r.id = ? AND r.team_id = c.team_id WHERE c.id = ?`, runID, caseID).Scan(&c.status, &c.queue, &c.holder, &c.agent, &c.postponed)
	if err == sql.ErrNoRows {
		err = notFound("case %s not found", caseID)
	}
	return c, err
}

// ClaimCase makes a pending case the run's own.
func (s *Store) ClaimCase(ctx context.Context, runID, caseID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		c, err := toolCase(ctx, tx, runID, caseID)
		if err != nil {
			return err
		}
		switch {
		case c.holder.String == runID && c.status == "pending":
			return nil
		case c.status != "pending":
			return conflict("case %s is already %s", caseID, c.status)
		case c.heldByOther(runID):
			return conflict("case %s is being worked on by run %s", caseID, c.holder.String)
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET claimed_by_run_id = ?, claimed_by_agent_id = ?, claimed_at = ?, attempt = attempt + 1,
			postponed_to = NULL, updated_at = ? WHERE id = ?`, runID, c.agent, now, now, caseID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE runs SET case_id = coalesce(case_id, ?) WHERE id = ?", caseID, runID); err != nil {
			return err
		}
		return appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, caseEvent{caseID: caseID, typ: CaseEventClaimed, from: "pending", to: "in_progress", runID: runID, agentID: c.agent})
	})
}

// DecideCase completes (failed false) or fails the case for the run, recording result
// or reason. A failure decided by the agent is a business outcome: it is not retried.
func (s *Store) DecideCase(ctx context.Context, runID, caseID, text string, failed bool) error {
	status, col, typ := "completed", "result", CaseEventCompleted
	if failed {
		status, col, typ = "failed", "last_error", CaseEventFailed
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		c, err := toolCase(ctx, tx, runID, caseID)
		if err != nil {
			return err
		}
		switch {
		case c.status == status && c.holder.String == runID:
			return nil // a replay
		case c.status != "pending":
			return conflict("case %s is already %s", caseID, c.status)
		case c.heldByOther(runID):
			return conflict("case %s is being worked on by run %s: only that run can decide it", caseID, c.holder.String)
		}
		now := s.nowMs()
		_, err = tx.ExecContext(ctx, "UPDATE cases SET status = ?, "+col+` = ?, claimed_by_run_id = ?, claimed_by_agent_id = coalesce(claimed_by_agent_id, ?),
			completed_at = ?, postponed_to = NULL, updated_at = ? WHERE id = ?`, status, text, runID, c.agent, now, now, caseID)
		if err != nil {
			return err
		}
		ev := caseEvent{caseID: caseID, typ: typ, from: "in_progress", to: status, runID: runID, agentID: c.agent}
		if failed {
			ev.reason = text
		}
		return appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, ev)
	})
}

// PostponeCase gives the case back to its queue until a time: the run lets go of it and
// the dispatcher starts a new run once it is due. The postponement does not count as an
// attempt.
func (s *Store) PostponeCase(ctx context.Context, runID, caseID string, until time.Time) (time.Time, error) {
	at := until
	err := s.write(ctx, func(tx *sql.Tx) error {
		c, err := toolCase(ctx, tx, runID, caseID)
		if err != nil {
			return err
		}
		switch {
		case c.status != "pending":
			return conflict("case %s is already %s", caseID, c.status)
		case !c.holder.Valid && c.postponed.Valid:
			at = Time(c.postponed.Int64) // a replay: it is already waiting
			return nil
		case c.heldByOther(runID):
			return conflict("case %s is being worked on by run %s", caseID, c.holder.String)
		}
		now := s.nowMs()
		if until.UnixMilli() <= now {
			return invalid("until: %s is not in the future", until.Format(time.RFC3339))
		}
		_, err = tx.ExecContext(ctx, `UPDATE cases SET claimed_by_run_id = NULL, claimed_at = NULL, postponed_to = ?, run_after = ?,
			attempt = max(attempt - 1, 0), updated_at = ? WHERE id = ?`, until.UnixMilli(), until.UnixMilli(), now, caseID)
		if err != nil {
			return err
		}
		return appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, caseEvent{caseID: caseID, typ: CaseEventPostponed, from: "in_progress", to: "postponed",
			runID: runID, agentID: c.agent, detail: map[string]any{"until": until.UTC()}})
	})
	return at, err
}

// CaseUpdate is what update_case may change; nil fields stay.
type CaseUpdate struct {
	Data     *string
	Priority *string
	// Labels are added to the case (created in its queue if new).
	Labels []LabelKV
	Note   string
}

// UpdateCase changes a case's data or priority or adds labels for a run, with an
// optional note in its history. Setting the same values again changes nothing but the note.
func (s *Store) UpdateCase(ctx context.Context, runID, caseID string, u CaseUpdate) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		c, err := toolCase(ctx, tx, runID, caseID)
		if err != nil {
			return err
		}
		if c.heldByOther(runID) {
			return conflict("case %s is being worked on by run %s", caseID, c.holder.String)
		}
		now := s.nowMs()
		detail := map[string]any{}
		if u.Data != nil {
			if _, err := tx.ExecContext(ctx, "UPDATE cases SET data = ?, updated_at = ? WHERE id = ?", *u.Data, now, caseID); err != nil {
				return err
			}
			detail["data"] = "changed"
		}
		if u.Priority != nil {
			rank, ok := PriorityRank(*u.Priority)
			if !ok {
				return invalid("priority %q: want none, medium or high", *u.Priority)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE cases SET priority = ?, updated_at = ? WHERE id = ?", rank, now, caseID); err != nil {
				return err
			}
			detail["priority"] = *u.Priority
		}
		if len(u.Labels) > 0 {
			ids, err := s.labelIDsTx(ctx, tx, c.queue, u.Labels, true)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO case_labels(case_id, label_id) VALUES (?, ?)", caseID, id); err != nil {
					return err
				}
			}
			added := make([]string, len(u.Labels))
			for i, l := range u.Labels {
				added[i] = l.Key + ":" + l.Value
			}
			detail["labels"] = added
		}
		if len(detail) == 0 && u.Note == "" {
			return invalid("nothing to update: give data, priority, labels or a note")
		}
		return appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, caseEvent{caseID: caseID, typ: CaseEventUpdated, reason: u.Note, runID: runID,
			agentID: c.agent, detail: detail})
	})
}

// CaseForRun returns a case of the run's team, as a case tool shows it.
func (s *Store) CaseForRun(ctx context.Context, runID, caseID string) (Case, error) {
	var team string
	if err := s.r.QueryRowContext(ctx, "SELECT team_id FROM runs WHERE id = ?", runID).Scan(&team); err != nil {
		return Case{}, fmt.Errorf("run %s: %w", runID, err)
	}
	return s.getCase(ctx, s.r, team, caseID)
}

// QueueForRun finds a queue of the run's team by id or by name, for the case tools.
func (s *Store) QueueForRun(ctx context.Context, runID, ref string) (team, queueID string, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT r.team_id, q.id FROM runs r JOIN queues q ON q.team_id = r.team_id AND (q.id = ? OR q.name = ?)
		WHERE r.id = ? ORDER BY q.id = ? DESC LIMIT 1`, ref, ref, runID, ref).Scan(&team, &queueID)
	if err == sql.ErrNoRows {
		err = notFound("no queue %q in this team: give a queue's id or exact name", ref)
	}
	return team, queueID, err
}

// AddCasesOnce creates cases for one add_cases call exactly once: the call's idempotency
// key is recorded with the new ids in the same transaction, so a replay after a crash
// returns the cases the first execution created instead of creating them again.
func (s *Store) AddCasesOnce(ctx context.Context, runID, key, queueRef string, cs []NewCase) ([]string, error) {
	if len(cs) == 0 || len(cs) > 100 {
		return nil, invalid("cases: give 1 to 100 cases, got %d", len(cs))
	}
	if err := validateNewCases(cs); err != nil {
		return nil, err
	}
	team, queueID, err := s.QueueForRun(ctx, runID, queueRef)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = s.write(ctx, func(tx *sql.Tx) error {
		var body []byte
		err := tx.QueryRowContext(ctx, "SELECT body FROM idempotency_keys WHERE scope = 'tool' AND key = ?", key).Scan(&body)
		if err == nil {
			return json.Unmarshal(body, &ids)
		}
		if err != sql.ErrNoRows {
			return err
		}
		out, err := s.createCasesTx(ctx, tx, Actor{TeamID: team, Channel: "system"}, queueID, cs)
		if err != nil {
			return err
		}
		for _, c := range out {
			ids = append(ids, c.ID)
		}
		b, _ := json.Marshal(ids)
		_, err = tx.ExecContext(ctx, "INSERT INTO idempotency_keys(scope, key, request_hash, status, body, created_at) VALUES ('tool', ?, '', 200, ?, ?)",
			key, b, s.nowMs())
		return err
	})
	return ids, err
}
