package store

import (
	"context"
	"path/filepath"
	"testing"
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
