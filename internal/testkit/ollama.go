package testkit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// FakeOllamaVersion is what the fake reports on /api/version: the version of the
// ollama module whose wire types it speaks.
const FakeOllamaVersion = "0.17.4"

// FakeDefaultReply is the text the fake answers with when no rule matches, until
// Default() is scripted otherwise. A plain final answer keeps unscripted runs finite.
const FakeDefaultReply = "done"

// FakeModel is a model the fake "has pulled": listed by /api/tags, described by
// /api/show, accepted by /api/chat.
type FakeModel struct {
	// Name as Ollama spells it, e.g. "qwen3:4b". Matching follows Ollama's name rules
	// (case-insensitive, "x" means "x:latest").
	Name string
	// Capabilities as /api/show reports them: "completion", "tools", "thinking", ...
	// /api/chat refuses tools or think=true when the model lacks them, as Ollama does.
	Capabilities  []string
	Family        string
	ParameterSize string
	Quantization  string
	ContextLength int
}

// DefaultFakeModels are what a new fake has pulled: a tool-capable model like the
// project's default and a small one without a tool template (for constrained mode).
func DefaultFakeModels() []FakeModel {
	return []FakeModel{
		{Name: "qwen3:4b", Capabilities: []string{"completion", "tools", "thinking"}, Family: "qwen3", ParameterSize: "4.0B", Quantization: "Q4_K_M", ContextLength: 262144},
		{Name: "gemma3:1b", Capabilities: []string{"completion"}, Family: "gemma3", ParameterSize: "999.89M", Quantization: "Q4_K_M", ContextLength: 32768},
	}
}

// ChatMatcher decides whether a rule applies to a chat request. Matchers must treat
// the request as read-only.
type ChatMatcher func(req *api.ChatRequest) bool

// ChatArrival is what OnArrival callbacks receive: the moment a chat request reached
// the fake (before any injected failure, block or delay) and the decoded request,
// which is shared with the fake and must be treated as read-only.
type ChatArrival struct {
	Seq     int // 1-based arrival order; Requests()[Seq-1] is this request while recording
	At      time.Time
	Request api.ChatRequest
}

// FakeOllama is a scripted Ollama server on a loopback port. Its wire format is the
// ollama/api types', so a client that works against it works against Ollama:
// /api/chat streams NDJSON chunks (or one object with "stream": false), errors are
// {"error": "..."} with Ollama's status codes and messages.
//
// Replies come from rules checked in the order they were added; the first that
// matches and has uses left answers, else the default rule does. Safe for
// concurrent use.
type FakeOllama struct {
	URL string

	srv       *httptest.Server
	done      chan struct{} // closed by Close: held and delayed requests give up
	closeOnce sync.Once

	mu         sync.Mutex
	models     []FakeModel
	modified   time.Time
	rules      []*ChatRule // append-only, so handlers may range over a snapshot
	def        *ChatRule
	count      int           // chat requests received
	shows      int           // /api/show requests received
	requests   [][]byte      // raw chat bodies in arrival order; decoded afresh by Requests
	discard    bool          // SetRecording(false): keep no bodies
	arrived    chan struct{} // closed and replaced on every arrival, to wake WaitRequests
	onArrival  func(ChatArrival)
	failLeft   int
	failStatus int
	failMsg    string
	block      chan struct{} // non-nil while Block is in force; Release closes it
	held       int
	tokenDelay time.Duration
	loaded     map[string]int // model → context length of its last chat, for /api/ps
	// toolSets holds each distinct tools array decoded once: decoding Ollama's ordered
	// schema maps on every request cost more CPU than the engine the benchmarks measure.
	toolSets map[string]api.Tools
}

