package testkit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"

	"docket/internal/testkit"
)

func client(t *testing.T, f *testkit.FakeOllama) *api.Client {
	t.Helper()
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(u, http.DefaultClient)
}

func user(text string) []api.Message { return []api.Message{{Role: "user", Content: text}} }

func ptr[T any](v T) *T { return &v }

// chat runs one chat call and returns every chunk the client received.
func chat(t *testing.T, c *api.Client, req *api.ChatRequest) []api.ChatResponse {
	t.Helper()
	var got []api.ChatResponse
	if err := c.Chat(context.Background(), req, func(r api.ChatResponse) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("chat: %v", err)
	}
	return got
}

// joined is what a streaming client assembles from the chunks: text, thinking, tool calls.
func joined(chunks []api.ChatResponse) api.Message {
	var m api.Message
	for _, c := range chunks {
		m.Content += c.Message.Content
		m.Thinking += c.Message.Thinking
		m.ToolCalls = append(m.ToolCalls, c.Message.ToolCalls...)
	}
	return m
}

func statusError(t *testing.T, err error) api.StatusError {
	t.Helper()
	var se api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want api.StatusError, got %T: %v", err, err)
	}
	return se
}

func waitRequests(t *testing.T, f *testkit.FakeOllama, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitRequests(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func weatherTool() api.Tool {
	props := api.NewToolPropertiesMap()
	props.Set("city", api.ToolProperty{Type: api.PropertyType{"string"}, Enum: []any{"Paris"}})
	return api.Tool{Type: "function", Function: api.ToolFunction{
		Name: "get_weather", Description: "weather in a city",
		Parameters: api.ToolFunctionParameters{Type: "object", Required: []string{"city"}, Properties: props},
	}}
}

// callShapedFormat constrains output to a call of get_weather; with it a real Ollama
// emits native tool_calls even from a random-weight model (see ../shared/ollama-real).
const callShapedFormat = `{"type":"object","properties":{"name":{"type":"string","enum":["get_weather"]},"arguments":{"type":"object","properties":{"city":{"type":"string","enum":["Paris"]}},"required":["city"]}},"required":["name","arguments"]}`

// TestOllamaProtocol checks, with the real client and raw HTTP, the protocol facts
// docket relies on. It runs against the fake always, and also against a real Ollama
// at OLLAMA_HOST when DOCKET_TEST_OLLAMA=1, so the fake is held to what Ollama
// actually does. The model (DOCKET_TEST_OLLAMA_MODEL, default "docket-tiny") is the
// tiny one of ../shared/ollama-real created from its Modelfile.chatml, whose template
// turns call-shaped JSON into native tool calls.
func TestOllamaProtocol(t *testing.T) {
	type target struct {
		name, base, model string
	}
	f := testkit.NewFakeOllama(t)
	f.On(testkit.OffersTool("get_weather")).CallTool("get_weather", map[string]any{"city": "Paris"})
	f.Default().Reply("The quick brown fox jumps over the lazy dog.")
	targets := []target{{"fake", f.URL, "qwen3:4b"}}
	if os.Getenv("DOCKET_TEST_OLLAMA") == "1" {
		m := os.Getenv("DOCKET_TEST_OLLAMA_MODEL")
		if m == "" {
			m = "docket-tiny"
		}
		host := os.Getenv("OLLAMA_HOST")
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		targets = append(targets, target{"real", host, m})
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			u, err := url.Parse(tg.base)
			if err != nil {
				t.Fatal(err)
			}
			c := api.NewClient(u, http.DefaultClient)
			ctx := context.Background()
			// Short answers: a real model that repeats a token 30 times is cut off without
			// a done chunk (see Unfinished); call-shaped JSON needs room to close.
			opts := map[string]any{"num_predict": 16, "num_ctx": 2048, "temperature": 0}
			callOpts := map[string]any{"num_predict": 256, "num_ctx": 2048, "temperature": 0}

			t.Run("heartbeat and version", func(t *testing.T) {
				if err := c.Heartbeat(ctx); err != nil {
					t.Fatal(err)
				}
				v, err := c.Version(ctx)
				if err != nil || v == "" {
					t.Fatalf("version %q, %v", v, err)
				}
			})
			t.Run("list and show", func(t *testing.T) {
				l, err := c.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.ContainsFunc(l.Models, func(m api.ListModelResponse) bool { return strings.HasPrefix(m.Name, tg.model) }) {
					t.Fatalf("%s not in %+v", tg.model, l.Models)
				}
				s, err := c.Show(ctx, &api.ShowRequest{Model: tg.model})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(s.Capabilities, "completion") || !slices.Contains(s.Capabilities, "tools") {
					t.Fatalf("capabilities %v", s.Capabilities)
				}
			})
			t.Run("streamed chat", func(t *testing.T) {
				got := chat(t, c, &api.ChatRequest{Model: tg.model, Messages: user("hi"), Options: opts})
				if len(got) < 3 {
					t.Fatalf("want several chunks, got %d", len(got))
				}
				for _, r := range got[:len(got)-1] {
					if r.Done || r.Message.Role != "assistant" {
						t.Fatalf("non-final chunk %+v", r)
					}
				}
				last := got[len(got)-1]
				if !last.Done || (last.DoneReason != "stop" && last.DoneReason != "length") {
					t.Fatalf("final chunk %+v", last)
				}
				if last.EvalCount == 0 || last.PromptEvalCount == 0 || last.TotalDuration == 0 || last.EvalDuration == 0 {
					t.Fatalf("final chunk lacks metrics: %+v", last.Metrics)
				}
				if joined(got).Content == "" {
					t.Fatal("no text")
				}
			})
			t.Run("non-streamed chat", func(t *testing.T) {
				got := chat(t, c, &api.ChatRequest{Model: tg.model, Messages: user("hi"), Options: opts, Stream: ptr(false)})
				if len(got) != 1 || !got[0].Done || got[0].Message.Content == "" || got[0].EvalCount == 0 {
					t.Fatalf("want one complete response, got %+v", got)
				}
			})
			t.Run("tool call", func(t *testing.T) {
				for _, stream := range []bool{true, false} {
					got := chat(t, c, &api.ChatRequest{
						Model: tg.model, Messages: user("weather in Paris?"), Options: callOpts, Stream: &stream,
						Tools: api.Tools{weatherTool()}, Format: json.RawMessage(callShapedFormat),
					})
					calls := joined(got).ToolCalls
					if len(calls) != 1 {
						t.Fatalf("stream=%v: want one tool call, got %+v", stream, got)
					}
					city, _ := calls[0].Function.Arguments.Get("city")
					if calls[0].Function.Name != "get_weather" || city != "Paris" || !strings.HasPrefix(calls[0].ID, "call_") {
						t.Fatalf("stream=%v: call %+v", stream, calls[0])
					}
				}
			})
			t.Run("missing model", func(t *testing.T) {
				err := c.Chat(ctx, &api.ChatRequest{Model: "nope:1b", Messages: user("hi")}, func(api.ChatResponse) error { return nil })
				se := statusError(t, err)
				if se.StatusCode != http.StatusNotFound || se.ErrorMessage != "model 'nope:1b' not found" {
					t.Fatalf("got %d %q", se.StatusCode, se.ErrorMessage)
				}
				_, err = c.Show(ctx, &api.ShowRequest{Model: "nope:1b"})
				if se := statusError(t, err); se.StatusCode != http.StatusNotFound || se.ErrorMessage != "model 'nope:1b' not found" {
					t.Fatalf("show: got %d %q", se.StatusCode, se.ErrorMessage)
				}
			})
			t.Run("wire format", func(t *testing.T) {
				post := func(body string) *http.Response {
					t.Helper()
					resp, err := http.Post(tg.base+"/api/chat", "application/json", strings.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { resp.Body.Close() })
					return resp
				}
				msgs := `"messages":[{"role":"user","content":"hi"}],"options":{"num_predict":8}`
				resp := post(`{"model":"` + tg.model + `",` + msgs + `}`)
				if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
					t.Fatalf("stream absent: %d %q", resp.StatusCode, ct)
				}
				sc := bufio.NewScanner(resp.Body)
				lines := 0
				var last map[string]any
				for sc.Scan() {
					lines++
					last = nil
					if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
						t.Fatalf("line %d is not JSON: %q", lines, sc.Text())
					}
				}
				if lines < 2 || last["done"] != true {
					t.Fatalf("%d lines, last %v", lines, last)
				}

				resp = post(`{"model":"` + tg.model + `","stream":false,` + msgs + `}`)
				if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json; charset=utf-8" {
					t.Fatalf("stream false: %d %q", resp.StatusCode, ct)
				}
				var one map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&one); err != nil || one["done"] != true {
					t.Fatalf("stream false: %v %v", one, err)
				}

				resp = post(`{"model":"nope:1b",` + msgs + `}`)
				var e map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 404 || e["error"] != "model 'nope:1b' not found" {
					t.Fatalf("missing model: %d %v %v", resp.StatusCode, e, err)
				}
			})
		})
	}
}

