package files

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"docket/store"
)

// MaxRecords bounds the cases one records file may make: they commit in one
// transaction, all or nothing.
const MaxRecords = 100_000

// maxLabels is the most labels one record may carry, as in createCases.
const maxLabels = 50

// RecordError says where a records file is wrong: the line (1-based, as an editor counts
// them), and the column or field when known.
type RecordError struct {
	Line int
	// Column is 1-based; 0 when the error is about the whole line.
	Column int
	// Field is the CSV column name or JSON key the error is about, if any.
	Field string
	Msg   string
}

func (e *RecordError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", e.Line)
	if e.Column > 0 {
		fmt.Fprintf(&b, ", column %d", e.Column)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ", field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// IsRecordsFile reports whether records mode can read a file of this name.
func IsRecordsFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson", ".csv":
		return true
	}
	return false
}

// ParseRecords reads a records file (.jsonl/.ndjson: one JSON object per line; .csv: a
// header row, then one row per record) into one case per record. Either every record is
// good and all are returned, or the first bad one is reported as a *RecordError.
//
// Mapping: a "title" field or column (any case) is the case title; without one, the first
// field's value is, or "<name> line N" when that is empty. "priority" (none, medium, high)
// and "labels" ("key:value" or bare values; a JSON array, or separated by ; or , in CSV)
// are applied to the case. Every other field goes into the case data, a JSON object in
// the file's field order.
func ParseRecords(name string, r io.Reader) ([]store.NewCase, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson":
		return ParseJSONL(name, r)
	case ".csv":
		return ParseCSV(name, r)
	}
	return nil, fmt.Errorf("records mode reads .jsonl, .ndjson and .csv files, not %q: rename the file or use a queue in file mode", filepath.Ext(name))
}

// field is one named value of a record, in file order. raw is its JSON encoding.
type field struct {
	name string
	raw  json.RawMessage
	col  int
}

// special names the fields a record maps onto the case itself rather than its data.
const (
	fieldTitle    = "title"
	fieldPriority = "priority"
	fieldLabels   = "labels"
)

// recordCase turns one record's fields into a case. text reports a field's plain text
// (for titles and priorities); labels parses its labels field.
func recordCase(name string, line int, fields []field, text func(field) (string, bool), labels func(field) ([]string, error)) (store.NewCase, error) {
	var nc store.NewCase
	var title, prio, labs *field
	data := bytes.NewBufferString("{")
	var first *field
	for i := range fields {
		f := &fields[i]
		switch k := strings.ToLower(f.name); {
		case k == fieldTitle && title == nil:
			title = f
		case k == fieldPriority && prio == nil:
			prio = f
		case k == fieldLabels && labs == nil:
			labs = f
		default:
			if first == nil {
				first = f
			}
			if data.Len() > 1 {
				data.WriteByte(',')
			}
			key, _ := json.Marshal(f.name)
			data.Write(key)
			data.WriteByte(':')
			data.Write(f.raw)
		}
	}
	data.WriteByte('}')
	nc.Data = data.String()
	bad := func(f *field, format string, args ...any) error {
		return &RecordError{Line: line, Column: f.col, Field: f.name, Msg: fmt.Sprintf(format, args...)}
	}

	if title != nil {
		t, ok := text(*title)
		if !ok {
			return nc, bad(title, "the title must be text")
		}
		nc.Title = strings.TrimSpace(t)
		if n := utf8.RuneCountInString(nc.Title); n > store.MaxCaseTitle {
			return nc, bad(title, "the title is %d characters; at most %d are allowed (put long text in another field)", n, store.MaxCaseTitle)
		}
	}
	if nc.Title == "" && first != nil {
		if t, ok := text(*first); ok {
			nc.Title = truncateRunes(strings.TrimSpace(t), store.MaxCaseTitle)
		}
	}
	if nc.Title == "" {
		nc.Title = truncateRunes(fmt.Sprintf("%s line %d", name, line), store.MaxCaseTitle)
	}

	if prio != nil {
		p, ok := text(*prio)
		p = strings.ToLower(strings.TrimSpace(p))
		if _, valid := store.PriorityRank(p); !ok || (!valid && p != "") {
			return nc, bad(prio, "priority %s: want none, medium, high or empty", prio.raw)
		}
		nc.Priority = p
	}
	if labs != nil {
		items, err := labels(*labs)
		if err != nil {
			return nc, bad(labs, "%v", err)
		}
		for _, it := range items {
			it = strings.TrimSpace(it)
			if it == "" {
				continue
			}
			kv := store.LabelKV{Value: it}
			if k, v, ok := strings.Cut(it, ":"); ok {
				kv = store.LabelKV{Key: k, Value: v}
			}
			kv, err := store.CheckLabel(kv)
			if err != nil {
				return nc, bad(labs, "label %q: %v", it, err)
			}
			nc.Labels = append(nc.Labels, kv)
		}
		if len(nc.Labels) > maxLabels {
			return nc, bad(labs, "%d labels; at most %d are allowed", len(nc.Labels), maxLabels)
		}
	}
	return nc, nil
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ParseJSONL reads one JSON object per line; blank lines are skipped.
func ParseJSONL(name string, r io.Reader) ([]store.NewCase, error) {
	br := bufio.NewReader(r)
	var out []store.NewCase
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if len(out) == MaxRecords {
				return nil, &RecordError{Line: line, Msg: fmt.Sprintf("more than %d records: split the file", MaxRecords)}
			}
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\uFEFF"))
			}
			fields, err := jsonFields(line, b)
			if err != nil {
				return nil, err
			}
			nc, err := recordCase(name, line, fields, jsonText, jsonLabels)
			if err != nil {
				return nil, err
			}
			out = append(out, nc)
		}
		if err == io.EOF {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no records: the file has no JSON object lines")
	}
	return out, nil
}

