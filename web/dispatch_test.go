package web_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/internal/testkit"
	"docket/runtime"
	"docket/store"
)

// caseID reads the case id out of the message a dispatched run starts with.
var caseIDInMessage = regexp.MustCompile(`Case ([0-9a-f-]{36}) from queue`)

// firstCaseID is the case a run was started on, from its first user message.
func firstCaseID(req *api.ChatRequest) string {
	for _, m := range req.Messages {
		if m.Role == "user" {
			if g := caseIDInMessage.FindStringSubmatch(m.Content); g != nil {
				return g[1]
			}
		}
	}
	return ""
}

// caseWorld is a jobs world with a queue, an Assignment consuming it, and a model that
// completes each case it is given unless told otherwise.
type caseWorld struct {
	*jobs
	queue, agent, trigger string
}

func newCaseWorld(t *testing.T, concurrency int, engine func(*runtime.Config), opts ...func(*testkit.Options)) *caseWorld {
	t.Helper()
	fake := testkit.NewFakeOllama(t)
	m, err := runtime.NewOllama(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	o := testkit.Options{Model: m, ModelHost: fake.URL, Engine: engine, CaseBackoff: func(int) time.Duration { return time.Millisecond }}
	for _, f := range opts {
		f(&o)
	}
	w := &caseWorld{jobs: &jobs{world: newWorld(t, o), fake: fake}}
	// The default, which tests' own rules come before: complete the case, then say so.
	fake.Default().ReplyFunc(func(req *api.ChatRequest) api.Message {
		if req.Messages[len(req.Messages)-1].Role == "tool" {
			return api.Message{Role: "assistant", Content: "Done with the case."}
		}
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": firstCaseID(req), "result": "handled"})}}
	})
	r := w.s.Do(t, "POST", "/v2/teams/"+w.team+"/queues", w.member, map[string]any{"name": "Inbound " + randomID()[:8]})
	if r.Status != 201 {
		t.Fatalf("createQueue: %d %s", r.Status, r.Body)
	}
	w.queue = field(t, r.JSON(t), "queue", "id").(string)
	w.agent = w.assignment(t, "Work each case, then complete it.", nil)
	r = w.s.Do(t, "POST", "/v2/agents/"+w.agent+"/case-triggers", w.member, map[string]any{"case_queue_id": w.queue, "enabled": false, "concurrency": concurrency})
	if r.Status != 201 {
		t.Fatalf("createAgentCaseTrigger: %d %s", r.Status, r.Body)
	}
	w.trigger = field(t, r.JSON(t), "case_trigger", "id").(string)
	return w
}

func (w *caseWorld) enable(t *testing.T, on bool) {
	t.Helper()
	if r := w.s.Do(t, "PATCH", "/v2/agents/"+w.agent+"/case-triggers/"+w.trigger, w.member, map[string]any{"enabled": on}); r.Status != 200 {
		t.Fatalf("updateAgentCaseTrigger: %d %s", r.Status, r.Body)
	}
}

// addCases creates cases in batches of 100 and returns their ids in order.
func (w *caseWorld) addCases(t *testing.T, n int, priority string, title func(i int) string) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 100 {
		var batch []map[string]any
		for i := start; i < min(n, start+100); i++ {
			batch = append(batch, map[string]any{"title": title(i), "data": fmt.Sprintf(`{"n":%d}`, i), "priority": priority})
		}
		r := w.s.Do(t, "POST", "/v2/queues/"+w.queue+"/cases", w.member, map[string]any{"cases": batch})
		if r.Status != 201 {
			t.Fatalf("createCases: %d %s", r.Status, r.Body)
		}
		for _, c := range r.JSON(t)["added_cases"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
	}
	return ids
}

// getCase reads a case with its events.
func (w *caseWorld) getCase(t *testing.T, id string) map[string]any {
	t.Helper()
	r := w.s.Do(t, "GET", "/v2/cases/"+id, w.viewer, nil)
	if r.Status != 200 {
		t.Fatalf("getCase: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// countCases is how many of the queue's cases have a display status, by the API.
func (w *caseWorld) countCases(t *testing.T, displayStatus string) int {
	t.Helper()
	r := w.s.Do(t, "GET", "/v2/queues/"+w.queue+"/cases?limit=1&display_status="+displayStatus, w.viewer, nil)
	if r.Status != 200 {
		t.Fatalf("listCases: %d %s", r.Status, r.Body)
	}
	return int(r.JSON(t)["total"].(float64))
}

func (w *caseWorld) waitCase(t *testing.T, id, displayStatus string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last map[string]any
	for time.Now().Before(deadline) {
		last = w.getCase(t, id)
		if field(t, last, "case", "display_status") == displayStatus {
			return last
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("case %s did not reach %s: %v\nevents: %v", id, displayStatus, last["case"], last["events"])
	return nil
}

// claimedAt is when each case's first claim event happened.
func (w *caseWorld) claimedAt(t *testing.T, id string) time.Time {
	t.Helper()
	for _, e := range w.getCase(t, id)["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "claimed" {
			at, err := time.Parse(time.RFC3339Nano, ev["created_at"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return at
		}
	}
	t.Fatalf("case %s was never claimed", id)
	return time.Time{}
}

// TestQueueDrainsAtConcurrency: 1,000 cases through a trigger with concurrency 8 all
// complete, each exactly once; a sampler never sees more than 8 in progress; the high
// priority cases created last start before every older low-priority one.
func TestQueueDrainsAtConcurrency(t *testing.T) {
	w := newCaseWorld(t, 8, func(c *runtime.Config) { c.Workers = 12 })
	lows, highs := 900, 100
	if raceEnabled {
		lows, highs = 150, 50
	}
	total := lows + highs
	low := w.addCases(t, lows, "none", func(i int) string { return fmt.Sprintf("low %d", i) })
	high := w.addCases(t, highs, "high", func(i int) string { return fmt.Sprintf("high %d", i) })

	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := int64(w.countCases(t, "in_progress") + w.countCases(t, "needs_input"))
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
		}
	})
	w.enable(t, true)
	deadline := time.Now().Add(60 * time.Second)
	for w.countCases(t, "completed") < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	sampler.Wait()
	if done := w.countCases(t, "completed"); done != total {
		t.Fatalf("%d of %d cases completed", done, total)
	}
	if p := peak.Load(); p > 8 || p == 0 {
		t.Fatalf("the sampler saw %d cases in progress at once; the trigger allows 8", p)
	}
	// Exactly one run per case, and each completed with the run that holds it.
	runs := w.s.Do(t, "GET", "/v2/teams/"+w.team+"/runs?limit=1&source=case", w.viewer, nil).JSON(t)
	if runs["total"] != float64(total) {
		t.Fatalf("%v runs for %d cases", runs["total"], total)
	}
	var lastHigh, firstLow time.Time
	for _, id := range high {
		if at := w.claimedAt(t, id); at.After(lastHigh) {
			lastHigh = at
		}
	}
	for i, id := range low {
		if i%50 != 0 {
			continue // a sample of the low ones is enough to find the earliest
		}
		if at := w.claimedAt(t, id); firstLow.IsZero() || at.Before(firstLow) {
			firstLow = at
		}
	}
	if !lastHigh.Before(firstLow) && !lastHigh.Equal(firstLow) {
		t.Fatalf("a high-priority case started at %v, after a low-priority one at %v", lastHigh, firstLow)
	}
	c := w.getCase(t, high[0])
	types := []string{}
	for _, e := range c["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "created,claimed,completed" || field(t, c, "case", "claimed_by_run_id") == nil {
		t.Fatalf("case history: %v; case %v", types, c["case"])
	}
}

// TestPostponedCaseWaits: a case its run postpones comes back only after its time, on a
// new run.
func TestPostponedCaseWaits(t *testing.T) {
	w := newCaseWorld(t, 2, nil)
	var postponed atomic.Bool
	w.fake.On(testkit.LastUserContains("later please"), testkit.LastRole("user")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		if !postponed.Swap(true) {
			return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("postpone_case", map[string]any{"case_id": firstCaseID(req), "until": "1s"})}}
		}
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": firstCaseID(req), "result": "now"})}}
	})
	id := w.addCases(t, 1, "none", func(int) string { return "later please" })[0]
	w.enable(t, true)
	w.waitCase(t, id, "postponed")
	c := w.waitCase(t, id, "completed")
	var postponedTo, secondClaim time.Time
	claims := 0
	for _, e := range c["events"].([]any) {
		ev := e.(map[string]any)
		at, _ := time.Parse(time.RFC3339Nano, ev["created_at"].(string))
		switch ev["type"] {
		case "postponed":
			postponedTo = at.Add(time.Second)
		case "claimed":
			claims++
			secondClaim = at
		}
	}
	if claims != 2 || secondClaim.Before(postponedTo.Add(-50*time.Millisecond)) {
		t.Fatalf("claims %d; the second at %v, postponed until about %v", claims, secondClaim, postponedTo)
	}
	if a := field(t, c, "case", "attempt"); a != 1.0 {
		t.Fatalf("a postponement is not an attempt: attempt %v", a)
	}
}

// TestCaseRetries: infrastructure failures retry the case until max_attempts; the
// agent's own fail_case does not retry.
func TestCaseRetries(t *testing.T) {
	noRetries := func(c *runtime.Config) { c.ModelRetries = -1 }

	t.Run("completes on the third attempt", func(t *testing.T) {
		w := newCaseWorld(t, 1, noRetries)
		w.fake.FailNext(2, 500, "overloaded")
		id := w.addCases(t, 1, "none", func(int) string { return "flaky" })[0]
		w.enable(t, true)
		c := w.waitCase(t, id, "completed")
		if field(t, c, "case", "attempt") != 3.0 {
			t.Fatalf("case: %v", c["case"])
		}
		retries := 0
		for _, e := range c["events"].([]any) {
			if e.(map[string]any)["type"] == "retry_scheduled" {
				retries++
			}
		}
		if retries != 2 {
			t.Fatalf("%d retries in the history, want 2", retries)
		}
	})
	t.Run("max_attempts 2 fails it with last_error", func(t *testing.T) {
		w := newCaseWorld(t, 1, noRetries)
		w.s.Do(t, "PATCH", "/v2/agents/"+w.agent+"/case-triggers/"+w.trigger, w.member, map[string]any{"max_attempts": 2})
		w.fake.FailNext(2, 500, "overloaded")
		id := w.addCases(t, 1, "none", func(int) string { return "flaky" })[0]
		w.enable(t, true)
		c := w.waitCase(t, id, "failed")
		if e, _ := field(t, c, "case", "last_error").(string); !strings.Contains(e, "overloaded") || !strings.Contains(e, "2 attempts") {
			t.Fatalf("last_error %q", e)
		}
	})
	t.Run("fail_case is not retried", func(t *testing.T) {
		w := newCaseWorld(t, 1, nil)
		w.fake.On(testkit.LastUserContains("hopeless"), testkit.LastRole("user")).ReplyFunc(func(req *api.ChatRequest) api.Message {
			return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("fail_case", map[string]any{"case_id": firstCaseID(req), "reason": "customer unknown"})}}
		})
		id := w.addCases(t, 1, "none", func(int) string { return "hopeless" })[0]
		w.enable(t, true)
		c := w.waitCase(t, id, "failed")
		w.waitRun(t, field(t, c, "case", "claimed_by_run_id").(string), "completed")
		if field(t, c, "case", "attempt") != 1.0 || w.fake.ChatCount() != 2 {
			t.Fatalf("a business failure is final: case %v, %d model calls", c["case"], w.fake.ChatCount())
		}
	})
	t.Run("a run that ends without deciding fails its case", func(t *testing.T) {
		w := newCaseWorld(t, 1, nil)
		w.fake.On(testkit.LastUserContains("chatty"), testkit.LastRole("user")).Reply("I looked at it.")
		id := w.addCases(t, 1, "none", func(int) string { return "chatty" })[0]
		w.enable(t, true)
		c := w.waitCase(t, id, "failed")
		if e := field(t, c, "case", "last_error"); e != "run ended without completing the case" {
			t.Fatalf("last_error %v", e)
		}
	})
}

