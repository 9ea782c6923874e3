package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
)

// Model is what the run loop needs from Ollama; *api.Client provides it.
type Model interface {
	Chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error
	Show(ctx context.Context, req *api.ShowRequest) (*api.ShowResponse, error)
	List(ctx context.Context) (*api.ListResponse, error)
	Version(ctx context.Context) (string, error)
}

// OllamaHost is the Ollama base URL: OLLAMA_HOST (a URL or host:port), default
// http://127.0.0.1:11434.
func OllamaHost() string {
	h := strings.TrimSpace(os.Getenv("OLLAMA_HOST"))
	if h == "" {
		return "http://127.0.0.1:11434"
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	return strings.TrimRight(h, "/")
}

// OllamaClient talks to an Ollama server: the ollama/api client for everything but
// /api/chat, which it streams itself. api.Client allocates (and zeroes) an 8 MiB line
// buffer on every call; with instant models that was 98% of all allocation and a sixth
// of the CPU of a run (see BENCHMARKS.md), and 8 MiB more memory per concurrent call.
// The wire types stay ollama/api's own.
type OllamaClient struct {
	*api.Client
	base *url.URL
	http *http.Client
}

// NewOllama returns a client for the Ollama server at base. Streamed responses can be
// long, so there is no overall timeout; a run's context bounds each call.
func NewOllama(base string) (*OllamaClient, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("OLLAMA_HOST %q is not a URL: write e.g. http://127.0.0.1:11434", base)
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 5 * time.Minute,
		MaxIdleConnsPerHost:   16,
	}}
	return &OllamaClient{Client: api.NewClient(u, hc), base: u, http: hc}, nil
}

// Chat streams /api/chat (or reads its one object when req.Stream is false), calling fn
// for each response, and reports Ollama's errors as api.StatusError like api.Client.
func (c *OllamaClient) Chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath("/api/chat").String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.http.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= http.StatusBadRequest {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: e.Error}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var chunk struct {
			api.ChatResponse
			Error string `json:"error"`
		}
		if err := dec.Decode(&chunk); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the model's stream: %w", err)
		}
		if chunk.Error != "" {
			return api.StatusError{StatusCode: http.StatusInternalServerError, Status: "stream error", ErrorMessage: chunk.Error}
		}
		if err := fn(chunk.ChatResponse); err != nil {
			return err
		}
	}
}

// ModelError is a model call that failed in a way worth telling a person about.
type ModelError struct {
	Msg string
	// Retryable failures (backend down, 5xx, timeout) are retried before the run fails.
	Retryable bool
	Err       error
}

func (e *ModelError) Error() string { return e.Msg }
func (e *ModelError) Unwrap() error { return e.Err }

// classify turns a client error into the message a person can act on (DESIGN §5.1).
func classify(err error, host, model string) *ModelError {
	var se api.StatusError
	if errors.As(err, &se) {
		msg := strings.TrimSpace(se.ErrorMessage)
		switch {
		case se.StatusCode == http.StatusNotFound || strings.Contains(msg, "not found"):
			return &ModelError{Msg: fmt.Sprintf("model %q not found at %s: run ollama pull %s, or choose another model in the setup", model, host, model), Err: err}
		case strings.Contains(msg, "does not support tools"):
			return &ModelError{Msg: fmt.Sprintf("model %q does not support tools: choose a model with tool support, or set options.tool_mode to constrained in the setup", model), Err: err}
		case se.StatusCode >= 500:
			return &ModelError{Msg: fmt.Sprintf("model backend at %s failed (%d %s)", host, se.StatusCode, msg), Retryable: true, Err: err}
		}
		return &ModelError{Msg: fmt.Sprintf("model backend at %s refused the request (%d): %s", host, se.StatusCode, msg), Err: err}
	}
	var ae api.AuthorizationError
	if errors.As(err, &ae) {
		return &ModelError{Msg: fmt.Sprintf("model backend at %s refused access (%d): check OLLAMA_HOST", host, ae.StatusCode), Err: err}
	}
	return &ModelError{Msg: fmt.Sprintf("model backend unreachable at %s: start Ollama or set OLLAMA_HOST (%v)", host, err), Retryable: true, Err: err}
}
