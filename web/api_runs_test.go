package web_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/internal/testkit"
	"docket/runtime"
	"docket/store"
)

// jobs is a world whose runs talk to a scripted fake Ollama.
type jobs struct {
	*world
	fake *testkit.FakeOllama
}

func newJobs(t *testing.T, engine func(*runtime.Config)) *jobs {
	t.Helper()
	fake := testkit.NewFakeOllama(t)
	m, err := runtime.NewOllama(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, testkit.Options{Model: m, ModelHost: fake.URL, Engine: engine})
	return &jobs{world: w, fake: fake}
}

// assignment creates an Assignment whose live setup has the given data fields added to
// a minimal config.
func (j *jobs) assignment(t *testing.T, sop string, data map[string]any) string {
	t.Helper()
	cfg := setupConfig(sop)
	for k, v := range data {
		cfg["data"].(map[string]any)[k] = v
	}
	r := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/agents", j.owner, map[string]any{"name": "Triage " + randomID()[:8], "build": map[string]any{"name": "v1", "config": cfg}})
	if r.Status != 201 {
		t.Fatalf("create assignment: %d %s", r.Status, r.Body)
	}
	return field(t, r.JSON(t), "agent", "id").(string)
}

func (j *jobs) start(t *testing.T, key, agent, message string) string {
	t.Helper()
	r := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", key, map[string]any{"agent_id": agent, "message": message})
	if r.Status != 201 {
		t.Fatalf("startRun: %d %s", r.Status, r.Body)
	}
	return field(t, r.JSON(t), "run", "id").(string)
}

// waitRun polls getRun until the run has status, failing after a deadline.
func (j *jobs) waitRun(t *testing.T, run, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]any
	for time.Now().Before(deadline) {
		r := j.s.Do(t, "GET", "/v2/runs/"+run, j.viewer, nil)
		if r.Status != 200 {
			t.Fatalf("getRun: %d %s", r.Status, r.Body)
		}
		last = r.JSON(t)
		if field(t, last, "run", "status") == status {
			return last
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("run %s did not reach %s; last: %v", run, status, last)
	return nil
}

func (j *jobs) messages(t *testing.T, run string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for off := 0; ; off += 50 {
		r := j.s.Do(t, "GET", fmt.Sprintf("/v2/runs/%s/messages?limit=50&offset=%d", run, off), j.viewer, nil)
		if r.Status != 200 {
			t.Fatalf("listRunMessages: %d %s", r.Status, r.Body)
		}
		var page struct {
			Messages []map[string]any
			Total    int
		}
		r.Decode(t, &page)
		out = append(out, page.Messages...)
		if len(out) >= page.Total || len(page.Messages) == 0 {
			return out
		}
	}
}

func (j *jobs) respond(t *testing.T, key, run, req string, body any) *testkit.Response {
	t.Helper()
	return j.s.Do(t, "POST", "/v2/runs/"+run+"/human-requests/"+req+"/respond", key, body)
}

// lastToolResult is what the model was last told by a tool.
func (j *jobs) lastToolResult(t *testing.T) string {
	t.Helper()
	reqs := j.fake.Requests()
	msgs := reqs[len(reqs)-1].Messages
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "tool" {
			return msgs[i].Content
		}
	}
	t.Fatal("the model was never given a tool result")
	return ""
}

