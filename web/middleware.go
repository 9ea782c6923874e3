package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"docket/files"
	"docket/store"
)

type ctxKey int

const (
	keyRequestInfo ctxKey = iota
	keyPrincipal
	keyActorMeta
	keyRequest
)

// requestInfo travels with a request so the access log line can carry what handlers learn.
type requestInfo struct {
	id    string
	cause error
	actor string
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(keyRequestInfo).(*requestInfo)
	return info
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	body   *bytes.Buffer // set only when the response is kept for idempotent replay
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body != nil {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe gives each request an id, and records one log line and the metrics when it ends.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: store.NewID()}
		w.Header().Set("X-Request-Id", info.id)
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), keyRequestInfo, info))
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, http.StatusText(status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(elapsed.Seconds())
		attrs := []any{"method", r.Method, "path", logPath(r.URL.Path), "status", status,
			"duration_ms", float64(elapsed.Microseconds()) / 1000, "request_id", info.id, "ip", clientIP(r)}
		if info.actor != "" {
			attrs = append(attrs, "actor", info.actor)
		}
		if info.cause != nil {
			s.log.Error("request failed", append(attrs, "err", info.cause.Error())...)
			return
		}
		s.log.Info("request", attrs...)
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// logPath is a request path as the access log shows it: a hook URL's token is its
// credential, so only its prefix (the token_prefix the API shows) is kept.
func logPath(p string) string {
	if token, ok := strings.CutPrefix(p, "/v2/hooks/"); ok && len(token) > 10 {
		return "/v2/hooks/" + token[:10] + "…"
	}
	return p
}

// requestFrom returns the HTTP request of an operation, for the few handlers that read
// the body themselves (streamed uploads) or need the host the client used.
func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(keyRequest).(*http.Request)
	return r
}

// streamedUpload reports whether r is a file upload: its body streams to the blob store
// under the file size limit, so the JSON body cap and idempotent replay (which buffers the
// body) do not apply.
func streamedUpload(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, signedFilesPrefix) || strings.HasPrefix(r.URL.Path, signedSandboxPrefix) {
		return true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/sandboxes/")
	return ok && r.Method == http.MethodPost && strings.HasSuffix(rest, "/files") && strings.Count(rest, "/") == 1
}

// confineFilePaths answers 400 for a file route whose URL has a ".", ".." or empty
// segment, instead of the mux's redirect to the cleaned path: a file path is taken as
// given or refused, never silently rewritten.
func (s *Server) confineFilePaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := filePathOf(r.URL.Path); ok && rest != "" {
			if _, err := files.CleanPath("path", rest); err != nil {
				writeError(w, badRequest("%s", err.Error()).(*APIError))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// filePathOf returns the file path part of a file route's URL path.
func filePathOf(p string) (string, bool) {
	for _, prefix := range []string{signedFilesPrefix, signedSandboxPrefix} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return rest, true
		}
	}
	rest, ok := strings.CutPrefix(p, "/v2/teams/")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, "files/")
	if !ok {
		return "", false
	}
	for _, sub := range []string{"content/", "download-url/"} {
		if r, ok := strings.CutPrefix(rest, sub); ok {
			return r, true
		}
	}
	return rest, true
}

// limitBody caps every request body; huma's own per-operation cap answers 413 with a
// message, this one protects the routes huma does not own. The API speaks only JSON, so
// a body sent to /v2 without a JSON content type (curl -d sends a form type) is read as
// JSON. File uploads are capped by the file size limit instead.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && streamedUpload(r) {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxFileSize+1<<20)
		} else if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
			// The dashboard's forms stay forms.
			if !strings.HasPrefix(r.URL.Path, "/v2/") {
				next.ServeHTTP(w, r)
				return
			}
			if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// idempotent replays the stored response of a POST that carried the same Idempotency-Key
// from the same credential (an API key, or a hook URL's token) within 24 h, so a client's
// retry never creates twice.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		auth := r.Header.Get("Authorization")
		if auth == "" && strings.HasPrefix(r.URL.Path, "/v2/hooks/") {
			// A hook URL's token is its credential: keys are scoped to it.
			auth = "hook " + r.URL.Path
		}
		if r.Method != http.MethodPost || key == "" || auth == "" || redirectOnly(r.URL.Path) || streamedUpload(r) {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 {
			writeError(w, apiError(http.StatusBadRequest, "Idempotency-Key header: at most 255 characters, got %d", len(key)))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, apiError(http.StatusRequestEntityTooLarge, "request body too large: at most %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		scope := sha256.Sum256([]byte(auth))
		req := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), body...))
		scopeHex, reqHex := hex.EncodeToString(scope[:]), hex.EncodeToString(req[:])
		res, err := s.store.BeginIdempotent(r.Context(), scopeHex, key, reqHex)
		switch {
		case err != nil:
			requestInfoFrom(r.Context()).cause = err
			writeError(w, apiError(http.StatusInternalServerError, errInternal))
			return
		case res.Mismatch:
			writeError(w, apiError(http.StatusUnprocessableEntity, "Idempotency-Key %q was already used with a different request: use a new key for a new request", key))
			return
		case res.InFlight:
			writeError(w, apiError(http.StatusConflict, "a request with Idempotency-Key %q is still being processed: retry in a moment", key))
			return
		case !res.Fresh:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(res.Status)
			w.Write(res.Body)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, body: &bytes.Buffer{}}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		// Use a fresh context: the response is out, the client may be gone, and the key
		// must still be settled.
		if err := s.store.FinishIdempotent(context.WithoutCancel(r.Context()), scopeHex, key, status, rec.body.Bytes()); err != nil {
			s.log.Error("idempotency key not saved", "err", err, "request_id", requestInfoFrom(r.Context()).id)
		}
	})
}

func writeError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(mustJSON(e))
}
