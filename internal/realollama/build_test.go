package realollama

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A cached binary is used as it is: no toolchain is needed and nothing is built.
func TestBinaryUsesTheCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("DOCKET_OLLAMA_BIN", "")
	t.Setenv("PATH", "") // no go, gcc or g++: a build could not even start
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "ollama")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Binary(context.Background(), t.Logf)
	if err != nil || got != bin {
		t.Fatalf("Binary() = %q, %v; want the cached %s", got, err, bin)
	}
}

// Two builders (e.g. two test packages) take turns: the second waits on the lock until
// the first is done, then finds its result.
func TestBuildLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); err == nil {
		t.Fatal("a second builder got the lock while the first held it")
	}
	got := make(chan error, 1)
	go func() {
		u, err := lockFile(context.Background(), path)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting builder never got the lock")
	}
}
