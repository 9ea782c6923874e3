package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"docket/internal/testkit"
)

// effectServer is a local HTTP service the runs call with http_request. It counts every
// request by method and Idempotency-Key and, while held, keeps each one open after
// counting it: a side effect that has started but has not answered yet.
type effectServer struct {
	*httptest.Server
	mu       sync.Mutex
	seen     map[string]int // "METHOD key" → requests received
	keyless  int
	inFlight map[string]int // method → requests held right now
	hold     chan struct{}  // closed by release
	once     sync.Once
}

func newEffectServer(t *testing.T) *effectServer {
	e := &effectServer{seen: map[string]int{}, inFlight: map[string]int{}, hold: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		e.mu.Lock()
		if key == "" {
			e.keyless++
		}
		e.seen[r.Method+" "+key]++
		e.inFlight[r.Method]++
		e.mu.Unlock()
		select {
		case <-e.hold:
		case <-r.Context().Done(): // the caller died
		}
		e.mu.Lock()
		e.inFlight[r.Method]--
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"accepted":%q}`, key)
	}))
	t.Cleanup(func() {
		e.release()
		e.Close()
	})
	return e
}

func (e *effectServer) release() { e.once.Do(func() { close(e.hold) }) }

func (e *effectServer) count(method, key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[method+" "+key]
}

func (e *effectServer) held(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inFlight[method]
}

// eventually polls cond until it holds or d passes; what says what was awaited.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s still waiting for %s; last seen: %s", d, what, state)
		}
		<-tick.C
	}
}

// apiJSON sends a request, requires status want and decodes the body into out (if non-nil).
func (s *server) apiJSON(t *testing.T, method, path, key string, body any, want int, out any) {
	t.Helper()
	status, b := s.call(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

type gateView struct {
	ID, Title, Kind, Status string
}

type runView struct {
	Run struct {
		ID, Status string
		Error      *string
	}
	PendingHumanRequest *gateView `json:"pending_human_request"`
}

func (s *server) getRun(t *testing.T, key, id string) runView {
	t.Helper()
	var v runView
	s.apiJSON(t, "GET", "/v2/runs/"+id, key, nil, http.StatusOK, &v)
	return v
}

type messageView struct {
	Seq         int
	Type, Role  string
	TextContent *string `json:"text_content"`
	ToolCall    *struct {
		ID, Name  string
		Arguments map[string]any
	} `json:"tool_call"`
	ToolResult *struct {
		ToolCallID string `json:"tool_call_id"`
		Result     any
		Error      *string
	} `json:"tool_result"`
}

// allMessages reads a run's conversation through listRunMessages, in small pages so
// that paging itself is exercised.
func (s *server) allMessages(t *testing.T, key, id string) []messageView {
	t.Helper()
	var all []messageView
	for offset := 0; ; {
		var page struct {
			Messages []messageView
			Total    int
		}
		s.apiJSON(t, "GET", fmt.Sprintf("/v2/runs/%s/messages?limit=3&offset=%d", id, offset), key, nil, http.StatusOK, &page)
		all = append(all, page.Messages...)
		offset += len(page.Messages)
		if len(page.Messages) == 0 || offset >= page.Total {
			if offset != page.Total {
				t.Fatalf("run %s: pages held %d messages, total says %d", id, offset, page.Total)
			}
			return all
		}
	}
}

// TestCrashMidRunLosesAndDoublesNothing is DESIGN §11's crash test with the real binary:
// 20 runs in flight (model calls held; http_request calls held at the receiver, POSTs,
// which are not idempotent, and GETs, which are; gates open; runs queued),
// kill -9, restart on the same data dir. Every run finishes; a waiting run still waits
// on the same gate; no message is written twice; the cut-off POST is never repeated
// without a person saying so (an "outcome unknown" gate), and every repeat carries the
// same Idempotency-Key.
func TestCrashMidRunLosesAndDoublesNothing(t *testing.T) {
	t.Parallel()
	const (
		waits, posts, gets, modelHeld, queued = 5, 3, 3, 6, 3
		workers                               = posts + gets + modelHeld // every worker busy at the kill
	)
	fake := testkit.NewFakeOllama(t)
	effects := newEffectServer(t)
	fake.On(testkit.LastUserContains("kind=wait")).CallTool("request_human_approval",
		map[string]any{"title": "Send the reply?", "description": "The draft is ready."})
	fake.On(testkit.LastUserContains("kind=post")).CallTool("http_request",
		map[string]any{"method": "POST", "url": effects.URL + "/orders", "body": `{"item":"widget"}`})
	fake.On(testkit.LastUserContains("kind=get")).CallTool("http_request",
		map[string]any{"method": "GET", "url": effects.URL + "/stock"})
	fake.On(testkit.LastRole("tool")).Reply("finished after the tool")

	data := t.TempDir()
	env := []string{"OLLAMA_HOST=" + fake.URL}
	// The test polls runs closely; the per-key rate limit is not what it is about.
	args := []string{"--workers", fmt.Sprint(workers), "--rate-limit", "-1"}
	s := startServe(t, data, env, args...)
	key := createKey(t, data)
	var agent struct{ Agent struct{ ID string } }
	s.apiJSON(t, "POST", "/v2/teams/"+key.TeamID+"/agents", key.Key, map[string]any{
		"name": "Crash",
		"build": map[string]any{"name": "v1", "config": map[string]any{"version": "v2", "data": map[string]any{
			"models":         map[string]any{"agent": map[string]any{"model": "qwen3:4b"}},
			"input":          "You are Crash.",
			"tools":          []string{"http_request", "request_human_approval"},
			"http_allowlist": []string{"127.0.0.1"},
		}}},
	}, http.StatusCreated, &agent)

	start := func(kind string, n int) []string {
		ids := make([]string, n)
		for i := range ids {
			var out struct{ Run struct{ ID string } }
			s.apiJSON(t, "POST", "/v2/teams/"+key.TeamID+"/runs", key.Key,
				map[string]any{"agent_id": agent.Agent.ID, "message": fmt.Sprintf("kind=%s #%d", kind, i)}, http.StatusCreated, &out)
			ids[i] = out.Run.ID
		}
		return ids
	}
	// waitGate waits until run id waits on an open gate of kind and returns it.
	waitGate := func(s *server, id, kind string) gateView {
		t.Helper()
		var v runView
		eventually(t, 10*time.Second, "run "+id+" to wait on a "+kind+" gate", func() (bool, string) {
			v = s.getRun(t, key.Key, id)
			if st := v.Run.Status; st == "completed" || st == "failed" || st == "stopped" {
				t.Fatalf("run %s ended %s (error %s) instead of waiting on a %s gate", id, st, deref(v.Run.Error), kind)
			}
			g := v.PendingHumanRequest
			return v.Run.Status == "waiting" && g != nil && g.Kind == kind, fmt.Sprintf("%+v", v)
		})
		return *v.PendingHumanRequest
	}
	respond := func(s *server, id, gate string, approved bool) {
		t.Helper()
		s.apiJSON(t, "POST", "/v2/runs/"+id+"/human-requests/"+gate+"/respond", key.Key,
			map[string]any{"approved": approved, "reason": "crash test"}, http.StatusOK, nil)
	}

	// Gates: 5 runs wait on the model's approval request, with no worker.
	waitIDs, postIDs, getIDs := start("wait", waits), start("post", posts), start("get", gets)
	waitGates := map[string]string{}
	for _, id := range waitIDs {
		waitGates[id] = waitGate(s, id, "model").ID
	}
	// A POST is gated by default; once approved it starts and is held at the receiver.
	for _, id := range postIDs {
		respond(s, id, waitGate(s, id, "policy").ID, true)
	}
	eventually(t, 10*time.Second, "the POSTs and GETs to be held at the receiver", func() (bool, string) {
		p, g := effects.held("POST"), effects.held("GET")
		return p == posts && g == gets, fmt.Sprintf("%d POST, %d GET held", p, g)
	})
	// Model calls: held at the fake; the remaining runs find no free worker and queue.
	fake.Block()
	modelIDs := start("model", modelHeld)
	eventually(t, 10*time.Second, "the model calls to be held", func() (bool, string) {
		return fake.Held() == modelHeld, fmt.Sprintf("%d held", fake.Held())
	})
	queuedIDs := start("queued", queued)
	for _, id := range queuedIDs {
		if st := s.getRun(t, key.Key, id).Run.Status; st != "pending" {
			t.Fatalf("run %s is %s with all %d workers busy, want pending", id, st, workers)
		}
	}
	// The ledger at the kill: every held POST is committed as started (its outcome will be
	// unknown), every held GET still pending (safe to run again, so never marked), none
	// with a result.
	var started, pending int
	if err := openDB(t, filepath.Join(data, "docket.db")).QueryRow(`SELECT count(*) FILTER (WHERE state = 'started'), count(*) FILTER (WHERE state = 'pending')
		FROM tool_calls WHERE name = 'http_request'`).Scan(&started, &pending); err != nil {
		t.Fatal(err)
	}
	if started != posts || pending != gets {
		t.Fatalf("before the kill the ledger has %d started and %d pending http_request calls, want %d POSTs started and %d GETs pending",
			started, pending, posts, gets)
	}

	s.kill()
	fake.Release()
	effects.release()
	s = startServe(t, data, env, args...)

	// The POSTs' outcome is unknown: each run asks instead of posting again.
	recovery := map[string]string{}
	for _, id := range postIDs {
		g := waitGate(s, id, "recovery")
		if g.Title != "Outcome unknown: retry http_request?" {
			t.Fatalf("run %s recovery gate title %q, want \"Outcome unknown: retry http_request?\"", id, g.Title)
		}
		recovery[id] = g.ID
	}
	// The waiting runs still wait on the very gate they waited on before the kill.
	for _, id := range waitIDs {
		if g := waitGate(s, id, "model"); g.ID != waitGates[id] {
			t.Fatalf("run %s waits on gate %s after the restart, want the same gate %s as before", id, g.ID, waitGates[id])
		}
	}
	// Retry two POSTs, skip the third; answer every waiting run.
	approvedPost := map[string]bool{postIDs[0]: true, postIDs[1]: true}
	for _, id := range postIDs {
		respond(s, id, recovery[id], approvedPost[id])
	}
	for _, id := range waitIDs {
		respond(s, id, waitGates[id], true)
	}

	all := append(append(append(append(append([]string{}, waitIDs...), postIDs...), getIDs...), modelIDs...), queuedIDs...)
	for _, id := range all {
		eventually(t, 10*time.Second, "run "+id+" to complete", func() (bool, string) {
			v := s.getRun(t, key.Key, id)
			if v.Run.Status == "failed" || v.Run.Status == "stopped" {
				t.Fatalf("run %s ended %s (error %s), want completed", id, v.Run.Status, deref(v.Run.Error))
			}
			return v.Run.Status == "completed", v.Run.Status
		})
	}

	httpCall := map[string]string{} // run id → its http_request call id
	for _, id := range all {
		ms := s.allMessages(t, key.Key, id)
		calls, results := map[string]bool{}, map[string]int{}
		for i, m := range ms {
			if m.Seq != i+1 {
				t.Fatalf("run %s message %d has seq %d: sequence numbers must run 1..%d without a gap or repeat", id, i, m.Seq, len(ms))
			}
			switch {
			case m.ToolCall != nil:
				calls[m.ToolCall.ID] = true
				if m.ToolCall.Name == "http_request" {
					httpCall[id] = m.ToolCall.ID
				}
			case m.ToolResult != nil:
				r := m.ToolResult
				results[r.ToolCallID]++
				// Only the POST nobody retried has an error: the model is told it was skipped.
				skipped := slices.Contains(postIDs, id) && !approvedPost[id]
				if (r.Error != nil) != skipped || (skipped && !strings.HasPrefix(*r.Error, "not retried: denied by")) {
					t.Fatalf("run %s: result of %s is %v (error %s), want an error only for the skipped POST", id, r.ToolCallID, r.Result, deref(r.Error))
				}
				// An http_request result is the receiver's answer, which echoes the key.
				if k := id + ":" + r.ToolCallID; r.ToolCallID == httpCall[id] && !skipped && !strings.Contains(fmt.Sprint(r.Result), k) {
					t.Fatalf("run %s: http_request result %v, want the receiver's answer to key %s", id, r.Result, k)
				}
			}
		}
		if len(results) != len(calls) {
			t.Fatalf("run %s: %d tool calls but results for %d", id, len(calls), len(results))
		}
		for call, n := range results {
			if !calls[call] || n != 1 {
				t.Fatalf("run %s: call %s (made: %v) has %d results, want exactly one", id, call, calls[call], n)
			}
		}
		if last := ms[len(ms)-1]; last.Role != "assistant" || last.TextContent == nil || *last.TextContent == "" {
			t.Fatalf("run %s ends with %+v, want the model's final answer", id, last)
		}
	}

	// Side effects: each POST exactly once, twice only where a person asked for the
	// retry; a GET may repeat, under the same key.
	for _, id := range postIDs {
		want := 1
		if approvedPost[id] {
			want = 2
		}
		k := id + ":" + httpCall[id]
		if n := effects.count("POST", k); n != want {
			t.Errorf("POST with Idempotency-Key %s reached the receiver %d times, want %d", k, n, want)
		}
	}
	for _, id := range getIDs {
		k := id + ":" + httpCall[id]
		if n := effects.count("GET", k); n != 2 {
			t.Errorf("GET with Idempotency-Key %s reached the receiver %d times, want 2 (cut off, then re-run with the same key)", k, n)
		}
	}
	effects.mu.Lock()
	total, keyless := 0, effects.keyless
	for _, n := range effects.seen {
		total += n
	}
	effects.mu.Unlock()
	if want := posts + 2 + 2*gets; total != want || keyless != 0 {
		t.Errorf("the receiver saw %d requests (%d without Idempotency-Key), want %d, all keyed", total, keyless, want)
	}

	s.stop(t)
	if r := docket(t, "audit", "verify", "--data", data); r.code != 0 {
		t.Fatalf("audit verify after kill -9 and recovery: exit %d: %s", r.code, r.stderr)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
