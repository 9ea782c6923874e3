package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"

	"docket/store"
)

// Setup defaults (DESIGN §4, §5.1).
const (
	defaultMaxTurns = 40
	defaultNumCtx   = 16384
)

// drive executes owner's claimed run until it completes, fails, waits at a gate, is
// stopped, or the engine shuts down (the run then goes back to pending).
func (e *Engine) drive(parent context.Context, owner string, run store.Run) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	e.mu.Lock()
	e.active[run.ID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.active, run.ID)
		e.mu.Unlock()
	}()
	go e.heartbeat(ctx, cancel, run.ID, owner)

	log := e.log.With("run_id", run.ID, "agent_id", run.AgentID)
	e.hub.Publish(Event{Type: "status", RunID: run.ID, TeamID: run.TeamID, Status: store.RunRunning})
	d := &driver{e: e, ctx: ctx, owner: owner, run: run, log: log}
	status, err := d.loop()
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		log.Info("run left this worker (stopped, or taken over)")
		return
	case parent.Err() != nil:
		// Shutting down: hand the run back so the next start resumes it at once.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
		defer rcancel()
		if err := e.st.ReleaseRun(rctx, run.ID, owner, 0); err != nil {
			log.Warn("releasing the run at shutdown failed; it resumes after its lease expires", "err", err)
		}
		return
	case ctx.Err() != nil:
		// Stopped through the API while a call was in flight.
		return
	case err != nil:
		var me *ModelError
		reason, infra := "internal error: the server log has the details", true
		if errors.As(err, &me) {
			// A backend that is down or failing may come back; a missing model will not.
			reason, infra = me.Msg, me.Retryable
		} else if re := new(runError); errors.As(err, &re) {
			reason, infra = re.msg, false
		}
		log.Warn("run failed", "reason", reason, "err", err)
		if ferr := e.st.FailRun(ctx, run.ID, owner, reason, infra); ferr != nil && !errors.Is(ferr, store.ErrLeaseLost) {
			log.Error("recording the failure failed", "err", ferr)
		}
		status = store.RunFailed
	}
	run.Status = status
	e.changed(run)
}

// heartbeat renews the lease while the run is driven; losing it (stop, takeover)
// cancels the drive.
func (e *Engine) heartbeat(ctx context.Context, cancel context.CancelFunc, runID, owner string) {
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.st.RenewLease(ctx, runID, owner, e.cfg.Lease); errors.Is(err, store.ErrLeaseLost) {
				cancel()
				return
			} else if err != nil && ctx.Err() == nil {
				e.log.Warn("renewing a run lease failed", "run_id", runID, "err", err)
			}
		}
	}
}

// runError ends a run with a message meant for people (max turns, a broken setup).
type runError struct{ msg string }

func (e *runError) Error() string { return e.msg }

type driver struct {
	e     *Engine
	ctx   context.Context
	owner string
	run   store.Run
	log   *slog.Logger
	setup SetupData
	build string
	tools []*Tool
	// schemas are the offered tools' argument schemas, with the setup's bounds.
	schemas map[string]jsonObject
	mode    string // native or constrained, for the whole run
	choice  string // options.tool_choice
	// In constrained mode, the answer's JSON schema and the prompt that explains it,
	// built once per drive.
	format   json.RawMessage
	protocol string
}

