package runtime

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, js string) SetupConfig {
	t.Helper()
	var c SetupConfig
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNormalizeFillsReferenceDefaults(t *testing.T) {
	c := parse(t, `{"version":"v2","data":{"models":{"agent":{"model":"qwen3:4b"}},"input":"SOP"}}`)
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	for _, want := range []string{`"files":[]`, `"skills":[]`, `"plugins":[]`, `"subAgents":[]`, `"browsing":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("normalised config %s lacks %s", b, want)
		}
	}
}

func TestNormalizeNamesTheBadField(t *testing.T) {
	cases := map[string]struct{ data, field string }{
		"model with spaces":        {`"models":{"agent":{"model":"not a model"}},"input":"x"`, "config.data.models.agent.model"},
		"input not text":           {`"models":{"agent":{"model":"m"}},"input":42`, "config.data.input"},
		"empty SOP":                {`"models":{"agent":{"model":"m"}},"input":"  \n "`, "config.data.input"},
		"no SOP messages":          {`"models":{"agent":{"model":"m"}},"input":[]`, "config.data.input"},
		"model too long":           {`"models":{"agent":{"model":"` + strings.Repeat("m", 201) + `"}},"input":"x"`, "config.data.models.agent.model"},
		"on_expiry unknown":        {`"models":{"agent":{"model":"m"}},"input":"x","approval":{"require":[],"on_expiry":"shrug"}`, "config.data.approval.on_expiry"},
		"bad message role":         {`"models":{"agent":{"model":"m"}},"input":[{"role":"robot","content":"x"}]`, "config.data.input"},
		"unknown tool":             {`"models":{"agent":{"model":"m"}},"input":"x","tools":["read_file","rm_rf"]`, "config.data.tools[1]"},
		"unknown gated tool":       {`"models":{"agent":{"model":"m"}},"input":"x","approval":{"require":["nope"]}`, "config.data.approval.require[0]"},
		"bad expiry":               {`"models":{"agent":{"model":"m"}},"input":"x","approval":{"require":[],"expires_after":"soon"}`, "config.data.approval.expires_after"},
		"host with scheme":         {`"models":{"agent":{"model":"m"}},"input":"x","http_allowlist":["https://x.com"]`, "config.data.http_allowlist[0]"},
		"subagent not id":          {`"models":{"agent":{"model":"m"}},"input":"x","subAgents":["bob"]`, "config.data.subAgents[0]"},
		"num_ctx too small":        {`"models":{"agent":{"model":"m"}},"input":"x","options":{"num_ctx":10}`, "config.data.options.num_ctx"},
		"tool_mode unknown":        {`"models":{"agent":{"model":"m"}},"input":"x","options":{"tool_mode":"magic"}`, "config.data.options.tool_mode"},
		"think not bool":           {`"models":{"agent":{"model":"m"}},"input":"x","options":{"think":"yes"}`, "config.data.options.think"},
		"num_predict tiny":         {`"models":{"agent":{"model":"m"}},"input":"x","options":{"num_predict":2}`, "config.data.options.num_predict"},
		"choice needs constrained": {`"models":{"agent":{"model":"m"}},"input":"x","options":{"tool_choice":"required"}`, "config.data.options.tool_choice"},
		"choice unknown tool":      {`"models":{"agent":{"model":"m"}},"input":"x","options":{"tool_mode":"constrained","tool_choice":"rm_rf"}`, "config.data.options.tool_choice"},
		"choice not enabled":       {`"models":{"agent":{"model":"m"}},"input":"x","tools":["memory_list"],"options":{"tool_mode":"constrained","tool_choice":"ask_human"}`, "config.data.options.tool_choice"},
		"bounds unknown tool":      {`"models":{"agent":{"model":"m"}},"input":"x","tool_arguments":{"rm_rf":{"path":{"enum":["/"]}}}`, "config.data.tool_arguments.rm_rf"},
		"bounds bad keyword":       {`"models":{"agent":{"model":"m"}},"input":"x","tool_arguments":{"read_file":{"path":{"pattern":"^a"}}}`, "config.data.tool_arguments.read_file"},
		"bounds empty enum":        {`"models":{"agent":{"model":"m"}},"input":"x","tool_arguments":{"read_file":{"path":{"enum":[]}}}`, "config.data.tool_arguments.read_file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := parse(t, `{"version":"v2","data":{`+tc.data+`}}`)
			err := c.Normalize()
			if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Fatalf("Normalize() = %v, want an error naming %s", err, tc.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || "config.data."+fe.Field != tc.field {
				t.Fatalf("Normalize() = %#v, want a *FieldError for %s", err, tc.field)
			}
		})
	}
}

func TestNormalizeAcceptsDocketAdditions(t *testing.T) {
	c := parse(t, `{"version":"v2","data":{"models":{"agent":{"model":"hf.co/org/model:Q4_K_M"},"browsing":{"provider":"google","model":"x"}},
		"input":[{"role":"system","content":"SOP"}],"tools":["http_request","crm__lookup"],
		"approval":{"require":["http_request"],"distinct_approver":true,"expires_after":"7d","on_expiry":"fail"},
		"max_turns":10,"temperature":0.2,"http_allowlist":["api.example.com","*.example.org:8443"],
		"options":{"num_ctx":32768,"num_predict":512,"think":true,"tool_mode":"constrained","tool_choice":"http_request","browserProvider":"browserbase"},
		"tool_arguments":{"http_request":{"method":{"enum":["GET"]},"url":{"maxLength":200}}}}}`)
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "30m": 30 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0d", "1.5d", "soon", "-5m", "0s"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted a non-duration", in)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"2h", "1d", "30m", "1h30m", "-1d", "999999999999d", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v: accepted a non-positive duration", s, d)
		}
	})
}