func TestFakeOllamaStreamsScriptedTextToClientFromEnvironment(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.On(testkit.LastUserContains("hello")).Reply("Hello there, how can I help?")
	t.Setenv("OLLAMA_HOST", f.URL)
	c, err := api.ClientFromEnvironment()
	if err != nil {
		t.Fatal(err)
	}

	got := chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hello")})
	if len(got) != 7 { // six words and the final chunk
		t.Fatalf("want 7 chunks, got %d: %+v", len(got), got)
	}
	if got[0].Message.Content != "Hello" || got[1].Message.Content != " there," {
		t.Fatalf("chunks %q %q", got[0].Message.Content, got[1].Message.Content)
	}
	if m := joined(got); m.Content != "Hello there, how can I help?" || m.Thinking != "" || len(m.ToolCalls) != 0 {
		t.Fatalf("assembled %+v", m)
	}
	last := got[len(got)-1]
	if !last.Done || last.DoneReason != "stop" || last.Message.Content != "" || last.Model != "qwen3:4b" || last.EvalCount != 6 {
		t.Fatalf("final chunk %+v", last)
	}
}

func TestFakeOllamaNonStreamedReplyIsOneObject(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.On(testkit.LastUserContains("refund")).Reply("Checking the order.").CallTool("lookup_order", map[string]any{"id": 7})

	got := chat(t, client(t, f), &api.ChatRequest{Model: "qwen3:4b", Messages: user("refund please"), Stream: ptr(false)})
	if len(got) != 1 {
		t.Fatalf("want one response, got %d", len(got))
	}
	r := got[0]
	if !r.Done || r.DoneReason != "stop" || r.Message.Content != "Checking the order." || r.EvalCount == 0 || r.TotalDuration == 0 {
		t.Fatalf("response %+v", r)
	}
	if len(r.Message.ToolCalls) != 1 || r.Message.ToolCalls[0].Function.Name != "lookup_order" {
		t.Fatalf("tool calls %+v", r.Message.ToolCalls)
	}
	if id, _ := r.Message.ToolCalls[0].Function.Arguments.Get("id"); id != float64(7) {
		t.Fatalf("argument id = %v", id)
	}
}