// jsonFields decodes one line that must hold exactly one JSON object, keeping its keys in
// order.
func jsonFields(line int, b []byte) ([]field, error) {
	if !utf8.Valid(b) {
		return nil, &RecordError{Line: line, Column: invalidUTF8At(b), Msg: "not valid UTF-8: save the file as UTF-8"}
	}
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &RecordError{Line: line, Column: int(se.Offset), Msg: "invalid JSON: " + se.Error()}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &RecordError{Line: line, Msg: "invalid JSON: the object is not closed (one object per line)"}
		}
		return &RecordError{Line: line, Msg: "invalid JSON: " + err.Error()}
	}
	if !json.Valid(b) {
		return nil, syntax(json.Unmarshal(b, new(any)))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &RecordError{Line: line, Msg: "want a JSON object ({…}) on each line"}
	}
	var fields []field
	seen := map[string]bool{}
	for dec.More() {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key := tok.(string)
		col := start + bytes.IndexByte(b[start:], '"') + 1
		if seen[key] {
			return nil, &RecordError{Line: line, Field: key, Msg: "the key appears twice in the object"}
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return nil, syntax(err)
		}
		fields = append(fields, field{name: key, raw: c.Bytes(), col: col})
	}
	return fields, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i + 1
		}
		i += n
	}
	return 0
}

// jsonText is a JSON value as title or priority text: strings as they are, numbers and
// booleans as written; objects, arrays and null are not text.
func jsonText(f field) (string, bool) {
	switch {
	case len(f.raw) > 0 && f.raw[0] == '"':
		var s string
		json.Unmarshal(f.raw, &s)
		return s, true
	case string(f.raw) == "true", string(f.raw) == "false":
		return string(f.raw), true
	case len(f.raw) > 0 && (f.raw[0] == '-' || f.raw[0] >= '0' && f.raw[0] <= '9'):
		return string(f.raw), true
	case string(f.raw) == "null":
		return "", true
	}
	return "", false
}