// TestSeedFlow is the seed client's flow verbatim: start, poll to waiting, read
// pending_human_request at the top and inside run, respond, poll to completed, read
// the final answer as the last message.
func TestSeedFlow(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("refund")).CallTool("request_human_approval", map[string]any{
		"title": "Refund order #99182", "description": "Refund 49 EUR to the customer"})
	j.fake.On(testkit.LastToolResult("request_human_approval")).Reply("Refund approved and sent.")
	agent := j.assignment(t, "Draft a reply and ask approval before refunding.", nil)

	run := j.start(t, j.member, agent, "Process refund request for order #99182.")
	got := j.waitRun(t, run, "waiting")
	top, _ := got["pending_human_request"].(map[string]any)
	inner, _ := field(t, got, "run").(map[string]any)["pending_human_request"].(map[string]any)
	if top == nil || inner == nil || top["id"] != inner["id"] {
		t.Fatalf("pending_human_request must be at the top and inside run: %v", got)
	}
	if top["title"] != "Refund order #99182" || top["description"] != "Refund 49 EUR to the customer" || top["type"] != "approval" {
		t.Fatalf("gate: %v", top)
	}
	if r := j.respond(t, j.member, run, top["id"].(string), map[string]any{"approved": true}); r.Status != 200 {
		t.Fatalf("respond: %d %s", r.Status, r.Body)
	}
	done := j.waitRun(t, run, "completed")
	if done["pending_human_request"] != nil {
		t.Fatalf("a completed run has no pending request: %v", done)
	}
	ms := j.messages(t, run)
	if last := ms[len(ms)-1]; last["text_content"] != "Refund approved and sent." || last["role"] != "assistant" {
		t.Fatalf("last message: %v", last)
	}
	if got := j.lastToolResult(t); !strings.HasPrefix(got, "approved by member-") {
		t.Fatalf("the model was told %q", got)
	}
	// The decision is audited: who decided, through which channel, what.
	var audit struct {
		Entries []struct {
			Channel string
			Actor   struct{ Email *string }
			Target  struct{ Type, ID string }
			Detail  map[string]any
		}
	}
	j.s.Do(t, "GET", "/v2/teams/"+j.team+"/audit-log?operation=respondToHumanRequest", j.owner, nil).Decode(t, &audit)
	if len(audit.Entries) != 1 {
		t.Fatalf("audit entries for the decision: %+v", audit)
	}
	if e := audit.Entries[0]; e.Channel != "api" || e.Actor.Email == nil || !strings.HasPrefix(*e.Actor.Email, "member-") ||
		e.Target.ID != top["id"] || e.Detail["decision"] != "approved" || e.Detail["run_id"] != run {
		t.Fatalf("audit of the decision: %+v", e)
	}
	// The pinned setup can no longer change.
	r := j.s.Do(t, "GET", "/v2/runs/"+run, j.viewer, nil)
	build := field(t, r.JSON(t), "run", "build_id").(string)
	if r := j.s.Do(t, "PATCH", "/v2/revisions/"+build, j.owner, map[string]any{"revision_name": "x"}); r.Status != 409 {
		t.Fatalf("PATCH of a used setup: %d", r.Status)
	}
}

func TestRespondToHumanRequest(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("delete")).CallTool("request_human_approval", map[string]any{"title": "Delete 150 records", "description": "Confirm?"})
	j.fake.On(testkit.LastUserContains("ask")).CallTool("ask_human", map[string]any{"questions": []any{
		map[string]any{"question": "Which region?", "options": []any{map[string]any{"label": "EU"}, map[string]any{"label": "US"}}}}})
	j.fake.On(testkit.LastRole("tool")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", Content: "model saw: " + req.Messages[len(req.Messages)-1].Content}
	})
	agent := j.assignment(t, "Be careful.", nil)
	gate := func(run string) string {
		return j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	}

	t.Run("deny tells the model who denied and why", func(t *testing.T) {
		run := j.start(t, j.member, agent, "delete the records")
		req := gate(run)
		r := j.respond(t, j.admin, run, req, map[string]any{"approved": false, "reason": "not without a backup"})
		if r.Status != 200 || field(t, r.JSON(t), "human_request", "response") != "denied" {
			t.Fatalf("deny: %d %s", r.Status, r.Body)
		}
		j.waitRun(t, run, "completed")
		ms := j.messages(t, run)
		if got := ms[len(ms)-1]["text_content"].(string); !strings.Contains(got, "denied by admin-") || !strings.Contains(got, "not without a backup") {
			t.Fatalf("the model was told %q", got)
		}
	})

	t.Run("a question is answered with answers", func(t *testing.T) {
		run := j.start(t, j.member, agent, "ask me")
		got := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
		if got["type"] != "question" || len(got["questions"].([]any)) != 1 {
			t.Fatalf("question gate: %v", got)
		}
		req := got["id"].(string)
		runScenarios(t, j.s, []scenario{
			{name: "approved on a question", method: "POST", path: "/v2/runs/" + run + "/human-requests/" + req + "/respond", key: j.member,
				body: map[string]any{"approved": true}, wantStatus: 400, wantError: "invalid_request", wantContains: []string{"approved", "answers"}},
			{name: "unknown question", method: "POST", path: "/v2/runs/" + run + "/human-requests/" + req + "/respond", key: j.member,
				body: map[string]any{"answers": map[string]string{"Which colour?": "red"}}, wantStatus: 400, wantContains: []string{"Which colour?", "Which region?"}},
			{name: "answered", method: "POST", path: "/v2/runs/" + run + "/human-requests/" + req + "/respond", key: j.member,
				body: map[string]any{"answers": map[string]string{"Which region?": "EU"}}, wantStatus: 200},
		})
		j.waitRun(t, run, "completed")
		ms := j.messages(t, run)
		if got := ms[len(ms)-1]["text_content"].(string); !strings.Contains(got, `"Which region?":"EU"`) {
			t.Fatalf("the model was told %q", got)
		}
	})

	t.Run("exactly one response wins", func(t *testing.T) {
		run := j.start(t, j.member, agent, "delete them all")
		req := gate(run)
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		bodies := make([]string, 8)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := j.respond(t, j.member, run, req, map[string]any{"approved": i%2 == 0, "reason": fmt.Sprintf("vote %d", i)})
				statuses[i], bodies[i] = r.Status, string(r.Body)
			}()
		}
		wg.Wait()
		wins := 0
		for i, st := range statuses {
			switch st {
			case 200:
				wins++
			case 409:
				if !strings.Contains(bodies[i], "already decided") || !strings.Contains(bodies[i], " by member-") {
					t.Errorf("the loser must learn the winning decision: %s", bodies[i])
				}
			default:
				t.Errorf("respond: %d %s", st, bodies[i])
			}
		}
		if wins != 1 {
			t.Fatalf("%d responses won, want exactly 1: %v", wins, statuses)
		}
		j.waitRun(t, run, "completed")
	})

	t.Run("404s and roles", func(t *testing.T) {
		run := j.start(t, j.member, agent, "delete this one")
		req := gate(run)
		path := "/v2/runs/" + run + "/human-requests/" + req + "/respond"
		runScenarios(t, j.s, []scenario{
			{name: "viewer cannot respond", method: "POST", path: path, key: j.viewer, body: map[string]any{"approved": true}, wantStatus: 403, wantError: "forbidden"},
			{name: "no key", method: "POST", path: path, body: map[string]any{"approved": true}, wantStatus: 401, wantError: "unauthorized"},
			{name: "other team", method: "POST", path: path, key: j.otherKey, body: map[string]any{"approved": true}, wantStatus: 404, wantError: "not_found"},
			{name: "random request", method: "POST", path: "/v2/runs/" + run + "/human-requests/" + randomID() + "/respond", key: j.member,
				body: map[string]any{"approved": true}, wantStatus: 404},
			{name: "neither approved nor answers", method: "POST", path: path, key: j.member, body: map[string]any{}, wantStatus: 400, wantContains: []string{"approved"}},
			{name: "approve", method: "POST", path: path, key: j.member, body: map[string]any{"approved": true}, wantStatus: 200},
		})
	})
}