// loop runs turns until the run ends or waits, and returns the status it left the run in.
func (d *driver) loop() (string, error) {
	b, err := d.e.st.GetBuild(d.ctx, d.run.TeamID, "", d.run.BuildID)
	if err != nil {
		return "", fmt.Errorf("load setup %s: %w", d.run.BuildID, err)
	}
	cfg, err := ParseSetupConfig(b.Config)
	if err != nil {
		return "", &runError{fmt.Sprintf("setup %s cannot be read (%v): create and promote a new setup", b.ID, err)}
	}
	d.setup, d.build = cfg.Data, b.ID
	d.tools = d.e.tools.Enabled(cfg.Data)
	d.schemas = make(map[string]jsonObject, len(d.tools))
	for _, t := range d.tools {
		d.schemas[t.Name] = t.argumentSchema(cfg.Data)
	}
	d.choice = cfg.Data.Options.ToolChoice()
	if d.mode, err = d.toolMode(); err != nil {
		return "", err
	}
	if d.mode == ToolModeConstrained {
		if d.format, err = constrainedFormat(d.tools, d.schemas, d.choice); err != nil {
			return "", err
		}
		d.protocol = constrainedPrompt(d.tools, d.schemas, d.choice)
	}
	maxTurns := defaultMaxTurns
	if cfg.Data.MaxTurns != nil {
		maxTurns = *cfg.Data.MaxTurns
	}
	for {
		waiting, err := d.settleCalls()
		if err != nil || waiting {
			return store.RunWaiting, err
		}
		history, err := d.e.st.MessagesAfter(d.ctx, d.run.ID, 0)
		if err != nil {
			return "", err
		}
		if countTurns(history) >= maxTurns {
			return "", &runError{fmt.Sprintf("stopped after %d model turns without a final answer (max_turns in the setup)", maxTurns)}
		}
		final, err := d.turn(history)
		if err != nil {
			return "", err
		}
		if final {
			return store.RunCompleted, nil
		}
	}
}

// settleCalls finishes the calls of the last turn that have no result yet. It reports
// waiting when one of them opened a gate.
func (d *driver) settleCalls() (bool, error) {
	open, err := d.e.st.OpenCalls(d.ctx, d.run.ID)
	if err != nil {
		return false, err
	}
	for _, c := range open {
		waiting, err := d.settle(c)
		if err != nil || waiting {
			return waiting, err
		}
	}
	return false, nil
}

