// Package web is docket's HTTP face: the /v2 JSON API (huma on the stdlib mux), health
// and metrics endpoints, and the pages served to browsers.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"docket/files"
	"docket/store"
)

// Config is what the HTTP layer needs from the process.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Version is reported in the OpenAPI document.
	Version string
	// MaxBodyBytes caps JSON request bodies (default 10 MiB).
	MaxBodyBytes int64
	// RateLimit is requests per minute per API key (default 600; negative disables).
	RateLimit int
	// Runs starts, resumes and stops Jobs (the runtime engine).
	Runs Runs
	// Dispatcher is woken when cases or case triggers change, so due cases start at once.
	Dispatcher interface{ Wake() }
	// Metrics is the registry /metrics serves; nil makes a new one. Pass the one the
	// other services register with.
	Metrics *prometheus.Registry
	// SessionIdle ends a dashboard session after this long without a request (default
	// 12 h); SessionMax ends it this long after sign-in whatever (default 7 days).
	SessionIdle time.Duration
	SessionMax  time.Duration
	// KeepAlive is how often an open event stream re-checks its credential and writes a
	// keep-alive comment (default 15 s).
	KeepAlive time.Duration
	// LoginAttempts is how many failed sign-ins per minute one address may make for one
	// email before it is told to wait (default 5).
	LoginAttempts int
	// DataDir is the data directory: queue intake folders live inside it, and the
	// dashboard shows it where it explains the drop folder.
	DataDir string
	// MasterKey is the server's master key (store.DataDir.MasterKey); secrets the API
	// hands out, such as webhook signing secrets and signed file URLs, derive from it.
	MasterKey []byte
	// Blobs stores file content (<data>/blobs).
	Blobs *files.Blobs
	// MaxFileSize caps one uploaded file (default files.DefaultMaxFileSize, 100 MiB).
	// Uploads stream and are not held to MaxBodyBytes.
	MaxFileSize int64
	// Schedules is the scheduler, told about every schedule change; nil runs none.
	Schedules Schedules
	// Intake is the drop-folder watcher, told when a queue's intake changes.
	Intake interface{ Reconcile() }
}

// Server routes every HTTP request the appliance answers.
type Server struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	api     huma.API
	mux     *http.ServeMux
	limiter *rateLimiter
	metrics *metrics
	handler http.Handler
	ready   func(context.Context) error
	runs    Runs
	hooks   webhookWaker
	signer  *files.Signer
	// Dashboard: hashed asset URLs, the cross-origin guard and the sign-in limiter.
	assets       uiAssets
	crossOrigin  *http.CrossOriginProtection
	loginLimiter *rateLimiter
	// closing ends long-lived streams when the server shuts down.
	closing   chan struct{}
	closeOnce sync.Once
}

// New builds the server and registers every operation.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 600
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = files.DefaultMaxFileSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 7 * 24 * time.Hour
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.LoginAttempts <= 0 {
		cfg.LoginAttempts = 5
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./docket-data"
	}
	installErrorModel()
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, mux: http.NewServeMux(), runs: cfg.Runs, closing: make(chan struct{}),
		signer: files.NewSigner(cfg.MasterKey)}
	if cfg.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.RateLimit, time.Minute)
	}
	s.metrics = newMetrics(cfg.Metrics)
	s.loginLimiter = newRateLimiter(cfg.LoginAttempts, time.Minute)
	s.crossOrigin = http.NewCrossOriginProtection()
	s.crossOrigin.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))

	hc := huma.DefaultConfig("docket API", cfg.Version)
	hc.Info.Description = "docket's HTTP API follows the Duvo Developer Platform API v2: same paths, operation ids and field names. " +
		"Authenticate with `Authorization: Bearer <API key>`; create a key with `docket apikey create`."
	hc.OpenAPIPath = "/v2/openapi"
	hc.DocsPath = ""
	hc.SchemasPath = "/v2/schemas"
	hc.CreateHooks = nil // no $schema links injected into response bodies
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearerAuth": {Type: "http", Scheme: "bearer", Description: "An API key (dk_…) from `docket apikey create` or createApiKey."},
	}
	s.api = humago.New(wildcardMux{s.mux}, hc)
	s.api.UseMiddleware(s.authenticate)

	s.registerTeams()
	s.registerAPIKeys()
	s.registerAgents()
	s.registerFolders()
	s.registerRevisions()
	s.registerAudit()
	s.registerRuns()
	s.registerMemory()
	s.registerWebhooks()
	s.registerQueues()
	s.registerLabels()
	s.registerCases()
	s.registerCaseTriggers()
	s.registerFiles()
	s.registerSandboxes()
	s.registerSchedules()
	s.registerInboundTriggers()
	referenceWildcards(s.api.OpenAPI())

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /v2/docs", s.docs)
	s.registerUI()
	s.mux.HandleFunc("/", s.notFound)

	s.handler = s.observe(s.confineFilePaths(s.limitBody(s.idempotent(s.mux))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// wakeDispatcher tells the case dispatcher to look for work now.
func (s *Server) wakeDispatcher() {
	if s.cfg.Dispatcher != nil {
		s.cfg.Dispatcher.Wake()
	}
}

// CloseStreams ends open event streams; call it when the HTTP server shuts down.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// SetReadiness adds a check /readyz runs besides the database's (e.g. workers started).
func (s *Server) SetReadiness(check func(context.Context) error) { s.ready = check }

// OpenAPI returns the generated OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// op fills the parts every operation shares: the minimum role, the body cap and the
// security requirement.
func (s *Server) op(o huma.Operation, min store.Role) huma.Operation {
	o.Metadata = map[string]any{metaRole: min}
	o.MaxBodyBytes = s.cfg.MaxBodyBytes
	o.Security = []map[string][]string{{"bearerAuth": {}}}
	return o
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "docket_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "docket_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry exposes the metrics registry so other services can add their collectors.
func (s *Server) Registry() prometheus.Registerer { return s.metrics.reg }