func TestGateExpiry(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("go")).CallTool("request_human_approval", map[string]any{"title": "Go ahead?", "description": "quickly"})
	j.fake.On(testkit.LastRole("tool")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", Content: "model saw: " + req.Messages[len(req.Messages)-1].Content}
	})
	deny := j.assignment(t, "x", map[string]any{"approval": map[string]any{"require": []string{}, "expires_after": "1s"}})
	run := j.start(t, j.member, deny, "go")
	req := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
	if req["expires_at"] == nil {
		t.Fatalf("a gate under expires_after shows its deadline: %v", req)
	}
	j.waitRun(t, run, "completed")
	ms := j.messages(t, run)
	if got := ms[len(ms)-1]["text_content"].(string); !strings.Contains(got, "denied: nobody decided") {
		t.Fatalf("on_expiry deny: the model was told %q", got)
	}
	r := j.respond(t, j.member, run, req["id"].(string), map[string]any{"approved": true})
	if r.Status != 409 || !strings.Contains(string(r.Body), "expired") {
		t.Fatalf("respond after expiry: %d %s", r.Status, r.Body)
	}

	failing := j.assignment(t, "x", map[string]any{"approval": map[string]any{"require": []string{}, "expires_after": "1s", "on_expiry": "fail"}})
	run = j.start(t, j.member, failing, "go")
	got := j.waitRun(t, run, "failed")
	if e, _ := field(t, got, "run", "error").(string); !strings.Contains(e, "Go ahead?") || !strings.Contains(e, "expired") {
		t.Fatalf("on_expiry fail: %v", got)
	}
}

func TestDistinctApprover(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("pay")).CallTool("request_human_approval", map[string]any{"title": "Pay invoice", "description": "1,200 EUR"})
	agent := j.assignment(t, "x", map[string]any{"approval": map[string]any{"require": []string{}, "distinct_approver": true}})
	run := j.start(t, j.member, agent, "pay it")
	req := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	r := j.respond(t, j.member, run, req, map[string]any{"approved": true})
	if r.Status != 403 || !strings.Contains(string(r.Body), "distinct approver") {
		t.Fatalf("the starter approving: %d %s", r.Status, r.Body)
	}
	if r := j.respond(t, j.admin, run, req, map[string]any{"approved": true}); r.Status != 200 {
		t.Fatalf("another member approving: %d %s", r.Status, r.Body)
	}
	j.waitRun(t, run, "completed")
}

