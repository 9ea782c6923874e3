package store

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
)

// LabelKV names a label by its key and value, as cases are labelled in requests.
type LabelKV struct{ Key, Value string }

const (
	maxLabelKey   = 100
	maxLabelValue = 200
)

// cleanLabel trims a label's key and value and checks them; prefix locates the label in
// the caller's request (e.g. "labels[2]."; empty when key and value are top-level fields).
func cleanLabel(prefix string, kv LabelKV) (LabelKV, error) {
	kv.Key, kv.Value = strings.TrimSpace(kv.Key), strings.TrimSpace(kv.Value)
	if kv.Value == "" {
		return kv, invalid("%svalue must not be empty", prefix)
	}
	if len(kv.Value) > maxLabelValue {
		return kv, invalid("%svalue must be at most %d characters (got %d)", prefix, maxLabelValue, len(kv.Value))
	}
	if len(kv.Key) > maxLabelKey {
		return kv, invalid("%skey must be at most %d characters (got %d)", prefix, maxLabelKey, len(kv.Key))
	}
	return kv, nil
}

// labelHue gives a label without a chosen colour a stable one of its own, so labels
// are told apart at a glance and keep their colour wherever they appear.
func labelHue(kv LabelKV) int {
	h := fnv.New32a()
	h.Write([]byte(kv.Key + "\x00" + kv.Value))
	return int(h.Sum32() % 360)
}

func labelString(kv LabelKV) string {
	if kv.Key == "" {
		return kv.Value
	}
	return kv.Key + ":" + kv.Value
}