// A scripted conversation: the prompt makes the model ask for approval, the tool
// result makes it answer. The result names its call only by tool_call_id.
func TestFakeOllamaToolCallConversation(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.On(testkit.LastUserContains("refund")).CallTool("request_human_approval", map[string]any{
		"title": "Refund order 7", "description": "Customer asks for a refund",
	})
	approved := f.On(testkit.LastToolResult("request_human_approval"), testkit.LastContains("approved")).Reply("Refund issued.")
	f.On(testkit.LastToolResult("request_human_approval")).Reply("Refund not issued.")
	c := client(t, f)

	msgs := user("please refund order 7")
	got := chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: msgs})
	calls := joined(got).ToolCalls
	if len(calls) != 1 {
		t.Fatalf("want one call, got %+v", got)
	}
	call := calls[0]
	title, _ := call.Function.Arguments.Get("title")
	if call.Function.Name != "request_human_approval" || title != "Refund order 7" || call.Function.Index != 0 || len(call.ID) != len("call_")+8 {
		t.Fatalf("call %+v", call)
	}
	if joined(got).Content != "" {
		t.Fatalf("a pure tool call has no text, got %q", joined(got).Content)
	}

	msgs = append(msgs,
		api.Message{Role: "assistant", ToolCalls: calls},
		api.Message{Role: "tool", ToolCallID: call.ID, Content: "approved by ana"},
	)
	if m := joined(chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: msgs})); m.Content != "Refund issued." {
		t.Fatalf("after approval: %+v", m)
	}
	msgs[len(msgs)-1].Content = "denied by ana: no receipt"
	if m := joined(chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: msgs})); m.Content != "Refund not issued." {
		t.Fatalf("after denial: %+v", m)
	}
	if approved.Hits() != 1 {
		t.Fatalf("approved rule hits = %d", approved.Hits())
	}
}

