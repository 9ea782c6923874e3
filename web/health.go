package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// mustJSON encodes bodies the handlers build themselves, without HTML escaping so
// messages read as written.
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only called with types that always marshal
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// healthz answers while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

// readyz answers 200 when the database takes writes and the process's workers are up.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := func() error {
		if err := s.store.CheckWritable(ctx); err != nil {
			return err
		}
		if s.ready != nil {
			return s.ready(ctx)
		}
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	if err := check(); err != nil {
		s.log.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(mustJSON(map[string]string{"status": "unavailable", "message": err.Error()}))
		return
	}
	w.Write([]byte(`{"status":"ready"}`))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v2/") && strings.Contains(r.Header.Get("Accept"), "text/html") {
		s.renderStatus(w, r, http.StatusNotFound, messagePage(s.bareData("Not found"), "Page not found",
			"There is no page at "+r.URL.Path+". Go back to the dashboard."))
		return
	}
	writeError(w, apiError(http.StatusNotFound, "no such endpoint: %s %s (see /v2/docs)", r.Method, r.URL.Path))
}
