package web_test

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"docket/internal/testkit"
)

// ledgerRow is a tool call's row in the effect ledger, without its generated id.
type ledgerRow struct{ Name, Arguments, State string }

func ledger(t *testing.T, s *testkit.Server, run string) []ledgerRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.Dir, "docket.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, arguments, state FROM tool_calls WHERE run_id = ? ORDER BY seq", run)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.Name, &r.Arguments, &r.State); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// shape is what a person reads of a message, without generated ids and times.
func shape(ms []map[string]any) []string {
	var out []string
	for _, m := range ms {
		line := fmt.Sprintf("%v/%v text=%v", m["type"], m["role"], m["text_content"])
		if c, ok := m["tool_call"].(map[string]any); ok {
			args, _ := json.Marshal(c["arguments"])
			line += fmt.Sprintf(" call=%v%s", c["name"], args)
		}
		if r, ok := m["tool_result"].(map[string]any); ok {
			res := fmt.Sprint(r["result"])
			if i := strings.Index(res, " by "); i > 0 {
				res = res[:i] // "approved by <generated email>"
			}
			line += fmt.Sprintf(" result=%v/%s error=%v", r["name"], res, r["error"])
		}
		out = append(out, line)
	}
	return out
}

// TestToolModesRecordTheSameRun: the seed flow in native and in constrained mode gives
// the same messages, ledger rows, gate and final answer; only how the model was asked
// differs (tools vs a JSON schema in format), and the run says which mode it used.
func TestToolModesRecordTheSameRun(t *testing.T) {
	args := map[string]any{"title": "Refund order #99182", "description": "Refund 49 EUR"}
	type result struct {
		messages []string
		ledger   []ledgerRow
		gate     string
	}
	results := map[string]result{}
	for _, mode := range []string{"native", "constrained"} {
		t.Run(mode, func(t *testing.T) {
			j := newJobs(t, nil)
			j.fake.On(testkit.Turn(1), testkit.Not(testkit.HasFormat())).CallTool("request_human_approval", args)
			j.fake.On(testkit.Turn(1), testkit.HasFormat()).ReplyJSON(map[string]any{"tool": "request_human_approval", "arguments": args})
			// Plain text to a format request comes back as the smallest JSON the schema
			// allows: here {"final": "Refund sent."}.
			j.fake.On(testkit.Turn(2)).Reply("Refund sent.")
			agent := j.assignment(t, "Ask approval before refunding.", map[string]any{
				"tools": []string{"request_human_approval"}, "options": map[string]any{"tool_mode": mode}})
			run := j.start(t, j.member, agent, "Process the refund for order #99182.")
			gate := j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)
			if r := j.respond(t, j.member, run, gate["id"].(string), map[string]any{"approved": true}); r.Status != 200 {
				t.Fatalf("respond: %d %s", r.Status, r.Body)
			}
			got := j.waitRun(t, run, "completed")
			if field(t, got, "run", "tool_mode") != mode || field(t, got, "run", "usage", "model_turns") != 2.0 {
				t.Fatalf("run: %v", got["run"])
			}
			reqs := j.fake.Requests()
			for _, req := range reqs {
				constrained := len(req.Format) > 0
				if constrained != (mode == "constrained") || (len(req.Tools) > 0) == constrained {
					t.Fatalf("%s request has format %s and %d tools", mode, req.Format, len(req.Tools))
				}
			}
			if mode == "constrained" {
				// Tool results reach a model without a tool template as user messages.
				last := reqs[len(reqs)-1].Messages
				if m := last[len(last)-1]; m.Role != "user" || !strings.HasPrefix(m.Content, "Result of request_human_approval (call_") {
					t.Fatalf("the tool result was given as %+v", m)
				}
				if prev := last[len(last)-2]; prev.Role != "assistant" || !strings.HasPrefix(prev.Content, `{"tool":"request_human_approval","arguments":{`) {
					t.Fatalf("the call was given back as %+v", prev)
				}
			}
			results[mode] = result{shape(j.messages(t, run)), ledger(t, j.s, run), gate["title"].(string)}
		})
	}
	if n, c := results["native"], results["constrained"]; !reflect.DeepEqual(n, c) || len(n.messages) != 4 || len(n.ledger) != 1 {
		t.Fatalf("native:\n%v\nconstrained:\n%v", strings.Join(n.messages, "\n"), strings.Join(c.messages, "\n"))
	}
}

