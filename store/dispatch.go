package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"
)

// Case events' types.
const (
	CaseEventCreated   = "created"
	CaseEventClaimed   = "claimed"
	CaseEventRetry     = "retry_scheduled"
	CaseEventCompleted = "completed"
	CaseEventFailed    = "failed"
	CaseEventPostponed = "postponed"
	CaseEventUpdated   = "updated"
)

// ErrRunEndedWithoutCompleting is the last_error of a case whose run finished without
// deciding it (DESIGN §4).
const ErrRunEndedWithoutCompleting = "run ended without completing the case"

// DispatchCases claims trigger t's due cases, as many as its free slots allow, and
// creates the run that holds each, in one transaction. Each claim is one statement
// (DESIGN §3) whose condition also enforces the trigger's concurrency, so a case is
// never claimed without its run, nor a trigger ever over its limit. It returns the new
// runs' ids, none when there is nothing to start.
func (s *Store) DispatchCases(ctx context.Context, t CaseTrigger) ([]string, error) {
	var runs []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		runs = runs[:0]
		var agentName string
		var live sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT name, live_build_id FROM agents WHERE id = ? AND deleted_at IS NULL", t.AgentID).Scan(&agentName, &live)
		if err == sql.ErrNoRows || (err == nil && !live.Valid) {
			return nil // nothing to run the case on yet; the case waits
		}
		if err != nil {
			return err
		}
		now := s.nowMs()
		for range t.Concurrency {
			id := NewID()
			var c struct {
				id, title, data string
				prio, attempt   int
			}
			err = tx.QueryRowContext(ctx, `UPDATE cases SET claimed_by_run_id = ?, claimed_by_agent_id = ?, claimed_at = ?, attempt = attempt + 1,
				postponed_to = NULL, updated_at = ?
				WHERE id = (SELECT id FROM cases WHERE queue_id = ? AND status = 'pending' AND claimed_by_run_id IS NULL AND run_after <= ?
				            ORDER BY priority DESC, run_after, id LIMIT 1)
				  AND (SELECT count(*) FROM cases WHERE queue_id = ? AND claimed_by_agent_id = ? AND status = 'pending' AND claimed_by_run_id IS NOT NULL) < ?
				RETURNING id, title, data, priority, attempt`,
				id, t.AgentID, now, now, t.CaseQueueID, now, t.CaseQueueID, t.AgentID, t.Concurrency).Scan(&c.id, &c.title, &c.data, &c.prio, &c.attempt)
			if err == sql.ErrNoRows {
				return nil
			}
			if err != nil {
				return fmt.Errorf("claim case: %w", err)
			}
			nr := NewRun{AgentID: t.AgentID, Source: "case", CaseID: &c.id, Title: c.title, Message: caseMessage(c.id, t.CaseQueueName, c.title, c.data, priorities[c.prio], c.attempt)}
			if _, err := insertRunWithID(ctx, tx, id, t.TeamID, t.AgentID, agentName, live.String, nr, deref(t.UserID), "", now); err != nil {
				return err
			}
			if err := appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, caseEvent{caseID: c.id, typ: CaseEventClaimed, from: "pending", to: "in_progress",
				runID: id, agentID: t.AgentID, detail: map[string]any{"attempt": c.attempt}}); err != nil {
				return err
			}
			runs = append(runs, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// caseMessage is the first message of a run started on a case.
func caseMessage(id, queue, title, data, priority string, attempt int) string {
	msg := fmt.Sprintf("Case %s from queue %q (priority %s, attempt %d).\nTitle: %s\n", id, queue, priority, attempt, title)
	if data != "" {
		msg += "Data:\n" + data + "\n"
	}
	return msg + "\nWork on this case. When you are done call complete_case with the result, or fail_case with the reason; " +
		"postpone_case if it must wait."
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// NextCaseDue is the earliest time after since at which an unclaimed pending case
// (postponed, or waiting to be retried) becomes due, over the queues that enabled
// triggers consume. The dispatcher passes the start of its last pass: a case that fell
// due during the pass is then still found (its time is in the past, so it is due now).
func (s *Store) NextCaseDue(ctx context.Context, since time.Time) (time.Time, bool, error) {
	var t sql.NullInt64
	// INDEXED BY: left to itself the planner prefers cases_run for "claimed_by_run_id IS
	// NULL", which walks every waiting case.
	err := s.r.QueryRowContext(ctx, `SELECT min(c.run_after) FROM cases c INDEXED BY cases_due WHERE c.status = 'pending' AND c.claimed_by_run_id IS NULL AND c.run_after > ?
		AND c.queue_id IN (SELECT case_queue_id FROM case_triggers WHERE enabled)`, since.UnixMilli()).Scan(&t)
	if err != nil || !t.Valid {
		return time.Time{}, false, err
	}
	return Time(t.Int64), true, nil
}

// retryBackoff is how long an infrastructure failure makes a case wait before its next
// attempt: attempt⁴ seconds plus up to a second of jitter (DESIGN §4).
func retryBackoff(attempt int) time.Duration {
	a := time.Duration(attempt)
	return a*a*a*a*time.Second + time.Duration(rand.Int64N(int64(time.Second)))
}

// settleCases decides the cases a run still holds when it ends, inside the run's final
// transaction. A run that ended without deciding its case fails it; an infrastructure
// failure returns the case to its queue with backoff until max_attempts.
func (s *Store) settleCases(ctx context.Context, tx *sql.Tx, r leasedRun, status, reason string, infra bool, now int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.attempt, coalesce((SELECT max_attempts FROM case_triggers WHERE agent_id = ?), 3)
		FROM cases c WHERE c.claimed_by_run_id = ? AND c.status = 'pending'`, r.agent, r.id)
	if err != nil {
		return err
	}
	type held struct {
		id            string
		attempt, most int
	}
	var cases []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.id, &h.attempt, &h.most); err != nil {
			rows.Close()
			return err
		}
		cases = append(cases, h)
	}
	rows.Close()
	for _, c := range cases {
		ev := caseEvent{caseID: c.id, runID: r.id, agentID: r.agent, from: "in_progress"}
		switch {
		case infra && c.attempt < c.most:
			at := now + s.caseBackoff(c.attempt).Milliseconds()
			_, err = tx.ExecContext(ctx, `UPDATE cases SET claimed_by_run_id = NULL, claimed_at = NULL, run_after = ?, last_error = ?, updated_at = ?
				WHERE id = ?`, at, reason, now, c.id)
			ev.typ, ev.to, ev.reason = CaseEventRetry, "pending", reason
			ev.detail = map[string]any{"attempt": c.attempt, "max_attempts": c.most, "retry_at": Time(at)}
		default:
			why := reason
			switch {
			case status == RunCompleted:
				why = ErrRunEndedWithoutCompleting
			case infra:
				why = fmt.Sprintf("%s (gave up after %d attempts)", reason, c.attempt)
			}
			_, err = tx.ExecContext(ctx, "UPDATE cases SET status = 'failed', last_error = ?, completed_at = ?, updated_at = ? WHERE id = ?", why, now, now, c.id)
			ev.typ, ev.to, ev.reason = CaseEventFailed, "failed", why
		}
		if err != nil {
			return err
		}
		if err := appendCaseEvent(ctx, tx, Actor{Channel: "system"}, now, ev); err != nil {
			return err
		}
	}
	return nil
}
