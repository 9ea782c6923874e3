package files

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"docket/store"
)

func TestParseJSONLMapsRecordsToCases(t *testing.T) {
	in := "{\"title\":\"Refund #1\",\"amount\":12.5,\"customer\":{\"id\":7},\"priority\":\"High\",\"labels\":[\"team:billing\",\"urgent\",{\"key\":\"src\",\"value\":\"shop\"}]}\n" +
		"\n" + // blank lines are skipped but counted
		"{\"order\":\"A-2\",\"amount\":3}\r\n" +
		"{\"amount\":null}\n"
	cs, err := ParseJSONL("refunds.jsonl", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("got %d cases, want 3", len(cs))
	}
	want := []store.NewCase{
		{Title: "Refund #1", Data: `{"amount":12.5,"customer":{"id":7}}`, Priority: "high",
			Labels: []store.LabelKV{{Key: "team", Value: "billing"}, {Value: "urgent"}, {Key: "src", Value: "shop"}}},
		{Title: "A-2", Data: `{"order":"A-2","amount":3}`},
		{Title: "refunds.jsonl line 4", Data: `{"amount":null}`},
	}
	for i := range want {
		if cs[i].Title != want[i].Title || cs[i].Data != want[i].Data || cs[i].Priority != want[i].Priority || !equalLabels(cs[i].Labels, want[i].Labels) {
			t.Errorf("case %d = %+v, want %+v", i, cs[i], want[i])
		}
	}
}

func TestParseCSVMapsRowsToCases(t *testing.T) {
	in := "\uFEFFTitle,amount,Labels,priority,note\n" +
		"Refund 1,12.50,team:billing;urgent,medium,\"says \"\"hi\"\", twice\"\n" +
		",3,,,\"multi\nline\"\n" +
		",,,,\n"
	cs, err := ParseCSV("r.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("got %d cases, want 2 (the blank row is skipped): %+v", len(cs), cs)
	}
	if c := cs[0]; c.Title != "Refund 1" || c.Data != `{"amount":"12.50","note":"says \"hi\", twice"}` || c.Priority != "medium" ||
		!equalLabels(c.Labels, []store.LabelKV{{Key: "team", Value: "billing"}, {Value: "urgent"}}) {
		t.Errorf("row 1 = %+v", c)
	}
	// No title: the first other column's value.
	if c := cs[1]; c.Title != "3" || c.Data != `{"amount":"3","note":"multi\nline"}` {
		t.Errorf("row 2 = %+v", c)
	}

	cs, err = ParseCSV("semi.csv", strings.NewReader("name;city\nAda;London\n"))
	if err != nil || len(cs) != 1 || cs[0].Title != "Ada" || cs[0].Data != `{"name":"Ada","city":"London"}` {
		t.Fatalf("semicolon CSV: %+v, %v", cs, err)
	}
}

func TestParseRecordsNamesTheBadLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string
	}{
		{"a.csv", "title,amount\nok,1\nbad,2,3\n", "line 3: 3 fields, but the header has 2 columns"},
		{"a.csv", "title,amount\nok,1\n\"open,2\n", "line 3, column 9: extraneous or missing \" in quoted-field"},
		{"a.csv", "title,amount\nok,1\nx\"y,2\n", "line 3, column 2: bare \" in non-quoted-field"},
		{"a.csv", "title,,b\n", "line 1, column 7: column 2 of the header row has no name"},
		{"a.csv", "a,b,a\n1,2,3\n", `line 1, column 5, field "a": the header names this column twice (columns 1 and 3)`},
		{"a.csv", "title,priority\nx,urgent\n", `line 2, column 3, field "priority": priority "urgent": want none, medium, high or empty`},
		{"a.csv", "title,amount\n", "no records: the file has a header row but no rows below it"},
		{"a.csv", "", "no records: the file is empty"},
		{"a.csv", "title\n" + strings.Repeat("x", 501) + "\n", `line 2, column 1, field "title": the title is 501 characters`},
		{"a.csv", "title,amount\nok,\xff\n", `line 2, column 4, field "amount": not valid UTF-8`},
		{"a.jsonl", "{\"a\":1}\n{\"a\":2,}\n", "line 2, column 8: invalid JSON: invalid character '}'"},
		{"a.jsonl", "{\"a\":1}\n\n[1,2]\n", "line 3: want a JSON object"},
		{"a.jsonl", "{\"a\":1}\n{\"a\":1\n", "line 2, column 7: invalid JSON: unexpected end of JSON input"},
		{"a.jsonl", "{\"a\":1} {\"b\":2}\n", "line 1, column 9: invalid JSON: invalid character '{' after top-level value"},
		{"a.jsonl", "{\"a\":1,\"title\":{\"x\":1}}\n", `line 1, column 8, field "title": the title must be text`},
		{"a.jsonl", "{\"a\":1,\"a\":2}\n", `line 1, field "a": the key appears twice`},
		{"a.jsonl", "{\"labels\":\"x\"}\n", `line 1, column 2, field "labels": want an array`},
		{"a.jsonl", "{\"labels\":[\"" + strings.Repeat("v", 201) + "\"]}\n", `field "labels": label "vvv`},
		{"a.jsonl", "\n  \n", "no records"},
		{"a.txt", "x", `records mode reads .jsonl, .ndjson and .csv files, not ".txt"`},
	} {
		_, err := ParseRecords(tc.name, strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want it to contain %q", tc.name, tc.in, err, tc.want)
		}
	}
}

func equalLabels(a, b []store.LabelKV) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkParsed holds for any input: either every record became a case the store will take
// (a title, data that is a JSON object, a known priority), or the parser said why not and,
// when it names a line, a line that exists.
func checkParsed(t *testing.T, in string, cs []store.NewCase, err error) {
	if err != nil {
		var re *RecordError
		if errors.As(err, &re) && (re.Line < 1 || re.Line > strings.Count(in, "\n")+1) {
			t.Fatalf("error names line %d of a %d-line input: %v", re.Line, strings.Count(in, "\n")+1, err)
		}
		if cs != nil {
			t.Fatalf("cases returned with an error: %v", err)
		}
		return
	}
	if len(cs) == 0 {
		t.Fatal("no cases and no error")
	}
	for i, c := range cs {
		if strings.TrimSpace(c.Title) == "" || utf8.RuneCountInString(c.Title) > store.MaxCaseTitle || !utf8.ValidString(c.Title) {
			t.Fatalf("case %d: bad title %q", i, c.Title)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.Data), &m); err != nil || m == nil {
			t.Fatalf("case %d: data %q is not a JSON object: %v", i, c.Data, err)
		}
		if _, ok := store.PriorityRank(c.Priority); !ok && c.Priority != "" {
			t.Fatalf("case %d: priority %q", i, c.Priority)
		}
		if len(c.Labels) > maxLabels {
			t.Fatalf("case %d: %d labels", i, len(c.Labels))
		}
		for _, l := range c.Labels {
			if strings.TrimSpace(l.Value) == "" {
				t.Fatalf("case %d: blank label value", i)
			}
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"title,amount\nok,1\n", "a;b\n1;2\n", "title,priority,labels\nx,high,a:b;c\n", "\"a\nb\",c\n1,2\n",
		"title,amount\nok,1\nbad,2,3\n", "a,b,a\n1,2,3\n", "\uFEFFx\n\xff\n", ",,\n,,\n", "a\n\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ParseCSV("f.csv", strings.NewReader(in))
		checkParsed(t, in, cs, err)
	})
}

func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		"{\"title\":\"x\",\"a\":1}\n", "{\"a\":[1,2],\"labels\":[\"k:v\",{\"key\":\"a\",\"value\":\"b\"}]}\n\n{\"b\":null}",
		"{\"priority\":\"medium\"}\n", "[1]\n", "{\"a\":1,}\n", "{\"a\":\"\xff\"}\n", "{} {}\n", "\uFEFF{\"t\":true}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ParseJSONL("f.jsonl", strings.NewReader(in))
		checkParsed(t, in, cs, err)
	})
}