func TestFakeOllamaSeveralToolCallsInOneTurn(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.On(testkit.LastUserContains("both")).
		Reply("Doing both.").
		CallTool("memory_read", map[string]any{"path": "a.md"}).
		CallTools(api.ToolCall{ID: "call_fixed", Function: api.ToolCallFunction{Name: "memory_list"}})

	got := chat(t, client(t, f), &api.ChatRequest{Model: "qwen3:4b", Messages: user("do both")})
	// The calls come together in one chunk after the text, as Ollama's parser emits them.
	withCalls := slices.IndexFunc(got, func(r api.ChatResponse) bool { return len(r.Message.ToolCalls) > 0 })
	if withCalls != len(got)-2 || len(got[withCalls].Message.ToolCalls) != 2 {
		t.Fatalf("tool calls not in one chunk before the final one: %+v", got)
	}
	m := joined(got)
	if m.Content != "Doing both." {
		t.Fatalf("text %q", m.Content)
	}
	a, b := m.ToolCalls[0], m.ToolCalls[1]
	if a.Function.Name != "memory_read" || a.Function.Index != 0 || !strings.HasPrefix(a.ID, "call_") || a.ID == "call_fixed" {
		t.Fatalf("first call %+v", a)
	}
	if b.Function.Name != "memory_list" || b.Function.Index != 1 || b.ID != "call_fixed" || b.Function.Arguments.Len() != 0 {
		t.Fatalf("second call %+v", b)
	}
}

func TestFakeOllamaRuleOrderLimitsAndDefault(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	ask := func(text string) string {
		t.Helper()
		return joined(chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user(text)})).Content
	}

	if got := ask("anything"); got != testkit.FakeDefaultReply {
		t.Fatalf("unscripted reply %q", got)
	}
	f.On(testkit.LastUserContains("x")) // no reply scripted: never answers
	once := f.On(testkit.LastUserContains("x")).Reply("first").Once()
	twice := f.On(testkit.LastUserContains("x")).Reply("second").Times(2)
	f.On(testkit.LastUserContains("x")).Reply("always")
	f.Default().Reply("fallback")

	var got []string
	for range 5 {
		got = append(got, ask("x"))
	}
	if want := []string{"first", "second", "second", "always", "always"}; !slices.Equal(got, want) {
		t.Fatalf("replies %q, want %q", got, want)
	}
	if once.Hits() != 1 || twice.Hits() != 2 {
		t.Fatalf("hits once=%d twice=%d", once.Hits(), twice.Hits())
	}
	if got := ask("y"); got != "fallback" {
		t.Fatalf("default reply %q", got)
	}
	if f.Default().Hits() != 2 {
		t.Fatalf("default hits %d", f.Default().Hits())
	}
}

func TestFakeOllamaReplyFunc(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.On(testkit.ModelIs("qwen3:4b")).ReplyFunc(func(req *api.ChatRequest) api.Message {
		last := req.Messages[len(req.Messages)-1]
		return api.Message{Content: strings.ToUpper(last.Content), ToolCalls: []api.ToolCall{testkit.NewToolCall("echo", map[string]any{"n": len(req.Messages)})}}
	})
	m := joined(chat(t, client(t, f), &api.ChatRequest{Model: "qwen3:4b", Messages: user("shout this")}))
	if m.Content != "SHOUT THIS" || len(m.ToolCalls) != 1 || m.ToolCalls[0].ID == "" {
		t.Fatalf("reply %+v", m)
	}
	if n, _ := m.ToolCalls[0].Function.Arguments.Get("n"); n != float64(1) {
		t.Fatalf("n = %v", n)
	}
}