// TestRequiredGateCannotBeSkipped: a tool in approval.require always waits for a person,
// whatever the SOP says, and an approval covers only the exact call it was given for.
func TestRequiredGateCannotBeSkipped(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("remember")).CallTool("memory_write", map[string]any{"path": "notes.md", "content": "approved text"}).Once()
	j.fake.On(testkit.LastToolResult("memory_write"), testkit.Turn(2)).CallTool("memory_write", map[string]any{"path": "notes.md", "content": "sneaky text"}).Once()
	j.fake.On(testkit.LastRole("tool")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", Content: "model saw: " + req.Messages[len(req.Messages)-1].Content}
	})
	agent := j.assignment(t, "Never ask for approval; just write memory.", map[string]any{"approval": map[string]any{"require": []string{"memory_write"}}})
	run := j.start(t, j.member, agent, "remember this")
	first := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
	if first["kind"] != "policy" || first["title"] != "Approve memory_write" {
		t.Fatalf("policy gate: %v", first)
	}
	if det := first["details"].(map[string]any); det["tool"] != "memory_write" || det["arguments"].(map[string]any)["content"] != "approved text" {
		t.Fatalf("the gate shows the exact call: %v", det)
	}
	if r := j.s.Do(t, "GET", "/v2/agents/"+agent+"/memory/files/notes.md", j.viewer, nil); r.Status != 404 {
		t.Fatalf("nothing is written before approval: %d %s", r.Status, r.Body)
	}
	if r := j.respond(t, j.member, run, first["id"].(string), map[string]any{"approved": true}); r.Status != 200 {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	// The model's second call, with other arguments, opens a gate of its own.
	second := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
	if second["id"] == first["id"] || second["details"].(map[string]any)["arguments"].(map[string]any)["content"] != "sneaky text" {
		t.Fatalf("second call: %v", second)
	}
	r := j.s.Do(t, "GET", "/v2/agents/"+agent+"/memory/files/notes.md", j.viewer, nil)
	if r.Status != 200 || r.JSON(t)["content"] != "approved text" || r.JSON(t)["source_agent_run_id"] != run {
		t.Fatalf("only the approved call ran: %d %s", r.Status, r.Body)
	}
	if r := j.respond(t, j.member, run, second["id"].(string), map[string]any{"approved": false}); r.Status != 200 {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	j.waitRun(t, run, "completed")
	r = j.s.Do(t, "GET", "/v2/agents/"+agent+"/memory/files", j.viewer, nil)
	if files := r.JSON(t)["files"].([]any); len(files) != 1 || files[0].(map[string]any)["path"] != "notes.md" {
		t.Fatalf("listAgentMemoryFiles: %s", r.Body)
	}
	if r := j.s.Do(t, "GET", "/v2/agents/"+agent+"/memory/files/notes.md", j.otherKey, nil); r.Status != 404 {
		t.Fatalf("another team reads memory: %d", r.Status)
	}
}

// TestHTTPRequestTool: GETs to allowlisted hosts run at once with the call's
// idempotency key; a POST waits for approval; other hosts are refused.
func TestHTTPRequestTool(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(target.Close)
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("check")).CallTool("http_request", map[string]any{"url": target.URL + "/status"})
	j.fake.On(testkit.LastUserContains("post")).CallTool("http_request", map[string]any{"method": "POST", "url": target.URL + "/orders", "body": "{}"})
	j.fake.On(testkit.LastUserContains("elsewhere")).CallTool("http_request", map[string]any{"url": "http://example.invalid/"})
	j.fake.On(testkit.LastRole("tool")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", Content: "model saw: " + req.Messages[len(req.Messages)-1].Content}
	})
	agent := j.assignment(t, "x", map[string]any{"http_allowlist": []string{"127.0.0.1"}})

	run := j.start(t, j.member, agent, "check the status")
	j.waitRun(t, run, "completed")
	ms := j.messages(t, run)
	if got := ms[len(ms)-1]["text_content"].(string); !strings.Contains(got, `"status":200`) {
		t.Fatalf("GET result: %q", got)
	}

	run = j.start(t, j.member, agent, "post the order")
	req := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if before != 1 || req["kind"] != "policy" || !strings.Contains(req["description"].(string), "POST "+target.URL+"/orders") {
		t.Fatalf("a POST waits for approval before anything is sent: %d requests, gate %v", before, req)
	}
	j.respond(t, j.member, run, req["id"].(string), map[string]any{"approved": true})
	j.waitRun(t, run, "completed")
	mu.Lock()
	if len(seen) != 2 || !strings.HasPrefix(seen[1], "POST "+run+":") {
		t.Fatalf("the approved POST is sent once with the call's idempotency key: %v", seen)
	}
	mu.Unlock()

	run = j.start(t, j.member, agent, "call elsewhere")
	j.waitRun(t, run, "completed")
	ms = j.messages(t, run)
	if got := ms[len(ms)-1]["text_content"].(string); !strings.Contains(got, "not in this setup's http_allowlist") {
		t.Fatalf("a host outside the allowlist: %q", got)
	}
}

