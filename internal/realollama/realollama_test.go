package realollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/internal/realollama"
)

func TestMain(m *testing.M) { os.Exit(realollama.Main(m)) }

// TestTinyGGUFIsDeterministic: the same seed writes the same model, so a test failure on
// one machine reproduces on another.
func TestTinyGGUFIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	for _, p := range []string{a, b} {
		if err := realollama.WriteTinyGGUF(p, 42); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) || !bytes.HasPrefix(ab, []byte("GGUF")) || len(ab) < 400_000 || len(ab) > 600_000 {
		t.Fatalf("gguf: %d bytes, equal %v", len(ab), bytes.Equal(ab, bb))
	}
}

// TestTinyModelOnRealOllama: the generated model imports into a real Ollama, reports the
// tools capability (its template mentions .Tools), answers /api/chat with streamed
// tokens, and with a JSON schema in "format" answers JSON valid for it.
func TestTinyModelOnRealOllama(t *testing.T) {
	s := realollama.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var show api.ShowResponse
	post(ctx, t, s.URL+"/api/show", map[string]any{"model": realollama.TinyModel}, &show)
	caps := make([]string, len(show.Capabilities))
	for i, c := range show.Capabilities {
		caps[i] = string(c)
	}
	if !slices.Contains(caps, "tools") || !slices.Contains(caps, "completion") {
		t.Fatalf("capabilities %v: want completion and tools", caps)
	}

	schema := `{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer","enum":[1,2,3]},"s":{"type":"string"}},"required":["ok","n","s"]}`
	var resp api.ChatResponse
	post(ctx, t, s.URL+"/api/chat", map[string]any{"model": realollama.TinyModel, "stream": false,
		"messages": []map[string]any{{"role": "user", "content": "json please"}},
		"format":   json.RawMessage(schema), "options": map[string]any{"num_predict": 256}}, &resp)
	var got struct {
		OK *bool   `json:"ok"`
		N  *int    `json:"n"`
		S  *string `json:"s"`
	}
	if resp.DoneReason != "stop" || json.Unmarshal([]byte(resp.Message.Content), &got) != nil || got.OK == nil || got.N == nil || got.S == nil {
		t.Fatalf("format answer: done_reason %q, content %q", resp.DoneReason, resp.Message.Content)
	}
	if resp.TotalDuration <= 0 || resp.EvalCount <= 0 {
		t.Fatalf("no metrics: %+v", resp.Metrics)
	}
	t.Logf("format answer %s in %s (%d tokens)", strings.TrimSpace(resp.Message.Content), resp.TotalDuration, resp.EvalCount)
}

func post(ctx context.Context, t *testing.T, url string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]any
		json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, e)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
