package web_test

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"docket/internal/testkit"
)

// BenchmarkGetAgent measures getAgent over real HTTP: every request authenticated with an
// API key and read from the database, on keep-alive connections. It reports throughput
// and the latency a client sees (p50, p99):
//   - saturated: parallel clients (4 per GOMAXPROCS) send as fast as answers come back;
//   - 1000rps: requests are started at a steady 1,000 per second whatever the answers do
//     (open loop), the load DESIGN §13's API latency target is stated at.
func BenchmarkGetAgent(b *testing.B) {
	s := testkit.StartServer(b, testkit.Options{})
	r := s.Do(b, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{
		"name": "Bench", "build": map[string]any{"name": "v1", "config": testkit.SetupConfig("You are Bench.")},
	})
	if r.Status != http.StatusCreated {
		b.Fatalf("create agent: %d %s", r.Status, r.Body)
	}
	var created struct{ Agent struct{ ID string } }
	r.Decode(b, &created)
	url := s.URL + "/v2/agents/" + created.Agent.ID

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	get := func(b *testing.B) (time.Duration, bool) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return 0, false
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Errorf("getAgent: status %d, err %v", resp.StatusCode, err)
			return took, false
		}
		return took, true
	}

	b.Run("saturated", func(b *testing.B) {
		var lat latencies
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			own := make([]time.Duration, 0, 1024)
			for pb.Next() {
				took, ok := get(b)
				if !ok {
					return
				}
				own = append(own, took)
			}
			lat.add(own)
		})
		lat.report(b)
	})

	b.Run("1000rps", func(b *testing.B) {
		const rate = 1000
		var lat latencies
		starts := make(chan struct{}, rate)
		var wg sync.WaitGroup
		for range 64 { // enough senders that none is ever waited for at this rate
			wg.Add(1)
			go func() {
				defer wg.Done()
				var own []time.Duration
				for range starts {
					if took, ok := get(b); ok {
						own = append(own, took)
					}
				}
				lat.add(own)
			}()
		}
		b.ResetTimer()
		// Each request has its slot on a fixed schedule; a late slot is sent at once, so
		// the average rate holds even when this goroutine is descheduled for a while.
		begin := time.Now()
		for i := range b.N {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / rate)))
			starts <- struct{}{}
		}
		close(starts)
		wg.Wait()
		lat.report(b)
	})
}

// latencies collects per-request latencies from several goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	b.StopTimer()
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}
