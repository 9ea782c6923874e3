package web_test

import (
	"os"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/runtime"
)

// TestJobOnModelBackend runs a plain Job to completion through docket's real Ollama
// client: always against the fake, and against a real Ollama at OLLAMA_HOST when
// DOCKET_TEST_OLLAMA=1 (model DOCKET_TEST_OLLAMA_MODEL, default docket-tiny, the tiny
// random-weight model of ../shared/ollama-real, whose text is noise but whose protocol
// is Ollama's own).
func TestJobOnModelBackend(t *testing.T) {
	type backend struct{ name, host, model string }
	fake := testkit.NewFakeOllama(t)
	fake.Default().Reply("A plain answer.")
	backends := []backend{{"fake", fake.URL, "qwen3:4b"}}
	if os.Getenv("DOCKET_TEST_OLLAMA") == "1" {
		model := os.Getenv("DOCKET_TEST_OLLAMA_MODEL")
		if model == "" {
			model = "docket-tiny"
		}
		backends = append(backends, backend{"real", runtime.OllamaHost(), model})
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			client, err := runtime.NewOllama(b.host)
			if err != nil {
				t.Fatal(err)
			}
			j := &jobs{world: newWorld(t, testkit.Options{Model: client, ModelHost: b.host})}
			cfg := setupConfig("Answer in one short sentence.")
			cfg["data"].(map[string]any)["models"] = map[string]any{"agent": map[string]any{"model": b.model}}
			cfg["data"].(map[string]any)["options"] = map[string]any{"num_ctx": 2048}
			r := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/agents", j.owner, map[string]any{"name": "Plain", "build": map[string]any{"name": "v1", "config": cfg}})
			agent := field(t, r.JSON(t), "agent", "id").(string)
			run := j.start(t, j.member, agent, "Say hello.")
			got := j.waitRun(t, run, "completed")
			if field(t, got, "run", "tool_mode") != "native" || field(t, got, "run", "usage", "prompt_tokens").(float64) <= 0 {
				t.Fatalf("run: %v", got)
			}
			ms := j.messages(t, run)
			if last := ms[len(ms)-1]; last["role"] != "assistant" || strings.TrimSpace(last["text_content"].(string)) == "" {
				t.Fatalf("final message: %v", last)
			}
		})
	}
}