// TestConstrainedFormat: the schema a constrained turn is held to has one branch per
// offered tool, its arguments bound to the tool's schema with the setup's bounds, and a
// final-answer branch; tool_choice removes the final answer or the other tools.
func TestConstrainedFormat(t *testing.T) {
	j := newJobs(t, nil)
	type branch struct {
		Properties struct {
			Tool      struct{ Const string }
			Arguments map[string]any
			Final     map[string]any
		}
		Required []string
	}
	formatOf := func(choice string) []branch {
		t.Helper()
		before := len(j.fake.Requests())
		agent := j.assignment(t, "x", map[string]any{"tools": []string{"memory_list", "request_human_approval"}, "max_turns": 1,
			"options":        map[string]any{"tool_mode": "constrained", "tool_choice": choice},
			"tool_arguments": map[string]any{"request_human_approval": map[string]any{"title": map[string]any{"enum": []string{"A", "B"}}}}})
		run := j.start(t, j.member, agent, "go")
		// With max_turns 1, only a final answer completes the run.
		want := "failed"
		if choice == "auto" {
			want = "completed"
		}
		j.waitRun(t, run, want)
		req := j.fake.Requests()[before]
		var f struct{ AnyOf []branch }
		if err := json.Unmarshal(req.Format, &f); err != nil {
			t.Fatal(err)
		}
		if f.AnyOf == nil {
			var b branch
			json.Unmarshal(req.Format, &b)
			f.AnyOf = []branch{b}
		}
		if !strings.Contains(req.Messages[1].Content, `{"tool": "<tool name>"`) && !strings.Contains(req.Messages[1].Content, `"tool": "memory_list"`) {
			t.Fatalf("the protocol is not explained: %+v", req.Messages)
		}
		return f.AnyOf
	}

	all := formatOf("auto")
	if len(all) != 3 || all[0].Properties.Tool.Const != "memory_list" || all[1].Properties.Tool.Const != "request_human_approval" || all[2].Properties.Final == nil {
		t.Fatalf("auto: %+v", all)
	}
	approval := all[1].Properties.Arguments
	title := approval["properties"].(map[string]any)["title"].(map[string]any)
	if fmt.Sprint(title["enum"]) != "[A B]" || title["description"] != nil || fmt.Sprint(approval["required"]) != "[title description]" {
		t.Fatalf("request_human_approval's arguments in the format: %v", approval)
	}
	if b := formatOf("required"); len(b) != 2 || b[1].Properties.Final != nil {
		t.Fatalf("required: %+v", b)
	}
	if b := formatOf("memory_list"); len(b) != 1 || b[0].Properties.Tool.Const != "memory_list" {
		t.Fatalf("memory_list: %+v", b)
	}
}

// TestArgumentsAreChecked: a call whose arguments do not fit the tool's schema (with the
// setup's bounds), and a constrained answer of neither shape, never run: the model gets
// a tool error saying what was wrong, and the run goes on. Both modes.
func TestArgumentsAreChecked(t *testing.T) {
	bad := map[string]any{"title": "C", "description": "d"}
	for _, mode := range []string{"native", "constrained"} {
		t.Run(mode, func(t *testing.T) {
			j := newJobs(t, nil)
			if mode == "native" {
				j.fake.On(testkit.Turn(1)).CallTool("request_human_approval", bad)
				j.fake.On(testkit.Turn(2)).CallTool("request_human_approval", map[string]any{"title": "A"})
			} else {
				j.fake.On(testkit.Turn(1)).ReplyJSON(map[string]any{"tool": "request_human_approval", "arguments": bad})
				j.fake.On(testkit.Turn(2)).ReplyJSON(map[string]any{"answer": 42})
			}
			j.fake.On(testkit.Turn(3)).Reply("Gave up.")
			agent := j.assignment(t, "x", map[string]any{"tools": []string{"request_human_approval"}, "options": map[string]any{"tool_mode": mode},
				"tool_arguments": map[string]any{"request_human_approval": map[string]any{"title": map[string]any{"enum": []string{"A", "B"}}}}})
			run := j.start(t, j.member, agent, "go")
			j.waitRun(t, run, "completed")
			var errs []string
			for _, m := range j.messages(t, run) {
				if r, ok := m["tool_result"].(map[string]any); ok {
					errs = append(errs, fmt.Sprint(r["error"]))
				}
			}
			want2 := `arguments: missing required "description"`
			if mode == "constrained" {
				want2 = `your answer was not one JSON object of the form {"tool": "<tool name>", "arguments": {...}} or {"final": "<answer>"}`
			}
			if len(errs) != 2 || !strings.HasPrefix(errs[0], `arguments.title: must be one of ["A","B"], not "C"`) || !strings.HasPrefix(errs[1], want2) {
				t.Fatalf("tool errors: %q", errs)
			}
			if r := j.s.Do(t, "GET", "/v2/teams/"+j.team+"/human-requests", j.viewer, nil); !strings.Contains(string(r.Body), `"total":0`) {
				t.Fatalf("a call that does not fit its schema opened a gate: %s", r.Body)
			}
		})
	}
}