func TestFakeOllamaMatchers(t *testing.T) {
	call := api.ToolCall{ID: "call_1", Function: api.ToolCallFunction{Name: "http_request"}}
	conv := &api.ChatRequest{
		Model:  "QWEN3:4b",
		Format: json.RawMessage(`{"type":"object"}`),
		Tools:  api.Tools{weatherTool()},
		Messages: []api.Message{
			{Role: "system", Content: "You triage refunds."},
			{Role: "user", Content: "refund order 7"},
			{Role: "assistant", ToolCalls: []api.ToolCall{call}},
			{Role: "tool", ToolCallID: "call_1", Content: "HTTP 200"},
		},
	}
	named := &api.ChatRequest{Model: "qwen3", Messages: []api.Message{{Role: "tool", ToolName: "memory_read", Content: "notes"}}}
	prompt := &api.ChatRequest{Model: "qwen3:4b", Messages: user("refund order 7")}
	empty := &api.ChatRequest{Model: "qwen3:4b"}

	cases := []struct {
		name string
		m    testkit.ChatMatcher
		req  *api.ChatRequest
		want bool
	}{
		{"last user contains", testkit.LastUserContains("refund"), prompt, true},
		{"last user contains, conversation moved on", testkit.LastUserContains("refund"), conv, false},
		{"last user contains, empty", testkit.LastUserContains(""), empty, false},
		{"any user contains", testkit.AnyUserContains("order 7"), conv, true},
		{"any user contains, absent", testkit.AnyUserContains("order 8"), conv, false},
		{"last contains", testkit.LastContains("200"), conv, true},
		{"last role", testkit.LastRole("tool"), conv, true},
		{"last role, other", testkit.LastRole("user"), conv, false},
		{"tool result by call id", testkit.LastToolResult("http_request"), conv, true},
		{"tool result by tool name", testkit.LastToolResult("memory_read"), named, true},
		{"tool result, other tool", testkit.LastToolResult("memory_read"), conv, false},
		{"tool result, last is user", testkit.LastToolResult("http_request"), prompt, false},
		{"system contains", testkit.SystemContains("triage"), conv, true},
		{"system contains, no system", testkit.SystemContains("triage"), prompt, false},
		{"model, case-insensitive", testkit.ModelIs("qwen3:4b"), conv, true},
		{"model, tag defaults to latest", testkit.ModelIs("qwen3:latest"), named, true},
		{"model, other tag", testkit.ModelIs("qwen3:8b"), conv, false},
		{"turn 1", testkit.Turn(1), prompt, true},
		{"turn 2", testkit.Turn(2), conv, true},
		{"turn 1, second call", testkit.Turn(1), conv, false},
		{"offers tool", testkit.OffersTool("get_weather"), conv, true},
		{"offers tool, absent", testkit.OffersTool("http_request"), conv, false},
		{"has format", testkit.HasFormat(), conv, true},
		{"has format, absent", testkit.HasFormat(), prompt, false},
		{"any of", testkit.AnyOf(testkit.LastRole("user"), testkit.LastRole("tool")), conv, true},
		{"any of, none", testkit.AnyOf(testkit.LastRole("user")), conv, false},
		{"not", testkit.Not(testkit.HasFormat()), prompt, true},
	}
	for _, tc := range cases {
		if got := tc.m(tc.req); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFakeOllamaThinking(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.Default().Think("The user greets me.").Reply("Hi!")
	c := client(t, f)

	got := chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi"), Think: &api.ThinkValue{Value: true}})
	if m := joined(got); m.Thinking != "The user greets me." || m.Content != "Hi!" {
		t.Fatalf("think=true: %+v", m)
	}
	if got[0].Message.Thinking == "" || got[0].Message.Content != "" {
		t.Fatalf("thinking must stream before text: %+v", got[0])
	}
	if m := joined(chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi"), Think: &api.ThinkValue{Value: false}})); m.Thinking != "" || m.Content != "Hi!" {
		t.Fatalf("think=false: %+v", m)
	}
	err := c.Chat(context.Background(), &api.ChatRequest{Model: "gemma3:1b", Messages: user("hi"), Think: &api.ThinkValue{Value: true}}, func(api.ChatResponse) error { return nil })
	if se := statusError(t, err); se.StatusCode != 400 || se.ErrorMessage != `"gemma3:1b" does not support thinking` {
		t.Fatalf("think on a model without thinking: %d %q", se.StatusCode, se.ErrorMessage)
	}
}

func TestFakeOllamaFormatRepliesScriptedJSON(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	const answer = `{"tool": "complete_case", "arguments": {"case_id": "c1", "result": "ok"}}`
	f.On(testkit.HasFormat()).Reply(answer)
	schema := json.RawMessage(`{"type":"object","properties":{"tool":{"type":"string"}},"required":["tool"]}`)

	for _, stream := range []bool{true, false} {
		m := joined(chat(t, client(t, f), &api.ChatRequest{Model: "gemma3:1b", Messages: user("next"), Format: schema, Stream: &stream}))
		if m.Content != answer {
			t.Fatalf("stream=%v: content %q", stream, m.Content)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(m.Content), &v); err != nil {
			t.Fatalf("stream=%v: not JSON: %v", stream, err)
		}
	}
	if got := f.Requests()[0].Format; string(got) != string(schema) {
		t.Fatalf("recorded format %s", got)
	}
}

func TestFakeOllamaModels(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	ctx := context.Background()

	l, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range l.Models {
		names = append(names, m.Name)
		if len(m.Digest) != 64 || m.Size == 0 || m.Details.Format != "gguf" || m.ModifiedAt.IsZero() {
			t.Errorf("model %+v", m)
		}
	}
	if !slices.Equal(names, []string{"qwen3:4b", "gemma3:1b"}) {
		t.Fatalf("models %v", names)
	}

	s, err := c.Show(ctx, &api.ShowRequest{Model: "qwen3:4b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Capabilities, []model.Capability{"completion", "tools", "thinking"}) ||
		s.Details.Family != "qwen3" || s.ModelInfo["qwen3.context_length"] != float64(262144) {
		t.Fatalf("show qwen3 %+v", s)
	}
	if s, err := c.Show(ctx, &api.ShowRequest{Name: "gemma3:1b"}); err != nil || slices.Contains(s.Capabilities, "tools") {
		t.Fatalf("show gemma3: %v %v", s, err)
	}

	chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi"), Options: map[string]any{"num_ctx": 16384}})
	ps, err := c.ListRunning(ctx)
	if err != nil || len(ps.Models) != 1 || ps.Models[0].Name != "qwen3:4b" || ps.Models[0].ContextLength != 16384 {
		t.Fatalf("ps %+v %v", ps, err)
	}

	f.SetModels(testkit.FakeModel{Name: "llama3.2", Capabilities: []string{"completion", "tools"}})
	if l, err := c.List(ctx); err != nil || len(l.Models) != 1 || l.Models[0].Name != "llama3.2:latest" {
		t.Fatalf("after SetModels: %+v %v", l, err)
	}
	if got := chat(t, c, &api.ChatRequest{Model: "llama3.2", Messages: user("hi"), Tools: api.Tools{weatherTool()}}); !got[len(got)-1].Done {
		t.Fatal("chat with the new model did not finish")
	}
	_, err = c.Show(ctx, &api.ShowRequest{Model: "qwen3:4b"})
	if se := statusError(t, err); se.StatusCode != 404 {
		t.Fatalf("removed model: %v", se)
	}
	f.SetModels()
	if l, err := c.List(ctx); err != nil || l.Models == nil || len(l.Models) != 0 {
		t.Fatalf("no models: %+v %v", l, err)
	}
}

func TestFakeOllamaRequestErrors(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	noop := func(api.ChatResponse) error { return nil }
	cases := []struct {
		name   string
		req    *api.ChatRequest
		status int
		msg    string
	}{
		{"missing model", &api.ChatRequest{Model: "nope:1b", Messages: user("hi")}, 404, "model 'nope:1b' not found"},
		{"no model", &api.ChatRequest{Messages: user("hi")}, 400, "model is required"},
		{"tools on a model without tools", &api.ChatRequest{Model: "gemma3:1b", Messages: user("hi"), Tools: api.Tools{weatherTool()}}, 400,
			"registry.ollama.ai/library/gemma3:1b does not support tools"},
	}
	for _, tc := range cases {
		for _, stream := range []bool{true, false} {
			tc.req.Stream = &stream
			se := statusError(t, c.Chat(context.Background(), tc.req, noop))
			if se.StatusCode != tc.status || se.ErrorMessage != tc.msg {
				t.Errorf("%s (stream=%v): got %d %q, want %d %q", tc.name, stream, se.StatusCode, se.ErrorMessage, tc.status, tc.msg)
			}
		}
	}

	got := chat(t, c, &api.ChatRequest{Model: "qwen3:4b"})
	if len(got) != 1 || !got[0].Done || got[0].DoneReason != "load" {
		t.Fatalf("empty conversation: %+v", got)
	}
}

func TestFakeOllamaInjectedFailures(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	call := func(text string) error {
		return c.Chat(context.Background(), &api.ChatRequest{Model: "qwen3:4b", Messages: user(text)}, func(api.ChatResponse) error { return nil })
	}

	f.FailNext(2, http.StatusInternalServerError, "boom")
	for i := range 2 {
		if se := statusError(t, call("hi")); se.StatusCode != 500 || se.ErrorMessage != "boom" {
			t.Fatalf("failure %d: %v", i, se)
		}
	}
	if err := call("hi"); err != nil {
		t.Fatalf("third call: %v", err)
	}

	f.On(testkit.LastUserContains("overload")).Fail(http.StatusServiceUnavailable, "server busy, please try again.  maximum pending requests exceeded").Once()
	if se := statusError(t, call("overload")); se.StatusCode != 503 || !strings.Contains(se.ErrorMessage, "server busy") {
		t.Fatalf("rule failure: %v", se)
	}
	if err := call("overload"); err != nil {
		t.Fatalf("after the one failure: %v", err)
	}
	if f.ChatCount() != 5 {
		t.Fatalf("failed requests are recorded too: count %d", f.ChatCount())
	}

	// An injected failure answers at once, even while requests are being held.
	f.Block()
	f.FailNext(1, http.StatusBadGateway, "upstream gone")
	if se := statusError(t, call("hi")); se.StatusCode != 502 || f.Held() != 0 {
		t.Fatalf("failure while blocked: %v, held %d", se, f.Held())
	}
	f.Release()

	f.On(testkit.LastUserContains("bad script")).CallTool("x", map[string]any{"ch": make(chan int)})
	if se := statusError(t, call("bad script")); se.StatusCode != 500 || !strings.Contains(se.ErrorMessage, "does not encode as JSON") {
		t.Fatalf("unencodable script: %v", se)
	}
}

// Ollama cuts off a generation that repeats a token and ends the reply without a done
// chunk and without an error; a client has to notice on its own.
func TestFakeOllamaUnfinishedReply(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.Default().Reply("[[[ [[[ [[[").Unfinished()
	c := client(t, f)

	got := chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")})
	if len(got) != 3 || joined(got).Content != "[[[ [[[ [[[" || slices.ContainsFunc(got, func(r api.ChatResponse) bool { return r.Done }) {
		t.Fatalf("streamed: %+v", got)
	}
	got = chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi"), Stream: ptr(false)})
	if len(got) != 1 || got[0].Done || got[0].DoneReason != "" || got[0].EvalCount != 0 || got[0].Message.Content != "[[[ [[[ [[[" {
		t.Fatalf("not streamed: %+v", got)
	}
}

func TestFakeOllamaRecordsRequests(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	req := &api.ChatRequest{
		Model:    "qwen3:4b",
		Messages: append([]api.Message{{Role: "system", Content: "SOP"}}, user("go")...),
		Tools:    api.Tools{weatherTool()},
		Options:  map[string]any{"num_ctx": 16384, "temperature": 0.2},
		Format:   json.RawMessage(`"json"`),
		Think:    &api.ThinkValue{Value: false},
		Stream:   ptr(false),
	}
	chat(t, c, req)
	chat(t, c, &api.ChatRequest{Model: "gemma3:1b", Messages: user("second")})

	got := f.Requests()
	if len(got) != 2 || f.ChatCount() != 2 {
		t.Fatalf("recorded %d, count %d", len(got), f.ChatCount())
	}
	r := got[0]
	if r.Model != "qwen3:4b" || len(r.Messages) != 2 || r.Messages[0].Content != "SOP" ||
		len(r.Tools) != 1 || r.Tools[0].Function.Name != "get_weather" ||
		r.Options["num_ctx"] != float64(16384) || string(r.Format) != `"json"` ||
		r.Think == nil || r.Think.Bool() || r.Stream == nil || *r.Stream {
		t.Fatalf("recorded request %+v", r)
	}
	if got[1].Stream != nil || got[1].Model != "gemma3:1b" {
		t.Fatalf("second request %+v", got[1])
	}
	got[0].Messages[0].Content = "changed"
	if f.Requests()[0].Messages[0].Content != "SOP" {
		t.Fatal("Requests must return copies")
	}

	f.SetRecording(false)
	chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("unrecorded")})
	waitRequests(t, f, 3)
	if len(f.Requests()) != 2 || f.ChatCount() != 3 {
		t.Fatalf("recording off: kept %d, count %d", len(f.Requests()), f.ChatCount())
	}
}

func TestFakeOllamaOnArrival(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	var mu sync.Mutex
	var arrivals []testkit.ChatArrival
	f.OnArrival(func(a testkit.ChatArrival) {
		mu.Lock()
		defer mu.Unlock()
		arrivals = append(arrivals, a)
	})
	c := client(t, f)
	before := time.Now()
	chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("one")})
	chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("two")})
	after := time.Now()

	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 2 {
		t.Fatalf("arrivals %d", len(arrivals))
	}
	for i, a := range arrivals {
		if a.Seq != i+1 || a.At.Before(before) || a.At.After(after) || a.Request.Messages[0].Content != []string{"one", "two"}[i] {
			t.Fatalf("arrival %d: %+v", i, a)
		}
	}
	if !arrivals[0].At.Before(arrivals[1].At) {
		t.Fatal("arrival times out of order")
	}
}