// labelIDsTx resolves labels given by key and value to the ids of queueID's labels,
// creating the missing ones when create (otherwise a missing one is an error naming
// labels[i]). Ids come back once each, in the order first named. It runs inside the
// caller's transaction, e.g. createCases with labels.
func (s *Store) labelIDsTx(ctx context.Context, tx *sql.Tx, queueID string, kv []LabelKV, create bool) ([]string, error) {
	ids := make([]string, 0, len(kv))
	seen := map[LabelKV]bool{}
	for i, l := range kv {
		l, err := cleanLabel("labels["+strconv.Itoa(i)+"].", l)
		if err != nil {
			return nil, err
		}
		if seen[l] {
			continue
		}
		seen[l] = true
		var id string
		if create {
			// The no-op update makes RETURNING answer for an existing label too.
			err = tx.QueryRowContext(ctx, `INSERT INTO queue_labels(id, queue_id, key, value, color_hue, created_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT(queue_id, key, value) DO UPDATE SET key = excluded.key RETURNING id`,
				NewID(), queueID, l.Key, l.Value, labelHue(l), s.nowMs()).Scan(&id)
		} else {
			err = tx.QueryRowContext(ctx, "SELECT id FROM queue_labels WHERE queue_id = ? AND key = ? AND value = ?", queueID, l.Key, l.Value).Scan(&id)
			if err == sql.ErrNoRows {
				return nil, invalid("labels[%d]: the queue has no label %q: create it first (createQueueLabel)", i, labelString(l))
			}
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

const labelCols = "l.id, l.queue_id, l.key, l.value, l.color_hue"

func scanLabel(sc scanner, extra ...any) (Label, error) {
	var l Label
	err := sc.Scan(append([]any{&l.ID, &l.QueueID, &l.Key, &l.Value, &l.ColorHue}, extra...)...)
	return l, err
}

// labelInQueue reads one of a queue's labels with how many cases carry it.
func labelInQueue(ctx context.Context, q querier, queueID, id string) (Label, error) {
	var n int
	l, err := scanLabel(q.QueryRowContext(ctx, "SELECT "+labelCols+", (SELECT count(*) FROM case_labels cl WHERE cl.label_id = l.id) FROM queue_labels l WHERE l.id = ? AND l.queue_id = ?",
		id, queueID), &n)
	if err == sql.ErrNoRows {
		return Label{}, notFound("label %s not found in queue %s", id, queueID)
	}
	l.CaseCount = n
	return l, err
}

// ListQueueLabels returns a page of a queue's labels by key and value, each with how
// many cases carry it.
func (s *Store) ListQueueLabels(ctx context.Context, team, queueID string, limit, offset int) ([]Label, error) {
	if _, err := findQueue(ctx, s.r, team, queueID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+labelCols+`, (SELECT count(*) FROM case_labels cl WHERE cl.label_id = l.id)
		FROM queue_labels l WHERE l.queue_id = ? ORDER BY l.key, l.value, l.id LIMIT ? OFFSET ?`, queueID, limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Label{}
	for rows.Next() {
		var n int
		l, err := scanLabel(rows, &n)
		if err != nil {
			return nil, err
		}
		l.CaseCount = n
		out = append(out, l)
	}
	return out, rows.Err()
}

// QueueLabelNames returns up to limit of a queue's labels by key and value, without
// counting their cases: what a filter offers to pick from.
func (s *Store) QueueLabelNames(ctx context.Context, team, queueID string, limit int) ([]Label, error) {
	if _, err := findQueue(ctx, s.r, team, queueID); err != nil {
		return nil, err
	}
	return s.queryLabels(ctx, "SELECT "+labelCols+" FROM queue_labels l WHERE l.queue_id = ? ORDER BY l.key, l.value, l.id LIMIT ?", queueID, limit)
}

// labelTaken refuses a second label with the same key and value in a queue.
func labelTaken(ctx context.Context, tx *sql.Tx, queueID string, kv LabelKV, except string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM queue_labels WHERE queue_id = ? AND key = ? AND value = ? AND id != ?",
		queueID, kv.Key, kv.Value, except).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return conflict("the queue already has a label %q (key %q, value %q): use it, or pick another key or value", labelString(kv), kv.Key, kv.Value)
	}
	return nil
}

func labelColor(hue *int) error {
	if hue != nil && (*hue < 0 || *hue > 360) {
		return invalid("color_hue must be 0 to 360 (got %d)", *hue)
	}
	return nil
}

// CreateQueueLabel defines a label on a queue without putting it on any case. Without
// a hue the label gets a stable one derived from its key and value.
func (s *Store) CreateQueueLabel(ctx context.Context, a Actor, queueID string, kv LabelKV, hue *int) (Label, error) {
	kv, err := cleanLabel("", kv)
	if err != nil {
		return Label{}, err
	}
	if err := labelColor(hue); err != nil {
		return Label{}, err
	}
	l := Label{ID: NewID(), QueueID: queueID, Key: kv.Key, Value: kv.Value, ColorHue: labelHue(kv)}
	if hue != nil {
		l.ColorHue = *hue
	}
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if _, err := findQueue(ctx, tx, a.TeamID, queueID); err != nil {
			return Target{}, err
		}
		if err := labelTaken(ctx, tx, queueID, kv, ""); err != nil {
			return Target{}, err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO queue_labels(id, queue_id, key, value, color_hue, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			l.ID, queueID, l.Key, l.Value, l.ColorHue, s.nowMs())
		return Target{Type: "queue_label", ID: l.ID, Detail: map[string]any{"queue_id": queueID, "key": l.Key, "value": l.Value}}, err
	})
	if err != nil {
		return Label{}, err
	}
	return l, nil
}

// LabelPatch changes a label; nil fields stay as they are.
type LabelPatch struct {
	Key      *string
	Value    *string
	ColorHue *int
}

// UpdateQueueLabel renames or recolours a label; every case carrying it shows the change.
func (s *Store) UpdateQueueLabel(ctx context.Context, a Actor, queueID, id string, p LabelPatch) (Label, error) {
	if err := labelColor(p.ColorHue); err != nil {
		return Label{}, err
	}
	var l Label
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if _, err := findQueue(ctx, tx, a.TeamID, queueID); err != nil {
			return Target{}, err
		}
		var err error
		if l, err = labelInQueue(ctx, tx, queueID, id); err != nil {
			return Target{}, err
		}
		before := LabelKV{Key: l.Key, Value: l.Value}
		kv := before
		if p.Key != nil {
			kv.Key = *p.Key
		}
		if p.Value != nil {
			kv.Value = *p.Value
		}
		if kv, err = cleanLabel("", kv); err != nil {
			return Target{}, err
		}
		if err := labelTaken(ctx, tx, queueID, kv, id); err != nil {
			return Target{}, err
		}
		l.Key, l.Value = kv.Key, kv.Value
		if p.ColorHue != nil {
			l.ColorHue = *p.ColorHue
		}
		_, err = tx.ExecContext(ctx, "UPDATE queue_labels SET key = ?, value = ?, color_hue = ? WHERE id = ?", l.Key, l.Value, l.ColorHue, id)
		return Target{Type: "queue_label", ID: id, Detail: map[string]any{"queue_id": queueID, "from": labelString(before), "to": labelString(kv)}}, err
	})
	if err != nil {
		return Label{}, err
	}
	return l, nil
}

// labelCase checks that caseID is a case of team's queue queueID.
func labelCase(ctx context.Context, tx *sql.Tx, team, queueID, caseID string) error {
	if _, err := findQueue(ctx, tx, team, queueID); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE id = ? AND queue_id = ? AND team_id = ?", caseID, queueID, team).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("case %s not found in queue %s", caseID, queueID)
	}
	return nil
}

func labelDetail(ls []Label) []map[string]any {
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = map[string]any{"id": l.ID, "key": l.Key, "value": l.Value}
	}
	return out
}

