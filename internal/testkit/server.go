// Package testkit holds what docket's tests share: a real server on a temp data dir
// spoken to over real HTTP, and fixtures for teams, members and keys.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"docket/files"
	"docket/queues"
	"docket/runtime"
	"docket/store"
	"docket/web"
)

// Server is a running docket HTTP server backed by a fresh data dir.
type Server struct {
	URL    string
	Dir    string
	Store  *store.Store
	Web    *web.Server
	Engine *runtime.Engine
	// Dispatcher starts runs on due cases; tests that add cases behind the API's back
	// wake it.
	Dispatcher *queues.Dispatcher
	TeamID     string
	OwnerID    string
	OwnerKey   string
	Client     *http.Client
	// Webhooks is the delivery worker, when Options.Webhooks asked for one.
	Webhooks *runtime.WebhookDeliverer
	// Blobs is the server's blob store (<Dir>/blobs).
	Blobs *files.Blobs
	// Scheduler fires schedules on Options.Clock.
	Scheduler *runtime.Scheduler
	// Intake is the drop-folder watcher, when Options.Intake asked for one.
	Intake *files.Intake
}

// Options adjust a test server.
type Options struct {
	// RateLimit per key per minute; 0 means effectively unlimited for tests.
	RateLimit    int
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Model is the model backend runs talk to (e.g. a FakeOllama's client); nil means
	// one that is never reachable, for tests that start no runs.
	Model runtime.Model
	// ModelHost is what model errors name; defaults to the model's URL.
	ModelHost string
	// Engine adjusts the run engine's config (workers, lease, retries) before it starts.
	Engine func(*runtime.Config)
	// CaseBackoff shortens case retries (store.Options.CaseBackoff).
	CaseBackoff func(attempt int) time.Duration
	// Web adjusts the HTTP server's config (session lifetimes, sign-in limit) before it
	// starts.
	Web func(*web.Config)
	// Webhooks, when set, runs a webhook delivery worker with these options for the
	// server's lifetime, so tests can observe deliveries.
	Webhooks *runtime.WebhookOptions
	// MaxFileSize caps uploads and files runs write; 0 means the default (100 MiB).
	MaxFileSize int64
	// Clock drives the scheduler; nil is the real clock (pass a clockwork fake clock to
	// move time in schedule tests).
	Clock clockwork.Clock
	// Intake, when set, runs the drop-folder watcher for the server's lifetime; the
	// function may adjust its config (e.g. a shorter debounce) before it starts.
	Intake func(*files.IntakeConfig)
}

// StartServer starts a server on a loopback port with the first-start bootstrap done and
// an owner key ready. Everything is torn down when the test ends.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx := context.Background()
	d, err := store.OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, d.DBPath(), store.Options{CaseBackoff: opts.CaseBackoff})
	if err != nil {
		t.Fatal(err)
	}
	team, _, err := st.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := st.TeamOwner(ctx, team.ID)
	if err != nil {
		t.Fatal(err)
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	master, err := d.MasterKey()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Model == nil {
		m, err := runtime.NewOllama("http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		opts.Model, opts.ModelHost = m, "http://127.0.0.1:1"
	}
	blobs, err := files.OpenBlobs(filepath.Join(d.Path, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks *runtime.WebhookDeliverer
	var dispatcher *queues.Dispatcher
	metrics := prometheus.NewRegistry()
	ecfg := runtime.Config{Store: st, Registerer: metrics, Model: opts.Model, ModelHost: opts.ModelHost, Log: opts.Logger, ModelBackoff: time.Millisecond,
		Blobs: blobs, MaxFileSize: opts.MaxFileSize,
		Notify: func() {
			if hooks != nil {
				hooks.Wake()
			}
			dispatcher.Wake()
		}}
	if opts.Engine != nil {
		opts.Engine(&ecfg)
	}
	eng := runtime.New(ecfg)
	dispatcher = queues.New(st, eng, opts.Logger)
	sched, err := runtime.NewScheduler(runtime.SchedulerConfig{Store: st, Log: opts.Logger, Clock: opts.Clock, Started: eng.RunCreated})
	if err != nil {
		t.Fatal(err)
	}
	var intake *files.Intake
	if opts.Intake != nil {
		icfg := files.IntakeConfig{Store: st, Blobs: blobs, DataDir: d.Path, Log: opts.Logger, Wake: dispatcher.Wake, MaxFileSize: opts.MaxFileSize}
		opts.Intake(&icfg)
		intake = files.NewIntake(icfg)
	}
	wcfg := web.Config{Store: st, Logger: opts.Logger, Version: "test", RateLimit: opts.RateLimit, MaxBodyBytes: opts.MaxBodyBytes, Runs: eng,
		MasterKey: master, Metrics: metrics, Dispatcher: dispatcher, Blobs: blobs, MaxFileSize: opts.MaxFileSize, Schedules: sched, DataDir: d.Path}
	if intake != nil {
		wcfg.Intake = intake
	}
	if opts.Web != nil {
		opts.Web(&wcfg)
	}
	w := web.New(wcfg)
	if opts.Webhooks != nil {
		o := *opts.Webhooks
		if o.Registerer == nil {
			o.Registerer = w.Registry()
		}
		hooks = runtime.NewWebhookDeliverer(st, master, opts.Logger, o)
		w.SetWebhookWorker(hooks) // before serving: handlers read it
	}
	ctx, cancel := context.WithCancel(ctx)
	var workers sync.WaitGroup
	workers.Go(func() {
		if err := eng.Run(ctx); err != nil {
			t.Errorf("run engine: %v", err)
		}
	})
	workers.Go(func() { dispatcher.Run(ctx) })
	workers.Go(func() {
		if err := sched.Run(ctx); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	if intake != nil {
		workers.Go(func() {
			if err := intake.Run(ctx); err != nil {
				t.Errorf("intake watcher: %v", err)
			}
		})
	}
	if hooks != nil {
		workers.Go(func() {
			if err := hooks.Run(ctx); err != nil {
				t.Errorf("webhook worker: %v", err)
			}
		})
	}
	hs := httptest.NewServer(w)
	s := &Server{URL: hs.URL, Dir: d.Path, Store: st, Web: w, Engine: eng, Dispatcher: dispatcher, TeamID: team.ID, OwnerID: owner.ID, Client: hs.Client(), Webhooks: hooks,
		Blobs: blobs, Scheduler: sched, Intake: intake}
	s.OwnerKey = s.Key(t, team.ID, owner.ID)
	t.Cleanup(func() {
		w.CloseStreams()
		hs.Close()
		cancel()
		workers.Wait()
		st.Close()
	})
	return s
}

// Key issues an API key for user in team.
func (s *Server) Key(t testing.TB, team, user string) string {
	t.Helper()
	_, raw, err := s.Store.CreateAPIKey(context.Background(), store.Actor{TeamID: team, UserID: user, Channel: "system", Operation: "test"}, team, user, "test")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Member adds a user with role to the default team and returns a key acting as them.
func (s *Server) Member(t testing.TB, role store.Role) (key, userID string) {
	t.Helper()
	return s.MemberOf(t, s.TeamID, role)
}

// MemberOf adds a user with role to team and returns a key acting as them.
func (s *Server) MemberOf(t testing.TB, team string, role store.Role) (key, userID string) {
	t.Helper()
	email := fmt.Sprintf("%s-%s@example.test", role, store.NewID())
	u, err := s.Store.CreateUser(context.Background(), store.Actor{TeamID: team, Channel: "system", Operation: "test"}, team, email, string(role), "", role)
	if err != nil {
		t.Fatal(err)
	}
	return s.Key(t, team, u.ID), u.ID
}

// User adds a dashboard user with role and password to the default team and returns
// their email and id. The hash uses bcrypt's lowest cost: tests sign in often.
func (s *Server) User(t testing.TB, role store.Role, password string) (email, userID string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	email = fmt.Sprintf("%s-%s@example.test", role, store.NewID())
	u, err := s.Store.CreateUser(context.Background(), store.Actor{TeamID: s.TeamID, Channel: "system", Operation: "test"}, s.TeamID, email, string(role), string(hash), role)
	if err != nil {
		t.Fatal(err)
	}
	return email, u.ID
}

// NewTeam creates another team owned by a new user and returns its id and an owner key.
func (s *Server) NewTeam(t testing.TB, name string) (teamID, ownerKey string) {
	t.Helper()
	ctx := context.Background()
	u, err := s.Store.CreateUser(ctx, store.Actor{TeamID: s.TeamID, Channel: "system", Operation: "test"}, s.TeamID,
		fmt.Sprintf("owner-%s@example.test", store.NewID()), "owner", "", store.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	team, err := s.Store.CreateTeam(ctx, store.Actor{UserID: u.ID, Channel: "system", Operation: "test"}, name, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return team.ID, s.Key(t, team.ID, u.ID)
}

// Response is an HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map, failing the test if it is not an object.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object (status %d): %s", r.Status, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response (status %d): %v: %s", r.Status, err, r.Body)
	}
}

// Do sends a request with key as bearer (none when empty). body may be nil, a string
// (sent as is) or a value (sent as JSON). headers are name, value pairs.
func (s *Server) Do(t testing.TB, method, path, key string, body any, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// SetupConfig returns a minimal valid Setup config with the given SOP.
func SetupConfig(sop string) map[string]any {
	return map[string]any{"version": "v2", "data": map[string]any{
		"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}},
		"input":  sop,
	}}
}
