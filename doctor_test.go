package main

import (
	"strings"
	"testing"

	"docket/internal/realollama"
	"docket/internal/testkit"
)

// TestDoctor: with Ollama down, doctor exits 1 and says to start it or set OLLAMA_HOST;
// with a missing model it says what to pull; a model without the tools capability is
// usable in constrained mode, which doctor says auto picks; with everything in place it
// exits 0 after a one-turn smoke test.
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
	if noTools.code != 0 || !strings.Contains(noTools.stdout, "no tools capability") || !strings.Contains(noTools.stdout, "auto picks constrained") ||
		!strings.Contains(noTools.stdout, "one constrained turn in") {
		t.Fatalf("model without tools: exit %d\n%s%s", noTools.code, noTools.stdout, noTools.stderr)
	}
	ok := docketEnv(t, env, "doctor", "--data", data)
	if ok.code != 0 || strings.Contains(ok.stdout, "FAIL") || !strings.Contains(ok.stdout, `"qwen3:4b" supports tools`) || !strings.Contains(ok.stdout, "auto picks native") ||
		!strings.Contains(ok.stdout, "one native turn in") || !strings.Contains(ok.stdout, "is writable") {
		t.Fatalf("all in place: exit %d\n%s%s", ok.code, ok.stdout, ok.stderr)
	}
}

// TestDoctorRealOllama: against a real Ollama with the tiny model, doctor exits 0 and
// prints the model's capabilities, the tool mode auto picks for it and a timed smoke
// turn with Ollama's own figures.
func TestDoctorRealOllama(t *testing.T) {
	t.Parallel()
	s := realollama.StartTiny(t)
	r := docketEnv(t, []string{"OLLAMA_HOST=" + s.URL}, "doctor", "--data", t.TempDir(), "--model", realollama.TinyModel)
	for _, want := range []string{"Ollama 0.17.4 at " + s.URL, `"docket-tiny" is pulled`, `capabilities     "docket-tiny" supports tools (completion, tools)`,
		"tool mode        auto picks native", "smoke test       one native turn in", "Ollama: total "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q", want)
		}
	}
	if r.code != 0 || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("exit %d", r.code)
	}
	if t.Failed() {
		t.Fatalf("doctor:\n%s%s", r.stdout, r.stderr)
	}
	t.Logf("doctor:\n%s", r.stdout)
}
