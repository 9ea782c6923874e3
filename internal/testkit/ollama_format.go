package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Ollama answers "format": "json" with some JSON object; this fake, with an empty one.
const formatJSONAnswer = "{}"

// formatInstance is the smallest JSON value a request's format allows, with free
// strings set to text: what the fake answers in place of plain text when a request
// constrains its output.
func formatInstance(format json.RawMessage, text string) (string, error) {
	if string(format) == `"json"` {
		return formatJSONAnswer, nil
	}
	var schema any
	dec := json.NewDecoder(bytes.NewReader(format))
	dec.UseNumber()
	if err := dec.Decode(&schema); err != nil {
		return "", fmt.Errorf("invalid JSON schema in format: %w", err)
	}
	b, err := json.Marshal(instance(schema, text))
	return string(b), err
}

func instance(schema any, text string) any {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	if c, ok := s["const"]; ok {
		return c
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := s[key].([]any)
		if !ok || len(alts) == 0 {
			continue
		}
		var best any
		bestLen := -1
		for _, a := range alts {
			v := instance(a, text)
			b, _ := json.Marshal(v)
			if bestLen < 0 || len(b) < bestLen {
				best, bestLen = v, len(b)
			}
		}
		return best
	}
	typ, _ := s["type"].(string)
	if ts, ok := s["type"].([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	switch typ {
	case "object", "":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if name, ok := r.(string); ok {
				out[name] = instance(props[name], text)
			}
		}
		if typ == "" && len(props) == 0 && len(req) == 0 {
			return text
		}
		return out
	case "array":
		n := num(s["minItems"])
		out := make([]any, 0, n)
		for range n {
			out = append(out, instance(s["items"], text))
		}
		return out
	case "string":
		str := text
		if maxLen, ok := s["maxLength"]; ok {
			if n := num(maxLen); utf8.RuneCountInString(str) > n {
				str = string([]rune(str)[:n])
			}
		}
		for n := num(s["minLength"]); utf8.RuneCountInString(str) < n; {
			str += "x"
		}
		return str
	case "integer", "number":
		if m, ok := s["minimum"]; ok {
			return m
		}
		return 0
	case "boolean":
		return false
	}
	return nil
}

func num(v any) int {
	if n, ok := v.(json.Number); ok {
		i, _ := n.Int64()
		return int(i)
	}
	return 0
}
