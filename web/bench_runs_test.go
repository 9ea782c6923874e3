package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/runtime"
	"docket/store"
)

// runBench is a real server whose runs talk to a scripted fake Ollama, with one
// Assignment whose Setup offers request_human_approval.
type runBench struct {
	*testkit.Server
	fake   *testkit.FakeOllama
	agent  string
	client *http.Client
}

func newRunBench(b *testing.B, workers int) *runBench {
	fake := testkit.NewFakeOllama(b)
	fake.SetRecording(false)
	model, err := runtime.NewOllama(fake.URL)
	if err != nil {
		b.Fatal(err)
	}
	s := testkit.StartServer(b, testkit.Options{Model: model, ModelHost: fake.URL,
		Engine: func(c *runtime.Config) { c.Workers = workers }})
	cfg := testkit.SetupConfig("You are Bench.")
	cfg["data"].(map[string]any)["tools"] = []string{"request_human_approval"}
	r := s.Do(b, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{
		"name": "Bench", "build": map[string]any{"name": "v1", "config": cfg},
	})
	if r.Status != http.StatusCreated {
		b.Fatalf("create agent: %d %s", r.Status, r.Body)
	}
	var created struct{ Agent struct{ ID string } }
	r.Decode(b, &created)
	rb := &runBench{Server: s, fake: fake, agent: created.Agent.ID,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	b.Cleanup(rb.client.CloseIdleConnections)
	return rb
}

// post sends a JSON body with the owner key over rb's keep-alive client and requires
// status want. It may be called from any goroutine.
func (rb *runBench) post(path, body string, want int) ([]byte, error) {
	req, err := http.NewRequest("POST", rb.URL+path, bytes.NewBufferString(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+rb.OwnerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := rb.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("POST %s: status %d, want %d: %s", path, resp.StatusCode, want, out)
	}
	return out, err
}

// startRun starts a run through the API and returns its id. It may be called from any
// goroutine.
func (rb *runBench) startRun(message string) (string, error) {
	body, err := rb.post("/v2/teams/"+rb.TeamID+"/runs", fmt.Sprintf(`{"agent_id":%q,"message":%q}`, rb.agent, message), http.StatusCreated)
	if err != nil {
		return "", err
	}
	var out struct{ Run struct{ ID string } }
	if err := json.Unmarshal(body, &out); err != nil || out.Run.ID == "" {
		return "", fmt.Errorf("startRun answered %s (%v)", body, err)
	}
	return out.Run.ID, nil
}

// awaitStatus waits for run id to reach status, reading the engine's own events.
func awaitStatus(b *testing.B, sub *runtime.Subscription, id, status string) {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev := <-sub.C:
			if ev.Type == "status" && ev.RunID == id && ev.Status == status {
				return
			}
		case <-deadline.C:
			b.Fatalf("run %s did not become %s within 10 s (events lagged: %v)", id, status, sub.Lagged.Load())
		}
	}
}