// TestCaseNeedsInput: while a case's run waits at a gate, the case shows needs_input;
// the approval lets the run complete it.
func TestCaseNeedsInput(t *testing.T) {
	w := newCaseWorld(t, 1, nil)
	w.fake.On(testkit.LastUserContains("refund"), testkit.LastRole("user")).CallTool("request_human_approval", map[string]any{"title": "Refund?", "description": "49 EUR"})
	w.fake.On(testkit.LastToolResult("request_human_approval")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": firstCaseID(req), "result": "refunded"})}}
	})
	id := w.addCases(t, 1, "high", func(int) string { return "refund request" })[0]
	w.enable(t, true)
	c := w.waitCase(t, id, "needs_input")
	run := field(t, c, "case", "claimed_by_run_id").(string)
	gate := field(t, c, "case", "pending_human_request_id").(string)
	if r := w.respond(t, w.member, run, gate, map[string]any{"approved": true}); r.Status != 200 {
		t.Fatalf("respond: %d %s", r.Status, r.Body)
	}
	c = w.waitCase(t, id, "completed")
	w.waitRun(t, run, "completed")
	if field(t, c, "case", "result") != "refunded" || field(t, c, "case", "claimed_by_run_id") != run {
		t.Fatalf("case: %v", c["case"])
	}
}

