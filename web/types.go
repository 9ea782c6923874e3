package web

import (
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Timestamp is a time as the API writes it: UTC, RFC 3339 with milliseconds.
type Timestamp time.Time

const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timestampLayout) + `"`), nil
}

// Schema documents Timestamp as a date-time string.
func (Timestamp) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "string", Format: "date-time"}
}

func ts(t time.Time) Timestamp { return Timestamp(t) }

func tsPtr(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	v := Timestamp(*t)
	return &v
}

// Page is the limit/offset pair list operations take.
type Page struct {
	Limit  int `query:"limit" default:"20" minimum:"1" maximum:"100" doc:"How many items to return."`
	Offset int `query:"offset" minimum:"0" doc:"How many items to skip."`
}