// BenchmarkGateResume measures DESIGN §13's gate resume: a run waits at a
// request_human_approval gate; the clock starts just before the respond POST goes out
// and stops when the run's next model request reaches the (fake) model. Each iteration
// is a fresh run; starting it and waiting for the gate are not timed. Reports p50_ms and
// p99_ms over the iterations.
func BenchmarkGateResume(b *testing.B) {
	rb := newRunBench(b, 4)
	rb.fake.On(testkit.LastRole("user")).CallTool("request_human_approval",
		map[string]any{"title": "Send it?", "description": "The reply is drafted."})
	rb.fake.On(testkit.LastRole("tool")).Reply("sent")
	// The model request that follows a decision is the one whose last message is the
	// gate's tool result; its arrival time is taken by the fake, before it answers.
	resumed := make(chan time.Time, 1)
	rb.fake.OnArrival(func(a testkit.ChatArrival) {
		if n := len(a.Request.Messages); n > 0 && a.Request.Messages[n-1].Role == "tool" {
			select {
			case resumed <- a.At:
			default: // only one run resumes at a time; never block the fake
			}
		}
	})
	sub := rb.Engine.Hub().Subscribe("")
	defer sub.Close()
	ctx := context.Background()

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id, err := rb.startRun(fmt.Sprintf("reply to customer %d", i))
		if err != nil {
			b.Fatal(err)
		}
		awaitStatus(b, sub, id, store.RunWaiting)
		g, err := rb.Store.OpenGateOf(ctx, id)
		if err != nil || g == nil {
			b.Fatalf("run %s waits without an open gate (%v)", id, err)
		}
		path := "/v2/runs/" + id + "/human-requests/" + g.ID + "/respond"
		b.StartTimer()

		begin := time.Now()
		if _, err := rb.post(path, `{"approved":true}`, http.StatusOK); err != nil {
			b.Fatal(err)
		}
		var at time.Time
		select {
		case at = <-resumed:
		case <-time.After(10 * time.Second):
			b.Fatalf("run %s: no model request within 10 s of the approval", id)
		}
		lat = append(lat, at.Sub(begin))

		b.StopTimer()
		awaitStatus(b, sub, id, store.RunCompleted)
		b.StartTimer()
	}
	b.StopTimer()
	if sub.Lagged.Load() {
		b.Fatal("the benchmark fell behind the engine's events; its waits cannot be trusted")
	}
	b.ReportMetric(percentileMs(lat, 0.50), "p50_ms")
	b.ReportMetric(percentileMs(lat, 0.99), "p99_ms")
}

// BenchmarkRunThroughput measures runs per second end to end: b.N runs started through
// the API (startRun, 8 clients at once) are each claimed by a worker, make one call to
// an instant model and complete. The clock runs from the first start to the last
// completion. The store's raw floor (claim + complete of a bare job row, see
// BenchmarkRawFloor) is measured in the same run, first, and the rate is reported as a
// share of it (floor_ratio), as DESIGN §13 states its pipeline targets.
func BenchmarkRunThroughput(b *testing.B) {
	for _, workers := range []int{4, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			rb := newRunBench(b, workers)
			floor := testkit.RawFloor(b, max(b.N, 2000))
			sub := rb.Engine.Hub().Subscribe("")
			defer sub.Close()
			ctx := context.Background()
			completed := func() int {
				_, n, err := rb.Store.ListRuns(ctx, rb.TeamID, store.RunFilter{Status: store.RunCompleted, Limit: 1})
				if err != nil {
					b.Fatal(err)
				}
				return n
			}

			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := rb.startRun("go"); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			// Completions are counted from the engine's events; the database is asked
			// now and then in case events were dropped, and has the last word.
			seen := map[string]bool{}
			check := time.NewTicker(20 * time.Millisecond)
			defer check.Stop()
			deadline := time.After(time.Duration(b.N)*10*time.Millisecond + 30*time.Second)
		wait:
			for len(seen) < b.N {
				select {
				case ev := <-sub.C:
					switch {
					case ev.Type != "status":
					case ev.Status == store.RunCompleted:
						seen[ev.RunID] = true
					case ev.Status == store.RunFailed:
						r, _ := rb.Store.RunByID(ctx, ev.RunID)
						b.Fatalf("run %s failed: %v", ev.RunID, r.Error)
					}
				case <-check.C:
					if b.Failed() { // a start failed: the count can never be reached
						b.FailNow()
					}
					if completed() == b.N {
						break wait
					}
				case <-deadline:
					b.Fatalf("%d of %d runs completed before the deadline", completed(), b.N)
				}
			}
			b.StopTimer()
			wg.Wait()
			if n := completed(); n != b.N {
				b.Fatalf("%d runs completed, want %d", n, b.N)
			}
			if calls := rb.fake.ChatCount(); calls != b.N {
				b.Fatalf("%d model calls for %d runs, want exactly one each", calls, b.N)
			}
			rate := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "runs/s")
			b.ReportMetric(floor, "floor_jobs/s")
			b.ReportMetric(rate/floor, "floor_ratio")
		})
	}
}

// percentileMs is the p-th percentile of ds in milliseconds (ds is sorted in place).
func percentileMs(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
}