func (d *driver) settle(c store.LedgerEntry) (bool, error) {
	fail := func(format string, args ...any) (bool, error) {
		msg := fmt.Sprintf(format, args...)
		return false, d.finish(c, "", msg)
	}
	if c.Name == invalidReplyTool {
		return fail(`your answer was not one JSON object of the form {"tool": "<tool name>", "arguments": {...}} or {"final": "<answer>"}: answer again in one of those forms`)
	}
	t := d.e.tools.Get(c.Name)
	if t == nil || !d.offered(c.Name) {
		return fail("unknown tool %q: the tools you can call are %s", c.Name, strings.Join(d.toolNames(), ", "))
	}
	canonical, args, err := canonicalArgs(c.Arguments)
	if err != nil {
		return fail("%v", err)
	}
	if c.State == store.CallPending {
		// Both tool modes hold calls to the same schema; a call outside it never runs.
		if err := validate(d.schemas[c.Name], args, "arguments"); err != nil {
			return fail("%v: call %s again with arguments that fit its schema", err, c.Name)
		}
	}
	consent := ConsentHash(c.Name, canonical, d.build)
	policy := d.setup.Approval
	gate := store.NewGate{ToolCallID: c.CallID, ConsentHash: consent, Details: map[string]any{"tool": c.Name, "arguments": args}}
	if policy != nil {
		gate.DistinctApprover, gate.OnExpiry = policy.DistinctApprover, policy.OnExpiry
		if policy.ExpiresAfter != "" {
			if dur, err := ParseDuration(policy.ExpiresAfter); err == nil {
				at := time.Now().Add(dur)
				gate.ExpiresAt = &at
			}
		}
	}

	switch c.State {
	case store.CallStarted:
		if t.Idempotent == nil || t.Idempotent(args) {
			break // harmless to run again
		}
		gate.Type, gate.Kind = "approval", store.GateRecovery
		gate.Title = "Outcome unknown: retry " + c.Name + "?"
		gate.Description = fmt.Sprintf("docket stopped while %s was running, so it is not known whether it took effect. Approve to run it again, deny to skip it.", c.Name)
		return d.open(gate)
	case store.CallApproved:
		// The approval is valid only for this exact call on this build.
		hash, status, err := d.e.st.GateConsent(d.ctx, deref(c.GateID))
		if err != nil || status != "approved" || hash != consent {
			return fail("not executed: the approval does not match this exact call")
		}
	case store.CallGated:
		return fail("not executed: its approval request was closed without a decision")
	case store.CallPending:
		switch t.Human {
		case "approval":
			title, err := requireString(args, "title")
			if err != nil {
				return fail("%v", err)
			}
			gate.Type, gate.Kind, gate.Title = "approval", store.GateModel, title
			gate.Description = argString(args, "description")
			if det := argString(args, "details"); det != "" {
				gate.Details = map[string]any{"tool": c.Name, "arguments": args, "details": det}
			}
			return d.open(gate)
		case "question":
			qs, err := parseQuestions(args)
			if err != nil {
				return fail("%v", err)
			}
			gate.Type, gate.Kind, gate.Questions = "question", store.GateModel, qs
			gate.Title = "Question from " + d.run.AgentName
			return d.open(gate)
		}
		if (policy != nil && slices.Contains(policy.Require, c.Name)) || (t.Gated != nil && t.Gated(args)) {
			gate.Type, gate.Kind = "approval", store.GatePolicy
			gate.Title = "Approve " + c.Name
			gate.Description = describeCall(c.Name, args)
			return d.open(gate)
		}
	}
	// 'started' marks an outcome as unknown after a crash; a call that is safe to repeat
	// is simply run again, so it needs no such mark (and no extra commit).
	if t.Idempotent != nil && !t.Idempotent(args) {
		if err := d.e.st.StartCall(d.ctx, d.run.ID, d.owner, c.CallID); err != nil {
			return false, err
		}
	}
	result, err := t.Run(d.ctx, &Call{Run: d.run, Setup: d.setup, ID: c.CallID, Args: args, IdempotencyKey: c.IdempotencyKey})
	if d.ctx.Err() != nil {
		// Cut off (stop or shutdown): the call stays 'started', recovery decides.
		return false, d.ctx.Err()
	}
	if err != nil {
		return false, d.finish(c, "", err.Error())
	}
	return false, d.finish(c, result, "")
}

func (d *driver) open(g store.NewGate) (bool, error) {
	if _, err := d.e.st.OpenGate(d.ctx, d.run.ID, d.owner, g); err != nil {
		return false, err
	}
	d.e.wakeSweeper()
	return true, nil
}

func (d *driver) finish(c store.LedgerEntry, result, errText string) error {
	res := store.ToolResult{ToolCallID: c.CallID, Name: c.Name}
	if errText != "" {
		res.Error = &errText
	} else {
		res.Result = &result
	}
	m, err := d.e.st.FinishCall(d.ctx, d.run.ID, d.owner, res)
	if err != nil {
		return err
	}
	d.e.hub.Publish(Event{Type: "message", RunID: d.run.ID, TeamID: d.run.TeamID, Message: &m})
	return nil
}