// NewFakeOllama starts a fake with DefaultFakeModels, closed when the test ends.
func NewFakeOllama(t testing.TB) *FakeOllama {
	t.Helper()
	f := &FakeOllama{
		done:     make(chan struct{}),
		models:   DefaultFakeModels(),
		modified: time.Now().UTC().Truncate(time.Second),
		arrived:  make(chan struct{}),
		loaded:   map[string]int{},
	}
	f.def = &ChatRule{f: f, set: true, reply: api.Message{Role: "assistant", Content: FakeDefaultReply}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", f.root) // GET patterns serve HEAD too
	mux.HandleFunc("GET /api/version", f.version)
	mux.HandleFunc("GET /api/tags", f.tags)
	mux.HandleFunc("GET /api/ps", f.ps)
	mux.HandleFunc("POST /api/show", f.show)
	mux.HandleFunc("POST /api/chat", f.chat)
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(f.Close)
	return f
}

// Close stops the server: later calls get "connection refused", as with Ollama down.
// Requests held by Block or a token delay are cut off. Safe to call more than once.
func (f *FakeOllama) Close() {
	f.closeOnce.Do(func() {
		close(f.done)
		f.srv.Close()
	})
}

// SetModels replaces the pulled models (none: every model is "not found").
func (f *FakeOllama) SetModels(models ...FakeModel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models = slices.Clone(models)
}

// SetTokenDelay makes every streamed chunk wait d before it is sent (non-streamed
// replies wait for all their chunks), like a slow model. The wait ends early when the
// client disconnects.
func (f *FakeOllama) SetTokenDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenDelay = d
}

// FailNext makes the next n chat requests fail with status and {"error": message}.
func (f *FakeOllama) FailNext(n, status int, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLeft, f.failStatus, f.failMsg = n, status, message
}

// Block holds every chat request that arrives from now on (after recording it and
// notifying OnArrival) until Release, the client disconnecting, or Close — a model
// call in flight, for crash and cancellation tests.
func (f *FakeOllama) Block() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block == nil {
		f.block = make(chan struct{})
	}
}

// Release lets held chat requests and later ones proceed.
func (f *FakeOllama) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block != nil {
		close(f.block)
		f.block = nil
	}
}

// Held is the number of chat requests currently held by Block.
func (f *FakeOllama) Held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// OnArrival registers fn to be called, on the request's goroutine, the moment each
// chat request arrives. fn must be quick and must not block; nil removes it.
func (f *FakeOllama) OnArrival(fn func(ChatArrival)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onArrival = fn
}

// ChatCount is the number of well-formed chat requests received so far.
func (f *FakeOllama) ChatCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// ShowCount is the number of /api/show requests received so far.
func (f *FakeOllama) ShowCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shows
}

// SetRecording turns keeping request bodies for Requests on (the default) or off.
// Benchmarks making many calls turn it off to keep memory flat; ChatCount,
// WaitRequests and OnArrival work either way.
func (f *FakeOllama) SetRecording(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discard = !on
}

// Requests returns the chat requests received so far while recording, in arrival
// order, including those that were failed or held. Each call decodes fresh copies,
// so callers may modify them. Options come back as JSON decodes them (num_ctx is a
// float64).
func (f *FakeOllama) Requests() []api.ChatRequest {
	f.mu.Lock()
	raw := slices.Clone(f.requests)
	f.mu.Unlock()
	out := make([]api.ChatRequest, len(raw))
	for i, b := range raw {
		// These bodies decoded once already when they arrived.
		_ = json.Unmarshal(b, &out[i])
	}
	return out
}

// WaitRequests waits until at least n chat requests have arrived or ctx ends.
func (f *FakeOllama) WaitRequests(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, ch := f.count, f.arrived
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fake ollama: %d of %d chat requests arrived: %w", got, n, ctx.Err())
		}
	}
}

// On adds a rule that applies when every matcher holds. It answers nothing until a
// reply is scripted on it (Reply, CallTool, ReplyFunc, Fail, ...); when calls may
// already be in flight, set Once or Times before the reply.
func (f *FakeOllama) On(matchers ...ChatMatcher) *ChatRule {
	r := &ChatRule{f: f, matchers: matchers}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return r
}