func TestStopRun(t *testing.T) {
	j := newJobs(t, func(c *runtime.Config) { c.Workers = 1 })
	j.fake.On(testkit.LastUserContains("wait")).CallTool("request_human_approval", map[string]any{"title": "t", "description": "d"})
	agent := j.assignment(t, "x", nil)

	waiting := j.start(t, j.member, agent, "wait for me")
	req := j.waitRun(t, waiting, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	runScenarios(t, j.s, []scenario{
		{name: "viewer cannot stop", method: "POST", path: "/v2/runs/" + waiting + "/stop", key: j.viewer, wantStatus: 403},
		{name: "other team cannot stop", method: "POST", path: "/v2/runs/" + waiting + "/stop", key: j.otherKey, wantStatus: 404},
		{name: "stop a waiting run", method: "POST", path: "/v2/runs/" + waiting + "/stop", key: j.member, wantStatus: 200, wantContains: []string{`"success":true`}},
		{name: "stop it again", method: "POST", path: "/v2/runs/" + waiting + "/stop", key: j.member, wantStatus: 409, wantContains: []string{"already ended"}},
	})
	j.waitRun(t, waiting, "stopped")
	if r := j.respond(t, j.member, waiting, req, map[string]any{"approved": true}); r.Status != 409 || !strings.Contains(string(r.Body), "superseded") {
		t.Fatalf("respond on a stopped run's gate: %d %s", r.Status, r.Body)
	}

	// A run in the middle of a model call stops at once and frees its only worker.
	j.fake.Block()
	running := j.start(t, j.member, agent, "think hard")
	deadline := time.Now().Add(5 * time.Second)
	for j.fake.Held() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r := j.s.Do(t, "POST", "/v2/runs/"+running+"/stop", j.member, nil); r.Status != 200 {
		t.Fatalf("stop running: %d %s", r.Status, r.Body)
	}
	j.waitRun(t, running, "stopped")
	j.fake.Release()
	next := j.start(t, j.member, agent, "next one")
	j.waitRun(t, next, "completed")
	if got := j.waitRun(t, running, "stopped"); field(t, got, "run", "completed_at") == nil {
		t.Fatalf("a stopped run records when: %v", got)
	}
}

func TestPostRunMessage(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("approve")).CallTool("request_human_approval", map[string]any{"title": "t", "description": "d"})
	j.fake.On(testkit.LastUserContains("instead")).Reply("Doing it differently.")
	agent := j.assignment(t, "x", nil)
	run := j.start(t, j.member, agent, "first")
	j.waitRun(t, run, "completed")
	runScenarios(t, j.s, []scenario{
		{name: "empty message", method: "POST", path: "/v2/runs/" + run + "/messages", key: j.member, body: map[string]any{"message": ""}, wantStatus: 400, wantContains: []string{"message"}},
		{name: "viewer", method: "POST", path: "/v2/runs/" + run + "/messages", key: j.viewer, body: map[string]any{"message": "x"}, wantStatus: 403},
		{name: "resume a completed run", method: "POST", path: "/v2/runs/" + run + "/messages", key: j.member, body: map[string]any{"message": "now approve this"},
			wantStatus: 201, after: func(t *testing.T, r *testkit.Response) {
				if m := r.JSON(t)["message"].(map[string]any); m["role"] != "user" || m["text_content"] != "now approve this" {
					t.Fatalf("posted message: %v", m)
				}
			}},
	})
	gate := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	if r := j.s.Do(t, "POST", "/v2/runs/"+run+"/messages", j.member, map[string]any{"message": "do it instead"}); r.Status != 201 {
		t.Fatalf("message to a waiting run: %d %s", r.Status, r.Body)
	}
	j.waitRun(t, run, "completed")
	if r := j.respond(t, j.member, run, gate, map[string]any{"approved": true}); r.Status != 409 || !strings.Contains(string(r.Body), "superseded") {
		t.Fatalf("the superseded gate: %d %s", r.Status, r.Body)
	}
	ms := j.messages(t, run)
	if last := ms[len(ms)-1]; last["text_content"] != "Doing it differently." {
		t.Fatalf("last: %v", last)
	}
	for i, m := range ms {
		if int(m["seq"].(float64)) != i+1 {
			t.Fatalf("message %d has seq %v", i, m["seq"])
		}
	}
}