// TestConstrainedOutputLimit: a constrained answer cut off by num_predict is asked again
// once with twice the room; cut off again, the run fails saying what to change, and
// nothing of the turn is recorded (no half call).
func TestConstrainedOutputLimit(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("once")).Once().Reply(`{"tool": "memory_list", "argu`).DoneReason("length")
	j.fake.On(testkit.LastUserContains("twice")).Reply(`{"tool": "memory_list", "argu`).DoneReason("length")
	j.fake.Default().ReplyJSON(map[string]any{"final": "ok"})
	agent := j.assignment(t, "x", map[string]any{"tools": []string{"memory_list"}, "options": map[string]any{"tool_mode": "constrained", "num_predict": 300}})

	once := j.start(t, j.member, agent, "once")
	j.waitRun(t, once, "completed")
	reqs := j.fake.Requests()
	if len(reqs) != 2 || reqs[0].Options["num_predict"] != 300.0 || reqs[1].Options["num_predict"] != 600.0 {
		t.Fatalf("num_predict of the two calls: %v", reqs)
	}
	if got := shape(j.messages(t, once)); len(got) != 2 || got[1] != "text/assistant text=ok" {
		t.Fatalf("messages: %q", got)
	}

	twice := j.start(t, j.member, agent, "twice")
	got := j.waitRun(t, twice, "failed")
	if e := field(t, got, "run", "error").(string); !strings.Contains(e, "reached its output limit (num_predict 300) twice") || !strings.Contains(e, "raise options.num_predict") {
		t.Fatalf("error: %s", e)
	}
	if ms := j.messages(t, twice); len(ms) != 1 || len(ledger(t, j.s, twice)) != 0 {
		t.Fatalf("a cut-off answer was recorded: %v", ms)
	}
}

// TestAutoToolMode: auto uses native tool calling for a model that reports the tools
// capability and constrained mode for one that does not, asking Ollama once per model.
func TestAutoToolMode(t *testing.T) {
	j := newJobs(t, nil)
	for _, tc := range []struct{ model, want string }{{"qwen3:4b", "native"}, {"gemma3:1b", "constrained"}, {"gemma3:1b", "constrained"}} {
		agent := j.assignment(t, "x", map[string]any{"models": map[string]any{"agent": map[string]any{"model": tc.model}}, "tools": []string{"memory_list"}})
		run := j.start(t, j.member, agent, "go")
		got := j.waitRun(t, run, "completed")
		if field(t, got, "run", "tool_mode") != tc.want {
			t.Fatalf("%s: tool_mode %v, want %s", tc.model, field(t, got, "run", "tool_mode"), tc.want)
		}
		req := j.fake.Requests()[len(j.fake.Requests())-1]
		if (len(req.Format) > 0) != (tc.want == "constrained") {
			t.Fatalf("%s: format %s", tc.model, req.Format)
		}
	}
	if n := j.fake.ShowCount(); n != 2 {
		t.Fatalf("/api/show asked %d times for 2 models", n)
	}
}

// TestConstrainedStreamsTheAnswerText: listeners of a constrained run see the final
// answer's text as it is generated, not the JSON around it.
func TestConstrainedStreamsTheAnswerText(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().ReplyJSON(map[string]any{"final": "Streaming \"this\" answer\ntoken by token."})
	agent := j.assignment(t, "x", map[string]any{"options": map[string]any{"tool_mode": "constrained"}})
	j.fake.Block()
	run := j.start(t, j.member, agent, "go")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", j.s.URL+"/v2/runs/"+run+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+j.viewer)
	resp, err := j.s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The stream's first event (the run's status) comes after it subscribed: only then
	// may the model answer, or early tokens would pass before anyone listens.
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			break
		}
	}
	j.fake.Release()
	var tokens strings.Builder
	for _, e := range readEvents(t, body, func(e sseEvent) bool { return e.event == "status" && strings.Contains(e.data, `"completed"`) }) {
		if e.event == "token" {
			var tok tokenEvent
			json.Unmarshal([]byte(e.data), &tok)
			tokens.WriteString(tok.Text)
		}
	}
	if tokens.String() != "Streaming \"this\" answer\ntoken by token." {
		t.Fatalf("streamed %q", tokens.String())
	}
}

// TestEmptyToolListOffersNoTools: "tools": [] means no tools (the model can only answer),
// not the default set; the stored Setup keeps the empty list.
func TestEmptyToolListOffersNoTools(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().Reply("Just an answer.")
	agent := j.assignment(t, "x", map[string]any{"tools": []string{}})
	run := j.start(t, j.member, agent, "hello")
	j.waitRun(t, run, "completed")
	if reqs := j.fake.Requests(); len(reqs) != 1 || len(reqs[0].Tools) != 0 {
		t.Fatalf("the model was offered tools: %v", reqs)
	}
	live := field(t, j.s.Do(t, "GET", "/v2/agents/"+agent, j.member, nil).JSON(t), "agent", "live_build_id").(string)
	b := j.s.Do(t, "GET", "/v2/agents/"+agent+"/revisions/"+live, j.member, nil)
	if got := jsonString(t, field(t, b.JSON(t), "build", "config", "data", "tools")); got != "[]" {
		t.Fatalf("stored tools = %s, want []", got)
	}
}