// Default is the rule used when no other rule matches; it initially replies
// FakeDefaultReply. Its matchers and limits are ignored.
func (f *FakeOllama) Default() *ChatRule {
	return f.def
}

// ChatRule is one scripted answer. Its methods chain:
//
//	f.On(testkit.LastUserContains("refund")).Reply("Let me check.").CallTool("http_request", args).Once()
type ChatRule struct {
	f        *FakeOllama
	matchers []ChatMatcher

	// guarded by f.mu
	set        bool
	limit      int // 0: unlimited
	hits       int
	reply      api.Message
	fn         func(req *api.ChatRequest) api.Message
	failStatus int
	failMsg    string
	unfinished bool
	doneReason string
}

func (r *ChatRule) edit(fn func()) *ChatRule {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	fn()
	r.set = true
	return r
}

// Reply sets the text of the answer.
func (r *ChatRule) Reply(text string) *ChatRule {
	return r.edit(func() { r.reply.Content = text })
}

// ReplyJSON sets the text of the answer to v encoded as JSON: a structured answer to a
// request with "format", sent as is.
func (r *ChatRule) ReplyJSON(v any) *ChatRule {
	b, err := json.Marshal(v)
	if err != nil {
		panic("testkit: ReplyJSON: " + err.Error())
	}
	return r.Reply(string(b))
}

// DoneReason sets the done_reason of the answer's closing chunk ("stop" by default), e.g.
// "length" for an answer cut off by num_predict.
func (r *ChatRule) DoneReason(reason string) *ChatRule {
	return r.edit(func() { r.doneReason = reason })
}

// Think sets the thinking text, sent only when the request enables thinking (think
// true, or unset on a model with the "thinking" capability), as Ollama does.
func (r *ChatRule) Think(text string) *ChatRule {
	return r.edit(func() { r.reply.Thinking = text })
}

// CallTool adds a call of tool name with args to the answer; chained calls make
// several tool calls in one turn.
func (r *ChatRule) CallTool(name string, args map[string]any) *ChatRule {
	return r.CallTools(NewToolCall(name, args))
}

// CallTools adds tool calls to the answer. Calls without an ID get one like Ollama's
// ("call_" + 8 characters); Index is set to the call's position in the turn.
func (r *ChatRule) CallTools(calls ...api.ToolCall) *ChatRule {
	return r.edit(func() { r.reply.ToolCalls = append(r.reply.ToolCalls, calls...) })
}

// ReplyFunc computes the answer from the request; it replaces any scripted text,
// thinking and tool calls. fn runs on the request's goroutine and may run
// concurrently with itself.
func (r *ChatRule) ReplyFunc(fn func(req *api.ChatRequest) api.Message) *ChatRule {
	return r.edit(func() { r.fn = fn })
}

// Fail answers with an HTTP error: status and {"error": message}.
func (r *ChatRule) Fail(status int, message string) *ChatRule {
	return r.edit(func() { r.failStatus, r.failMsg = status, message })
}

// Unfinished ends the answer without its done chunk (streamed) or with done=false
// and no metrics (not streamed), and no error: what Ollama sends when it cuts off a
// generation that repeats a token more than 30 times.
func (r *ChatRule) Unfinished() *ChatRule {
	return r.edit(func() { r.unfinished = true })
}

// Once limits the rule to its first match.
func (r *ChatRule) Once() *ChatRule { return r.Times(1) }

// Times limits the rule to its first n matches (n ≤ 0: no limit); later requests
// fall through to the rules after it.
func (r *ChatRule) Times(n int) *ChatRule {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.limit = n
	return r
}

// Hits is how many requests this rule has answered.
func (r *ChatRule) Hits() int {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.hits
}

// NewToolCall builds a tool call with args set in sorted key order, so the wire
// bytes are deterministic.
func NewToolCall(name string, args map[string]any) api.ToolCall {
	a := api.NewToolCallFunctionArguments()
	for _, k := range slices.Sorted(maps.Keys(args)) {
		a.Set(k, args[k])
	}
	return api.ToolCall{Function: api.ToolCallFunction{Name: name, Arguments: a}}
}