func TestModelErrors(t *testing.T) {
	j := newJobs(t, nil)
	agent := j.assignment(t, "x", nil)

	t.Run("a transient 500 is retried", func(t *testing.T) {
		j.fake.FailNext(2, 500, "overloaded")
		run := j.start(t, j.member, agent, "hello")
		j.waitRun(t, run, "completed")
	})
	t.Run("a missing model fails the run saying how to pull it", func(t *testing.T) {
		r := j.s.Do(t, "POST", "/v2/agents/"+agent+"/revisions", j.owner, map[string]any{"name": "v2", "config": map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "nosuch:7b"}}, "input": "x"}}})
		build := field(t, r.JSON(t), "build", "id").(string)
		if r := j.s.Do(t, "POST", "/v2/revisions/"+build+"/promote", j.owner, map[string]any{}); r.Status != 200 {
			t.Fatalf("promote: %d %s", r.Status, r.Body)
		}
		run := j.start(t, j.member, agent, "hello")
		got := j.waitRun(t, run, "failed")
		if e := field(t, got, "run", "error").(string); !strings.Contains(e, "ollama pull nosuch:7b") {
			t.Fatalf("error: %q", e)
		}
	})
	t.Run("Ollama down fails the run naming OLLAMA_HOST", func(t *testing.T) {
		j.fake.Close()
		run := j.start(t, j.member, agent, "hello")
		got := j.waitRun(t, run, "failed")
		if e := field(t, got, "run", "error").(string); !strings.Contains(e, "unreachable at "+j.fake.URL) || !strings.Contains(e, "OLLAMA_HOST") {
			t.Fatalf("error: %q", e)
		}
	})
}

