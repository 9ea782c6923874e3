package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// docketBin is the real binary, built once in TestMain; the process tests and
// BenchmarkStartup run it as a user would.
var docketBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "docket-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	docketBin = filepath.Join(dir, "docket")
	build := exec.Command("go", "build", "-o", docketBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// cleanEnv is the test process's environment without DOCKET_* variables, so a developer's
// own settings (DOCKET_ADDR, DOCKET_ADMIN_PASSWORD, …) never leak into a test, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKET_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// output is an io.Writer a child process writes to; it keeps everything and wakes
// waiters whenever a line arrives.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.changed
}

func (o *output) String() string {
	s, _ := o.snapshot()
	return s
}

// server is a running `docket serve` child process.
type server struct {
	cmd    *exec.Cmd
	URL    string
	Data   string
	stdout *output
	stderr *output
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, valid after done
}

var (
	runningAt = regexp.MustCompile(`docket is running at (http://\S+)`)
	// welcomeEnd is the welcome text's last line; once it is out the whole text is.
	welcomeEnd = regexp.MustCompile(`API key: .*\n`)
)

// startServe runs `docket serve` on data with a free loopback port and returns once it
// has printed where it runs. The process is killed when the test ends if it still runs.
func startServe(tb testing.TB, data string, env []string, args ...string) *server {
	tb.Helper()
	s := launch(tb, data, env, args...)
	tb.Cleanup(s.kill)
	if err := s.waitURL(15 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return s
}

// launch starts the process without waiting for it to serve.
func launch(tb testing.TB, data string, env []string, args ...string) *server {
	tb.Helper()
	s := &server{Data: data, stdout: newOutput(), stderr: newOutput(), done: make(chan struct{})}
	s.cmd = exec.Command(docketBin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, args...)...)
	s.cmd.Env = cleanEnv(env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	return s
}

// waitURL waits until the whole welcome text is out (and takes the URL from it), the
// process exits, or d passes.
func (s *server) waitURL(d time.Duration) error {
	deadline := time.After(d)
	for {
		text, changed := s.stdout.snapshot()
		if m := runningAt.FindStringSubmatch(text); m != nil && welcomeEnd.MatchString(text) {
			s.URL = m[1]
			return nil
		}
		select {
		case <-changed:
		case <-s.done:
			return fmt.Errorf("docket serve exited before serving (%v)\nstdout:\n%s\nstderr:\n%s", s.err, s.stdout, s.stderr)
		case <-deadline:
			return fmt.Errorf("docket serve printed no URL within %s\nstdout:\n%s\nstderr:\n%s", d, s.stdout, s.stderr)
		}
	}
}

func (s *server) kill() {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
}

// stop sends SIGTERM, as systemd or Ctrl-C would, and requires a clean exit (code 0)
// within the 10 s the design allows for shutdown.
func (s *server) stop(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("docket serve still running 10 s after SIGTERM\nstderr:\n%s", s.stderr)
	}
	if s.err != nil {
		tb.Fatalf("docket serve exited with %v after SIGTERM, want exit code 0\nstderr:\n%s", s.err, s.stderr)
	}
}

// result is a finished CLI command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// docket runs a one-shot CLI command and returns its output and exit code.
func docket(tb testing.TB, args ...string) result {
	tb.Helper()
	return docketEnv(tb, nil, args...)
}

// docketEnv is docket with extra environment variables (NAME=value).
func docketEnv(tb testing.TB, env []string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, docketBin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	default:
		tb.Fatalf("docket %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return r
}

// apiKey is what `docket apikey create --json` prints.
type apiKey struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	TeamID string `json:"team_id"`
	UserID string `json:"user_id"`
}

// createKey runs `docket apikey create` on data, as the README tells a user to.
func createKey(tb testing.TB, data string) apiKey {
	tb.Helper()
	r := docket(tb, "apikey", "create", "--data", data, "--name", "me", "--json")
	if r.code != 0 {
		tb.Fatalf("apikey create exited %d: %s", r.code, r.stderr)
	}
	var k apiKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.Key == "" || k.TeamID == "" {
		tb.Fatalf("apikey create --json printed %q (%v), want {id,key,team_id,user_id}", r.stdout, err)
	}
	return k
}

// call sends one request to the server and returns its status and body.
func (s *server) call(tb testing.TB, method, path, key string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// createAgent creates an Assignment with a first Setup over the API and returns its id.
func (s *server) createAgent(tb testing.TB, key apiKey, name string) string {
	tb.Helper()
	status, b := s.call(tb, "POST", "/v2/teams/"+key.TeamID+"/agents", key.Key, map[string]any{
		"name": name,
		"build": map[string]any{"name": "v1", "config": map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}}, "input": "You are " + name + ".",
		}}},
	})
	if status != http.StatusCreated {
		tb.Fatalf("createAgent %q: status %d: %s", name, status, b)
	}
	var out struct{ Agent struct{ ID string } }
	if err := json.Unmarshal(b, &out); err != nil || out.Agent.ID == "" {
		tb.Fatalf("createAgent body %s: %v", b, err)
	}
	return out.Agent.ID
}
