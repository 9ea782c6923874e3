// Package realollama gives tests a real Ollama server: it finds or builds the ollama binary
// (pinned module version, CPU only), writes a tiny random-weight llama model, starts
// `ollama serve` on a free loopback port and imports the model.
package realollama

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Version is the ollama module version built and tested against; it matches go.mod so the
// server and docket's ollama/api client speak the same protocol.
const Version = "v0.17.4"

// miniaudioStub stands in for llama.cpp's vendored miniaudio.h, which the module zip lacks;
// audio decoding fails in the resulting build, text models are unaffected.
//
//go:embed testdata/inc/miniaudio/miniaudio.h
var miniaudioStub []byte

// stbImage is the Debian libstb-dev header llama.cpp's multimodal helper includes; the
// module zip lacks its vendor/ copy too.
const stbImage = "/usr/include/stb/stb_image.h"

// ErrNoToolchain reports that there is neither DOCKET_OLLAMA_BIN nor what a build needs.
var ErrNoToolchain = errors.New("no ollama binary and no build toolchain")

// CacheDir is where the built binary lives, keyed by everything that changes its bytes.
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir: %w", err)
	}
	key := fmt.Sprintf("%s-%s-%s_%s", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return filepath.Join(base, "docket", "ollama", key), nil
}

// Binary returns the path of an ollama binary: DOCKET_OLLAMA_BIN if set, else the cached
// build, else it builds the pinned version into the cache (about 10 minutes on 2 cores,
// once per machine). Concurrent callers in other processes wait on a file lock and reuse
// the result. logf reports progress (the build is long and silent).
func Binary(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p := os.Getenv("DOCKET_OLLAMA_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DOCKET_OLLAMA_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin", "ollama")
	if isExecutable(bin) {
		return bin, nil
	}
	if missing := missingToolchain(); len(missing) > 0 {
		return "", fmt.Errorf("%w: set DOCKET_OLLAMA_BIN, or install %s (Debian: apt-get install g++ libstb-dev) to build ollama %s",
			ErrNoToolchain, strings.Join(missing, ", "), Version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}
	logf("building ollama %s into %s (CPU only, cgo; about 10 minutes on 2 cores, once)", Version, dir)
	start := time.Now()
	if err := build(ctx, dir, bin); err != nil {
		return "", err
	}
	logf("built ollama %s in %s", Version, time.Since(start).Round(time.Second))
	return bin, nil
}

// build runs `go install` of the pinned module version (its own go.mod pins every
// dependency) into a scratch GOBIN, then renames the result into place so a reader never
// sees a half-written binary.
func build(ctx context.Context, dir, bin string) error {
	inc := filepath.Join(dir, "inc")
	if err := os.MkdirAll(filepath.Join(inc, "miniaudio"), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", inc, err)
	}
	if err := os.WriteFile(filepath.Join(inc, "miniaudio", "miniaudio.h"), miniaudioStub, 0o644); err != nil {
		return fmt.Errorf("write miniaudio stand-in: %w", err)
	}
	gobin, err := os.MkdirTemp(dir, "gobin-")
	if err != nil {
		return fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(gobin)
	cmd := exec.CommandContext(ctx, "go", "install",
		"-ldflags", "-X github.com/ollama/ollama/version.Version="+strings.TrimPrefix(Version, "v"),
		"github.com/ollama/ollama@"+Version)
	cmd.Dir = dir // outside any module: `go install pkg@version` builds with the module's own go.mod
	cmd.Env = append(os.Environ(),
		"GOBIN="+gobin, "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local", "CGO_ENABLED=1",
		"CGO_CPPFLAGS=-I"+inc+" -I/usr/include")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go install github.com/ollama/ollama@%s: %w\n%s", Version, err, tail(out, 4000))
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(bin), err)
	}
	if err := os.Rename(filepath.Join(gobin, "ollama"), bin); err != nil {
		return fmt.Errorf("install built binary: %w", err)
	}
	return nil
}

// missingToolchain names what a build needs and this machine lacks.
func missingToolchain() []string {
	var missing []string
	for _, tool := range []string{"go", "gcc", "g++"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat(stbImage); err != nil {
		missing = append(missing, stbImage)
	}
	return missing
}

// lockFile takes an exclusive flock, polling so that ctx can end the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another ollama build (%s): %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