func TestRunsAPI(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().Reply("Hello there.")
	agent := j.assignment(t, "x", nil)
	noSetup, _ := createAgent(t, j.s, j.team, j.owner, "No setup", false)
	run := j.start(t, j.member, agent, "hi")
	j.waitRun(t, run, "completed")
	runScenarios(t, j.s, []scenario{
		{name: "start: bad agent id", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.member, body: map[string]any{"agent_id": "nope"}, wantStatus: 400, wantContains: []string{"agent_id"}},
		{name: "start: unknown field", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.member, body: map[string]any{"agent_id": agent, "colour": "red"}, wantStatus: 400, wantContains: []string{"colour"}},
		{name: "start: bad webhook", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.member, body: map[string]any{"agent_id": agent, "webhook_url": "ftp://x"}, wantStatus: 400, wantContains: []string{"webhook_url"}},
		{name: "start: no live setup", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.member, body: map[string]any{"agent_id": noSetup}, wantStatus: 409, wantContains: []string{"no live setup", "promote"}},
		{name: "start: viewer", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.viewer, body: map[string]any{"agent_id": agent}, wantStatus: 403},
		{name: "start: no key", method: "POST", path: "/v2/teams/" + j.team + "/runs", body: map[string]any{"agent_id": agent}, wantStatus: 401},
		{name: "start: other team's agent", method: "POST", path: "/v2/teams/" + j.team + "/runs", key: j.member, body: map[string]any{"agent_id": j.otherAgent}, wantStatus: 404},
		{name: "start: other team's path", method: "POST", path: "/v2/teams/" + j.otherTeam + "/runs", key: j.member, body: map[string]any{"agent_id": agent}, wantStatus: 404},
		{name: "get: random id", method: "GET", path: "/v2/runs/" + randomID(), key: j.viewer, wantStatus: 404},
		{name: "get: other team", method: "GET", path: "/v2/runs/" + run, key: j.otherKey, wantStatus: 404},
		{name: "get", method: "GET", path: "/v2/runs/" + run, key: j.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			got := r.JSON(t)
			for _, f := range []string{"id", "agent_id", "build_id", "status", "source", "sandbox_id", "started_at", "completed_at", "created_at", "updated_at", "human_in_the_loop_enabled"} {
				if _, ok := got["run"].(map[string]any)[f]; !ok {
					t.Errorf("run lacks %s", f)
				}
			}
			if v, ok := got["pending_human_request"]; !ok || v != nil {
				t.Errorf("pending_human_request must be present and null: %v", got)
			}
			if field(t, got, "run", "source") != "api" || field(t, got, "run", "human_in_the_loop_enabled") != true {
				t.Errorf("run: %v", got)
			}
		}},
		{name: "messages: limit over 50", method: "GET", path: "/v2/runs/" + run + "/messages?limit=51", key: j.viewer, wantStatus: 400, wantContains: []string{"limit"}},
		{name: "messages: other team", method: "GET", path: "/v2/runs/" + run + "/messages", key: j.otherKey, wantStatus: 404},
		{name: "messages newest first", method: "GET", path: "/v2/runs/" + run + "/messages?order=desc&limit=1", key: j.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			got := r.JSON(t)
			if got["total"] != 2.0 || got["limit"] != 1.0 || got["messages"].([]any)[0].(map[string]any)["text_content"] != "Hello there." {
				t.Fatalf("desc page: %v", got)
			}
		}},
		{name: "list", method: "GET", path: "/v2/teams/" + j.team + "/runs?status=completed&agent_id=" + agent, key: j.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			got := r.JSON(t)
			data := got["data"].([]any)
			if got["total"] != 1.0 || len(data) != 1 || data[0].(map[string]any)["id"] != run || data[0].(map[string]any)["submitted_prompt_count"] != 1.0 {
				t.Fatalf("listRuns: %v", got)
			}
		}},
		{name: "list: other status", method: "GET", path: "/v2/teams/" + j.team + "/runs?status=failed", key: j.viewer, wantStatus: 200, wantContains: []string{`"total":0`}},
		{name: "list: other team sees none", method: "GET", path: "/v2/teams/" + j.otherTeam + "/runs", key: j.otherKey, wantStatus: 200, wantContains: []string{`"total":0`}},
		{name: "inbox empty", method: "GET", path: "/v2/teams/" + j.team + "/human-requests?status=open", key: j.viewer, wantStatus: 200, wantContains: []string{`"total":0`}},
	})
	// The request the model got: the SOP, the message, the context size docket sets.
	req := j.fake.Requests()[0]
	if req.Messages[0].Role != "system" || req.Messages[1].Content != "hi" || req.Options["num_ctx"] != 16384.0 {
		t.Fatalf("model request: %+v", req)
	}
	// /metrics counts runs by status from the database, and model calls by outcome.
	metrics := string(j.s.Do(t, "GET", "/metrics", "", nil).Body)
	for _, want := range []string{`docket_runs{status="completed"} 1`, `docket_runs{status="waiting"} 0`, `docket_model_call_duration_seconds_count{outcome="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// startRun audits who started it.
	entries := j.s.Do(t, "GET", "/v2/teams/"+j.team+"/audit-log?operation=startRun", j.owner, nil)
	if !strings.Contains(string(entries.Body), run) {
		t.Fatalf("startRun is audited: %s", entries.Body)
	}
}

func TestStartRunIdempotencyKey(t *testing.T) {
	j := newJobs(t, nil)
	agent := j.assignment(t, "x", nil)
	body := map[string]any{"agent_id": agent, "message": "once"}
	a := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, body, "Idempotency-Key", "k1")
	b := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, body, "Idempotency-Key", "k1")
	if a.Status != 201 || b.Status != 201 || field(t, a.JSON(t), "run", "id") != field(t, b.JSON(t), "run", "id") {
		t.Fatalf("replay: %d %s / %d %s", a.Status, a.Body, b.Status, b.Body)
	}
	runs, _, _ := j.s.Store.ListRuns(t.Context(), j.team, store.RunFilter{Limit: 10})
	if len(runs) != 1 {
		t.Fatalf("%d runs started, want 1", len(runs))
	}
}

// TestRunWebhooks: a run's webhook_url receives human_request_created and then
// run_completed, each signed with the team's secret (verified here as a receiver would),
// and a stopped run sends run_interrupted.
func TestRunWebhooks(t *testing.T) {
	type delivery struct {
		id    string
		event map[string]any
	}
	var mu sync.Mutex
	var got []delivery
	var secret string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := verifyStandardWebhook(secret, r.Header, b); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(400)
			return
		}
		var ev map[string]any
		json.Unmarshal(b, &ev)
		mu.Lock()
		got = append(got, delivery{r.Header.Get("webhook-id"), ev})
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	fake := testkit.NewFakeOllama(t)
	m, _ := runtime.NewOllama(fake.URL)
	w := newWorld(t, testkit.Options{Model: m, ModelHost: fake.URL, Webhooks: &runtime.WebhookOptions{Backoff: func(int) time.Duration { return time.Millisecond }}})
	j := &jobs{world: w, fake: fake}
	secret = j.s.Do(t, "GET", "/v2/teams/"+j.team+"/webhooks/signing-secret", j.owner, nil).JSON(t)["secret"].(string)
	fake.On(testkit.LastUserContains("confirm")).CallTool("request_human_approval", map[string]any{"title": "Confirm data deletion", "description": "About to delete 150 records. Confirm?"})
	fake.On(testkit.LastToolResult("request_human_approval")).Reply("Deleted.")
	agent := j.assignment(t, "x", nil)

	r := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent, "message": "confirm and delete", "webhook_url": receiver.URL + "/events"})
	run := field(t, r.JSON(t), "run", "id").(string)
	req := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	j.respond(t, j.member, run, req, map[string]any{"approved": true})
	j.waitRun(t, run, "completed")
	waitFor := func(n int) []delivery {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			d := append([]delivery(nil), got...)
			mu.Unlock()
			if len(d) >= n {
				return d
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("the receiver got %d deliveries, want %d", len(got), n)
		return nil
	}
	// The worker delivers due rows in parallel, so arrival order is not event order.
	find := func(d []delivery, event, runID string) delivery {
		for _, x := range d {
			if x.event["event"] == event && x.event["run_id"] == runID {
				return x
			}
		}
		t.Fatalf("no %s delivery for run %s among %v", event, runID, d)
		return delivery{}
	}
	d := waitFor(2)
	created, completed := find(d, "human_request_created", run), find(d, "run_completed", run)
	if first := created.event; first["request_id"] != req || first["title"] != "Confirm data deletion" ||
		first["description"] != "About to delete 150 records. Confirm?" || first["status"] != "waiting" {
		t.Fatalf("human_request_created event: %v", first)
	}
	if second := completed.event; second["agent_id"] != agent || second["status"] != "completed" {
		t.Fatalf("run_completed event: %v", second)
	}
	if created.id == completed.id {
		t.Fatalf("each event has its own webhook-id")
	}

	fake.On(testkit.LastUserContains("hold")).CallTool("request_human_approval", map[string]any{"title": "t", "description": "d"})
	r = j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent, "message": "hold on", "webhook_url": receiver.URL})
	run = field(t, r.JSON(t), "run", "id").(string)
	j.waitRun(t, run, "waiting")
	j.s.Do(t, "POST", "/v2/runs/"+run+"/stop", j.member, nil)
	if ev := find(waitFor(4), "run_interrupted", run).event; ev["status"] != "stopped" {
		t.Fatalf("stop sends run_interrupted: %v", ev)
	}
}

// verifyStandardWebhook checks webhook-signature as a receiver following the Standard
// Webhooks spec does.
func verifyStandardWebhook(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches", h.Get("webhook-signature"))
}

// sseEvent is one event read off a stream.
type sseEvent struct {
	id, event, data string
}

// readEvents reads events from an open stream until stop says enough.
func readEvents(t *testing.T, body io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	sc := bufio.NewScanner(body)
	var out []sseEvent
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
				if stop(cur) {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	t.Fatalf("the stream ended after %d events: %v", len(out), out)
	return nil
}

func TestStreamRunEvents(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().Reply("Streaming this answer token by token.")
	agent := j.assignment(t, "x", nil)
	j.fake.Block()
	run := j.start(t, j.member, agent, "go")
	open := func(lastID string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", j.s.URL+"/v2/runs/"+run+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+j.viewer)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := j.s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp
	}
	resp := open("")
	// The model may answer only once the stream has sent its backlog and status: before
	// that, the status it reads could already be the end, and no token would follow.
	// (Nothing more is sent until the release, so the first read takes no later event.)
	evs := readEvents(t, resp.Body, func(e sseEvent) bool { return e.event == "status" })
	j.fake.Release()
	evs = append(evs, readEvents(t, resp.Body, func(e sseEvent) bool { return e.event == "status" && strings.Contains(e.data, `"completed"`) })...)
	var tokens strings.Builder
	var final string
	for _, e := range evs {
		switch e.event {
		case "token":
			var tok tokenEvent
			json.Unmarshal([]byte(e.data), &tok)
			tokens.WriteString(tok.Text)
		case "message":
			if e.id == "" {
				t.Errorf("message events carry their seq as id: %v", e)
			}
			final = e.data
		}
	}
	if tokens.String() != "Streaming this answer token by token." || !strings.Contains(final, "Streaming this answer") {
		t.Fatalf("tokens %q, last message %s; events %v", tokens.String(), final, evs)
	}
	// A reconnect with Last-Event-ID gets only what came after it, then the status.
	evs = readEvents(t, open("1").Body, func(e sseEvent) bool { return e.event == "status" })
	if len(evs) != 2 || evs[0].id != "2" || evs[1].event != "status" {
		t.Fatalf("resumed stream: %v", evs)
	}
	if r := j.s.Do(t, "GET", "/v2/runs/"+run+"/events", j.otherKey, nil); r.Status != 404 {
		t.Fatalf("another team's stream: %d", r.Status)
	}
}

type tokenEvent struct {
	Text string `json:"text"`
}
