package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"docket/files"
	"docket/store"
)

// Config is what the engine is built from.
type Config struct {
	Store *store.Store
	Model Model
	// ModelHost is shown in model errors (e.g. http://127.0.0.1:11434).
	ModelHost string
	Log       *slog.Logger
	// Workers is how many runs execute at once (default 4).
	Workers int
	// Lease is how long a claimed run stays an executor's without a heartbeat (default 30 s).
	Lease time.Duration
	// ModelRetries and ModelBackoff shape retries of failed model calls within a run
	// (default 3, 500 ms doubling); a negative ModelRetries means none.
	ModelRetries int
	ModelBackoff time.Duration
	// HTTPClient makes http_request calls (default: a client with sane timeouts).
	HTTPClient *http.Client
	// Notify is called after a transaction that may have queued webhooks, to wake their
	// delivery worker.
	Notify func()
	// Registerer receives the engine's metrics (runs by status, model call latency).
	Registerer prometheus.Registerer
	// Blobs stores the files runs write; nil leaves out the file tools.
	Blobs *files.Blobs
	// MaxFileSize bounds one file a run writes (default 100 MiB).
	MaxFileSize int64
}

// Engine executes runs: a pool of workers claims runnable runs from the store and
// drives them turn by turn. Waiting runs hold no worker; the store is the truth and the
// wake channel only makes workers look sooner.
type Engine struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	tools *Registry
	hub   *Hub
	wake  chan struct{}
	gates chan struct{}
	id    string

	metrics engineMetrics

	mu     sync.Mutex
	active map[string]context.CancelFunc

	modes modeCache // the tool mode auto picked, per model
}

// New builds an engine with the built-in tools registered.
func New(cfg Config) *Engine {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.ModelRetries == 0 {
		cfg.ModelRetries = 3
	}
	if cfg.ModelBackoff <= 0 {
		cfg.ModelBackoff = 500 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = files.DefaultMaxFileSize
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	e := &Engine{cfg: cfg, st: cfg.Store, log: cfg.Log, tools: NewRegistry(), hub: NewHub(),
		wake: make(chan struct{}, 1), gates: make(chan struct{}, 1), id: uuid.NewString()[:8], active: map[string]context.CancelFunc{},
		metrics: newEngineMetrics(cfg.Store, cfg.Registerer)}
	for _, t := range humanTools() {
		e.tools.Register(t)
	}
	for _, t := range memoryTools(cfg.Store) {
		e.tools.Register(t)
	}
	e.tools.Register(httpTool(cfg.HTTPClient))
	for _, t := range caseTools(cfg.Store) {
		e.tools.Register(t)
	}
	if cfg.Blobs != nil {
		for _, t := range fileTools(cfg.Store, cfg.Blobs, cfg.MaxFileSize) {
			e.tools.Register(t)
		}
	}
	return e
}

// Tools is the engine's tool registry.
func (e *Engine) Tools() *Registry { return e.tools }

// Hub is where run events are published.
func (e *Engine) Hub() *Hub { return e.hub }

// Wake makes an idle worker look for work now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) wakeSweeper() {
	select {
	case e.gates <- struct{}{}:
	default:
	}
}

// Run executes runs until ctx ends. Runs left 'running' by a process that died are
// taken back at once: `docket serve` holds the data dir's lock, so no other executor can
// own them.
func (e *Engine) Run(ctx context.Context) error {
	n, err := e.st.RecoverRuns(ctx)
	if ctx.Err() != nil {
		return nil // shut down before it began: a clean stop
	}
	if err != nil {
		return fmt.Errorf("recover runs: %w", err)
	}
	if n > 0 {
		e.log.Info("resuming runs interrupted by the last shutdown", "count", n)
	}
	g, ctx := errgroup.WithContext(ctx)
	for i := range e.cfg.Workers {
		owner := fmt.Sprintf("%s/%d", e.id, i)
		g.Go(func() error { e.worker(ctx, owner); return nil })
	}
	g.Go(func() error { e.sweep(ctx); return nil })
	return g.Wait()
}

