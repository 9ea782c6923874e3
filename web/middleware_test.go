package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

func agentCount(t *testing.T, s *testkit.Server) int {
	t.Helper()
	_, total, err := s.Store.ListAgents(context.Background(), s.TeamID, "", store.AgentFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func TestUnknownBodyFieldIsRejected(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{})
	agents := "/v2/teams/" + s.TeamID + "/agents"
	runScenarios(t, s, []scenario{
		badRequest("top level", "POST", agents, s.OwnerKey, `{"name":"x","frobnicate":true}`, "frobnicate"),
		badRequest("nested in build.config.data", "POST", agents, s.OwnerKey,
			`{"name":"x","build":{"name":"b","config":{"version":"v2","data":{"models":{"agent":{"model":"m"}},"input":"x","sop":"y"}}}}`, "sop"),
		badRequest("malformed JSON", "POST", agents, s.OwnerKey, `{"name":`, "JSON"),
		badRequest("not an object", "POST", agents, s.OwnerKey, `["name"]`, "object"),
	})
	if n := agentCount(t, s); n != 0 {
		t.Fatalf("%d agents created by rejected bodies", n)
	}
}

func TestBodyOverTheCapIs413(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{MaxBodyBytes: 1024})
	agents := "/v2/teams/" + s.TeamID + "/agents"
	big := map[string]any{"name": "big", "description": strings.Repeat("x", 1500)}
	runScenarios(t, s, []scenario{
		{name: "just under the cap is fine", method: "POST", path: agents, key: s.OwnerKey,
			body: map[string]any{"name": "small", "description": strings.Repeat("x", 900)}, wantStatus: 201},
		{name: "413 over the cap", method: "POST", path: agents, key: s.OwnerKey, body: big,
			wantStatus: 413, wantError: "payload_too_large", wantContains: []string{"too large"}},
		{name: "413 over the cap with an Idempotency-Key", method: "POST", path: agents, key: s.OwnerKey, body: big,
			headers: []string{"Idempotency-Key", "big-1"}, wantStatus: 413, wantError: "payload_too_large", wantContains: []string{"too large"}},
		{name: "413 on a PATCH", method: "PATCH", path: "/v2/agents/" + randomID(), key: s.OwnerKey, body: big,
			wantStatus: 413, wantError: "payload_too_large"},
	})
	if n := agentCount(t, s); n != 1 {
		t.Fatalf("agents = %d, want only the small one", n)
	}
}

