package runtime

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
)

func TestHostAllowed(t *testing.T) {
	allow := []string{"api.example.com", "*.internal.test", "billing.test:8443"}
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"https://api.example.com/v1", true},
		{"http://api.example.com:8080/", true},
		{"https://API.EXAMPLE.COM/", true},
		{"https://evil.api.example.com/", false},
		{"https://api.example.com.evil.test/", false},
		{"https://a.internal.test/", true},
		{"https://a.b.internal.test/", true},
		{"https://internal.test/", false},
		{"https://billing.test:8443/pay", true},
		{"https://billing.test/pay", false},
		{"https://billing.test:9443/pay", false},
	} {
		u, _ := url.Parse(c.url)
		if got := hostAllowed(allow, u); got != c.want {
			t.Errorf("hostAllowed(%s) = %v, want %v", c.url, got, c.want)
		}
	}
}

// TestConsentHashBindsTheExactCall: the same call hashes the same whatever its key order;
// any other argument, tool or build does not.
func TestConsentHashBindsTheExactCall(t *testing.T) {
	hash := func(tool, args, build string) string {
		canonical, _, err := canonicalArgs(json.RawMessage(args))
		if err != nil {
			t.Fatal(err)
		}
		return ConsentHash(tool, canonical, build)
	}
	base := hash("http_request", `{"method":"POST","url":"https://a.test/x","body":"{}"}`, "b1")
	if got := hash("http_request", `{"url":"https://a.test/x","body":"{}","method":"POST"}`, "b1"); got != base {
		t.Error("key order changed the hash")
	}
	for name, other := range map[string]string{
		"argument": hash("http_request", `{"method":"POST","url":"https://a.test/y","body":"{}"}`, "b1"),
		"tool":     hash("memory_write", `{"method":"POST","url":"https://a.test/x","body":"{}"}`, "b1"),
		"build":    hash("http_request", `{"method":"POST","url":"https://a.test/x","body":"{}"}`, "b2"),
	} {
		if other == base {
			t.Errorf("another %s gave the same hash", name)
		}
	}
	if _, _, err := canonicalArgs(json.RawMessage(`[1,2]`)); err == nil {
		t.Error("arguments that are not an object must be refused")
	}
}

func TestCleanMemoryPath(t *testing.T) {
	for in, want := range map[string]string{"notes.md": "notes.md", "/a/b.md": "a/b.md", "a/./b/../c.md": "a/c.md"} {
		if got, err := CleanMemoryPath(in); err != nil || got != want {
			t.Errorf("CleanMemoryPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "..", "../etc/passwd", "a/../../b", string(make([]byte, 201))} {
		if _, err := CleanMemoryPath(bad); err == nil {
			t.Errorf("CleanMemoryPath(%q) accepted", bad)
		}
	}
}

func TestEnabledTools(t *testing.T) {
	e := New(Config{})
	names := func(d SetupData) []string {
		var out []string
		for _, t := range e.Tools().Enabled(d) {
			out = append(out, t.Name)
		}
		return out
	}
	if got := names(SetupData{}); slices.Contains(got, "http_request") || !slices.Contains(got, "request_human_approval") {
		t.Errorf("default tools %v: http_request needs an allowlist, the human tools need nothing", got)
	}
	if got := names(SetupData{HTTPAllowlist: []string{"a.test"}}); !slices.Contains(got, "http_request") {
		t.Errorf("with an allowlist: %v", got)
	}
	if got := names(SetupData{Tools: []string{"memory_read", "delegate"}}); !slices.Equal(got, []string{"memory_read"}) {
		t.Errorf("listed tools: %v; a listed tool this runtime lacks is not offered", got)
	}
}

func TestParseQuestions(t *testing.T) {
	if _, err := parseQuestions(map[string]any{"questions": []any{map[string]any{"question": "Which?"}}}); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string]map[string]any{
		"none":      {},
		"empty":     {"questions": []any{}},
		"no text":   {"questions": []any{map[string]any{"header": "h"}}},
		"duplicate": {"questions": []any{map[string]any{"question": "A?"}, map[string]any{"question": "A?"}}},
	} {
		if _, err := parseQuestions(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