// LastUserContains matches when the last message is the user's and contains s: a
// prompt, not a conversation that has moved on to tool results.
func LastUserContains(s string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		m, ok := lastMessage(req)
		return ok && m.Role == "user" && strings.Contains(m.Content, s)
	}
}

// AnyUserContains matches when any user message contains s, whatever came after.
func AnyUserContains(s string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		return slices.ContainsFunc(req.Messages, func(m api.Message) bool {
			return m.Role == "user" && strings.Contains(m.Content, s)
		})
	}
}

// LastContains matches when the last message's content contains s, whatever its role.
func LastContains(s string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		m, ok := lastMessage(req)
		return ok && strings.Contains(m.Content, s)
	}
}

// LastRole matches when the last message has role ("user", "tool", ...).
func LastRole(role string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		m, ok := lastMessage(req)
		return ok && m.Role == role
	}
}

// LastToolResult matches when the last message is the result of a call of tool
// name, known by its tool_name or, failing that, by its tool_call_id.
func LastToolResult(name string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		m, ok := lastMessage(req)
		return ok && m.Role == "tool" && toolResultName(req.Messages, m) == name
	}
}

// SystemContains matches when a system message contains s.
func SystemContains(s string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		return slices.ContainsFunc(req.Messages, func(m api.Message) bool {
			return m.Role == "system" && strings.Contains(m.Content, s)
		})
	}
}

// ModelIs matches requests for model name (Ollama's name rules).
func ModelIs(name string) ChatMatcher {
	want := model.ParseName(name)
	return func(req *api.ChatRequest) bool {
		return model.ParseName(req.Model).EqualFold(want)
	}
}

// Turn matches the n-th model call of a conversation (1-based): n-1 assistant
// messages precede it.
func Turn(n int) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		assistant := 0
		for _, m := range req.Messages {
			if m.Role == "assistant" {
				assistant++
			}
		}
		return assistant == n-1
	}
}

// OffersTool matches when the request declares tool name.
func OffersTool(name string) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		return slices.ContainsFunc(req.Tools, func(t api.Tool) bool { return t.Function.Name == name })
	}
}

// HasFormat matches when the request constrains the output with "format".
func HasFormat() ChatMatcher {
	return func(req *api.ChatRequest) bool { return len(req.Format) > 0 && string(req.Format) != "null" }
}

// AnyOf matches when at least one of ms does.
func AnyOf(ms ...ChatMatcher) ChatMatcher {
	return func(req *api.ChatRequest) bool {
		return slices.ContainsFunc(ms, func(m ChatMatcher) bool { return m(req) })
	}
}

// Not matches when m does not.
func Not(m ChatMatcher) ChatMatcher {
	return func(req *api.ChatRequest) bool { return !m(req) }
}

func lastMessage(req *api.ChatRequest) (api.Message, bool) {
	if len(req.Messages) == 0 {
		return api.Message{}, false
	}
	return req.Messages[len(req.Messages)-1], true
}

func toolResultName(msgs []api.Message, result api.Message) string {
	if result.ToolName != "" || result.ToolCallID == "" {
		return result.ToolName
	}
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			if c.ID == result.ToolCallID {
				return c.Function.Name
			}
		}
	}
	return ""
}

func (f *FakeOllama) root(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Ollama is running")
}

func (f *FakeOllama) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": FakeOllamaVersion})
}