func TestCaseTriggersAPI(t *testing.T) {
	w := newCaseWorld(t, 1, nil)
	other := w.assignment(t, "x", nil)
	path := "/v2/agents/" + w.agent + "/case-triggers"
	runScenarios(t, w.s, []scenario{
		{name: "a second trigger", method: "POST", path: path, key: w.member, body: map[string]any{"case_queue_id": w.queue, "enabled": true}, wantStatus: 409, wantContains: []string{"already has a case trigger"}},
		{name: "viewer cannot create", method: "POST", path: "/v2/agents/" + other + "/case-triggers", key: w.viewer, body: map[string]any{"case_queue_id": w.queue, "enabled": true}, wantStatus: 403},
		{name: "unknown queue", method: "POST", path: "/v2/agents/" + other + "/case-triggers", key: w.member, body: map[string]any{"case_queue_id": randomID(), "enabled": true}, wantStatus: 400, wantContains: []string{"case_queue_id"}},
		{name: "concurrency 0", method: "POST", path: "/v2/agents/" + other + "/case-triggers", key: w.member, body: map[string]any{"case_queue_id": w.queue, "enabled": true, "concurrency": 0}, wantStatus: 400, wantContains: []string{"concurrency"}},
		{name: "other team's agent", method: "GET", path: "/v2/agents/" + w.otherAgent + "/case-triggers", key: w.member, wantStatus: 404},
		{name: "the other consumer", method: "POST", path: "/v2/agents/" + other + "/case-triggers", key: w.member, body: map[string]any{"case_queue_id": w.queue, "enabled": true}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				tr := r.JSON(t)["case_trigger"].(map[string]any)
				if tr["has_conflict"] != false || tr["concurrency"] != 1.0 || tr["max_attempts"] != 3.0 {
					t.Fatalf("trigger: %v (our own trigger is disabled, so no conflict yet)", tr)
				}
			}},
		{name: "preview conflicts", method: "GET", path: path + "/conflict-preview?case_queue_id=" + w.queue, key: w.viewer, wantStatus: 200,
			wantContains: []string{`"has_conflict":true`, other}},
		{name: "list", method: "GET", path: path, key: w.viewer, wantStatus: 200, wantContains: []string{w.trigger, `"case_queue_name":"Inbound`}},
		{name: "get", method: "GET", path: path + "/" + w.trigger, key: w.viewer, wantStatus: 200, wantContains: []string{`"conflicting_agents":[{"id":"` + other}},
		{name: "concurrency null is the default", method: "PATCH", path: path + "/" + w.trigger, key: w.member, body: map[string]any{"concurrency": nil}, wantStatus: 200, wantContains: []string{`"concurrency":1`}},
		{name: "unknown field", method: "PATCH", path: path + "/" + w.trigger, key: w.member, body: map[string]any{"paused": true}, wantStatus: 400, wantContains: []string{"paused"}},
		{name: "delete", method: "DELETE", path: path + "/" + w.trigger, key: w.member, wantStatus: 200},
		{name: "get deleted", method: "GET", path: path + "/" + w.trigger, key: w.viewer, wantStatus: 404},
	})
	ids := []string{}
	r := w.s.Do(t, "GET", "/v2/queues/"+w.queue+"/agents", w.viewer, nil)
	for _, a := range r.JSON(t)["consumers"].([]any) {
		ids = append(ids, a.(map[string]any)["agent_id"].(string))
	}
	sort.Strings(ids)
	if len(ids) != 1 || ids[0] != other {
		t.Fatalf("listQueueAgents after the delete: %s", r.Body)
	}
}