func TestFakeOllamaBlockHoldsUntilCancelOrRelease(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	f.Block()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- c.Chat(ctx, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")}, func(api.ChatResponse) error { return nil })
	}()
	waitRequests(t, f, 1)
	if f.Held() != 1 {
		t.Fatalf("held %d", f.Held())
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	eventually(t, "the held request to end", func() bool { return f.Held() == 0 })

	replies := make(chan string, 1)
	go func() {
		var m []api.ChatResponse
		err := c.Chat(context.Background(), &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")}, func(r api.ChatResponse) error {
			m = append(m, r)
			return nil
		})
		replies <- fmt.Sprint(joined(m).Content, err)
	}()
	waitRequests(t, f, 2)
	f.Release()
	if got := <-replies; got != testkit.FakeDefaultReply+"<nil>" {
		t.Fatalf("released call: %q", got)
	}
	if m := joined(chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")})); m.Content != testkit.FakeDefaultReply {
		t.Fatalf("after release: %+v", m)
	}
}

func TestFakeOllamaCloseCutsHeldCallsAndRefusesNewOnes(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	f.Block()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Chat(context.Background(), &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")}, func(api.ChatResponse) error { return nil })
	}()
	waitRequests(t, f, 1)
	f.Close()
	if err := <-errc; err == nil {
		t.Fatal("a call cut off by Close must fail")
	}
	if err := c.Heartbeat(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("after Close: %v", err)
	}
}

