// Package runtime runs Jobs: it owns what a Setup means to the run loop, starting with
// the shape and rules of a Setup's config.
package runtime

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SetupConfig is a Setup's configuration in the reference's v2 shape, with docket's
// additions (tools, approval, max_turns, temperature, http_allowlist) inside data.
type SetupConfig struct {
	Version string    `json:"version" enum:"v2" doc:"Config format version; docket speaks v2."`
	Data    SetupData `json:"data"`
}

// SetupData is the body of a v2 config.
type SetupData struct {
	Models    SetupModels `json:"models"`
	Input     any         `json:"input" doc:"The SOP (system prompt): a string, or a list of {role, content} messages."`
	Files     []string    `json:"files" required:"false" nullable:"true" doc:"Team file paths the assignment may read."`
	Skills    []string    `json:"skills" required:"false" nullable:"true"`
	Plugins   []string    `json:"plugins" required:"false" nullable:"true" doc:"Accepted for compatibility; docket has no plugins."`
	SubAgents []string    `json:"subAgents" required:"false" nullable:"true" doc:"Assignments this one may delegate to (ids in the same team)."`
	Options   Options     `json:"options,omitempty" doc:"Model options. docket reads num_ctx (default 16384), num_predict (the model's own default), think (default false), tool_mode (native: Ollama's tool calling; constrained: one JSON object per turn enforced with a JSON schema, for models without a tool template; auto, the default: native when the model reports the tools capability) and tool_choice (auto, the default: a tool call or a final answer; required: a tool call every turn; or one tool's name: that tool every turn; anything but auto needs tool_mode constrained). Other keys are kept and ignored."`

	Tools         []string                  `json:"tools,omitzero" doc:"Enabled built-in tool names (and <connection>__<tool> MCP tools). Absent: every built-in tool that needs no configuration; an empty list: none (the model can only answer)."`
	Approval      *ApprovalPolicy           `json:"approval,omitempty" doc:"Gates the runtime enforces before tools run."`
	MaxTurns      *int                      `json:"max_turns,omitempty" minimum:"1" maximum:"1000" doc:"Model turns before the run fails; default 40."`
	Temperature   *float64                  `json:"temperature,omitempty" minimum:"0" maximum:"2"`
	HTTPAllowlist []string                  `json:"http_allowlist,omitempty" doc:"Hosts http_request may call (example.com or *.example.com, optional :port)."`
	ToolArguments map[string]ArgumentBounds `json:"tool_arguments,omitempty" doc:"Narrower bounds for tools' arguments: tool → argument → keywords (enum, const, minLength, maxLength, minimum, maximum, minItems, maxItems) merged into the tool's schema. Calls outside them get a tool error; in constrained mode the model cannot write them."`
}

// Options is the free-form options object; docket validates the keys it uses.
type Options map[string]any

// SetupModels names the model the assignment runs on.
type SetupModels struct {
	Agent ModelRef `json:"agent"`
	// Browsing is sent as null when absent: the reference requires the key in every
	// config a response carries.
	Browsing *BrowsingModel `json:"browsing" required:"false" doc:"Accepted for compatibility and ignored: docket has no browsing model."`
}

// BrowsingModel is the reference's browsing/computer-use model, typed so the published
// schema names its fields as the reference does. docket keeps it and never uses it.
type BrowsingModel struct {
	// A config read back from a response carries "browsing": null; it must be valid input
	// again. (huma takes nullability of a struct from this tag, not from the field.)
	_        struct{} `nullable:"true"`
	Provider string   `json:"provider"`
	Model    string   `json:"model"`
}

// ModelRef is any model name Ollama knows (e.g. qwen3:4b).
type ModelRef struct {
	Model string `json:"model" minLength:"1" maxLength:"200" doc:"An Ollama model name, e.g. qwen3:4b."`
}

// ApprovalPolicy lists the tools that always wait for a person, and how those gates behave.
type ApprovalPolicy struct {
	Require          []string `json:"require" doc:"Tools gated before every call."`
	DistinctApprover bool     `json:"distinct_approver,omitempty" doc:"The user or key that started the run may not approve it."`
	ExpiresAfter     string   `json:"expires_after,omitempty" doc:"How long a gate stays open, e.g. 30m, 24h, 7d; absent: never expires."`
	OnExpiry         string   `json:"on_expiry,omitempty" enum:"deny,fail" doc:"deny (default): the model is told the call was denied; fail: the run fails."`
}