// TestAddAndListCasesTools: a run files cases into a queue by its name and lists them;
// replaying the same add_cases call (as after a crash) creates nothing twice.
func TestAddAndListCasesTools(t *testing.T) {
	w := newCaseWorld(t, 1, nil)
	name := field(t, w.s.Do(t, "GET", "/v2/queues/"+w.queue, w.viewer, nil).JSON(t), "queue", "name").(string)
	w.fake.On(testkit.LastUserContains("file them")).CallTool("add_cases", map[string]any{"queue": name, "cases": []any{
		map[string]any{"title": "Invoice 1", "data": "acme", "priority": "high"}, map[string]any{"title": "Invoice 2"}}})
	w.fake.On(testkit.LastToolResult("add_cases")).CallTool("list_cases", map[string]any{"queue": name, "search": "invoice"})
	w.fake.On(testkit.LastToolResult("list_cases")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Role: "assistant", Content: req.Messages[len(req.Messages)-1].Content}
	})
	run := w.start(t, w.member, w.assignment(t, "x", nil), "file them")
	w.waitRun(t, run, "completed")
	ms := w.messages(t, run)
	final := ms[len(ms)-1]["text_content"].(string)
	if !strings.Contains(final, `"total":2`) || !strings.Contains(final, "Invoice 1") || w.countCases(t, "pending") != 2 {
		t.Fatalf("list_cases told the model %s; %d pending cases", final, w.countCases(t, "pending"))
	}
	var added map[string]any
	for _, m := range ms {
		if tr, ok := m["tool_result"].(map[string]any); ok && added == nil {
			added, _ = tr["result"].(map[string]any)
		}
	}
	key := run + ":replayed-call"
	first, err := w.s.Store.AddCasesOnce(t.Context(), run, key, w.queue, []store.NewCase{{Title: "once", Priority: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.s.Store.AddCasesOnce(t.Context(), run, key, w.queue, []store.NewCase{{Title: "once", Priority: "none"}})
	if err != nil || len(again) != 1 || again[0] != first[0] || w.countCases(t, "pending") != 3 {
		t.Fatalf("replay: %v %v (first %v); %d pending", again, err, first, w.countCases(t, "pending"))
	}
	if added["added"] != 2.0 {
		t.Fatalf("add_cases result: %v", added)
	}
	if _, err := w.s.Store.AddCasesOnce(t.Context(), run, run+":x", "no such queue", []store.NewCase{{Title: "x"}}); err == nil || !strings.Contains(err.Error(), "no queue") {
		t.Fatalf("unknown queue: %v", err)
	}
}
