package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/ollama/ollama/api"

	"docket/store"
)

// Tool is a built-in tool the model can call (DESIGN §5.2).
type Tool struct {
	Name        string
	Description string
	// Schema is the JSON schema of the arguments object, shown to the model.
	Schema string
	// Human marks the tools that are gates themselves: "approval" or "question". The
	// runtime opens the gate; the person's decision is the tool's result.
	Human string
	// Idempotent reports whether running the call again after a crash is harmless. nil
	// means always.
	Idempotent func(args map[string]any) bool
	// Gated reports whether the call waits for approval even when the setup's
	// approval.require does not list the tool (e.g. http_request other than GET).
	Gated func(args map[string]any) bool
	// NeedsConfig names the setup field without which the tool is off by default.
	NeedsConfig func(SetupData) bool
	Run         func(ctx context.Context, c *Call) (string, error)

	// api is how Ollama is told about the tool, decoded once at registration: decoding
	// the schema on every turn was a tenth of the case pipeline's CPU.
	api    api.Tool
	schema jsonObject // Schema, parsed with its key order kept
}

// Call is one execution of a tool on behalf of a run.
type Call struct {
	Run   store.Run
	Setup SetupData
	ID    string
	Args  map[string]any
	// IdempotencyKey is stable for this call across re-executions (run_id:tool_call_id).
	IdempotencyKey string
}

// Registry holds the tools a runtime offers. Later issues add case, file, skill,
// subagent, handover and MCP tools to the same registry.
type Registry struct {
	tools map[string]*Tool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{tools: map[string]*Tool{}} }

// Register adds t; a second tool of the same name is a programming error.
func (r *Registry) Register(t *Tool) {
	if _, dup := r.tools[t.Name]; dup {
		panic("runtime: tool " + t.Name + " registered twice")
	}
	var params api.ToolFunctionParameters
	if err := json.Unmarshal([]byte(t.Schema), &params); err != nil {
		panic("runtime: tool " + t.Name + " has an invalid schema: " + err.Error())
	}
	t.api = api.Tool{Type: "function", Function: api.ToolFunction{Name: t.Name, Description: t.Description, Parameters: params}}
	schema, err := parseSchema(t.Schema)
	if err != nil {
		panic("runtime: tool " + t.Name + " has an invalid schema: " + err.Error())
	}
	t.schema = schema
	r.tools[t.Name] = t
}

// Get returns the named tool, or nil.
func (r *Registry) Get(name string) *Tool { return r.tools[name] }

// Names lists the registered tools, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.tools))
	for n := range r.tools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Enabled returns the tools a setup gives its runs: the ones it lists, or, when it lists
// none, every registered tool that needs no configuration. A tool the setup requires
// approval for is always offered, so the gate can do its work.
func (r *Registry) Enabled(d SetupData) []*Tool {
	var out []*Tool
	for _, name := range r.Names() {
		t := r.tools[name]
		switch {
		case d.Tools != nil:
			if !slices.Contains(d.Tools, name) {
				continue
			}
		case t.NeedsConfig != nil && !t.NeedsConfig(d):
			continue
		}
		out = append(out, t)
	}
	return out
}

// argumentSchema is the schema a setup's calls of t are held to: the tool's own, with
// the setup's bounds for it (tool_arguments) merged in.
func (t *Tool) argumentSchema(d SetupData) jsonObject {
	return narrow(t.schema, d.ToolArguments[t.Name])
}

// apiTools is how Ollama is told about tools in native mode: as registered, unless the
// setup bounds a tool's arguments (then its narrowed schema, decoded for this run).
func apiTools(ts []*Tool, d SetupData, schemas map[string]jsonObject) (api.Tools, error) {
	out := make(api.Tools, 0, len(ts))
	for _, t := range ts {
		if len(d.ToolArguments[t.Name]) == 0 {
			out = append(out, t.api)
			continue
		}
		raw, err := json.Marshal(schemas[t.Name])
		if err != nil {
			return nil, fmt.Errorf("tool %s schema: %w", t.Name, err)
		}
		var params api.ToolFunctionParameters
		if err := json.Unmarshal(raw, &params); err != nil {
			return nil, fmt.Errorf("tool %s schema: %w", t.Name, err)
		}
		out = append(out, api.Tool{Type: "function", Function: api.ToolFunction{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	return out, nil
}

// canonicalArgs is the one byte form of a call's arguments: parsed and re-encoded, which
// sorts object keys, so the same call always hashes the same.
func canonicalArgs(raw json.RawMessage) (json.RawMessage, map[string]any, error) {
	var args map[string]any
	if len(raw) == 0 || string(raw) == "null" {
		args = map[string]any{}
	} else if err := json.Unmarshal(raw, &args); err != nil {
		return nil, nil, fmt.Errorf("arguments must be a JSON object: %w", err)
	}
	b, err := json.Marshal(args)
	return b, args, err
}

// ConsentHash binds an approval to one exact call: the tool, its canonical arguments
// and the build it runs on (DESIGN §4, Gate).
func ConsentHash(tool string, canonical json.RawMessage, buildID string) string {
	h := sha256.New()
	for _, part := range []string{tool, string(canonical), buildID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// argString reads a string argument; "" when absent or not a string.
func argString(args map[string]any, name string) string {
	s, _ := args[name].(string)
	return s
}

// requireString reads a required, non-empty string argument.
func requireString(args map[string]any, name string) (string, error) {
	v, ok := args[name]
	if !ok {
		return "", fmt.Errorf("missing argument %q", name)
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", fmt.Errorf("argument %q must be a non-empty string", name)
	}
	return s, nil
}
