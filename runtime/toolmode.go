package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// modeCache remembers, per model, the tool mode auto picks: /api/show is asked once per
// model per process (a model re-created under the same name with another template is
// seen after a restart).
type modeCache struct {
	mu    sync.Mutex
	modes map[string]string
}

// AutoToolMode is the tool mode auto picks for a model: native when /api/show reports
// the "tools" capability, constrained otherwise. It also returns the capabilities.
func AutoToolMode(ctx context.Context, m Model, name string) (string, []string, error) {
	show, err := m.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		return "", nil, err
	}
	caps := make([]string, len(show.Capabilities))
	for i, c := range show.Capabilities {
		caps[i] = string(c)
	}
	if slices.Contains(show.Capabilities, model.CapabilityTools) {
		return ToolModeNative, caps, nil
	}
	return ToolModeConstrained, caps, nil
}

func (c *modeCache) get(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.modes[name]
	return m, ok
}

func (c *modeCache) put(name, mode string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.modes == nil {
		c.modes = map[string]string{}
	}
	c.modes[name] = mode
}

// constrainedFormat is the JSON schema a constrained turn's answer must satisfy: one
// object that is either a call of one offered tool, its arguments bound to that tool's
// schema, or a final answer. tool_choice leaves out the final answer (required) or
// every other tool (a tool's name).
func constrainedFormat(tools []*Tool, schemas map[string]jsonObject, choice string) (json.RawMessage, error) {
	var branches []any
	for _, t := range tools {
		if choice != "auto" && choice != "required" && choice != t.Name {
			continue
		}
		branches = append(branches, jsonObject{
			{"type", "object"},
			{"properties", jsonObject{
				{"tool", jsonObject{{"const", t.Name}}},
				{"arguments", grammarSchema(schemas[t.Name])},
			}},
			{"required", []any{"tool", "arguments"}},
		})
	}
	if choice == "auto" {
		branches = append(branches, jsonObject{
			{"type", "object"},
			{"properties", jsonObject{{"final", jsonObject{{"type", "string"}}}}},
			{"required", []any{"final"}},
		})
	}
	var schema any
	switch len(branches) {
	case 0:
		return nil, &runError{fmt.Sprintf("options.tool_choice is %q, but the setup offers no such tool: enable it in tools, or set tool_choice to auto", choice)}
	case 1:
		schema = branches[0]
	default:
		schema = jsonObject{{"anyOf", branches}}
	}
	return json.Marshal(schema)
}

// constrainedPrompt tells the model the answer protocol and the tools, since in
// constrained mode Ollama is not given them (the model may have no tool template).
func constrainedPrompt(tools []*Tool, schemas map[string]jsonObject, choice string) string {
	var b strings.Builder
	b.WriteString("Answer with exactly one JSON object and nothing else.\n")
	switch choice {
	case "auto":
		b.WriteString("To call a tool: {\"tool\": \"<tool name>\", \"arguments\": {<arguments>}}\n")
		b.WriteString("When you are done: {\"final\": \"<your answer>\"}\n")
	case "required":
		b.WriteString("Call one tool on every turn: {\"tool\": \"<tool name>\", \"arguments\": {<arguments>}}\n")
	default:
		fmt.Fprintf(&b, "Call %s: {\"tool\": %q, \"arguments\": {<arguments>}}\n", choice, choice)
	}
	b.WriteString("A tool's result comes back in the next message.")
	if len(tools) > 0 {
		b.WriteString("\n\nTools:")
	}
	for _, t := range tools {
		args, _ := json.Marshal(schemas[t.Name])
		fmt.Fprintf(&b, "\n- %s: %s\n  arguments: %s", t.Name, t.Description, args)
	}
	return b.String()
}

// constrainedMessages rewrites a prompt built for native tool calling into plain turns
// any chat template renders: the assistant's calls and answers as the JSON objects it
// wrote, tool results as user messages that name their call.
func constrainedMessages(msgs []api.Message, protocol string) []api.Message {
	out := make([]api.Message, 0, len(msgs)+1)
	at := 0
	for at < len(msgs) && msgs[at].Role == "system" {
		out = append(out, msgs[at])
		at++
	}
	out = append(out, api.Message{Role: "system", Content: protocol})
	for _, m := range msgs[at:] {
		switch {
		case m.Role == "assistant" && len(m.ToolCalls) > 0:
			if strings.TrimSpace(m.Content) != "" {
				out = append(out, api.Message{Role: "assistant", Content: finalJSON(m.Content)})
			}
			for _, c := range m.ToolCalls {
				args, _ := json.Marshal(c.Function.Arguments)
				name, _ := json.Marshal(c.Function.Name)
				out = append(out, api.Message{Role: "assistant", Content: fmt.Sprintf(`{"tool":%s,"arguments":%s}`, name, args)})
			}
		case m.Role == "assistant":
			out = append(out, api.Message{Role: "assistant", Content: finalJSON(m.Content)})
		case m.Role == "tool":
			out = append(out, api.Message{Role: "user", Content: fmt.Sprintf("Result of %s (%s):\n%s", m.ToolName, m.ToolCallID, m.Content)})
		default:
			out = append(out, m)
		}
	}
	return out
}

func finalJSON(text string) string {
	b, _ := json.Marshal(map[string]string{"final": text})
	return string(b)
}

// invalidReplyTool is the name a constrained answer that is not one of the two shapes is
// recorded under: it becomes a call whose result is the error, so the model sees what
// was wrong, and the run's history shows what it wrote.
const invalidReplyTool = "invalid_reply"