// BuiltinTools are the tool names the model sees (DESIGN §5.2).
var BuiltinTools = []string{
	"request_human_approval", "ask_human",
	"add_cases", "list_cases", "claim_case", "update_case", "postpone_case", "complete_case", "fail_case",
	"handover", "delegate",
	"read_file", "write_file", "list_files",
	"memory_read", "memory_write", "memory_list",
	"load_skill", "read_skill_file",
	"http_request",
}

// Tool modes: how the runtime asks a model for tool calls (DESIGN §5.1).
const (
	ToolModeNative      = "native"
	ToolModeConstrained = "constrained"
	ToolModeAuto        = "auto"
)

// ToolModes are the values options.tool_mode takes.
var ToolModes = []string{ToolModeNative, ToolModeConstrained, ToolModeAuto}

var (
	modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$`)
	mcpTool   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*__[A-Za-z0-9_.-]+$`)
	hostRule  = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)
	uuidRe    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// FieldError is a broken rule of one config field. Field is its path under config.data
// (e.g. "models.agent.model"), so the API names it and a form shows it beside the field.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return "config.data." + e.Field + ": " + e.Msg }

// maxModelName is the longest model name a Setup accepts (the API's schema says so too).
const maxModelName = 200

// Normalize checks the rules a schema cannot express and fills the defaults the
// reference's responses require (empty lists instead of null). Errors are *FieldError,
// naming the field under "config." so a client can point at it. The API and the
// dashboard's Setup form both validate with it, so their rules are one.
func (c *SetupConfig) Normalize() error {
	d := &c.Data
	fail := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if m := d.Models.Agent.Model; !modelName.MatchString(m) || len(m) > maxModelName {
		return fail("models.agent.model", "%q is not a model name: use an Ollama name such as qwen3:4b", m)
	}
	if err := checkInput(d.Input); err != nil {
		return fail("input", "%s", err)
	}
	for _, l := range []*[]string{&d.Files, &d.Skills, &d.Plugins, &d.SubAgents} {
		if *l == nil {
			*l = []string{}
		}
	}
	for i, id := range d.SubAgents {
		if !uuidRe.MatchString(id) {
			return fail(fmt.Sprintf("subAgents[%d]", i), "%q is not an assignment id", id)
		}
	}
	for i, t := range d.Tools {
		if err := checkTool(t); err != nil {
			return fail(fmt.Sprintf("tools[%d]", i), "%s", err)
		}
	}
	if a := d.Approval; a != nil {
		if a.Require == nil {
			a.Require = []string{}
		}
		for i, t := range a.Require {
			if err := checkTool(t); err != nil {
				return fail(fmt.Sprintf("approval.require[%d]", i), "%s", err)
			}
		}
		if a.ExpiresAfter != "" {
			if _, err := ParseDuration(a.ExpiresAfter); err != nil {
				return fail("approval.expires_after", "%s", err)
			}
		}
		if a.OnExpiry != "" && a.OnExpiry != "deny" && a.OnExpiry != "fail" {
			return fail("approval.on_expiry", "%q: want deny (the model is told the call was denied) or fail (the run fails)", a.OnExpiry)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.ToolArguments)) {
		if err := checkBounds(name, d.ToolArguments[name]); err != nil {
			return fail("tool_arguments."+name, "%s", err)
		}
	}
	if choice := d.Options.ToolChoice(); choice != "auto" && choice != "required" && d.Tools != nil && !slices.Contains(d.Tools, choice) {
		return fail("options.tool_choice", "%q is not among the enabled tools: add it to tools, or choose auto or required", choice)
	}
	for i, h := range d.HTTPAllowlist {
		if !hostRule.MatchString(h) {
			return fail(fmt.Sprintf("http_allowlist[%d]", i), "%q is not a host: write example.com, *.example.com or example.com:8443 (no scheme or path)", h)
		}
	}
	return checkOptions(d.Options)
}

func checkTool(name string) error {
	if slices.Contains(BuiltinTools, name) || mcpTool.MatchString(name) {
		return nil
	}
	return fmt.Errorf("unknown tool %q: use a built-in tool (%s) or <connection>__<tool>", name, strings.Join(BuiltinTools, ", "))
}

func checkInput(in any) error {
	switch v := in.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("the SOP is empty: write what the Assignment should do and how")
		}
		return nil
	case []any:
		if len(v) == 0 {
			return fmt.Errorf("the SOP is empty: give at least one {role, content} message")
		}
		for i, m := range v {
			msg, ok := m.(map[string]any)
			if !ok {
				return fmt.Errorf("[%d] must be an object with role and content", i)
			}
			if r, _ := msg["role"].(string); r != "system" && r != "user" && r != "assistant" {
				return fmt.Errorf("[%d].role must be system, user or assistant", i)
			}
			switch msg["content"].(type) {
			case string, []any:
			default:
				return fmt.Errorf("[%d].content must be a string or a list of content parts", i)
			}
		}
		return nil
	default:
		return fmt.Errorf("must be a string (the SOP) or a list of {role, content} messages")
	}
}

