package runtime

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	schema, err := parseSchema(`{"type":"object","required":["title"],"properties":{
		"title":{"type":"string","maxLength":5},"n":{"type":"integer","minimum":1,"maximum":3},
		"tags":{"type":"array","maxItems":2,"items":{"type":"string","enum":["a","b"]}},
		"opt":{"type":["string","null"]},"obj":{"type":"object","additionalProperties":false,"properties":{"k":{"const":1}}}}}`)
	if err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]string{
		`{"title":"ok"}`:                      "",
		`{"title":"ok","n":2,"tags":["a"]}`:   "",
		`{"title":"ok","opt":null}`:           "",
		`{"title":"ok","extra":true}`:         "", // JSON schema allows unknown fields unless it says otherwise
		`{}`:                                  `arguments: missing required "title"`,
		`{"title":5}`:                         `arguments.title: must be a string, not an integer`,
		`{"title":"toolong"}`:                 `arguments.title: must be at most 5 characters long`,
		`{"title":"ok","n":2.5}`:              `arguments.n: must be an integer, not a number`,
		`{"title":"ok","n":9}`:                `arguments.n: must be at most 3`,
		`{"title":"ok","tags":["a","c"]}`:     `arguments.tags[1]: must be one of ["a","b"], not "c"`,
		`{"title":"ok","tags":["a","a","a"]}`: `arguments.tags: must have at most 2 items`,
		`{"title":"ok","obj":{"k":2}}`:        `arguments.obj.k: must be 1`,
		`{"title":"ok","obj":{"z":1}}`:        `arguments.obj: unknown field "z" (allowed: k)`,
	} {
		var v map[string]any
		json.Unmarshal([]byte(args), &v)
		err := validate(schema, v, "arguments")
		if got := ""; err != nil {
			got = err.Error()
			if got != want {
				t.Errorf("%s: %q, want %q", args, got, want)
			}
		} else if want != "" {
			t.Errorf("%s: valid, want %q", args, want)
		}
	}
}

// Every built-in tool's schema keeps its key order through narrowing and the grammar
// subset, and what reaches the grammar has only keywords llama.cpp compiles.
func TestGrammarSchema(t *testing.T) {
	s, _ := parseSchema(`{"type":"object","required":["title","description"],"properties":{"title":{"type":"string","description":"x","pattern":"^a"},
		"description":{"type":"string","maxLength":100000},"list":{"type":"array","maxItems":100,"items":{"type":"string","format":"uri"}}}}`)
	s = narrow(s, ArgumentBounds{"title": {"enum": []any{"A"}}})
	got, _ := json.Marshal(grammarSchema(s))
	want := `{"type":"object","required":["title","description"],"properties":{"title":{"type":"string","enum":["A"]},"description":{"type":"string"},"list":{"type":"array","items":{"type":"string"}}}}`
	if string(got) != want {
		t.Fatalf("grammar schema\n%s\nwant\n%s", got, want)
	}
}

func TestParseConstrained(t *testing.T) {
	if final, ok, _ := parseConstrained(` {"final": "Done."} `); !ok || final != "Done." {
		t.Fatalf("final: %q %v", final, ok)
	}
	if _, ok, c := parseConstrained(`{"tool":"memory_read","arguments":{"path":"a.md"}}`); ok || c.name != "memory_read" || string(c.args) != `{"path":"a.md"}` {
		t.Fatalf("call: %+v", c)
	}
	for _, bad := range []string{``, `{"final": 3}`, `{"tool":"x","arguments":[1]}`, `{"tool":"x"}`, `{"tool":"x","arguments":{},"final":"y"}`, `{"final":"x","more":1}`, `{"tool":"","arguments":{}}`, "{\"final\": \"cut"} {
		_, ok, c := parseConstrained(bad)
		var rec map[string]string
		if ok || c.name != invalidReplyTool || json.Unmarshal(c.args, &rec) != nil || rec["reply"] != bad {
			t.Errorf("%q: final %v, call %+v", bad, ok, c)
		}
	}
}

// The final answer streams as decoded text however the JSON is cut into chunks.
func TestFinalStream(t *testing.T) {
	const answer = "Héllo \"quoted\"\n\\ \u00e9 done"
	b, _ := json.Marshal(map[string]string{"final": answer})
	js := " {\n  \"final\" : " + string(b[len(`{"final":`):])
	for size := 1; size <= len(js); size++ {
		var f finalStream
		var got strings.Builder
		for i := 0; i < len(js); i += size {
			got.WriteString(f.feed(js[i:min(i+size, len(js))]))
		}
		if got.String() != answer {
			t.Fatalf("chunks of %d: %q", size, got.String())
		}
	}
	var f finalStream
	if got := f.feed(`{"tool":"x","arguments":{"final":"no"}}`); got != "" {
		t.Fatalf("a call streamed %q", got)
	}
}