func (e *Engine) worker(ctx context.Context, owner string) {
	for ctx.Err() == nil {
		run, err := e.st.ClaimRun(ctx, owner, e.cfg.Lease)
		wait := e.cfg.Lease
		switch {
		case err != nil:
			if ctx.Err() == nil {
				// The database is failing (disk full, say): try again, but not in a spin.
				e.log.Error("claiming a run failed", "err", err)
				wait = time.Second
			}
		case run != nil:
			// Another run may be waiting too: pass the wake-up on before working.
			e.Wake()
			e.drive(ctx, owner, *run)
			continue
		default:
			if due, ok, err := e.st.NextRunDue(ctx); err == nil && ok {
				wait = min(wait, max(time.Until(due), time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sweep expires gates at their deadlines.
func (e *Engine) sweep(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := e.st.ExpireGates(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("expiring gates failed", "err", err)
		}
		if n > 0 {
			e.log.Info("gates expired", "count", n)
			e.cfg.Notify()
			e.Wake()
		}
		wait := time.Minute
		if next, ok, err := e.st.NextGateExpiry(ctx); err == nil && ok {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-e.gates:
		case <-t.C:
		}
		t.Stop()
	}
}

// changed tells watchers, workers and the webhook worker that a run's state moved.
func (e *Engine) changed(r store.Run) {
	e.hub.Publish(Event{Type: "status", RunID: r.ID, TeamID: r.TeamID, Status: r.Status})
	e.cfg.Notify()
	e.Wake()
}

// StartRun creates a run and wakes a worker for it.
func (e *Engine) StartRun(ctx context.Context, a store.Actor, nr store.NewRun) (store.Run, error) {
	r, err := e.st.StartRun(ctx, a, nr)
	if err != nil {
		return store.Run{}, err
	}
	created := r
	created.Status = store.RunPending // see StartCases
	e.changed(created)
	return r, nil
}

// Respond records a person's decision on a gate and resumes the run.
func (e *Engine) Respond(ctx context.Context, a store.Actor, runID, gateID string, resp store.GateResponse) (store.Gate, error) {
	g, err := e.st.RespondGate(ctx, a, runID, gateID, resp)
	if err != nil {
		return store.Gate{}, err
	}
	e.hub.Publish(Event{Type: "status", RunID: runID, TeamID: g.TeamID, Status: store.RunPending})
	e.Wake()
	e.wakeSweeper()
	return g, nil
}

// PostMessage adds a person's message to a waiting or ended run and resumes it.
func (e *Engine) PostMessage(ctx context.Context, a store.Actor, runID, text string) (store.Message, error) {
	m, err := e.st.PostRunMessage(ctx, a, runID, text)
	if err != nil {
		return store.Message{}, err
	}
	e.hub.Publish(Event{Type: "message", RunID: runID, TeamID: a.TeamID, Message: &m})
	e.hub.Publish(Event{Type: "status", RunID: runID, TeamID: a.TeamID, Status: store.RunPending})
	e.Wake()
	return m, nil
}

// Stop stops a run; a worker driving it is interrupted at once.
func (e *Engine) Stop(ctx context.Context, a store.Actor, runID string) (store.Run, error) {
	r, err := e.st.StopRun(ctx, a, runID)
	if err != nil {
		return store.Run{}, err
	}
	e.mu.Lock()
	cancel := e.active[runID]
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	e.changed(r)
	return r, nil
}

// StartCases claims trigger t's due cases up to its free slots and starts their runs
// (queues.RunStarter).
func (e *Engine) StartCases(ctx context.Context, t store.CaseTrigger) (int, error) {
	ids, err := e.st.DispatchCases(ctx, t)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// Announce what was created: a worker may already have run it further since the
	// commit, and its own announcements follow.
	for _, id := range ids {
		e.hub.Publish(Event{Type: "status", RunID: id, TeamID: t.TeamID, Status: store.RunPending})
	}
	e.cfg.Notify()
	e.Wake()
	return len(ids), nil
}

// RunCreated announces a run another service created in its own transaction (a schedule
// fire) and wakes a worker for it.
func (e *Engine) RunCreated(r store.Run) {
	r.Status = store.RunPending
	e.changed(r)
}