func checkOptions(o Options) error {
	if v, ok := o["num_ctx"]; ok {
		n, isNum := v.(float64)
		if !isNum || n != float64(int(n)) || n < 512 || n > 1<<20 {
			return &FieldError{Field: "options.num_ctx", Msg: fmt.Sprintf("%v must be a whole number from 512 to 1048576", v)}
		}
	}
	if v, ok := o["think"]; ok {
		if _, isBool := v.(bool); !isBool {
			return &FieldError{Field: "options.think", Msg: fmt.Sprintf("%v must be true or false", v)}
		}
	}
	if v, ok := o["num_predict"]; ok {
		n, isNum := v.(float64)
		if !isNum || n != float64(int(n)) || n < 16 || n > 1<<17 {
			return &FieldError{Field: "options.num_predict", Msg: fmt.Sprintf("%v must be a whole number from 16 to 131072", v)}
		}
	}
	if v, ok := o["tool_mode"]; ok {
		s, _ := v.(string)
		if !slices.Contains(ToolModes, s) {
			return &FieldError{Field: "options.tool_mode", Msg: fmt.Sprintf("%v must be one of %s", v, strings.Join(ToolModes, ", "))}
		}
	}
	if v, ok := o["tool_choice"]; ok {
		s, _ := v.(string)
		if s != "auto" && s != "required" && checkTool(s) != nil {
			return &FieldError{Field: "options.tool_choice", Msg: fmt.Sprintf("%v must be auto, required or the name of a tool", v)}
		}
		if s != "auto" && o.ToolMode() != ToolModeConstrained {
			return &FieldError{Field: "options.tool_choice", Msg: fmt.Sprintf("%q needs tool_mode constrained (Ollama's native tool calling cannot force a call): set options.tool_mode to constrained, or tool_choice to auto", s)}
		}
	}
	return nil
}

// ToolMode is options.tool_mode, auto when unset.
func (o Options) ToolMode() string {
	if s, _ := o["tool_mode"].(string); s != "" {
		return s
	}
	return ToolModeAuto
}

// ToolChoice is options.tool_choice, auto when unset.
func (o Options) ToolChoice() string {
	if s, _ := o["tool_choice"].(string); s != "" {
		return s
	}
	return "auto"
}

// checkBounds checks a setup's argument bounds for one tool.
func checkBounds(tool string, b ArgumentBounds) error {
	if err := checkTool(tool); err != nil {
		return err
	}
	for _, arg := range slices.Sorted(maps.Keys(b)) {
		for _, k := range slices.Sorted(maps.Keys(b[arg])) {
			v := b[arg][k]
			switch k {
			case "enum":
				if vals, ok := v.([]any); !ok || len(vals) == 0 {
					return fmt.Errorf("%s.enum must be a non-empty list of allowed values", arg)
				}
			case "const":
			case "minLength", "maxLength", "minItems", "maxItems":
				if n, ok := v.(float64); !ok || n < 0 || n != float64(int(n)) {
					return fmt.Errorf("%s.%s: %v must be a whole number, 0 or more", arg, k, v)
				}
			case "minimum", "maximum":
				if _, ok := v.(float64); !ok {
					return fmt.Errorf("%s.%s: %v must be a number", arg, k, v)
				}
			default:
				return fmt.Errorf("%s.%s: unknown keyword; use %s", arg, k, strings.Join(boundKeywords, ", "))
			}
		}
	}
	return nil
}

// maxDays bounds day counts so the result cannot overflow time.Duration (~292 years).
const maxDays = 36500

// ParseDuration reads "90s", "30m", "24h", "7d" and Go durations such as "1h30m".
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a duration: write e.g. 30m, 24h or 7d", s)
		}
		if n > maxDays {
			return 0, fmt.Errorf("%q is too long: at most %dd", s, maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration: write e.g. 30m, 24h or 7d", s)
	}
	return d, nil
}

// ParseSetupConfig decodes stored config JSON.
func ParseSetupConfig(raw []byte) (SetupConfig, error) {
	var c SetupConfig
	err := json.Unmarshal(raw, &c)
	return c, err
}