func TestRateLimit(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{RateLimit: 3})
	other, _ := s.Member(t, store.RoleViewer)
	for i := 1; i <= 3; i++ {
		r := s.Do(t, "GET", "/v2/profile", s.OwnerKey, nil)
		if r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		if got := r.Header.Get("X-Ratelimit-Limit"); got != "3" {
			t.Fatalf("request %d: x-ratelimit-limit = %q, want 3", i, got)
		}
		if got := r.Header.Get("X-Ratelimit-Remaining"); got != strconv.Itoa(3-i) {
			t.Fatalf("request %d: x-ratelimit-remaining = %q, want %d", i, got, 3-i)
		}
		if reset, err := strconv.Atoi(r.Header.Get("X-Ratelimit-Reset")); err != nil || reset < 1 || reset > 60 {
			t.Fatalf("request %d: x-ratelimit-reset = %q, want 1..60 seconds", i, r.Header.Get("X-Ratelimit-Reset"))
		}
	}
	r := (scenario{method: "GET", path: "/v2/profile", key: s.OwnerKey, wantStatus: 429, wantError: "rate_limited", wantContains: []string{"retry after"}}).run(t, s)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After = %q, want whole seconds 1..60", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("X-Ratelimit-Limit") != "3" || r.Header.Get("X-Ratelimit-Remaining") != "0" || r.Header.Get("X-Ratelimit-Reset") == "" {
		t.Fatalf("429 headers: %v", r.Header)
	}
	// A refused write does not happen.
	if r := s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{"name": "x"}); r.Status != 429 || agentCount(t, s) != 0 {
		t.Fatalf("rate-limited create: %d, agents %d", r.Status, agentCount(t, s))
	}
	// The bucket is per key.
	if r := s.Do(t, "GET", "/v2/profile", other, nil); r.Status != 200 {
		t.Fatalf("another key was limited too: %d", r.Status)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{})
	agents := "/v2/teams/" + s.TeamID + "/agents"
	body := map[string]any{"name": "Once"}
	first := s.Do(t, "POST", agents, s.OwnerKey, body, "Idempotency-Key", "k-1")
	if first.Status != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d replayed=%q %s", first.Status, first.Header.Get("Idempotent-Replayed"), first.Body)
	}
	runScenarios(t, s, []scenario{
		{name: "same key and body replays the first 201", method: "POST", path: agents, key: s.OwnerKey, body: body, headers: []string{"Idempotency-Key", "k-1"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				if !bytes.Equal(r.Body, first.Body) {
					t.Fatalf("replay body differs:\nfirst  %s\nreplay %s", first.Body, r.Body)
				}
				if r.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("Idempotent-Replayed = %q, want true", r.Header.Get("Idempotent-Replayed"))
				}
				if n := agentCount(t, s); n != 1 {
					t.Fatalf("agents = %d after a replay, want 1", n)
				}
			}},
		{name: "422 same key, different body", method: "POST", path: agents, key: s.OwnerKey, body: map[string]any{"name": "Twice"},
			headers: []string{"Idempotency-Key", "k-1"}, wantStatus: 422, wantError: "unprocessable", wantContains: []string{"k-1"}},
		{name: "another key creates anew", method: "POST", path: agents, key: s.OwnerKey, body: body, headers: []string{"Idempotency-Key", "k-2"}, wantStatus: 201},
		{name: "the same Idempotency-Key from another credential is its own", method: "POST", path: agents, key: s.Key(t, s.TeamID, s.OwnerID), body: body,
			headers: []string{"Idempotency-Key", "k-1"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				if r.Header.Get("Idempotent-Replayed") != "" || bytes.Equal(r.Body, first.Body) {
					t.Fatal("another credential got the first credential's stored response")
				}
			}},
		badRequest("400 an error is not stored", "POST", agents, s.OwnerKey, map[string]any{"name": ""}, "name"),
	})
	// The failed request released its key: the corrected retry runs.
	if r := s.Do(t, "POST", agents, s.OwnerKey, map[string]any{"name": ""}, "Idempotency-Key", "k-3"); r.Status != 400 {
		t.Fatalf("bad request with a key: %d", r.Status)
	}
	if r := s.Do(t, "POST", agents, s.OwnerKey, map[string]any{"name": "Fixed"}, "Idempotency-Key", "k-3"); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("corrected retry: %d replayed=%q %s", r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
	}
	if n := agentCount(t, s); n != 4 {
		t.Fatalf("agents = %d, want 4 (k-1 once, k-2, the other credential's k-1, k-3 fixed)", n)
	}
}

// TestBodyWithoutJSONContentType sends bodies the way curl -d does (a form content type)
// and with no content type at all: both are read as JSON.
func TestBodyWithoutJSONContentType(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{})
	for name, ct := range map[string]string{"curl -d": "application/x-www-form-urlencoded", "none": ""} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest("POST", s.URL+"/v2/teams/"+s.TeamID+"/agents", strings.NewReader(`{"name":"curl `+name+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := s.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 201 || !strings.Contains(string(b), `"name":"curl `+name+`"`) {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
		})
	}
}

func TestUnknownPathIs404JSON(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{})
	runScenarios(t, s, []scenario{
		{name: "unknown /v2 path", method: "GET", path: "/v2/nothing-here", key: s.OwnerKey, wantStatus: 404, wantError: "not_found", wantContains: []string{"/v2/nothing-here"}},
		{name: "unknown path without a key", method: "GET", path: "/v2/teams/" + s.TeamID + "/nothing", wantStatus: 404, wantError: "not_found"},
		{name: "unknown top-level path", method: "POST", path: "/nope", body: `{}`, wantStatus: 404, wantError: "not_found"},
	})
}
