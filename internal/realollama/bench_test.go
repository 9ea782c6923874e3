package realollama_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"docket/internal/realollama"
	"docket/internal/testkit"
	"docket/runtime"
)

// turnLog keeps the per-turn timing the run loop logs at debug level.
type turnLog struct {
	mu       sync.Mutex
	overhead []time.Duration // took - model_total, per turn
	model    []time.Duration
}

func (l *turnLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *turnLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *turnLog) WithGroup(string) slog.Handler            { return l }

func (l *turnLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "model turn" {
		return nil
	}
	var took, model time.Duration
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "took":
			took = a.Value.Duration()
		case "model_total":
			model = a.Value.Duration()
		}
		return true
	})
	l.mu.Lock()
	l.overhead = append(l.overhead, took-model)
	l.model = append(l.model, model)
	l.mu.Unlock()
	return nil
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))]) / float64(time.Millisecond)
}

// BenchmarkTurnOverhead measures what docket adds to a model turn on top of the model's
// own total_duration as Ollama reports it: building the prompt and format, the HTTP
// round trip and streaming, parsing the answer, and committing the turn (with its
// calls) to the store. One run at a time on the real server with the tiny model, so
// turns do not queue behind each other. Run with -benchtime=Nx (N runs).
func BenchmarkTurnOverhead(b *testing.B) {
	for _, mode := range []string{"native", "constrained"} {
		b.Run(mode, func(b *testing.B) {
			log := &turnLog{}
			srv := realollama.Shared(b)
			w := newWorldLogged(b, srv, slog.New(log))
			agent := w.assignment(b, map[string]any{"tools": []string{"memory_list"}, "max_turns": 1,
				"options": map[string]any{"tool_mode": mode, "num_ctx": 2048, "num_predict": 64}})
			sub := w.s.Engine.Hub().Subscribe("")
			defer sub.Close()
			// One run to load the model, outside the measurement.
			waitEnd(b, sub, w.start(b, agent, "warm up"))
			log.overhead, log.model = nil, nil
			b.ResetTimer()
			for i := range b.N {
				waitEnd(b, sub, w.start(b, agent, fmt.Sprintf("run %d", i)))
			}
			b.StopTimer()
			if len(log.overhead) == 0 {
				b.Fatal("no turn was logged")
			}
			b.ReportMetric(percentile(log.overhead, 0.5), "overhead-p50-ms")
			b.ReportMetric(percentile(log.overhead, 0.99), "overhead-p99-ms")
			b.ReportMetric(percentile(log.model, 0.5), "ollama-total-p50-ms")
			b.ReportMetric(float64(len(log.overhead))/float64(b.N), "turns/run")
		})
	}
}

// waitEnd waits for the run's end on the engine's event hub (no polling, which would
// compete with the turn for the CPU).
func waitEnd(b *testing.B, sub *runtime.Subscription, run string) {
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-sub.C:
			if ev.Type == "status" && ev.RunID == run && (ev.Status == "completed" || ev.Status == "failed") {
				return
			}
		case <-timeout:
			b.Fatalf("run %s did not end within a minute", run)
		}
	}
}

// newWorldLogged is a world whose docket talks to Ollama directly and logs to logger.
func newWorldLogged(tb testing.TB, ollama *realollama.Server, logger *slog.Logger) *world {
	m, err := runtime.NewOllama(ollama.URL)
	if err != nil {
		tb.Fatal(err)
	}
	return &world{ollama: ollama, s: testkit.StartServer(tb, testkit.Options{Model: m, ModelHost: ollama.URL, Logger: logger})}
}
