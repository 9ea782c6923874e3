package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

// keepAlive is an event stream's periodic beat: it re-checks the credential the stream
// was opened with (a revoked key, a signed-out or expired session, a member removed from
// the team, a changed role end the stream: the client reconnects and is asked again) and
// writes a comment so proxies keep the connection. false: end the stream.
func (s *Server) keepAlive(ctx context.Context, w io.Writer, flush func()) bool {
	p := principal(ctx)
	if token, _ := ctx.Value(keySessionToken).(string); token != "" {
		cur, err := s.store.SessionActive(ctx, token, s.sessionLimits())
		if err != nil || cur.UserID != p.UserID || cur.TeamID != p.TeamID || cur.Role != p.Role {
			return false
		}
	} else if p.APIKeyID != "" {
		if ok, err := s.store.APIKeyActive(ctx, p.APIKeyID); err != nil || !ok {
			return false
		}
	}
	if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
		return false
	}
	flush()
	return true
}

type statusEventJSON struct {
	RunID  string  `json:"run_id"`
	Status string  `json:"status"`
	Error  *string `json:"error,omitempty"`
}

type tokenEventJSON struct {
	RunID string `json:"run_id"`
	Text  string `json:"text"`
}

// registerRunEvents serves a run's live event stream (docket addition): `message`
// events carry the message's seq as their id, so a client that reconnects with
// Last-Event-ID gets exactly what it missed from the database; `status` and `token`
// events are live only.
func (s *Server) registerRunEvents() {
	huma.Register(s.api, s.op(huma.Operation{OperationID: "streamRunEvents", Method: http.MethodGet, Path: "/v2/runs/{run_id}/events",
		Summary: "Stream a Job's events (SSE)", Tags: []string{"Jobs"},
		Description: "docket addition. Server-sent events: `status` {run_id, status, error?} on every status change, `message` (a message " +
			"as listRunMessages returns it; the SSE id is its seq) for every committed message, `token` {run_id, text} for streamed model " +
			"output. Reconnect with Last-Event-ID to resume without losing messages.",
		Responses: map[string]*huma.Response{"200": {Description: "An event stream.", Content: map[string]*huma.MediaType{
			"text/event-stream": {Schema: &huma.Schema{Type: "string"}}}}}}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			RunPath
			LastEventID string `header:"Last-Event-ID" doc:"The seq of the last message event received."`
		}) (*huma.StreamResponse, error) {
			team := principal(ctx).TeamID
			if _, err := s.store.GetRun(ctx, team, in.RunID); err != nil {
				return nil, fail(ctx, err)
			}
			last, _ := strconv.Atoi(in.LastEventID)
			return &huma.StreamResponse{Body: func(hc huma.Context) {
				hc.SetHeader("Content-Type", "text/event-stream")
				hc.SetHeader("Cache-Control", "no-cache")
				s.streamRun(hc.Context(), hc.BodyWriter(), team, in.RunID, last, jsonEvents)
			}}, nil
		})
}

// runEncoder turns one of a run's events into SSE data: v is a store.Message, a
// statusEventJSON or a tokenEventJSON. The API sends JSON, the dashboard HTML.
type runEncoder func(ctx context.Context, event string, v any) ([]byte, error)

func jsonEvents(_ context.Context, _ string, v any) ([]byte, error) {
	if m, ok := v.(store.Message); ok {
		v = messageOut(m)
	}
	return json.Marshal(v)
}

// writeSSE writes one event; data of several lines goes out as several data fields.
func writeSSE(w io.Writer, event string, id int, data []byte) error {
	var buf bytes.Buffer
	if id > 0 {
		fmt.Fprintf(&buf, "id: %d\n", id)
	}
	fmt.Fprintf(&buf, "event: %s\n", event)
	// A lone CR ends an event stream line too: as data it would let a message's text start
	// a field of its own (event:, id:), so every line ending becomes a data line break.
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	for line := range bytes.Lines(data) {
		buf.WriteString("data: ")
		buf.Write(bytes.TrimRight(line, "\r\n"))
		buf.WriteByte('\n')
	}
	if len(data) == 0 {
		buf.WriteString("data:\n")
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) streamRun(ctx context.Context, w io.Writer, team, runID string, last int, enc runEncoder) {
	flush := flusher(w)
	send := func(event string, id int, data any) bool {
		b, err := enc(ctx, event, data)
		if err != nil {
			return false
		}
		if err := writeSSE(w, event, id, b); err != nil {
			return false
		}
		flush()
		return true
	}
	// Subscribe before reading the backlog, so nothing falls between the two.
	sub := s.runs.Hub().Subscribe(runID)
	defer sub.Close()
	catchUp := func() bool {
		ms, err := s.store.MessagesAfter(ctx, runID, last)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if !send("message", m.Seq, m) {
				return false
			}
			last = m.Seq
		}
		return true
	}
	// sendStatus announces a status: the committed one when status is "", else the one an
	// event carried. A live event must not be replaced by a fresher read, or the stream
	// would announce the end before the tokens and messages queued ahead of it.
	sendStatus := func(status string) bool {
		var errText *string
		if status == "" || status == store.RunFailed {
			r, err := s.store.GetRun(ctx, team, runID)
			if err != nil {
				return false
			}
			if status == "" {
				status = r.Status
			}
			errText = r.Error
		}
		return send("status", 0, statusEventJSON{RunID: runID, Status: status, Error: errText})
	}
	if !catchUp() || !sendStatus("") {
		return
	}
	ping := time.NewTicker(s.cfg.KeepAlive)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-ping.C:
			if !s.keepAlive(ctx, w, flush) {
				return
			}
		case ev := <-sub.C:
			if sub.Lagged.Swap(false) && !catchUp() {
				return
			}
			// Some messages are committed without an event of their own (a gate's
			// decision answers the call it guarded): a gap in seq is read back first.
			if ev.Type == "message" && ev.Message.Seq > last+1 && !catchUp() {
				return
			}
			if !s.sendEvent(ev, &last, send, sendStatus) {
				return
			}
		}
	}
}

func (s *Server) sendEvent(ev runtime.Event, last *int, send func(string, int, any) bool, sendStatus func(string) bool) bool {
	switch ev.Type {
	case "message":
		if ev.Message.Seq <= *last {
			return true
		}
		*last = ev.Message.Seq
		return send("message", ev.Message.Seq, *ev.Message)
	case "token":
		return send("token", 0, tokenEventJSON{RunID: ev.RunID, Text: ev.Token})
	default:
		return sendStatus(ev.Status)
	}
}

// flusher finds the http.Flusher under the middleware's wrappers.
func flusher(w io.Writer) func() {
	for {
		if f, ok := w.(http.Flusher); ok {
			return f.Flush
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return func() {}
		}
		w = u.Unwrap()
	}
}
