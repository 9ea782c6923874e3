package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// jsonObject is a decoded JSON object that keeps its members' order. Tool schemas are
// shown to models and compiled into grammars in the order they were written: a grammar
// fixes the order of an object's keys, and "tool" before "arguments", "title" before
// "description" is what a model expects to write.
type jsonObject []jsonMember

type jsonMember struct {
	Key   string
	Value any
}

func (o jsonObject) get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

func (o jsonObject) object(key string) jsonObject {
	v, _ := o.get(key)
	obj, _ := v.(jsonObject)
	return obj
}

// with returns a copy of o with key set to v (in place when present, else appended).
func (o jsonObject) with(key string, v any) jsonObject {
	out := slices.Clone(o)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = v
			return out
		}
	}
	return append(out, jsonMember{key, v})
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeOrdered decodes JSON with objects as jsonObject and numbers as json.Number.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readOrdered(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

func readOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := jsonObject{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := readOrdered(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, jsonMember{k.(string), v})
		}
		_, err := dec.Token()
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := readOrdered(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return tok, nil
}

// parseSchema reads a tool's argument schema, which must be a JSON object.
func parseSchema(s string) (jsonObject, error) {
	v, err := decodeOrdered([]byte(s))
	if err != nil {
		return nil, err
	}
	obj, ok := v.(jsonObject)
	if !ok {
		return nil, fmt.Errorf("a schema must be a JSON object")
	}
	return obj, nil
}

// ArgumentBounds narrow a tool's arguments for one setup: property → schema keywords
// (enum, const, minLength, maxLength, minimum, maximum, minItems, maxItems) that are
// merged into the tool's own schema for that property.
type ArgumentBounds map[string]map[string]any

// boundKeywords are the keywords a setup may add to a tool's argument schema.
var boundKeywords = []string{"enum", "const", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"}

// narrow returns schema with bounds merged into its properties.
func narrow(schema jsonObject, bounds ArgumentBounds) jsonObject {
	if len(bounds) == 0 {
		return schema
	}
	props := schema.object("properties")
	for _, name := range slices.Sorted(maps.Keys(bounds)) {
		prop := props.object(name)
		for _, k := range slices.Sorted(maps.Keys(bounds[name])) {
			prop = prop.with(k, bounds[name][k])
		}
		props = props.with(name, prop)
	}
	return schema.with("properties", props)
}

// grammarKeywords are the JSON schema keywords llama.cpp's json-schema-to-grammar (the
// converter Ollama v0.17.4 uses for "format") turns into grammar rules. Anything else
// (descriptions, patterns, formats) is left out of the format and checked by validate.
var grammarKeywords = []string{"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
	"enum", "const", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf"}

// Repetition bounds expand into nested grammar rules, one per repetition; past these a
// grammar grows large and slow, so longer bounds are left to validate.
const (
	grammarMaxLength = 256
	grammarMaxItems  = 16
)

// grammarSchema is the part of schema that the grammar enforces.
func grammarSchema(schema any) any {
	obj, ok := schema.(jsonObject)
	if !ok {
		return schema
	}
	out := jsonObject{}
	for _, m := range obj {
		if !slices.Contains(grammarKeywords, m.Key) {
			continue
		}
		switch m.Key {
		case "maxLength", "minLength":
			if n, ok := number(m.Value); !ok || n > grammarMaxLength {
				continue
			}
		case "maxItems", "minItems":
			if n, ok := number(m.Value); !ok || n > grammarMaxItems {
				continue
			}
		case "properties":
			props := jsonObject{}
			for _, p := range asObject(m.Value) {
				props = append(props, jsonMember{p.Key, grammarSchema(p.Value)})
			}
			m.Value = props
		case "items", "additionalProperties":
			m.Value = grammarSchema(m.Value)
		case "anyOf", "oneOf":
			arr, _ := m.Value.([]any)
			alts := make([]any, len(arr))
			for i, a := range arr {
				alts[i] = grammarSchema(a)
			}
			m.Value = alts
		}
		out = append(out, m)
	}
	return out
}

func asObject(v any) jsonObject {
	o, _ := v.(jsonObject)
	return o
}

// validate checks a decoded JSON value (as encoding/json decodes into any) against a
// schema, for the keywords docket's tool schemas use. The error names the first
// offending place, e.g. `arguments.title: must be a string, not a number`.
func validate(schema any, v any, path string) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("%s: is not allowed", path)
		}
		return nil
	}
	s, ok := schema.(jsonObject)
	if !ok {
		return nil
	}
	if c, ok := s.get("const"); ok && !jsonEqual(c, v) {
		return fmt.Errorf("%s: must be %s", path, compact(c))
	}
	if e, ok := s.get("enum"); ok {
		vals, _ := e.([]any)
		if !slices.ContainsFunc(vals, func(x any) bool { return jsonEqual(x, v) }) {
			return fmt.Errorf("%s: must be one of %s, not %s", path, compact(e), compact(v))
		}
	}
	if t, ok := s.get("type"); ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				if s, ok := x.(string); ok {
					types = append(types, s)
				}
			}
		}
		if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return fmt.Errorf("%s: must be %s, not %s", path, withArticle(strings.Join(types, " or ")), withArticle(typeName(v)))
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := s.get(key)
		if !ok {
			continue
		}
		arr, _ := alts.([]any)
		var first error
		matched := 0
		for _, a := range arr {
			if err := validate(a, v, path); err == nil {
				matched++
			} else if first == nil {
				first = err
			}
		}
		if matched == 0 && first != nil {
			return first
		}
		if key == "oneOf" && matched > 1 {
			return fmt.Errorf("%s: matches more than one of the allowed shapes", path)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		return validateObject(s, v, path)
	case []any:
		if n, ok := number(get(s, "minItems")); ok && float64(len(v)) < n {
			return fmt.Errorf("%s: must have at least %v items", path, n)
		}
		if n, ok := number(get(s, "maxItems")); ok && float64(len(v)) > n {
			return fmt.Errorf("%s: must have at most %v items", path, n)
		}
		if items, ok := s.get("items"); ok {
			for i, x := range v {
				if err := validate(items, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case string:
		n := float64(utf8.RuneCountInString(v))
		if min, ok := number(get(s, "minLength")); ok && n < min {
			return fmt.Errorf("%s: must be at least %v characters long", path, min)
		}
		if max, ok := number(get(s, "maxLength")); ok && n > max {
			return fmt.Errorf("%s: must be at most %v characters long", path, max)
		}
		if p, ok := get(s, "pattern").(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(v) {
				return fmt.Errorf("%s: must match %s", path, p)
			}
		}
	case float64:
		if min, ok := number(get(s, "minimum")); ok && v < min {
			return fmt.Errorf("%s: must be at least %v", path, min)
		}
		if max, ok := number(get(s, "maximum")); ok && v > max {
			return fmt.Errorf("%s: must be at most %v", path, max)
		}
		if min, ok := number(get(s, "exclusiveMinimum")); ok && v <= min {
			return fmt.Errorf("%s: must be more than %v", path, min)
		}
		if max, ok := number(get(s, "exclusiveMaximum")); ok && v >= max {
			return fmt.Errorf("%s: must be less than %v", path, max)
		}
	}
	return nil
}

func validateObject(s jsonObject, v map[string]any, path string) error {
	req, _ := s.get("required")
	for _, r := range asSlice(req) {
		name, _ := r.(string)
		if _, ok := v[name]; !ok && name != "" {
			return fmt.Errorf("%s: missing required %q", path, name)
		}
	}
	props := s.object("properties")
	extra, hasExtra := s.get("additionalProperties")
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if ps, ok := props.get(k); ok {
			if err := validate(ps, v[k], path+"."+k); err != nil {
				return err
			}
		} else if hasExtra {
			if b, ok := extra.(bool); ok && !b {
				return fmt.Errorf("%s: unknown field %q (allowed: %s)", path, k, strings.Join(keys(props), ", "))
			}
			if err := validate(extra, v[k], path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func get(s jsonObject, key string) any {
	v, _ := s.get(key)
	return v
}

func asSlice(v any) []any {
	a, _ := v.([]any)
	return a
}

func keys(o jsonObject) []string {
	out := make([]string, len(o))
	for i, m := range o {
		out[i] = m.Key
	}
	return out
}

// number reads a schema number (json.Number) or a decoded one (float64).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	}
	return true
}

func typeName(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func withArticle(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an " + s
	}
	if s == "null" {
		return s
	}
	return "a " + s
}

// jsonEqual compares two JSON values by their encodings (schema values are json.Number
// and jsonObject, decoded arguments float64 and maps).
func jsonEqual(a, b any) bool {
	return compact(a) == compact(b)
}

func compact(v any) string {
	if o, ok := v.(jsonObject); ok {
		// Compare objects by sorted keys, as maps encode.
		m := map[string]any{}
		for _, kv := range o {
			m[kv.Key] = json.RawMessage(compact(kv.Value))
		}
		v = m
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}
