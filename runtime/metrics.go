package runtime

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"docket/store"
)

// runStatuses are the statuses /metrics always reports, zero included.
var runStatuses = []string{store.RunPending, store.RunRunning, store.RunWaiting, store.RunCompleted, store.RunFailed, store.RunStopped}

// runsCollector reports runs by status, read from the database at scrape time so the
// figure can never drift from the truth across restarts.
type runsCollector struct {
	st   *store.Store
	desc *prometheus.Desc
}

func (c runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.st.RunCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range runStatuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}

type engineMetrics struct {
	modelCalls *prometheus.HistogramVec
}

func newEngineMetrics(st *store.Store, reg prometheus.Registerer) engineMetrics {
	m := engineMetrics{modelCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "docket_model_call_duration_seconds",
		Help:    "Model (Ollama /api/chat) call latency by outcome: ok, retried or failed.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"outcome"})}
	if reg != nil {
		reg.MustRegister(m.modelCalls, runsCollector{st: st, desc: prometheus.NewDesc("docket_runs", "Runs (Jobs) by status.", []string{"status"}, nil)})
	}
	return m
}
