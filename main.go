// Command docket is a self-hosted operating layer for agent work: one binary, one SQLite
// file. main only wires flags to services; the command tree lives in cli.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"docket/cli"
	"docket/files"
	"docket/queues"
	"docket/runtime"
	"docket/store"
	"docket/web"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := cli.New(version, serve).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "docket:", err)
		os.Exit(1)
	}
}

// serve runs the appliance until ctx is cancelled, then shuts down within 10 s.
func serve(ctx context.Context, cfg cli.ServeConfig, stdout io.Writer) error {
	start := time.Now()
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	dir, err := store.OpenDataDir(cfg.Data)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(dir.Path)
	if err != nil {
		return err
	}
	defer unlock()
	// Listen before the first-start bootstrap: a busy port must fail before an owner
	// password is generated, or that password would be stored but never shown.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another program using it? choose another with --addr)", cfg.Addr, err)
	}
	defer ln.Close()

	st, err := store.Open(ctx, dir.DBPath(), store.Options{Durability: cfg.Durability})
	if err != nil {
		return err
	}
	defer st.Close()
	password, err := bootstrap(ctx, st, dir.Path)
	if err != nil {
		return err
	}

	master, err := dir.MasterKey()
	if err != nil {
		return err
	}
	blobs, err := files.OpenBlobs(filepath.Join(dir.Path, "blobs"))
	if err != nil {
		return err
	}
	host := runtime.OllamaHost()
	model, err := runtime.NewOllama(host)
	if err != nil {
		return err
	}
	var hooks *runtime.WebhookDeliverer
	var dispatcher *queues.Dispatcher
	metrics := prometheus.NewRegistry()
	// After every run state change: deliver its webhooks, and start the next case if a
	// run that held one ended.
	notify := func() {
		hooks.Wake()
		dispatcher.Wake()
	}
	engine := runtime.New(runtime.Config{Store: st, Model: model, ModelHost: host, Log: log, Workers: cfg.Workers, Notify: notify, Registerer: metrics,
		Blobs: blobs, MaxFileSize: cfg.MaxFileSize})
	dispatcher = queues.New(st, engine, log)
	scheduler, err := runtime.NewScheduler(runtime.SchedulerConfig{Store: st, Log: log, Started: engine.RunCreated})
	if err != nil {
		return err
	}
	intake := files.NewIntake(files.IntakeConfig{Store: st, Blobs: blobs, DataDir: dir.Path, Log: log, Wake: dispatcher.Wake,
		Debounce: cfg.IntakeDebounce, MaxFileSize: cfg.MaxFileSize})
	srv := web.New(web.Config{Store: st, Logger: log, Version: version, MaxBodyBytes: cfg.MaxBodyBytes, RateLimit: cfg.RateLimit, Runs: engine,
		MasterKey: master, Metrics: metrics, Dispatcher: dispatcher, Blobs: blobs, MaxFileSize: cfg.MaxFileSize,
		SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax, DataDir: dir.Path, Schedules: scheduler, Intake: intake})
	hooks = runtime.NewWebhookDeliverer(st, master, log, runtime.WebhookOptions{Registerer: metrics})
	srv.SetWebhookWorker(hooks)
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	httpSrv.RegisterOnShutdown(srv.CloseStreams)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return pruneLoop(gctx, st, log) })
	g.Go(func() error { return files.CollectLoop(gctx, blobs, st, time.Hour, log) })
	g.Go(func() error { return engine.Run(gctx) })
	g.Go(func() error { return hooks.Run(gctx) })
	g.Go(func() error { return dispatcher.Run(gctx) })
	g.Go(func() error { return scheduler.Run(gctx) })
	g.Go(func() error { return intake.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 10*time.Second)
		defer cancel()
		log.Info("shutting down")
		return httpSrv.Shutdown(sctx)
	})

	addr := ln.Addr().String()
	log.Info("docket started", "addr", addr, "data", dir.Path, "version", version, "workers", cfg.Workers, "ollama", host,
		"startup_ms", time.Since(start).Milliseconds())
	printWelcome(stdout, addr, dir.Path, password)
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}
	err = g.Wait()
	log.Info("docket stopped")
	return err
}

// triageAgent is examples/triage's Assignment, loaded on first start (DESIGN §12) so a
// fresh box has something to run and the dashboard's first steps name a real id.
//
//go:embed examples/triage/agent.json
var triageAgent []byte

