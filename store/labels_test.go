package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLabelIDsTx: labels named by key and value resolve to the queue's label ids inside
// the caller's transaction, created on demand, each once, and a refused resolution
// leaves nothing behind.
func TestLabelIDsTx(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	team, _, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	a := Actor{TeamID: team.ID, Channel: "system", Operation: "test"}
	q, err := s.CreateQueue(ctx, a, NewQueue{Name: "Q"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateQueue(ctx, a, NewQueue{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(queue string, kv []LabelKV, create bool) ([]string, error) {
		var ids []string
		err := s.write(ctx, func(tx *sql.Tx) error {
			var err error
			ids, err = s.labelIDsTx(ctx, tx, queue, kv, create)
			return err
		})
		return ids, err
	}
	labels := func(queue string) int {
		var n int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", queue).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	first, err := resolve(q.ID, []LabelKV{{"customer", "Acme"}, {"", "urgent"}, {" customer ", " Acme "}}, true)
	if err != nil || len(first) != 2 {
		t.Fatalf("create: ids %v, %v; want 2 ids (the repeat, once trimmed, is the same label)", first, err)
	}
	again, err := resolve(q.ID, []LabelKV{{"", "urgent"}, {"customer", "Acme"}, {"new", "one"}}, true)
	if err != nil || len(again) != 3 || again[0] != first[1] || again[1] != first[0] {
		t.Fatalf("find-or-create: ids %v, %v; want the existing two in the order named, then a new one", again, err)
	}
	found, err := resolve(q.ID, []LabelKV{{"new", "one"}}, false)
	if err != nil || !slices.Equal(found, again[2:]) {
		t.Fatalf("find: %v, %v", found, err)
	}
	if labels(q.ID) != 3 {
		t.Fatalf("labels = %d, want 3", labels(q.ID))
	}

	_, err = resolve(q.ID, []LabelKV{{"", "urgent"}, {"missing", "label"}}, false)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "labels[1]") || !strings.Contains(err.Error(), "missing:label") {
		t.Fatalf("unknown label without create: %v; want invalid naming labels[1] and the label", err)
	}
	_, err = resolve(other.ID, []LabelKV{{"a", "b"}, {"k", " "}}, true)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "labels[1].value") {
		t.Fatalf("blank value: %v; want invalid naming labels[1].value", err)
	}
	if labels(other.ID) != 0 {
		t.Fatalf("a refused resolution created %d labels", labels(other.ID))
	}
	_, err = resolve(other.ID, []LabelKV{{strings.Repeat("k", maxLabelKey+1), "v"}}, true)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "labels[0].key") {
		t.Fatalf("long key: %v; want invalid naming labels[0].key", err)
	}
}