// parseConstrained reads a constrained answer: a final answer, or one call (whose
// arguments are checked later, against the tool's schema, like a native call's).
func parseConstrained(content string) (final string, isFinal bool, call toolCall) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(content), &obj); err == nil {
		if raw, ok := obj["final"]; ok && len(obj) == 1 {
			if err := json.Unmarshal(raw, &final); err == nil {
				return final, true, toolCall{}
			}
		}
		var name string
		args, hasArgs := obj["arguments"]
		if raw, ok := obj["tool"]; ok && hasArgs && len(obj) == 2 && json.Unmarshal(raw, &name) == nil && name != "" &&
			strings.HasPrefix(strings.TrimSpace(string(args)), "{") {
			return "", false, toolCall{name: name, args: args}
		}
	}
	// What it wrote, kept as a JSON string so the ledger's arguments stay JSON.
	raw, _ := json.Marshal(map[string]string{"reply": strings.ToValidUTF8(content, "\uFFFD")})
	return "", false, toolCall{name: invalidReplyTool, args: raw}
}

type toolCall struct {
	name string
	args json.RawMessage
}

// finalPrefix is how a constrained final answer begins, whitespace aside.
var finalPrefix = regexp.MustCompile(`^\s*\{\s*"final"\s*:\s*"`)

// finalStream turns the streamed JSON of a constrained answer into the text of its final
// answer as it grows, so listeners see the answer, not its JSON. A tool call streams
// nothing.
type finalStream struct {
	buf   strings.Builder
	start int // where the final string's content begins; 0: not (yet) a final answer
	pos   int // how far the content has been decoded
	done  bool
}

// feed adds a chunk and returns the answer text it completes.
func (f *finalStream) feed(chunk string) string {
	f.buf.WriteString(chunk)
	if f.done {
		return ""
	}
	s := f.buf.String()
	if f.start == 0 {
		loc := finalPrefix.FindStringIndex(s)
		if loc == nil {
			return ""
		}
		f.start, f.pos = loc[1], loc[1]
	}
	var out strings.Builder
	for f.pos < len(s) {
		c := s[f.pos]
		switch {
		case c == '"':
			f.done = true
			return out.String()
		case c == '\\':
			text, n := unescape(s[f.pos:])
			if n == 0 {
				return out.String() // the escape is not complete yet
			}
			out.WriteString(text)
			f.pos += n
		default:
			r, n := utf8.DecodeRuneInString(s[f.pos:])
			if r == utf8.RuneError && !utf8.FullRuneInString(s[f.pos:]) {
				return out.String()
			}
			out.WriteString(s[f.pos : f.pos+n])
			f.pos += n
		}
	}
	return out.String()
}

// unescape decodes the JSON escape at the start of s; n is 0 when s ends inside it.
func unescape(s string) (string, int) {
	if len(s) < 2 {
		return "", 0
	}
	switch s[1] {
	case 'u':
		if len(s) < 6 {
			return "", 0
		}
		r, err := strconv.ParseUint(s[2:6], 16, 32)
		if err != nil {
			return "\uFFFD", 6
		}
		return string(rune(r)), 6
	case 'n':
		return "\n", 2
	case 't':
		return "\t", 2
	case 'r':
		return "\r", 2
	case 'b':
		return "\b", 2
	case 'f':
		return "\f", 2
	}
	return s[1:2], 2 // \" \\ \/
}

// SmokeResult is one model turn made the way runs make them, for `docket doctor`.
type SmokeResult struct {
	Mode       string
	Took       time.Duration // as docket measured it
	Metrics    api.Metrics   // as Ollama reported it
	DoneReason string
	Answer     string
	Calls      int
}

// SmokeTurn asks the model one short question in mode (native: with one tool offered;
// constrained: with a bounded JSON schema in format) and checks that the answer came
// back whole. A constrained answer that ended normally must parse.
func SmokeTurn(ctx context.Context, m Model, name, mode string) (SmokeResult, error) {
	stream := true
	req := &api.ChatRequest{Model: name, Stream: &stream,
		Messages: []api.Message{{Role: "user", Content: "Reply with the single word: ready"}},
		Options:  map[string]any{"num_ctx": 2048, "num_predict": 64}}
	if mode == ToolModeConstrained {
		req.Format = json.RawMessage(`{"type":"object","properties":{"final":{"type":"string","maxLength":40}},"required":["final"]}`)
	} else {
		var params api.ToolFunctionParameters
		json.Unmarshal([]byte(`{"type":"object","properties":{}}`), &params)
		req.Tools = api.Tools{{Type: "function", Function: api.ToolFunction{Name: "ping", Description: "Checks that tools work; returns pong.", Parameters: params}}}
	}
	res := SmokeResult{Mode: mode}
	start := time.Now()
	var last api.ChatResponse
	err := m.Chat(ctx, req, func(r api.ChatResponse) error {
		res.Answer += r.Message.Content
		res.Calls += len(r.Message.ToolCalls)
		if r.Done {
			last = r
		}
		return nil
	})
	res.Took = time.Since(start)
	if err != nil {
		return res, err
	}
	if !last.Done {
		return res, fmt.Errorf("the answer ended before its final chunk")
	}
	res.Metrics, res.DoneReason = last.Metrics, last.DoneReason
	if mode == ToolModeConstrained && last.DoneReason == "stop" {
		var v struct {
			Final *string `json:"final"`
		}
		if json.Unmarshal([]byte(res.Answer), &v) != nil || v.Final == nil {
			return res, fmt.Errorf("the constrained answer %q is not the JSON asked for: this Ollama may not support format schemas (upgrade it)", res.Answer)
		}
	}
	return res, nil
}