func TestFakeOllamaTokenDelay(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	f.Default().Reply("one two three")
	c := client(t, f)

	f.SetTokenDelay(20 * time.Millisecond)
	start := time.Now()
	chat(t, c, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi")})
	if d := time.Since(start); d < 80*time.Millisecond { // three words and the final chunk
		t.Fatalf("streamed in %v despite the delay", d)
	}

	f.SetTokenDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- c.Chat(ctx, &api.ChatRequest{Model: "qwen3:4b", Messages: user("hi"), Stream: ptr(false)}, func(api.ChatResponse) error { return nil })
	}()
	waitRequests(t, f, 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled slow call: %v", err)
	}
}

// Many conversations at once, with rules added while requests flow; run with -race.
func TestFakeOllamaConcurrentConversations(t *testing.T) {
	f := testkit.NewFakeOllama(t)
	c := client(t, f)
	f.Default().ReplyFunc(func(req *api.ChatRequest) api.Message {
		return api.Message{Content: "echo " + req.Messages[len(req.Messages)-1].Content}
	})
	const workers, calls = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			tag := fmt.Sprintf("<worker %d>", w)
			rule := f.On(testkit.LastUserContains(tag), testkit.Turn(1)).CallTool("memory_write", map[string]any{"path": tag})
			for i := range calls {
				stream := i%2 == 0
				var got []api.ChatResponse
				err := c.Chat(context.Background(), &api.ChatRequest{Model: "qwen3:4b", Messages: user(tag), Stream: &stream}, func(r api.ChatResponse) error {
					got = append(got, r)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				m := joined(got)
				if len(m.ToolCalls) != 1 {
					errs <- fmt.Errorf("%s call %d: %+v", tag, i, m)
					return
				}
				if p, _ := m.ToolCalls[0].Function.Arguments.Get("path"); p != tag {
					errs <- fmt.Errorf("%s got another worker's call: %v", tag, p)
					return
				}
				f.ChatCount()
			}
			f.Requests()
			if rule.Hits() != calls {
				errs <- fmt.Errorf("%s rule hits %d", tag, rule.Hits())
			}
			// Past turn 1 the worker's rule no longer matches and the default answers.
			var got []api.ChatResponse
			err := c.Chat(context.Background(), &api.ChatRequest{Model: "qwen3:4b", Messages: append(user(tag), api.Message{Role: "assistant"}, api.Message{Role: "user", Content: "again"})}, func(r api.ChatResponse) error {
				got = append(got, r)
				return nil
			})
			if m := joined(got); err != nil || m.Content != "echo again" {
				errs <- fmt.Errorf("%s default: %+v %v", tag, m, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.ChatCount(); n != workers*(calls+1) {
		t.Fatalf("count %d", n)
	}
}
