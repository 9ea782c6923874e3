package main

import (
	"strings"
	"testing"

	"docket/internal/testkit"
)

// TestDoctor: with Ollama down, doctor exits 1 and says to start it or set OLLAMA_HOST;
// with a model that is missing or cannot call tools it says what to pull or choose; with
// everything in place it exits 0.
func TestDoctor(t *testing.T) {
	t.Parallel()
	data := t.TempDir()

	down := docketEnv(t, []string{"OLLAMA_HOST=http://127.0.0.1:1"}, "doctor", "--data", data)
	if down.code != 1 || !strings.Contains(down.stdout, "unreachable at http://127.0.0.1:1") || !strings.Contains(down.stdout, "set OLLAMA_HOST") {
		t.Fatalf("Ollama down: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}

	fake := testkit.NewFakeOllama(t)
	env := []string{"OLLAMA_HOST=" + fake.URL}
	missing := docketEnv(t, env, "doctor", "--data", data, "--model", "llama9:70b")
	if missing.code != 1 || !strings.Contains(missing.stdout, "fix: ollama pull llama9:70b") {
		t.Fatalf("missing model: exit %d\n%s", missing.code, missing.stdout)
	}
	noTools := docketEnv(t, env, "doctor", "--data", data, "--model", "gemma3:1b")
	if noTools.code != 1 || !strings.Contains(noTools.stdout, "no tools capability") {
		t.Fatalf("model without tools: exit %d\n%s", noTools.code, noTools.stdout)
	}
	ok := docketEnv(t, env, "doctor", "--data", data)
	if ok.code != 0 || strings.Contains(ok.stdout, "FAIL") || !strings.Contains(ok.stdout, `"qwen3:4b" supports tools`) || !strings.Contains(ok.stdout, "is writable") {
		t.Fatalf("all in place: exit %d\n%s%s", ok.code, ok.stdout, ok.stderr)
	}
}
