package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"time"
)

// CaseSelection names the cases a bulk operation acts on: explicit ids, or every case
// of the queue matching a filter.
type CaseSelection struct {
	IDs         []string
	AllMatching bool
	Filter      CaseFilter
}

// BulkResult is what a bulk operation did: Changed cases it changed, Skipped selected
// ones it left as they were (held by a run, already so, or — for explicit ids — not a
// case of the queue).
type BulkResult struct {
	Changed int
	Skipped int
}

// bulkCase is what a bulk operation needs to know about a selected case.
type bulkCase struct {
	id, display string
	priority    int
	// runID is the run that holds the case: it is pending and claimed.
	runID *string
}

// selectCasesTx reads the selected cases of a team's queue inside the writer's
// transaction, so the change applies to exactly what was read.
func selectCasesTx(ctx context.Context, tx *sql.Tx, team, queueID string, sel CaseSelection, now time.Time) ([]bulkCase, int, error) {
	if err := requireCaseQueue(ctx, tx, team, queueID); err != nil {
		return nil, 0, err
	}
	var where string
	var args []any
	selected := 0
	if sel.AllMatching {
		w, a, err := caseFilterWhere(queueID, sel.Filter, now.UnixMilli(), true)
		if err != nil {
			return nil, 0, err
		}
		where, args = w, a
	} else {
		ids := map[string]bool{}
		for _, id := range sel.IDs {
			ids[id] = true
		}
		selected = len(ids)
		b, _ := json.Marshal(sel.IDs)
		where, args = "c.team_id = ? AND c.queue_id = ? AND c.id IN (SELECT value FROM json_each(?))", []any{team, queueID, string(b)}
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.status, c.priority, c.claimed_by_run_id, c.postponed_to, r.status
		FROM cases c LEFT JOIN runs r ON r.id = c.claimed_by_run_id WHERE `+where+" ORDER BY c.id", args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []bulkCase
	for rows.Next() {
		var c Case
		var run, runStatus sql.NullString
		var postponed sql.NullInt64
		var prio int
		if err := rows.Scan(&c.ID, &c.Status, &prio, &run, &postponed, &runStatus); err != nil {
			return nil, 0, err
		}
		c.ClaimedByRunID, c.PostponedTo, c.RunStatus = strPtr(run), timePtr(postponed), strPtr(runStatus)
		bc := bulkCase{id: c.ID, display: displayStatus(c, now), priority: prio}
		if c.Status == "pending" {
			// A decided case keeps the run that decided it, but no run holds it any more.
			bc.runID = c.ClaimedByRunID
		}
		out = append(out, bc)
	}
	if sel.AllMatching {
		selected = len(out)
	}
	return out, selected, rows.Err()
}

// bulkCases runs one bulk operation in one transaction: select the cases, pick the ones
// to change (with the event recording the change, if any), change them all with one
// set-based statement (apply, given the ids as a JSON array), record their events, and
// audit the call once.
func (s *Store) bulkCases(ctx context.Context, a Actor, queueID string, sel CaseSelection, detail map[string]any, check func(tx *sql.Tx) error,
	pick func(c bulkCase) (change bool, e *caseEvent), apply func(tx *sql.Tx, ids string, now int64) error) (BulkResult, error) {
	var res BulkResult
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		now := s.now()
		cases, selected, err := selectCasesTx(ctx, tx, a.TeamID, queueID, sel, now)
		if err != nil {
			return Target{}, err
		}
		if check != nil {
			if err := check(tx); err != nil {
				return Target{}, err
			}
		}
		var events []caseEvent
		var changed []string
		for _, c := range cases {
			change, e := pick(c)
			if !change {
				continue
			}
			changed = append(changed, c.id)
			if e != nil {
				e.caseID = c.id
				events = append(events, *e)
			}
		}
		res.Changed, res.Skipped = len(changed), selected-len(changed)
		if res.Changed > 0 {
			ids, _ := json.Marshal(changed)
			if err := apply(tx, string(ids), now.UnixMilli()); err != nil {
				return Target{}, err
			}
			if err := appendCaseEvents(ctx, tx, a, now.UnixMilli(), events); err != nil {
				return Target{}, err
			}
		}
		d := map[string]any{"changed": res.Changed, "skipped": res.Skipped, "all_matching": sel.AllMatching}
		maps.Copy(d, detail)
		if !sel.AllMatching {
			d["case_ids"] = sel.IDs
		}
		return Target{Type: "queue", ID: queueID, Detail: d}, nil
	})
	return res, err
}

// inIDs is the condition "the case is one of the JSON array of ids given as parameter".
const inIDs = "id IN (SELECT value FROM json_each(?))"

// notHeld is the condition "no run holds the case": a run holds a pending case it
// claimed; a decided case still names the run that decided it, which holds it no more.
const notHeld = "(status != 'pending' OR claimed_by_run_id IS NULL)"

// resetCases returns cases no run holds to pending as if new: no attempts, due now, no
// outcome.
func resetCases(ctx context.Context, tx *sql.Tx, ids string, now int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE cases SET status = 'pending', attempt = 0, run_after = ?, postponed_to = NULL, last_error = NULL,
		result = NULL, completed_at = NULL, claimed_by_run_id = NULL, claimed_by_agent_id = NULL, claimed_at = NULL, updated_at = ?
		WHERE `+inIDs+" AND "+notHeld, now, now, ids)
	return err
}