func (d *driver) offered(name string) bool {
	for _, t := range d.tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func (d *driver) toolNames() []string {
	out := make([]string, len(d.tools))
	for i, t := range d.tools {
		out[i] = t.Name
	}
	return out
}

// turn asks the model for its next step and commits it. It reports whether the answer
// was final (no tool calls), which completes the run in the same transaction.
func (d *driver) turn(history []store.Message) (bool, error) {
	began := time.Now()
	req, err := d.request(history)
	if err != nil {
		return false, err
	}
	t := store.Turn{ToolMode: d.mode}
	start := time.Now()
	var modelTotal time.Duration // what Ollama says its own work took
	var resp api.Message
	for grown := false; ; grown = true {
		var done api.ChatResponse
		resp, done, err = d.chat(req)
		if err != nil {
			return false, err
		}
		t.PromptTokens += int64(done.PromptEvalCount)
		t.OutputTokens += int64(done.EvalCount)
		t.Model.Turns++
		modelTotal += done.TotalDuration
		t.Model.TotalMs += done.TotalDuration.Milliseconds()
		t.Model.LoadMs += done.LoadDuration.Milliseconds()
		t.Model.PromptEvalMs += done.PromptEvalDuration.Milliseconds()
		t.Model.EvalMs += done.EvalDuration.Milliseconds()
		if d.mode != ToolModeConstrained || done.DoneReason != "length" {
			break
		}
		// A constrained answer cut off by the output limit is unfinished JSON: never a
		// call. It gets one more chance with room to finish.
		limit := done.EvalCount
		if n, ok := d.setup.Options["num_predict"].(float64); ok {
			limit = int(n)
		}
		if grown {
			return false, &runError{fmt.Sprintf("model %q reached its output limit (num_predict %d) twice before finishing its JSON answer (tool_mode constrained), so nothing was recorded for the turn: raise options.num_predict in the setup, or choose a model that answers more briefly", req.Model, limit)}
		}
		d.log.Info("constrained answer hit the output limit; asking again with more room", "num_predict", limit)
		req.Options = maps.Clone(req.Options)
		req.Options["num_predict"] = max(2*limit, 256)
	}
	t.ModelMs = time.Since(start).Milliseconds()
	t.Thinking = resp.Thinking
	newID := func() string { return "call_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16] }
	if d.mode == ToolModeConstrained {
		final, isFinal, call := parseConstrained(resp.Content)
		if isFinal {
			t.Text = final
		} else {
			t.Calls = append(t.Calls, store.ToolCall{ID: newID(), Name: call.name, Arguments: call.args})
		}
	} else {
		t.Text = resp.Content
		for _, c := range resp.ToolCalls {
			id := c.ID
			if id == "" {
				id = newID()
			}
			args, err := json.Marshal(c.Function.Arguments)
			if err != nil {
				return false, fmt.Errorf("tool call arguments: %w", err)
			}
			t.Calls = append(t.Calls, store.ToolCall{ID: id, Name: c.Function.Name, Arguments: args})
		}
	}
	t.Final = len(t.Calls) == 0
	ms, err := d.e.st.RecordTurn(d.ctx, d.run.ID, d.owner, t)
	if err != nil {
		return false, err
	}
	for i := range ms {
		d.e.hub.Publish(Event{Type: "message", RunID: d.run.ID, TeamID: d.run.TeamID, Message: &ms[i]})
	}
	// took minus model_total is what docket (and the wire) added to the model's work.
	d.log.Debug("model turn", "tool_mode", d.mode, "took", time.Since(began), "model_total", modelTotal, "calls", len(t.Calls))
	return t.Final, nil
}

// chat makes one model call, streaming its text to the run's listeners (in constrained
// mode, the text of a final answer, not its JSON), and returns the whole answer and the
// closing chunk, which carries Ollama's metrics and done_reason.
func (d *driver) chat(req *api.ChatRequest) (api.Message, api.ChatResponse, error) {
	var resp api.Message
	var last api.ChatResponse
	err := d.retry(req.Model, d.e.metrics.modelCalls.WithLabelValues, func() error {
		// A retried call starts its answer afresh.
		resp, last = api.Message{}, api.ChatResponse{}
		var final finalStream
		err := d.e.cfg.Model.Chat(d.ctx, req, func(r api.ChatResponse) error {
			token := r.Message.Content
			if d.mode == ToolModeConstrained {
				token = final.feed(token)
			}
			if token != "" {
				d.e.hub.Publish(Event{Type: "token", RunID: d.run.ID, TeamID: d.run.TeamID, Token: token})
			}
			resp.Content += r.Message.Content
			resp.Thinking += r.Message.Thinking
			resp.ToolCalls = append(resp.ToolCalls, r.Message.ToolCalls...)
			if r.Done {
				last = r
			}
			return nil
		})
		if err == nil && !last.Done {
			// Ollama can end a stream without its final chunk (e.g. a runaway repeat).
			return &ModelError{Msg: fmt.Sprintf("model %q stopped answering before it finished", req.Model), Retryable: true}
		}
		return err
	})
	return resp, last, err
}

// retry runs a model call until it succeeds, fails for good, or the retries for
// failures that may pass (backend down, 5xx, a stream cut short) run out, with backoff.
// observe, when set, gives the histogram each attempt's duration goes to by outcome.
func (d *driver) retry(modelName string, observe func(...string) prometheus.Observer, call func() error) error {
	if observe == nil {
		observe = func(...string) prometheus.Observer { return prometheus.ObserverFunc(func(float64) {}) }
	}
	backoff := d.e.cfg.ModelBackoff
	for attempt := 0; ; attempt++ {
		began := time.Now()
		err := call()
		if d.ctx.Err() != nil {
			return d.ctx.Err()
		}
		took := time.Since(began).Seconds()
		if err == nil {
			observe("ok").Observe(took)
			return nil
		}
		var me *ModelError
		if !errors.As(err, &me) {
			me = classify(err, d.e.cfg.ModelHost, modelName)
		}
		if !me.Retryable || attempt >= d.e.cfg.ModelRetries {
			observe("failed").Observe(took)
			return me
		}
		observe("retried").Observe(took)
		d.log.Warn("model call failed; retrying", "attempt", attempt+1, "err", me.Msg)
		t := time.NewTimer(backoff)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return d.ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
}

// toolMode is how this run asks for tool calls: the mode it already used (a run keeps
// one), else the setup's, with auto settled by the model's capabilities.
func (d *driver) toolMode() (string, error) {
	if m := deref(d.run.ToolMode); m == ToolModeNative || m == ToolModeConstrained {
		return m, nil
	}
	mode := d.setup.Options.ToolMode()
	if mode != ToolModeAuto {
		return mode, nil
	}
	name := d.setup.Models.Agent.Model
	if m, ok := d.e.modes.get(name); ok {
		return m, nil
	}
	err := d.retry(name, nil, func() error {
		var err error
		mode, _, err = AutoToolMode(d.ctx, d.e.cfg.Model, name)
		return err
	})
	if err != nil {
		return "", err
	}
	d.e.modes.put(name, mode)
	return mode, nil
}

// request builds the chat request: the SOP, the conversation, the tools and options.
func (d *driver) request(history []store.Message) (*api.ChatRequest, error) {
	msgs := sopMessages(d.setup.Input)
	for _, m := range history {
		switch {
		case m.Type == "tool_call":
			var args api.ToolCallFunctionArguments
			if err := json.Unmarshal(m.ToolCall.Arguments, &args); err != nil {
				return nil, fmt.Errorf("stored arguments of %s: %w", m.ToolCall.ID, err)
			}
			call := api.ToolCall{ID: m.ToolCall.ID, Function: api.ToolCallFunction{Name: m.ToolCall.Name, Arguments: args}}
			// A turn's calls belong to the assistant message that precedes them.
			if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
				msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, call)
			} else {
				msgs = append(msgs, api.Message{Role: "assistant", ToolCalls: []api.ToolCall{call}})
			}
		case m.Type == "tool_result":
			content := deref(m.ToolResult.Result)
			if m.ToolResult.Error != nil {
				content = "error: " + *m.ToolResult.Error
			}
			msgs = append(msgs, api.Message{Role: "tool", Content: content, ToolName: m.ToolResult.Name, ToolCallID: m.ToolResult.ToolCallID})
		default:
			msgs = append(msgs, api.Message{Role: m.Role, Content: deref(m.Text)})
		}
	}
	numCtx := defaultNumCtx
	if v, ok := d.setup.Options["num_ctx"].(float64); ok {
		numCtx = int(v)
	}
	msgs = fitContext(msgs, numCtx)
	stream := true
	req := &api.ChatRequest{Model: d.setup.Models.Agent.Model, Messages: msgs, Stream: &stream, Options: map[string]any{"num_ctx": numCtx}}
	if d.mode == ToolModeConstrained {
		req.Format = d.format
		req.Messages = constrainedMessages(msgs, d.protocol)
	} else {
		tools, err := apiTools(d.tools, d.setup, d.schemas)
		if err != nil {
			return nil, err
		}
		req.Tools = tools
	}
	if d.setup.Temperature != nil {
		req.Options["temperature"] = *d.setup.Temperature
	}
	if n, ok := d.setup.Options["num_predict"].(float64); ok {
		req.Options["num_predict"] = int(n)
	}
	think, _ := d.setup.Options["think"].(bool)
	req.Think = &api.ThinkValue{Value: think}
	return req, nil
}

// fitContext elides the oldest tool results (in the prompt only; the database keeps
// them) until the conversation fits the model's context window, and says so in the
// prompt, so the model knows what it no longer sees. Ollama would otherwise drop the
// start of the conversation, SOP included, without a word.
func fitContext(msgs []api.Message, numCtx int) []api.Message {
	// About 4 characters a token, with a quarter of the window kept for tools and answer.
	budget := numCtx * 3
	size := 0
	for _, m := range msgs {
		size += len(m.Content)
	}
	elided := 0
	for i := range msgs {
		if size <= budget {
			break
		}
		if msgs[i].Role != "tool" || len(msgs[i].Content) <= 200 {
			continue
		}
		if elided == 0 {
			msgs = slices.Clone(msgs) // the caller's history stays whole
		}
		stub := fmt.Sprintf("[elided to fit the context window: %d characters of this tool result]", len(msgs[i].Content))
		size += len(stub) - len(msgs[i].Content)
		msgs[i].Content = stub
		elided++
	}
	if elided == 0 {
		return msgs
	}
	note := api.Message{Role: "system", Content: fmt.Sprintf("Note: %d older tool results were elided to fit the context window; call the tools again if you need them.", elided)}
	at := 0
	for at < len(msgs) && msgs[at].Role == "system" {
		at++
	}
	return slices.Insert(msgs, at, note)
}

// sopMessages turns the setup's input (a string SOP or a list of messages) into the
// messages that open every conversation.
func sopMessages(input any) []api.Message {
	switch v := input.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []api.Message{{Role: "system", Content: v}}
	case []any:
		var out []api.Message
		for _, m := range v {
			mm, _ := m.(map[string]any)
			role, _ := mm["role"].(string)
			switch c := mm["content"].(type) {
			case string:
				out = append(out, api.Message{Role: role, Content: c})
			case []any:
				var parts []string
				for _, p := range c {
					if pm, ok := p.(map[string]any); ok {
						if s, ok := pm["text"].(string); ok {
							parts = append(parts, s)
						}
					}
				}
				out = append(out, api.Message{Role: role, Content: strings.Join(parts, "\n")})
			}
		}
		return out
	}
	return nil
}

// countTurns counts model turns: runs of consecutive assistant messages.
func countTurns(history []store.Message) int {
	n, prev := 0, ""
	for _, m := range history {
		if m.Role == "assistant" && prev != "assistant" {
			n++
		}
		prev = m.Role
	}
	return n
}

// describeCall is a gate's description of the call it guards.
func describeCall(name string, args map[string]any) string {
	if name == "http_request" {
		method := strings.ToUpper(argString(args, "method"))
		if method == "" {
			method = "GET"
		}
		return fmt.Sprintf("The assignment wants to call %s %s.", method, argString(args, "url"))
	}
	b, _ := json.Marshal(args)
	return fmt.Sprintf("The assignment wants to call %s with %s.", name, b)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