// jsonLabels reads a labels field: an array of "key:value" or bare-value strings, or of
// {"key","value"} objects; null means none.
func jsonLabels(f field) ([]string, error) {
	if string(f.raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(f.raw, &items); err != nil {
		return nil, errors.New(`want an array of "key:value" strings or {"key","value"} objects`)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, s)
			continue
		}
		var kv struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(it, &kv); err != nil || strings.TrimSpace(kv.Value) == "" {
			return nil, fmt.Errorf(`label %s: want "key:value", a bare value, or {"key","value"} with a value`, it)
		}
		if strings.Contains(kv.Key, ":") {
			return nil, fmt.Errorf("label key %q must not contain a colon", kv.Key)
		}
		if kv.Key == "" {
			out = append(out, ":"+kv.Value)
		} else {
			out = append(out, kv.Key+":"+kv.Value)
		}
	}
	return out, nil
}

// ParseCSV reads a header row of column names and one record per following row. The
// delimiter is a comma, or a semicolon when the header has semicolons and no comma (as
// spreadsheets in many locales save CSV).
func ParseCSV(name string, r io.Reader) ([]store.NewCase, error) {
	br := bufio.NewReader(r)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\uFEFF")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	if head, _ := br.Peek(4096); headerSemicolons(head) {
		cr.Comma = ';'
	}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("no records: the file is empty (want a header row, then one row per record)")
	}
	if err != nil {
		return nil, csvError(err)
	}
	cols := make([]string, len(header))
	seen := map[string]int{}
	for i, h := range header {
		line, col := cr.FieldPos(i)
		h = strings.TrimSpace(h)
		switch {
		case !utf8.ValidString(h):
			return nil, &RecordError{Line: line, Column: col, Msg: "the column name is not valid UTF-8: save the file as UTF-8"}
		case h == "":
			return nil, &RecordError{Line: line, Column: col, Msg: fmt.Sprintf("column %d of the header row has no name", i+1)}
		case seen[h] > 0:
			return nil, &RecordError{Line: line, Column: col, Field: h, Msg: fmt.Sprintf("the header names this column twice (columns %d and %d)", seen[h], i+1)}
		}
		seen[h] = i + 1
		cols[i] = h
	}
	var out []store.NewCase
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if allBlank(rec) {
			continue // a row of empty cells, as spreadsheets leave at the end
		}
		if len(rec) != len(cols) {
			return nil, &RecordError{Line: line, Msg: fmt.Sprintf("%d fields, but the header has %d columns (a field with the delimiter or a line break in it must be in double quotes)", len(rec), len(cols))}
		}
		if len(out) == MaxRecords {
			return nil, &RecordError{Line: line, Msg: fmt.Sprintf("more than %d records: split the file", MaxRecords)}
		}
		fields := make([]field, len(rec))
		for i, v := range rec {
			_, col := cr.FieldPos(i)
			if !utf8.ValidString(v) {
				return nil, &RecordError{Line: line, Column: col, Field: cols[i], Msg: "not valid UTF-8: save the file as UTF-8"}
			}
			raw, _ := json.Marshal(v)
			fields[i] = field{name: cols[i], raw: raw, col: col}
		}
		nc, err := recordCase(name, line, fields, csvText, csvLabels)
		if err != nil {
			return nil, err
		}
		out = append(out, nc)
	}
	if len(out) == 0 {
		return nil, errors.New("no records: the file has a header row but no rows below it")
	}
	return out, nil
}

func allBlank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// headerSemicolons reports whether the first line uses semicolons as delimiters.
func headerSemicolons(b []byte) bool {
	first, _, _ := bytes.Cut(b, []byte("\n"))
	return bytes.IndexByte(first, ';') >= 0 && bytes.IndexByte(first, ',') < 0
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if pe.StartLine != pe.Line {
			msg += fmt.Sprintf(" (in the record that starts on line %d)", pe.StartLine)
		}
		return &RecordError{Line: pe.Line, Column: pe.Column, Msg: msg}
	}
	return err
}

func csvText(f field) (string, bool) {
	var s string
	json.Unmarshal(f.raw, &s)
	return s, true
}

// csvLabels splits a labels cell at semicolons or commas.
func csvLabels(f field) ([]string, error) {
	s, _ := csvText(f)
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }), nil
}
