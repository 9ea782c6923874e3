package realollama_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/internal/realollama"
	"docket/internal/testkit"
	"docket/runtime"
)

// exchange is one /api/chat call as it crossed the wire: what docket asked, and what
// the model answered, assembled from the stream.
type exchange struct {
	Req        api.ChatRequest
	Content    string
	DoneReason string
	Done       bool
}

// recorder is a reverse proxy between docket and Ollama that records every chat call,
// and can hold calls (before they reach Ollama) so a test can get ready first.
type recorder struct {
	URL string
	mu  sync.Mutex
	ex  []exchange
	// hold, while non-nil, keeps chat calls waiting until it is closed.
	hold chan struct{}
}

func newRecorder(t testing.TB, target string) *recorder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/api/chat" {
			return nil
		}
		var req api.ChatRequest
		if b, ok := resp.Request.Context().Value(bodyKey{}).([]byte); ok {
			json.Unmarshal(b, &req)
		}
		resp.Body = &tee{ReadCloser: resp.Body, done: func(body []byte) { rec.add(req, body) }}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
			rec.mu.Lock()
			hold := rec.hold
			rec.mu.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-r.Context().Done():
					return
				}
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

type bodyKey struct{}

// tee keeps what passes through a response body and hands it over when it is closed.
type tee struct {
	io.ReadCloser
	buf  bytes.Buffer
	done func([]byte)
	once sync.Once
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.buf.Write(p[:n])
	return n, err
}

func (t *tee) Close() error {
	t.once.Do(func() { t.done(t.buf.Bytes()) })
	return t.ReadCloser.Close()
}

func (rec *recorder) add(req api.ChatRequest, body []byte) {
	e := exchange{Req: req}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var r api.ChatResponse
		if dec.Decode(&r) != nil {
			break
		}
		e.Content += r.Message.Content
		if r.Done {
			e.Done, e.DoneReason = true, r.DoneReason
		}
	}
	rec.mu.Lock()
	rec.ex = append(rec.ex, e)
	rec.mu.Unlock()
}

func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.ex)
}

func (rec *recorder) Hold() {
	rec.mu.Lock()
	rec.hold = make(chan struct{})
	rec.mu.Unlock()
}

func (rec *recorder) Release() {
	rec.mu.Lock()
	close(rec.hold)
	rec.hold = nil
	rec.mu.Unlock()
}

// world is a docket server whose runs talk to a real Ollama, through a recorder unless
// the test needs docket to see Ollama itself go away.
type world struct {
	s      *testkit.Server
	rec    *recorder
	ollama *realollama.Server
}

func newWorld(t testing.TB, ollama *realollama.Server, recorded bool, engine func(*runtime.Config)) *world {
	w := &world{ollama: ollama}
	url := ollama.URL
	if recorded {
		w.rec = newRecorder(t, ollama.URL)
		url = w.rec.URL
	}
	m, err := runtime.NewOllama(url)
	if err != nil {
		t.Fatal(err)
	}
	w.s = testkit.StartServer(t, testkit.Options{Model: m, ModelHost: ollama.URL, Engine: engine})
	return w
}