func (f *FakeOllama) tags(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	models, modified := slices.Clone(f.models), f.modified
	f.mu.Unlock()
	resp := api.ListResponse{Models: []api.ListModelResponse{}}
	for _, m := range models {
		name := model.ParseName(m.Name).DisplayShortest()
		resp.Models = append(resp.Models, api.ListModelResponse{
			Name: name, Model: name, ModifiedAt: modified, Size: 2_500_000_000,
			Digest: fakeDigest(m.Name), Details: m.details(),
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *FakeOllama) ps(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := api.ProcessResponse{Models: []api.ProcessModelResponse{}}
	for _, m := range f.models {
		ctxLen, ok := f.loaded[m.Name]
		if !ok {
			continue
		}
		name := model.ParseName(m.Name).DisplayShortest()
		resp.Models = append(resp.Models, api.ProcessModelResponse{
			Name: name, Model: name, Size: 2_500_000_000, Digest: fakeDigest(m.Name), Details: m.details(),
			ExpiresAt: time.Now().Add(5 * time.Minute), ContextLength: ctxLen,
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *FakeOllama) show(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.shows++
	f.mu.Unlock()
	var req api.ShowRequest
	if ok := decodeBody(w, r, &req); !ok {
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := f.model(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	caps := make([]model.Capability, len(m.Capabilities))
	for i, c := range m.Capabilities {
		caps[i] = model.Capability(c)
	}
	arch := m.family()
	template := "{{ .Prompt }}"
	if m.has(model.CapabilityTools) {
		template = "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}"
	}
	f.mu.Lock()
	modified := f.modified
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, api.ShowResponse{
		Modelfile:  "FROM " + m.Name + "\n",
		Parameters: "temperature 0.6",
		Template:   template,
		Details:    m.details(),
		ModelInfo: map[string]any{
			"general.architecture":    arch,
			"general.parameter_count": 4_000_000_000,
			arch + ".context_length":  cmp.Or(m.ContextLength, defaultNumCtx),
		},
		Capabilities: caps,
		ModifiedAt:   modified,
	})
}

// chat follows Ollama's ChatHandler: validate, then stream one ChatResponse per token
// and a final done chunk, or send the whole answer as one object when stream=false.
// tools decodes a request's tools array, once per distinct array.
func (f *FakeOllama) tools(raw json.RawMessage) (api.Tools, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	f.mu.Lock()
	ts, ok := f.toolSets[string(raw)]
	f.mu.Unlock()
	if ok {
		return ts, nil
	}
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.toolSets == nil || len(f.toolSets) >= 256 {
		f.toolSets = map[string]api.Tools{}
	}
	f.toolSets[string(raw)] = ts
	f.mu.Unlock()
	return ts, nil
}

func (f *FakeOllama) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "missing request body")
		return
	}
	var req api.ChatRequest
	wire := struct {
		*api.ChatRequest
		Tools json.RawMessage `json:"tools"` // shadows the embedded field: decoded via toolSets
	}{ChatRequest: &req}
	if err := json.Unmarshal(body, &wire); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Tools, err = f.tools(wire.Tools); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	f.mu.Lock()
	f.count++
	if !f.discard {
		f.requests = append(f.requests, body)
	}
	seq, notify := f.count, f.onArrival
	close(f.arrived)
	f.arrived = make(chan struct{})
	failing := f.failLeft > 0
	failStatus, failMsg := f.failStatus, f.failMsg
	if failing {
		f.failLeft--
	}
	block := f.block
	if failing {
		block = nil
	} else if block != nil {
		f.held++
	}
	f.mu.Unlock()
	if notify != nil {
		notify(ChatArrival{Seq: seq, At: start, Request: req})
	}

	if failing {
		writeError(w, failStatus, failMsg)
		return
	}
	if block != nil {
		err := f.wait(r.Context(), block)
		f.mu.Lock()
		f.held--
		f.mu.Unlock()
		if err != nil {
			f.abort(r.Context())
			return
		}
	}

	if !model.ParseName(req.Model).IsValid() {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := f.model(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	if req.Think != nil && req.Think.Bool() && !m.has(model.CapabilityThinking) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support thinking", req.Model))
		return
	}
	if len(req.Tools) > 0 && !m.has(model.CapabilityTools) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s does not support tools", model.ParseName(m.Name)))
		return
	}
	thinks := m.has(model.CapabilityThinking) && (req.Think == nil || req.Think.Bool())
	stream := req.Stream == nil || *req.Stream
	if len(req.Messages) == 0 {
		// Ollama answers an empty conversation by loading the model.
		writeJSON(w, http.StatusOK, api.ChatResponse{
			Model: req.Model, CreatedAt: time.Now().UTC(), Message: api.Message{Role: "assistant"},
			Done: true, DoneReason: "load",
		})
		return
	}

	script := f.answer(&req)
	if script.failStatus != 0 {
		writeError(w, script.failStatus, script.failMsg)
		return
	}
	answer := script.reply
	answer.Role = "assistant"
	if len(req.Format) > 0 && string(req.Format) != "null" && !json.Valid([]byte(answer.Content)) {
		// A grammar-constrained model always writes JSON for the schema: an answer
		// scripted as plain text becomes the smallest value the schema allows, its free
		// strings filled with that text (the default "done" becomes {"final":"done"} for
		// docket's constrained schema).
		content, err := formatInstance(req.Format, answer.Content)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		answer.Content = content
	}
	doneReason := cmp.Or(script.doneReason, "stop")
	if !thinks {
		answer.Thinking = ""
	}
	for i := range answer.ToolCalls {
		if answer.ToolCalls[i].ID == "" {
			answer.ToolCalls[i].ID = toolCallID()
		}
		answer.ToolCalls[i].Function.Index = i
	}
	f.mu.Lock()
	f.loaded[m.Name] = numCtx(req.Options)
	delay := f.tokenDelay
	f.mu.Unlock()

	if _, err := json.Marshal(answer); err != nil {
		writeError(w, http.StatusInternalServerError, "fake ollama: the scripted answer does not encode as JSON: "+err.Error())
		return
	}
	chunks := answerChunks(req.Model, answer)
	loaded := time.Now()
	if !stream {
		for range chunks {
			if err := f.sleep(r.Context(), delay); err != nil {
				f.abort(r.Context())
				return
			}
		}
		resp := api.ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Message: answer}
		if !script.unfinished {
			resp.Done, resp.DoneReason = true, doneReason
			resp.Metrics = metrics(&req, len(chunks), start, loaded)
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if !script.unfinished {
		chunks = append(chunks, api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant"}, Done: true, DoneReason: doneReason})
	}
	for _, c := range chunks {
		if err := f.sleep(r.Context(), delay); err != nil {
			f.abort(r.Context())
			return
		}
		c.CreatedAt = time.Now().UTC()
		if c.Done {
			c.Metrics = metrics(&req, len(chunks)-1, start, loaded)
		}
		b, _ := json.Marshal(c) // the answer encoded above, so its pieces do too
		if _, err := w.Write(append(b, '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// answer picks the first rule with uses left whose matchers all hold, else the default.
func (f *FakeOllama) answer(req *api.ChatRequest) scripted {
	f.mu.Lock()
	rules := f.rules
	f.mu.Unlock()
	for _, r := range rules {
		if !matchesAll(r.matchers, req) {
			continue
		}
		if s, ok := r.take(); ok {
			return s.resolve(req)
		}
	}
	s, _ := f.def.take()
	return s.resolve(req)
}

// scripted is a rule's answer copied out under the lock.
type scripted struct {
	reply      api.Message
	fn         func(req *api.ChatRequest) api.Message
	failStatus int
	failMsg    string
	unfinished bool
	doneReason string
}

// take counts a use of the rule and copies its answer, unless it has none yet or its
// uses are spent (the default rule's never are).
func (r *ChatRule) take() (scripted, bool) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if !r.set || (r != r.f.def && r.limit > 0 && r.hits >= r.limit) {
		return scripted{}, false
	}
	r.hits++
	reply := r.reply
	reply.ToolCalls = slices.Clone(reply.ToolCalls)
	return scripted{reply: reply, fn: r.fn, failStatus: r.failStatus, failMsg: r.failMsg, unfinished: r.unfinished, doneReason: r.doneReason}, true
}

// resolve runs a ReplyFunc, so the answer is in reply.
func (s scripted) resolve(req *api.ChatRequest) scripted {
	if s.fn != nil && s.failStatus == 0 {
		s.reply = s.fn(req)
	}
	return s
}

func matchesAll(ms []ChatMatcher, req *api.ChatRequest) bool {
	for _, m := range ms {
		if !m(req) {
			return false
		}
	}
	return true
}

// answerChunks splits an answer the way a model streams it: thinking tokens, content
// tokens, then the tool calls together in one chunk (Ollama's parser emits a call
// once it is complete).
func answerChunks(modelName string, answer api.Message) []api.ChatResponse {
	var out []api.ChatResponse
	add := func(m api.Message) {
		m.Role = "assistant"
		out = append(out, api.ChatResponse{Model: modelName, Message: m})
	}
	for _, t := range splitTokens(answer.Thinking) {
		add(api.Message{Thinking: t})
	}
	for _, t := range splitTokens(answer.Content) {
		add(api.Message{Content: t})
	}
	if len(answer.ToolCalls) > 0 {
		add(api.Message{ToolCalls: answer.ToolCalls})
	}
	return out
}

// splitTokens cuts s before each run of whitespace, so "Hello big world" streams as
// "Hello", " big", " world" and the pieces concatenate back to s.
func splitTokens(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if isSpace(s[i]) && !isSpace(s[i-1]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// metrics are plausible and never zero, so clients that read them see every field.
func metrics(req *api.ChatRequest, evalCount int, start, loaded time.Time) api.Metrics {
	prompt := 0
	for _, m := range req.Messages {
		prompt += 4 + len(splitTokens(m.Content))
	}
	now := time.Now()
	return api.Metrics{
		TotalDuration:      max(now.Sub(start), time.Microsecond),
		LoadDuration:       max(loaded.Sub(start), time.Microsecond),
		PromptEvalCount:    prompt,
		PromptEvalDuration: time.Duration(prompt) * 100 * time.Microsecond,
		EvalCount:          max(evalCount, 1),
		EvalDuration:       max(now.Sub(loaded), time.Microsecond),
	}
}

// defaultNumCtx is Ollama's context length when a request sets no num_ctx.
const defaultNumCtx = 4096

func numCtx(opts map[string]any) int {
	if n, ok := opts["num_ctx"].(float64); ok {
		return int(n)
	}
	return defaultNumCtx
}

func toolCallID() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return "call_" + string(b)
}

func fakeDigest(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// wait holds until release closes, the client goes away or the fake closes.
func (f *FakeOllama) wait(ctx context.Context, release <-chan struct{}) error {
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return http.ErrServerClosed
	}
}

func (f *FakeOllama) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return http.ErrServerClosed
	}
}

// abort ends a request cut off by Close by dropping its connection, so the client sees
// a broken call rather than an empty success; a departed client needs nothing.
func (f *FakeOllama) abort(ctx context.Context) {
	if ctx.Err() == nil {
		panic(http.ErrAbortHandler)
	}
}

func (f *FakeOllama) model(name string) (FakeModel, bool) {
	want := model.ParseName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.models {
		if model.ParseName(m.Name).EqualFold(want) {
			return m, true
		}
	}
	return FakeModel{}, false
}

func (m FakeModel) has(c model.Capability) bool {
	return slices.Contains(m.Capabilities, string(c))
}

func (m FakeModel) family() string {
	if m.Family != "" {
		return m.Family
	}
	return model.ParseName(m.Name).Model
}

func (m FakeModel) details() api.ModelDetails {
	return api.ModelDetails{
		Format: "gguf", Family: m.family(), Families: []string{m.family()},
		ParameterSize: m.ParameterSize, QuantizationLevel: m.Quantization,
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case err == io.EOF:
		writeError(w, http.StatusBadRequest, "missing request body")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "fake ollama: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
