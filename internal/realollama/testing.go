package realollama

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// Required reports whether a missing real Ollama fails tests instead of skipping them
// (CI sets DOCKET_REQUIRE_OLLAMA=1).
func Required() bool { return os.Getenv("DOCKET_REQUIRE_OLLAMA") == "1" }

// RequireBinary returns the ollama binary for a test, building it once if needed. When
// there is none to be had (no DOCKET_OLLAMA_BIN, no build toolchain, or a build that
// failed, e.g. offline) it skips the test, or fails it where DOCKET_REQUIRE_OLLAMA=1:
// `go test ./...` must not need the network.
func RequireBinary(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, at.Add(-30*time.Second))
			defer cancel()
		}
	}
	bin, err := Binary(ctx, t.Logf)
	switch {
	case err == nil:
		return bin
	case !Required():
		t.Skipf("skipping the real-Ollama test (DOCKET_REQUIRE_OLLAMA=1 makes this a failure): %v", err)
	}
	t.Fatalf("real Ollama: %v", err)
	return ""
}

// StartTiny starts an Ollama server with the tiny model created as TinyModel, for one
// test; it is closed when the test ends. env adds server settings (OLLAMA_*).
func StartTiny(t testing.TB, env ...string) *Server {
	t.Helper()
	bin := RequireBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, bin, t.TempDir(), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.CreateTiny(ctx, TinyModel); err != nil {
		t.Fatal(err)
	}
	return s
}

// shared is one server per test binary, for tests that only read from it.
var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the test binary's shared server with the tiny model, starting it on
// first use. The package's TestMain must call Main so that it is stopped at the end.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := RequireBinary(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.dir, shared.err = os.MkdirTemp("", "docket-ollama-")
		if shared.err != nil {
			return
		}
		shared.srv, shared.err = Start(ctx, bin, shared.dir)
		if shared.err == nil {
			shared.err = shared.srv.CreateTiny(ctx, TinyModel)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// Main runs the tests and then stops the shared server: use it from TestMain as
// os.Exit(realollama.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}