// assignment creates an Assignment on the tiny model with data added to its setup.
func (w *world) assignment(t testing.TB, data map[string]any) string {
	t.Helper()
	cfg := testkit.SetupConfig("You are a test assignment.")
	d := cfg["data"].(map[string]any)
	d["models"] = map[string]any{"agent": map[string]any{"model": realollama.TinyModel}}
	for k, v := range data {
		d[k] = v
	}
	r := w.s.Do(t, "POST", "/v2/teams/"+w.s.TeamID+"/agents", w.s.OwnerKey, map[string]any{"name": "Tiny " + fmt.Sprint(time.Now().UnixNano()), "build": map[string]any{"name": "v1", "config": cfg}})
	if r.Status != 201 {
		t.Fatalf("create assignment: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["agent"].(map[string]any)["id"].(string)
}

func (w *world) start(t testing.TB, agent, message string) string {
	t.Helper()
	r := w.s.Do(t, "POST", "/v2/teams/"+w.s.TeamID+"/runs", w.s.OwnerKey, map[string]any{"agent_id": agent, "message": message})
	if r.Status != 201 {
		t.Fatalf("startRun: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["run"].(map[string]any)["id"].(string)
}

type runView struct {
	Run struct {
		Status   string
		Error    *string
		ToolMode *string `json:"tool_mode"`
		Usage    struct {
			PromptTokens         int64 `json:"prompt_tokens"`
			OutputTokens         int64 `json:"output_tokens"`
			ModelMs              int64 `json:"model_ms"`
			ModelTurns           int64 `json:"model_turns"`
			TotalDurationMs      int64 `json:"total_duration_ms"`
			LoadDurationMs       int64 `json:"load_duration_ms"`
			PromptEvalDurationMs int64 `json:"prompt_eval_duration_ms"`
			EvalDurationMs       int64 `json:"eval_duration_ms"`
		}
	}
	PendingHumanRequest *struct {
		ID, Title, Description string
	} `json:"pending_human_request"`
}

func (w *world) get(t testing.TB, run string) runView {
	t.Helper()
	var v runView
	w.s.Do(t, "GET", "/v2/runs/"+run, w.s.OwnerKey, nil).Decode(t, &v)
	return v
}

// wait polls the run until it has one of statuses.
func (w *world) wait(t testing.TB, run string, limit time.Duration, statuses ...string) runView {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v := w.get(t, run)
		if slices.Contains(statuses, v.Run.Status) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is still %s after %s, want %v; Ollama log:\n%s", run, v.Run.Status, limit, statuses, w.ollama.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type message struct {
	Type        string
	Role        string
	TextContent *string `json:"text_content"`
	ToolCall    *struct {
		ID, Name  string
		Arguments map[string]any
	} `json:"tool_call"`
	ToolResult *struct {
		Name   string
		Result any // text, or JSON a tool returned
		Error  *string
	} `json:"tool_result"`
}

func (w *world) messages(t *testing.T, run string) []message {
	t.Helper()
	var page struct{ Messages []message }
	w.s.Do(t, "GET", "/v2/runs/"+run+"/messages?limit=50", w.s.OwnerKey, nil).Decode(t, &page)
	return page.Messages
}

// events reads a run's event stream until stop says so (or ctx ends), closing open once
// the stream is live (its first event, the run's status, comes after it subscribed).
// It runs on its own goroutine, so it reports no failure: a test sees what it missed.
func (w *world) events(ctx context.Context, run string, open chan<- struct{}, stop func(event, data string) bool) []string {
	req, _ := http.NewRequestWithContext(ctx, "GET", w.s.URL+"/v2/runs/"+run+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+w.s.OwnerKey)
	resp, err := w.s.Client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var tokens []string
	sc := bufio.NewScanner(resp.Body)
	var ev string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if open != nil {
				close(open)
				open = nil
			}
			data := strings.TrimPrefix(line, "data: ")
			if ev == "token" {
				var tok struct{ Text string }
				json.Unmarshal([]byte(data), &tok)
				tokens = append(tokens, tok.Text)
			}
			if stop(ev, data) {
				return tokens
			}
		}
	}
	return tokens
}

// TestPlainRunOnRealOllama: a run with no tools completes on the real model: its tokens
// stream to the run's event stream and add up to the stored final message, the setup's
// num_ctx is sent (and Ollama loaded the model with it), and the run carries Ollama's
// own durations.
func TestPlainRunOnRealOllama(t *testing.T) {
	w := newWorld(t, realollama.Shared(t), true, nil)
	// One tool the model has no reason to call (an empty list would mean every tool).
	agent := w.assignment(t, map[string]any{"tools": []string{"memory_list"}, "options": map[string]any{"num_ctx": 2048}})
	// The model call waits in the recorder until the event stream is live, so no token
	// can pass before it.
	w.rec.Hold()
	run := w.start(t, agent, "Say hello.")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	streamed := make(chan []string, 1)
	open := make(chan struct{})
	go func() {
		streamed <- w.events(ctx, run, open, func(ev, data string) bool {
			return ev == "status" && strings.Contains(data, `"completed"`)
		})
	}()
	<-open
	w.rec.Release()
	got := w.wait(t, run, time.Minute, "completed", "failed")
	tokens := <-streamed
	if got.Run.Status != "completed" || deref(got.Run.ToolMode) != "native" {
		t.Fatalf("run: %+v", got.Run)
	}
	ms := w.messages(t, run)
	final := ms[len(ms)-1]
	if final.Role != "assistant" || final.TextContent == nil || *final.TextContent == "" {
		t.Fatalf("final message: %+v", final)
	}
	if len(tokens) < 2 || strings.Join(tokens, "") != *final.TextContent {
		t.Fatalf("%d streamed tokens %q do not add up to the stored answer %q", len(tokens), strings.Join(tokens, ""), *final.TextContent)
	}
	ex := w.rec.exchanges()
	if len(ex) != 1 || ex[0].Req.Options["num_ctx"] != 2048.0 {
		t.Fatalf("chat calls: %+v", ex)
	}
	var ps api.ProcessResponse
	getJSON(t, w.ollama.URL+"/api/ps", &ps)
	if len(ps.Models) != 1 || ps.Models[0].ContextLength != 2048 {
		t.Fatalf("Ollama has loaded %+v, want the tiny model with a 2048-token context", ps.Models)
	}
	u := got.Run.Usage
	if u.ModelTurns != 1 || u.TotalDurationMs <= 0 || u.EvalDurationMs <= 0 || u.PromptTokens <= 0 || u.OutputTokens <= 0 || u.ModelMs < u.TotalDurationMs {
		t.Fatalf("usage: %+v", u)
	}
	t.Logf("answer of %d tokens; usage %+v", len(tokens), u)
}

// TestSeedFlowOnRealOllama is the seed flow on the real model: the setup's only tool is
// request_human_approval, in constrained mode with tool_choice naming it and its
// arguments bounded, so the only answer the grammar allows is that call with those
// values. The run waits at the gate, the response resumes it, and it ends at max_turns
// (1) with every message stored.
func TestSeedFlowOnRealOllama(t *testing.T) {
	w := newWorld(t, realollama.Shared(t), true, nil)
	agent := w.assignment(t, map[string]any{
		"tools": []string{"request_human_approval"}, "max_turns": 1,
		"options": map[string]any{"tool_mode": "constrained", "tool_choice": "request_human_approval", "num_ctx": 2048, "num_predict": 256},
		"tool_arguments": map[string]any{"request_human_approval": map[string]any{
			"title": map[string]any{"enum": []string{"Approve the refund"}}, "description": map[string]any{"enum": []string{"Refund 49 EUR for order 99182"}},
			"details": map[string]any{"maxLength": 24}}},
	})
	run := w.start(t, agent, "Process the refund for order 99182.")
	got := w.wait(t, run, time.Minute, "waiting", "failed", "completed")
	g := got.PendingHumanRequest
	if got.Run.Status != "waiting" || g == nil || g.Title != "Approve the refund" || g.Description != "Refund 49 EUR for order 99182" || deref(got.Run.ToolMode) != "constrained" {
		t.Fatalf("run: %+v gate %+v; calls %+v", got.Run, g, w.rec.exchanges())
	}
	if r := w.s.Do(t, "POST", "/v2/runs/"+run+"/human-requests/"+g.ID+"/respond", w.s.OwnerKey, map[string]any{"approved": true}); r.Status != 200 {
		t.Fatalf("respond: %d %s", r.Status, r.Body)
	}
	end := w.wait(t, run, time.Minute, "completed", "failed")
	if end.Run.Status != "failed" || !strings.Contains(deref(end.Run.Error), "max_turns") {
		t.Fatalf("end: %+v", end.Run)
	}
	ms := w.messages(t, run)
	if len(ms) != 3 || ms[0].Role != "user" || ms[1].ToolCall == nil || ms[1].ToolCall.Name != "request_human_approval" ||
		ms[1].ToolCall.Arguments["title"] != "Approve the refund" || ms[2].ToolResult == nil || !strings.HasPrefix(fmt.Sprint(ms[2].ToolResult.Result), "approved by ") {
		t.Fatalf("messages: %s", jsonOf(ms))
	}
	if ex := w.rec.exchanges(); len(ex) != 1 || ex[0].DoneReason != "stop" || len(ex[0].Req.Tools) != 0 || len(ex[0].Req.Format) == 0 {
		t.Fatalf("chat calls: %+v", ex)
	}
}

// TestConstrainedFreeChoiceOnRealOllama runs 50 constrained runs in which the model may
// call any of four tools or answer, sampling at temperature 1 (the random weights make
// every choice possible). It asserts, for every model answer that ended with
// done_reason "stop", that it is exactly one of the two JSON shapes and that a call's
// arguments fit the tool's bounded schema; that what docket stored is exactly those
// calls and answers (no call from a cut-off answer, no call that failed its schema
// check); and that every run ended, completed or failed for a stated reason.
func TestConstrainedFreeChoiceOnRealOllama(t *testing.T) {
	const runs = 50
	w := newWorld(t, realollama.Shared(t), true, nil)
	agent := w.assignment(t, map[string]any{
		"tools": []string{"memory_list", "memory_read", "memory_write", "list_cases"}, "max_turns": 2, "temperature": 1,
		"options": map[string]any{"tool_mode": "constrained", "num_ctx": 2048, "num_predict": 96},
		"tool_arguments": map[string]any{
			"memory_read":  map[string]any{"path": map[string]any{"enum": []string{"notes.md", "todo.md"}}},
			"memory_write": map[string]any{"path": map[string]any{"enum": []string{"notes.md"}}, "content": map[string]any{"maxLength": 16}},
			"list_cases": map[string]any{"queue": map[string]any{"enum": []string{"Inbox"}}, "search": map[string]any{"maxLength": 8},
				"label": map[string]any{"maxLength": 8}},
		},
	})
	// validArgs is the bounded schema of each tool, as this test reads it.
	validArgs := func(tool string, args map[string]any) bool {
		str := func(k string, max int, enum ...string) bool {
			v, ok := args[k].(string)
			return ok && len([]rune(v)) <= max && (enum == nil || slices.Contains(enum, v))
		}
		only := func(keys ...string) bool {
			for k := range args {
				if !slices.Contains(keys, k) {
					return false
				}
			}
			return true
		}
		switch tool {
		case "memory_list":
			return len(args) == 0
		case "memory_read":
			return only("path") && str("path", 100, "notes.md", "todo.md")
		case "memory_write":
			return only("path", "content") && str("path", 100, "notes.md") && str("content", 16)
		case "list_cases":
			ok := only("queue", "status", "label", "search", "limit") && str("queue", 100, "Inbox")
			if _, has := args["status"]; has {
				ok = ok && str("status", 20, "pending", "in_progress", "needs_input", "postponed", "completed", "failed")
			}
			for _, k := range []string{"label", "search"} {
				if _, has := args[k]; has {
					ok = ok && str(k, 8)
				}
			}
			if v, has := args["limit"]; has {
				n, isNum := v.(float64)
				ok = ok && isNum && n == float64(int(n)) && n >= 1 && n <= 50
			}
			return ok
		}
		return false
	}

	ids := make([]string, runs)
	for i := range ids {
		ids[i] = w.start(t, agent, fmt.Sprintf("Task %d: look after the notes.", i))
	}
	outcomes := map[string]int{}
	for _, id := range ids {
		v := w.wait(t, id, 5*time.Minute, "completed", "failed")
		switch e := deref(v.Run.Error); {
		case v.Run.Status == "completed":
			outcomes["completed"]++
		case strings.Contains(e, "max_turns"):
			outcomes["max_turns"]++
		case strings.Contains(e, "reached its output limit"):
			outcomes["output limit"]++
		default:
			t.Errorf("run %s failed for another reason: %s", id, e)
		}
	}

	var stopCalls, stopFinals, lengthCut int
	for _, e := range w.rec.exchanges() {
		if !e.Done {
			t.Errorf("an answer ended without its final chunk: %+v", e)
			continue
		}
		if e.DoneReason == "length" {
			lengthCut++
			continue
		}
		if e.DoneReason != "stop" {
			t.Errorf("done_reason %q", e.DoneReason)
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(e.Content), &obj); err != nil {
			t.Errorf("an answer that ended with stop does not parse: %q: %v", e.Content, err)
			continue
		}
		var final string
		var call struct {
			Tool      string
			Arguments map[string]any
		}
		switch {
		case len(obj) == 1 && json.Unmarshal(obj["final"], &final) == nil:
			stopFinals++
		case len(obj) == 2 && json.Unmarshal([]byte(e.Content), &call) == nil && call.Tool != "" && call.Arguments != nil:
			stopCalls++
			if !validArgs(call.Tool, call.Arguments) {
				t.Errorf("call of %s with arguments outside its schema: %s", call.Tool, e.Content)
			}
		default:
			t.Errorf("an answer that ended with stop is neither shape: %q", e.Content)
		}
	}

	var storedCalls, storedFinals int
	for _, id := range ids {
		for _, m := range w.messages(t, id) {
			switch {
			case m.ToolCall != nil:
				storedCalls++
				if !validArgs(m.ToolCall.Name, m.ToolCall.Arguments) {
					t.Errorf("stored call outside its schema: %s", jsonOf(m))
				}
			case m.ToolResult != nil && m.ToolResult.Error != nil && strings.Contains(*m.ToolResult.Error, "arguments"):
				t.Errorf("a call failed its schema check: %s", *m.ToolResult.Error)
			case m.Role == "assistant" && m.TextContent != nil:
				storedFinals++
			}
		}
	}
	t.Logf("%d runs: %v; model answers: %d calls, %d final answers, %d cut off at the output limit", runs, outcomes, stopCalls, stopFinals, lengthCut)
	if storedCalls != stopCalls || storedFinals != stopFinals {
		t.Errorf("stored %d calls and %d final answers, but the model finished %d calls and %d final answers", storedCalls, storedFinals, stopCalls, stopFinals)
	}
	if stopCalls == 0 || stopFinals == 0 {
		t.Errorf("the model never chose a call (%d) or never answered (%d): the free choice was not exercised", stopCalls, stopFinals)
	}
}

// TestUnknownModelOnRealOllama: a model Ollama does not have fails the run at once with
// the message that says what to do, in auto mode (/api/show) and in constrained mode
// (/api/chat).
func TestUnknownModelOnRealOllama(t *testing.T) {
	w := newWorld(t, realollama.Shared(t), true, nil)
	for _, mode := range []string{"auto", "constrained"} {
		agent := w.assignment(t, map[string]any{"models": map[string]any{"agent": map[string]any{"model": "no-such-model:1b"}},
			"options": map[string]any{"tool_mode": mode}})
		got := w.wait(t, w.start(t, agent, "hi"), time.Minute, "failed", "completed")
		want := fmt.Sprintf(`model "no-such-model:1b" not found at %s: run ollama pull no-such-model:1b`, w.ollama.URL)
		if got.Run.Status != "failed" || !strings.HasPrefix(deref(got.Run.Error), want) {
			t.Fatalf("%s: %+v %s", mode, got.Run, deref(got.Run.Error))
		}
	}
}

// TestOllamaKilledMidStream: Ollama dies while a run's answer is streaming. When it comes
// back within the retries, the run completes with one whole answer (nothing of the cut
// stream is kept); when it does not, the run fails with the message that says what to
// do. Either way the run ends.
func TestOllamaKilledMidStream(t *testing.T) {
	for _, comesBack := range []bool{true, false} {
		t.Run(map[bool]string{true: "restarted", false: "gone"}[comesBack], func(t *testing.T) {
			ollama := realollama.StartTiny(t)
			// Retries at +1, +3 and +7 s: time for a restart.
			w := newWorld(t, ollama, false, func(c *runtime.Config) { c.ModelBackoff = time.Second })
			agent := w.assignment(t, map[string]any{"tools": []string{"memory_list"}, "options": map[string]any{"num_ctx": 4096, "num_predict": 120}})
			run := w.start(t, agent, "Tell me a long story.")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			firstToken := make(chan struct{})
			go w.events(ctx, run, nil, func(ev, _ string) bool {
				if ev == "token" {
					close(firstToken)
					return true
				}
				return false
			})
			select {
			case <-firstToken:
			case <-ctx.Done():
				t.Fatalf("no token streamed; Ollama log:\n%s", ollama.Log())
			}
			ollama.Kill()
			if comesBack {
				if err := ollama.Restart(ctx); err != nil {
					t.Fatal(err)
				}
				got := w.wait(t, run, time.Minute, "completed", "failed")
				ms := w.messages(t, run)
				if got.Run.Status != "completed" || len(ms) != 2 || ms[1].TextContent == nil || *ms[1].TextContent == "" || got.Run.Usage.ModelTurns != 1 {
					t.Fatalf("run: %+v %s; messages %s", got.Run, deref(got.Run.Error), jsonOf(ms))
				}
				return
			}
			got := w.wait(t, run, time.Minute, "completed", "failed")
			want := "model backend unreachable at " + ollama.URL + ": start Ollama or set OLLAMA_HOST"
			if got.Run.Status != "failed" || !strings.HasPrefix(deref(got.Run.Error), want) || len(w.messages(t, run)) != 1 {
				t.Fatalf("run: %+v %s", got.Run, deref(got.Run.Error))
			}
		})
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
