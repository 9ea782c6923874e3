package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/runtime"
	"docket/store"
)

// BenchmarkInboxRender measures the server time of the dashboard's pages with 1,000 open
// gates: the inbox's first and last page (20 gate cards, each with its Job, Assignment,
// guarded call and the end of its conversation), a gate's own page, and the dashboard.
// Requests go straight to the handler (no network), so the figure is what the server
// spends; DESIGN's target is under 100 ms.
func BenchmarkInboxRender(b *testing.B) {
	const gates = 1000
	fake := testkit.NewFakeOllama(b)
	fake.SetRecording(false)
	fake.Default().CallTool("request_human_approval", map[string]any{"title": "Refund 120 EUR", "description": "Invoice charged twice.", "details": "INV-1042"})
	m, err := runtime.NewOllama(fake.URL)
	if err != nil {
		b.Fatal(err)
	}
	s := testkit.StartServer(b, testkit.Options{Model: m, ModelHost: fake.URL})
	r := s.Do(b, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{"name": "Refunds", "build": map[string]any{"name": "v1", "config": testkit.SetupConfig("Refund.")}})
	var agent struct{ Agent struct{ ID string } }
	r.Decode(b, &agent)
	for i := range gates {
		if r := s.Do(b, "POST", "/v2/teams/"+s.TeamID+"/runs", s.OwnerKey, map[string]any{"agent_id": agent.Agent.ID, "message": "Refund case " + string(rune('A'+i%26))}); r.Status != 201 {
			b.Fatalf("startRun: %d %s", r.Status, r.Body)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, open, err := s.Store.ListGates(context.Background(), s.TeamID, store.GateFilter{Status: "open"})
		if err != nil {
			b.Fatal(err)
		}
		if open == gates {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d gates open after 2 min", open, gates)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gs, _, _ := s.Store.ListGates(context.Background(), s.TeamID, store.GateFilter{Status: "open", Limit: 1})
	email, _ := s.User(b, store.RoleMember, "member-password")
	cookie := signInCookie(b, s, email, "member-password")

	for _, c := range []struct{ name, path, want string }{
		{"inbox-first-page", "/inbox", "Refund 120 EUR"},
		{"inbox-last-page", "/inbox?page=50", "Refund 120 EUR"},
		{"gate-page", "/inbox/" + gs[0].ID, "Refund 120 EUR"},
		{"dashboard", "/", "Needs you"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lat latencies
			own := make([]time.Duration, 0, b.N)
			for b.Loop() {
				req := httptest.NewRequest("GET", c.path, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				start := time.Now()
				s.Web.ServeHTTP(rec, req)
				own = append(own, time.Since(start))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), c.want) {
					b.Fatalf("GET %s: %d", c.path, rec.Code)
				}
			}
			lat.add(own)
			lat.report(b)
		})
	}
}

// signInCookie signs in through the form and returns the session cookie.
func signInCookie(tb testing.TB, s *testkit.Server, email, password string) *http.Cookie {
	tb.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(s.URL+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "docket_session" {
			return c
		}
	}
	tb.Fatalf("sign in: %d, no session cookie", resp.StatusCode)
	return nil
}
