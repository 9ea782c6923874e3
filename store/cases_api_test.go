package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzCaseSearch: whatever text a person searches for, ListCases answers without an
// error: FTS5 syntax in the text is quoted, never parsed.
func FuzzCaseSearch(f *testing.F) {
	s, err := Open(context.Background(), filepath.Join(f.TempDir(), DBFile), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ctx := context.Background()
	team, _, err := s.Bootstrap(ctx, "")
	if err != nil {
		f.Fatal(err)
	}
	queue := NewID()
	if _, err := s.w.ExecContext(ctx, "INSERT INTO queues(id, team_id, name, created_at, updated_at) VALUES (?, ?, 'q', 0, 0)", queue, team.ID); err != nil {
		f.Fatal(err)
	}
	a := Actor{TeamID: team.ID, Channel: "system", Operation: "test"}
	if _, err := s.CreateCases(ctx, a, queue, []NewCase{
		{Title: `Quote "this" (now)`, Data: "AND OR NOT NEAR title:data col*umn ^start -minus"},
		{Title: "Ünïcödé 日本語", Data: "the customer wants a refund"},
	}); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", `"`, `""`, `AND`, `a OR b`, `NEAR(a b, 3)`, `title:x`, `{title data}: x`, `*`, `x*`, `"x"*`, `^x`, `-x`, `(`, `)`,
		"\x00", "a\x00b", "\xff", `\`, `'`, `;`, "refund", "日本語", "🎉", "a\u2028b", "x\ty\nz"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, search string) {
		if _, err := s.ListCases(ctx, team.ID, queue, CaseQuery{CaseFilter: CaseFilter{Search: search}, Limit: 10}); err != nil {
			t.Fatalf("search %q: %v", search, err)
		}
	})
}

// TestCaseListQueriesUseIndexes reads the plan of every count and page query the cases
// list and the bulk operations run: each reaches the queue's cases through an index
// (the queue's, a label's, the full-text index's matches, or the id), never by scanning
// the cases table; a plain page is read in the index's order without sorting.
func TestCaseListQueriesUseIndexes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	team, _, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.CreateQueue(ctx, Actor{TeamID: team.ID, Channel: "system", Operation: "test"}, NewQueue{Name: "Orders"})
	if err != nil {
		t.Fatal(err)
	}
	filters := map[string]CaseFilter{
		"none":           {},
		"status":         {DisplayStatuses: []string{"failed"}},
		"pending":        {DisplayStatuses: []string{"pending", "needs_input"}},
		"priority":       {Priorities: []string{"high"}},
		"label":          {Labels: map[string][]string{"region": {"eu"}}},
		"text":           {Search: "refund"},
		"label and text": {Labels: map[string][]string{"region": {"eu"}}, Search: "refund"},
		"everything": {DisplayStatuses: []string{"pending"}, Priorities: []string{"high"}, Labels: map[string][]string{"region": {"eu"}, "tier": {"gold"}},
			Search: "refund", CreatedFrom: &time.Time{}},
	}
	plan := func(t *testing.T, what string, query sqlQuery) string {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query.text, query.args...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		p := strings.Join(lines, "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "SCAN c") && !strings.HasPrefix(l, "SCAN cases_fts") {
				t.Errorf("%s scans the cases table:\n%s\n%s", what, query.text, p)
			}
		}
		return p
	}
	for name, f := range filters {
		count, page, err := caseListSQL(q.ID, CaseQuery{CaseFilter: f, Limit: 50, Offset: 100}, 0)
		if err != nil {
			t.Fatal(err)
		}
		plan(t, name+" count", count)
		p := plan(t, name+" page", page)
		if name == "none" && strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("the unfiltered page sorts instead of reading the queue's index in order:\n%s", p)
		}
		where, args, err := caseFilterWhere(q.ID, f, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		plan(t, name+" bulk selection", sqlQuery{`SELECT c.id FROM cases c LEFT JOIN runs r ON r.id = c.claimed_by_run_id WHERE ` + where, args})
	}
}
