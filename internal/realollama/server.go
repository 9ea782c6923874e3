package realollama

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// TinyModel is the name the tiny model is created under.
const TinyModel = "docket-tiny"

// tinyModelfile gives the tiny model a chat template that mentions .Tools, so /api/show
// reports the "tools" capability, and whose tool-call text starts with "{", so Ollama's
// parser recognises a call when the model writes one.
const tinyModelfile = `FROM ./tiny.gguf
TEMPLATE """{{- if .Tools }}<|im_start|>system
You can call these tools:
{{- range .Tools }}
{{ . }}
{{- end }}
Reply with {"name": <tool>, "arguments": <args>}.<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Content }}{{ .Content }}{{ end }}
{{- if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{ end }}{{ end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
PARAMETER stop <|im_end|>
PARAMETER num_predict 48
`

// Server is a running `ollama serve` on a loopback port with its own model store.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123 (what OLLAMA_HOST takes).
	URL string
	// Addr is host:port.
	Addr string
	Bin  string
	Dir  string

	env     []string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   sync.Mutex
	exited  chan struct{}
	stopped sync.Once
}

// Start runs `ollama serve` from bin on a free loopback port, with its models, keys and
// logs under dir, and waits until it answers. The server and the runners it spawns share
// a process group, so Kill and Close leave nothing behind.
func Start(ctx context.Context, bin, dir string, env ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "http://" + addr, Addr: addr, Bin: bin, Dir: dir, log: &bytes.Buffer{}, env: env}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		return nil, err
	}
	return s, s.launch(ctx)
}

// Restart starts the server again after Kill or Close, on the same address and with the
// same models.
func (s *Server) Restart(ctx context.Context) error {
	s.stopped = sync.Once{}
	return s.launch(ctx)
}

func (s *Server) launch(ctx context.Context) error {
	s.exited = make(chan struct{})
	s.cmd = exec.Command(s.Bin, "serve")
	s.cmd.Env = append(os.Environ(),
		"OLLAMA_HOST="+s.Addr, "OLLAMA_MODELS="+filepath.Join(s.Dir, "models"), "HOME="+s.Dir,
		"OLLAMA_NOPRUNE=1", "OLLAMA_KEEP_ALIVE=30m")
	s.cmd.Env = append(s.cmd.Env, s.env...)
	s.cmd.Stdout, s.cmd.Stderr = (*lockedWriter)(s), (*lockedWriter)(s)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", s.Bin, err)
	}
	exited := s.exited
	cmd := s.cmd
	go func() {
		cmd.Wait()
		close(exited)
	}()
	if err := s.waitUp(ctx, 60*time.Second); err != nil {
		s.Close()
		return err
	}
	return nil
}

// lockedWriter collects the server's output for failure messages.
type lockedWriter Server

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	if w.log.Len() < 4<<20 {
		w.log.Write(p)
	}
	return len(p), nil
}

// Log is the tail of the server's output.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return tail(s.log.Bytes(), 6000)
}

func (s *Server) waitUp(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/version", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("ollama serve exited at start:\n%s", s.Log())
		case <-ctx.Done():
			return fmt.Errorf("ollama serve did not answer at %s within %s:\n%s", s.URL, limit, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CreateTiny writes the tiny model and its Modelfile into the server's directory and
// imports it as name (`ollama create`).
func (s *Server) CreateTiny(ctx context.Context, name string) error {
	dir := filepath.Join(s.Dir, "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := WriteTinyGGUF(filepath.Join(dir, "tiny.gguf"), 42); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Modelfile"), []byte(tinyModelfile), 0o644); err != nil {
		return err
	}
	return s.Create(ctx, name, filepath.Join(dir, "Modelfile"))
}

// Create imports a model from a Modelfile (`ollama create name -f modelfile`).
func (s *Server) Create(ctx context.Context, name, modelfile string) error {
	cmd := exec.CommandContext(ctx, s.Bin, "create", name, "-f", modelfile)
	cmd.Dir = filepath.Dir(modelfile)
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+s.Addr, "HOME="+s.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ollama create %s: %w\n%s\nserver log:\n%s", name, err, tail(out, 2000), s.Log())
	}
	return nil
}

// Kill ends the server and its runners at once (SIGKILL), as a crash would, and waits
// until the server process is gone.
func (s *Server) Kill() {
	s.stopped.Do(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
}

// Close stops the server and its runners and waits for the server to exit.
func (s *Server) Close() {
	s.stopped.Do(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
		// Runners that outlived their server (they are in its group) go too.
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