// bootstrap creates the Default team, its owner, the Inbox queue (with its drop folder
// <data>/intake/inbox/) and the Triage Assignment on first start and returns the
// password to print once ("" when nothing was created).
func bootstrap(ctx context.Context, st *store.Store, data string) (string, error) {
	empty, err := st.IsEmpty(ctx)
	if err != nil || !empty {
		return "", err
	}
	password := os.Getenv("DOCKET_ADMIN_PASSWORD")
	shown := ""
	if password == "" {
		password = rand.Text()
		shown = password
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash admin password: %w", err)
	}
	team, _, err := st.Bootstrap(ctx, string(hash))
	if err != nil {
		return "", fmt.Errorf("first-start setup: %w", err)
	}
	inbox := store.NewQueue{Name: "Inbox", Description: "Files dropped into its intake folder become cases here.",
		Intake: &store.IntakeSpec{Prepare: func(dir string) error { return files.PrepareIntakeDir(data, dir) }}}
	if _, err := st.CreateQueue(ctx, store.Actor{TeamID: team.ID, Channel: "system", Operation: "bootstrap"}, inbox); err != nil {
		return "", fmt.Errorf("first-start setup: create the Inbox queue: %w", err)
	}
	if err := createTriage(ctx, st, team.ID); err != nil {
		return "", fmt.Errorf("first-start setup: create the Triage Assignment: %w", err)
	}
	if shown == "" {
		shown = "(from DOCKET_ADMIN_PASSWORD)"
	}
	return shown, nil
}

// createTriage adds the example Assignment, owned by the team's owner, on DOCKET_MODEL
// when that is set; its Setup is checked by the same rules as one sent to the API.
func createTriage(ctx context.Context, st *store.Store, team string) error {
	var ex struct {
		Name, Description string
		Build             struct {
			Name   string
			Config runtime.SetupConfig
		}
	}
	if err := json.Unmarshal(triageAgent, &ex); err != nil {
		return err
	}
	if model := os.Getenv("DOCKET_MODEL"); model != "" {
		ex.Build.Config.Data.Models.Agent.Model = model
	}
	if err := ex.Build.Config.Normalize(); err != nil {
		return fmt.Errorf("DOCKET_MODEL: %w", err)
	}
	config, err := json.Marshal(ex.Build.Config)
	if err != nil {
		return err
	}
	owner, err := st.TeamOwner(ctx, team)
	if err != nil {
		return err
	}
	a := store.Actor{TeamID: team, UserID: owner.ID, Channel: "system", Operation: "bootstrap"}
	_, _, err = st.CreateAgent(ctx, a, store.NewAgent{Name: ex.Name, Description: ex.Description,
		Build: &store.NewBuild{Name: ex.Build.Name, Config: config}})
	return err
}

func printWelcome(w io.Writer, addr, data, password string) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(w, "\ndocket is running at %s  (data: %s)\n", url, data)
	fmt.Fprintf(w, "  Dashboard:      %s  (sign in below)\n", url)
	fmt.Fprintf(w, "  API reference:  %s/v2/docs\n", url)
	if password != "" {
		fmt.Fprintf(w, "  Owner login:    %s  password: %s\n", store.AdminEmail, password)
		fmt.Fprintf(w, "                  (shown only now; set DOCKET_ADMIN_PASSWORD before the first start to choose it)\n")
	} else {
		fmt.Fprintf(w, "  Owner login:    %s with the password printed at first start\n", store.AdminEmail)
	}
	fmt.Fprintf(w, "  API key:        docket apikey create --data %s --name me\n\n", data)
}

// lockDataDir takes <data>/serve.lock so that a second `serve` on the same directory
// refuses to start instead of racing the first for the same files.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "serve.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if pid == "" {
			pid = "unknown"
		}
		return nil, fmt.Errorf("another docket serve (pid %s) is already using %s: stop it first, or pass --data to use another directory", pid, dir)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

// pruneLoop forgets idempotency keys past their replay window, hourly.
func pruneLoop(ctx context.Context, st *store.Store, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := st.PruneIdempotency(ctx); err != nil && ctx.Err() == nil {
			log.Warn("pruning idempotency keys failed", "err", err)
		} else if n > 0 {
			log.Info("pruned idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