// DeleteQueueLabel deletes a label and takes it off every case that carried it; each
// of those cases records the removal in its history.
func (s *Store) DeleteQueueLabel(ctx context.Context, a Actor, queueID, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if _, err := findQueue(ctx, tx, a.TeamID, queueID); err != nil {
			return Target{}, err
		}
		l, err := labelInQueue(ctx, tx, queueID, id)
		if err != nil {
			return Target{}, err
		}
		rows, err := tx.QueryContext(ctx, "SELECT case_id FROM case_labels WHERE label_id = ?", id)
		if err != nil {
			return Target{}, err
		}
		var cases []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return Target{}, err
			}
			cases = append(cases, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		detail := map[string]any{"labels": labelDetail([]Label{l})}
		for _, c := range cases {
			if err := appendCaseEvent(ctx, tx, a, now, caseEvent{caseID: c, typ: "labels_unlinked", reason: "label deleted", detail: detail}); err != nil {
				return Target{}, err
			}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE cases SET updated_at = ? WHERE id IN (SELECT case_id FROM case_labels WHERE label_id = ?)", now, id); err != nil {
			return Target{}, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM queue_labels WHERE id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "queue_label", ID: id, Detail: map[string]any{"queue_id": queueID, "label": labelString(LabelKV{l.Key, l.Value}), "case_count": len(cases)}}, nil
	})
}

// ListCaseLabels returns a page of the labels on one case of team's queue.
func (s *Store) ListCaseLabels(ctx context.Context, team, queueID, caseID string, limit, offset int) ([]Label, error) {
	if _, err := findQueue(ctx, s.r, team, queueID); err != nil {
		return nil, err
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE id = ? AND queue_id = ? AND team_id = ?", caseID, queueID, team).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, notFound("case %s not found in queue %s", caseID, queueID)
	}
	return s.queryLabels(ctx, "SELECT "+labelCols+` FROM case_labels cl JOIN queue_labels l ON l.id = cl.label_id
		WHERE cl.case_id = ? ORDER BY l.key, l.value, l.id LIMIT ? OFFSET ?`, caseID, limit, offset)
}

// queryLabels reads the labels a query selects (labelCols), never nil.
func (s *Store) queryLabels(ctx context.Context, query string, args ...any) ([]Label, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Label{}
	for rows.Next() {
		l, err := scanLabel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// AssignCaseLabels puts labels, given by key and value, on a case, creating the ones
// the queue lacks. It returns those labels; the case records the ones it did not
// already carry as one event.
func (s *Store) AssignCaseLabels(ctx context.Context, a Actor, queueID, caseID string, kv []LabelKV) ([]Label, error) {
	var out []Label
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := labelCase(ctx, tx, a.TeamID, queueID, caseID); err != nil {
			return Target{}, err
		}
		ids, err := s.labelIDsTx(ctx, tx, queueID, kv, true)
		if err != nil {
			return Target{}, err
		}
		out = make([]Label, 0, len(ids))
		var added []Label
		for _, id := range ids {
			l, err := labelInQueue(ctx, tx, queueID, id)
			if err != nil {
				return Target{}, err
			}
			l.CaseCount = 0
			out = append(out, l)
			res, err := tx.ExecContext(ctx, "INSERT INTO case_labels(case_id, label_id) VALUES (?, ?) ON CONFLICT DO NOTHING", caseID, id)
			if err != nil {
				return Target{}, err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				added = append(added, l)
			}
		}
		if len(added) > 0 {
			if err := s.labelsChanged(ctx, tx, a, caseID, "labels_assigned", added); err != nil {
				return Target{}, err
			}
		}
		return Target{Type: "case", ID: caseID, Detail: map[string]any{"queue_id": queueID, "assigned": labelDetail(added)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// labelsChanged records a change of a case's labels in its history and touches the case.
func (s *Store) labelsChanged(ctx context.Context, tx *sql.Tx, a Actor, caseID, typ string, ls []Label) error {
	now := s.nowMs()
	if _, err := tx.ExecContext(ctx, "UPDATE cases SET updated_at = ? WHERE id = ?", now, caseID); err != nil {
		return err
	}
	return appendCaseEvent(ctx, tx, a, now, caseEvent{caseID: caseID, typ: typ, detail: map[string]any{"labels": labelDetail(ls)}})
}

// UnlinkCaseLabels takes labels off a case. Every id must name a label of the queue; one
// the case does not carry is skipped. The case records the removed ones as one event.
func (s *Store) UnlinkCaseLabels(ctx context.Context, a Actor, queueID, caseID string, labelIDs []string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := labelCase(ctx, tx, a.TeamID, queueID, caseID); err != nil {
			return Target{}, err
		}
		var removed []Label
		for i, id := range labelIDs {
			l, err := labelInQueue(ctx, tx, queueID, id)
			if errors.Is(err, ErrNotFound) {
				return Target{}, invalid("label_ids[%d]: label %s not found in queue %s", i, id, queueID)
			}
			if err != nil {
				return Target{}, err
			}
			res, err := tx.ExecContext(ctx, "DELETE FROM case_labels WHERE case_id = ? AND label_id = ?", caseID, id)
			if err != nil {
				return Target{}, err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				removed = append(removed, l)
			}
		}
		if len(removed) > 0 {
			if err := s.labelsChanged(ctx, tx, a, caseID, "labels_unlinked", removed); err != nil {
				return Target{}, err
			}
		}
		return Target{Type: "case", ID: caseID, Detail: map[string]any{"queue_id": queueID, "unlinked": labelDetail(removed)}}, nil
	})
}
