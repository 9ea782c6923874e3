package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// BenchmarkCasesPage measures the server time of the cases page of a queue holding
// 100,000 cases (labels, priorities, a mix of statuses): unfiltered, on its last page,
// and filtered by status, priority, label, text and label with text, each rendering one
// page of 50 with the matching total. Requests go straight to the handler (no network);
// DESIGN's target is under 100 ms.
func BenchmarkCasesPage(b *testing.B) {
	const total = 100_000
	s := testkit.StartServer(b, testkit.Options{})
	ctx := context.Background()
	q, err := s.Store.CreateQueue(ctx, store.Actor{TeamID: s.TeamID, UserID: s.OwnerID, Channel: "system", Operation: "bench"}, store.NewQueue{Name: "Orders"})
	if err != nil {
		b.Fatal(err)
	}
	a := store.Actor{TeamID: s.TeamID, UserID: s.OwnerID, Channel: "system", Operation: "bench"}
	regions, notes, prios := []string{"eu", "us", "apac"}, []string{"refund", "exchange", "invoice", "delivery"}, []string{"none", "none", "medium", "high"}
	start := time.Now()
	for i := 0; i < total; i += 100 {
		batch := make([]store.NewCase, 0, 100)
		for j := i; j < i+100; j++ {
			nc := store.NewCase{Title: fmt.Sprintf("Order %d", j), Priority: prios[j%4],
				Data:   fmt.Sprintf(`{"order":%d,"note":"customer asks about a %s","amount":%d}`, j, notes[j%4], j%500),
				Labels: []store.LabelKV{{Key: "region", Value: regions[j%3]}}}
			if j%10 == 0 {
				nc.Labels = append(nc.Labels, store.LabelKV{Key: "tier", Value: "gold"})
			}
			batch = append(batch, nc)
		}
		if _, err := s.Store.CreateCases(ctx, a, q.ID, batch); err != nil {
			b.Fatal(err)
		}
	}
	db := openServerDB(b, s)
	// Most cases are done, some failed: the statuses a long-lived queue holds.
	if _, err := db.Exec(`UPDATE cases SET status = CASE WHEN rowid % 10 < 6 THEN 'completed' WHEN rowid % 10 = 6 THEN 'failed' ELSE 'pending' END,
		completed_at = CASE WHEN rowid % 10 < 7 THEN created_at END WHERE queue_id = ?`, q.ID); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d cases in %s", total, time.Since(start).Round(time.Millisecond))
	email, _ := s.User(b, store.RoleMember, "member-password")
	cookie := signInCookie(b, s, email, "member-password")

	base := "/cases?queue=" + q.ID
	for _, c := range []struct{ name, query, want string }{
		{"all", "", `id="matching-count">100000<`},
		{"last-page", "&page=2000", "Order 0"},
		{"status-failed", "&status=failed", `id="matching-count">10000<`},
		{"priority-high", "&priority=high", `id="matching-count">25000<`},
		{"label", "&label=tier:gold", `id="matching-count">10000<`},
		{"text", "&q=refund", `id="matching-count">25000<`},
		{"label-and-text", "&label=region:eu&q=refund", `id="matching-count">8334<`},
		{"status-label-text", "&status=pending&label=region:eu&q=refund", "matching-count"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lat latencies
			own := make([]time.Duration, 0, b.N)
			for b.Loop() {
				req := httptest.NewRequest("GET", base+c.query, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				t0 := time.Now()
				s.Web.ServeHTTP(rec, req)
				own = append(own, time.Since(t0))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), c.want) {
					b.Fatalf("GET %s: %d, want %q in the page", base+c.query, rec.Code, c.want)
				}
			}
			lat.add(own)
			lat.report(b)
		})
	}
}
