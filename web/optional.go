package web

import (
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// nullable is a PATCH field that tells "absent" (leave as is) from null (clear it).
type nullable[T any] struct {
	Sent  bool
	Value *T
}

// UnmarshalJSON runs only when the key is present, so Sent records presence.
func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Sent = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}

// Schema documents the field as T or null. An object T is inlined: huma allows null only
// on a schema that is not a $ref.
func (n nullable[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), false, "")
	s.Nullable = true
	return &s
}