// ReprocessCases resets the selected cases no run holds to pending, so the dispatcher
// starts a new run for each on the consuming agent's current live setup. agentID, when
// set, must be an enabled consumer of the queue; without any enabled consumer nothing
// would ever pick the cases up, so the call is refused.
func (s *Store) ReprocessCases(ctx context.Context, a Actor, queueID string, sel CaseSelection, agentID string) (BulkResult, error) {
	check := func(tx *sql.Tx) error {
		var consumers, chosen int
		err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(agent_id = ?), 0) FROM case_triggers
			WHERE team_id = ? AND case_queue_id = ? AND enabled = 1`, agentID, a.TeamID, queueID).Scan(&consumers, &chosen)
		switch {
		case err != nil:
			return err
		case agentID != "" && chosen == 0:
			return invalid("agent_id %s is not an enabled consumer of queue %s: give the agent an enabled case trigger on this queue (POST /v2/agents/%s/case-triggers) or omit agent_id",
				agentID, queueID, agentID)
		case consumers == 0:
			return conflict("queue %s has no enabled case trigger, so nothing would process the cases: create one (POST /v2/agents/{agent_id}/case-triggers) or enable an existing one", queueID)
		}
		return nil
	}
	var detail map[string]any
	if agentID != "" {
		detail = map[string]any{"agent_id": agentID}
	}
	pick := func(c bulkCase) (bool, *caseEvent) {
		return c.runID == nil, &caseEvent{typ: "reprocess", from: c.display, to: "pending", detail: detail}
	}
	return s.bulkCases(ctx, a, queueID, sel, detail, check, pick, func(tx *sql.Tx, ids string, now int64) error {
		return resetCases(ctx, tx, ids, now)
	})
}

// SetCasesStatus sets the selected cases no run holds to status. pending resets a case
// (the dispatcher picks it up again); completed and failed end it. Cases already there
// are skipped.
func (s *Store) SetCasesStatus(ctx context.Context, a Actor, queueID string, sel CaseSelection, status string) (BulkResult, error) {
	switch status {
	case "pending", "completed", "failed":
	default:
		return BulkResult{}, invalid("status %q: want pending, completed or failed", status)
	}
	pick := func(c bulkCase) (bool, *caseEvent) {
		return c.runID == nil && c.display != status, &caseEvent{typ: "status_changed", from: c.display, to: status}
	}
	return s.bulkCases(ctx, a, queueID, sel, map[string]any{"status": status}, nil, pick, func(tx *sql.Tx, ids string, now int64) error {
		if status == "pending" {
			return resetCases(ctx, tx, ids, now)
		}
		_, err := tx.ExecContext(ctx, "UPDATE cases SET status = ?, postponed_to = NULL, completed_at = ?, updated_at = ? WHERE "+inIDs+" AND "+notHeld,
			status, now, now, ids)
		return err
	})
}

// SetCasesPriority sets the priority of the selected cases, held ones included: priority
// only orders what the dispatcher claims next. Cases already at it are skipped.
func (s *Store) SetCasesPriority(ctx context.Context, a Actor, queueID string, sel CaseSelection, priority string) (BulkResult, error) {
	rank, ok := PriorityRank(priority)
	if !ok {
		return BulkResult{}, invalid("priority %q: want none, medium or high", priority)
	}
	pick := func(c bulkCase) (bool, *caseEvent) {
		return c.priority != rank, &caseEvent{typ: "priority_changed", detail: map[string]any{"from_priority": priorities[c.priority], "to_priority": priority}}
	}
	return s.bulkCases(ctx, a, queueID, sel, map[string]any{"priority": priority}, nil, pick, func(tx *sql.Tx, ids string, now int64) error {
		_, err := tx.ExecContext(ctx, "UPDATE cases SET priority = ?, updated_at = ? WHERE "+inIDs, rank, now, ids)
		return err
	})
}

// DeleteCases deletes the selected cases no run holds, with their labels and history
// (the audit row keeps the count and, for explicit ids, which). No case event is written:
// it would be deleted with the case.
func (s *Store) DeleteCases(ctx context.Context, a Actor, queueID string, sel CaseSelection) (BulkResult, error) {
	pick := func(c bulkCase) (bool, *caseEvent) { return c.runID == nil, nil }
	return s.bulkCases(ctx, a, queueID, sel, nil, nil, pick, func(tx *sql.Tx, ids string, _ int64) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM cases WHERE "+inIDs+" AND "+notHeld, ids)
		return err
	})
}

// LabelCases puts labels, given by key and value, on the selected cases, creating the
// ones the queue lacks. Labels change no run's work, so held cases are labelled too;
// cases that already carry every label are skipped. Each labelled case records the
// labels it gained as one event, as AssignCaseLabels does for one case.
func (s *Store) LabelCases(ctx context.Context, a Actor, queueID string, sel CaseSelection, kv []LabelKV) (BulkResult, error) {
	if len(kv) == 0 {
		return BulkResult{}, invalid("labels: give at least one label (key and value, or a value alone)")
	}
	var labels []Label
	have := map[string]map[string]bool{} // case id → ids of the given labels it carries
	check := func(tx *sql.Tx) error {
		ids, err := s.labelIDsTx(ctx, tx, queueID, kv, true)
		if err != nil {
			return err
		}
		for _, id := range ids {
			l, err := labelInQueue(ctx, tx, queueID, id)
			if err != nil {
				return err
			}
			l.CaseCount = 0
			labels = append(labels, l)
		}
		b, _ := json.Marshal(ids)
		rows, err := tx.QueryContext(ctx, "SELECT case_id, label_id FROM case_labels WHERE label_id IN (SELECT value FROM json_each(?))", string(b))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c, l string
			if err := rows.Scan(&c, &l); err != nil {
				return err
			}
			if have[c] == nil {
				have[c] = map[string]bool{}
			}
			have[c][l] = true
		}
		return rows.Err()
	}
	pick := func(c bulkCase) (bool, *caseEvent) {
		var missing []Label
		for _, l := range labels {
			if !have[c.id][l.ID] {
				missing = append(missing, l)
			}
		}
		if len(missing) == 0 {
			return false, nil
		}
		return true, &caseEvent{typ: "labels_assigned", detail: map[string]any{"labels": labelDetail(missing)}}
	}
	detail := make([]map[string]any, 0, len(kv))
	for _, l := range kv {
		detail = append(detail, map[string]any{"key": l.Key, "value": l.Value})
	}
	return s.bulkCases(ctx, a, queueID, sel, map[string]any{"labels": detail}, check, pick, func(tx *sql.Tx, ids string, now int64) error {
		lb, _ := json.Marshal(labelIDs(labels))
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_labels(case_id, label_id) SELECT c.value, l.value FROM json_each(?) c, json_each(?) l
			WHERE true ON CONFLICT DO NOTHING`, ids, string(lb)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE cases SET updated_at = ? WHERE "+inIDs, now, ids)
		return err
	})
}

func labelIDs(ls []Label) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}
