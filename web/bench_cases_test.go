package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/cli"
	"docket/internal/testkit"
	"docket/store"
)

// BenchmarkCreateCases measures createCases over real HTTP: batches of 100 cases (title,
// data, priority; with two labels each in the labels variant), each batch one
// authenticated request and one transaction (cases, full-text index, a created event per
// case, the audit row), from parallel clients (2 per GOMAXPROCS) on keep-alive
// connections. One iteration is one batch; the figure to read is cases/s (DESIGN §13:
// ≥20,000).
func BenchmarkCreateCases(b *testing.B) {
	for _, variant := range []struct {
		name   string
		labels bool
	}{{"plain", false}, {"labels", true}} {
		b.Run(variant.name, func(b *testing.B) {
			s := testkit.StartServer(b, testkit.Options{})
			db := openServerDB(b, s)
			queue := sqlInsertQueue(b, db, s.TeamID, "Bench")
			var batch []map[string]any
			for i := range 100 {
				c := map[string]any{"title": fmt.Sprintf("Invoice %d from ACME", i), "priority": []string{"none", "medium", "high"}[i%3],
					"data": fmt.Sprintf(`{"invoice": %d, "amount": %d, "currency": "EUR", "note": "check the totals and the VAT number"}`, i, i*7)}
				if variant.labels {
					c["labels"] = []any{map[string]any{"key": "vendor", "value": fmt.Sprintf("vendor-%d", i%10)}, map[string]any{"value": "inbox"}}
				}
				batch = append(batch, c)
			}
			body, err := json.Marshal(map[string]any{"cases": batch})
			if err != nil {
				b.Fatal(err)
			}
			url := s.URL + "/v2/queues/" + queue + "/cases"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()

			b.ResetTimer()
			start := time.Now()
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("createCases: status %d", resp.StatusCode)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*100)/elapsed.Seconds(), "cases/s")
			var n int
			if err := db.QueryRow("SELECT count(*) FROM cases WHERE queue_id = ?", queue).Scan(&n); err != nil || n != b.N*100 {
				b.Fatalf("%d cases in the queue after %d batches of 100 (err %v)", n, b.N, err)
			}
		})
	}
}

// BenchmarkCasePipeline measures the case pipeline end to end (DESIGN §13): b.N cases
// posted through createCases in batches of 100 to a queue an enabled case trigger
// consumes (concurrency 8, 8 workers), each dispatched to a run whose instant fake model
// calls complete_case and then gives its final answer. The clock runs from the first
// createCases request to the last case run completed. Reports cases/s; floor_jobs/s,
// testkit.RawFloor measured first in the same run, and floor_ratio = cases/s ÷ floor;
// and the dispatch latency, case created_at → its run's created_at, p50/p99 over all
// cases (read from the database after the drain, millisecond resolution).
func BenchmarkCasePipeline(b *testing.B) {
	b.Cleanup(cli.TuneGC()) // what docket serve runs with
	const concurrency = 8
	rb := newRunBench(b, concurrency)
	rb.fake.Default().ReplyFunc(func(req *api.ChatRequest) api.Message {
		if req.Messages[len(req.Messages)-1].Role == "tool" {
			return api.Message{Role: "assistant", Content: "Done with the case."}
		}
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": firstCaseID(req), "result": "handled"})}}
	})
	// runBench's Assignment lists its tools, which leaves out the case tools; this one
	// has the default set.
	body, err := json.Marshal(map[string]any{"name": "Caseworker", "build": map[string]any{"name": "v1", "config": testkit.SetupConfig("Work each case, then complete it.")}})
	if err != nil {
		b.Fatal(err)
	}
	if body, err = rb.post("/v2/teams/"+rb.TeamID+"/agents", string(body), http.StatusCreated); err != nil {
		b.Fatal(err)
	}
	var agent struct{ Agent struct{ ID string } }
	if err := json.Unmarshal(body, &agent); err != nil || agent.Agent.ID == "" {
		b.Fatalf("createAgent answered %s (%v)", body, err)
	}
	if body, err = rb.post("/v2/teams/"+rb.TeamID+"/queues", `{"name":"Bench"}`, http.StatusCreated); err != nil {
		b.Fatal(err)
	}
	var queue struct{ Queue struct{ ID string } }
	if err := json.Unmarshal(body, &queue); err != nil || queue.Queue.ID == "" {
		b.Fatalf("createQueue answered %s (%v)", body, err)
	}
	q := queue.Queue.ID
	if _, err := rb.post("/v2/agents/"+agent.Agent.ID+"/case-triggers",
		fmt.Sprintf(`{"case_queue_id":%q,"enabled":true,"concurrency":%d}`, q, concurrency), http.StatusCreated); err != nil {
		b.Fatal(err)
	}
	var batches []string
	for start := 0; start < b.N; start += 100 {
		var cs []string
		for i := start; i < min(b.N, start+100); i++ {
			cs = append(cs, fmt.Sprintf(`{"title":"Invoice %d from ACME","data":"{\"invoice\": %d, \"amount\": %d}"}`, i, i, i*7))
		}
		batches = append(batches, `{"cases":[`+strings.Join(cs, ",")+`]}`)
	}
	floor := testkit.RawFloor(b, max(b.N, 2000))
	db := openServerDB(b, rb.Server)
	ctx := context.Background()
	completed := func() (cases, runs, all int) {
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM cases WHERE queue_id = ? AND status = 'completed'),
			(SELECT count(*) FROM runs WHERE source = 'case' AND status = 'completed'), (SELECT count(*) FROM runs WHERE source = 'case')`, q).Scan(&cases, &runs, &all); err != nil {
			b.Fatal(err)
		}
		return cases, runs, all
	}
	sub := rb.Engine.Hub().Subscribe("")
	defer sub.Close()

	b.ResetTimer()
	created := make(chan error, 1)
	go func() {
		for _, batch := range batches {
			if _, err := rb.post("/v2/queues/"+q+"/cases", batch, http.StatusCreated); err != nil {
				created <- err
				return
			}
		}
		created <- nil
	}()
	// The engine's run events wake the benchmark; the database decides when the drain is
	// over (every case completed, and every case run, which completes after its case).
	// Runs are counted by id: a run that completes before the dispatcher has read it
	// back is announced as completed twice.
	drained := func() bool { c, r, _ := completed(); return c == b.N && r == b.N }
	seen := map[string]bool{}
	// The ticker is only a fallback for a lagging subscription; its count queries scan
	// the tables, and every 20 ms they took a twelfth of the CPU the benchmark measures.
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	deadline := time.After(time.Duration(b.N)*20*time.Millisecond + 30*time.Second)
wait:
	for {
		select {
		case err := <-created:
			if err != nil {
				b.Fatal(err)
			}
		case ev := <-sub.C:
			switch {
			case ev.Type != "status":
			case ev.Status == store.RunCompleted:
				seen[ev.RunID] = true
				if len(seen) >= b.N && drained() {
					break wait
				}
			case ev.Status == store.RunFailed:
				r, _ := rb.Store.RunByID(ctx, ev.RunID)
				b.Fatalf("run %s failed: %v", ev.RunID, r.Error)
			}
		case <-check.C:
			if drained() {
				break wait
			}
		case <-deadline:
			c, r, all := completed()
			b.Fatalf("before the deadline %d of %d cases completed, %d of %d case runs", c, b.N, r, all)
		}
	}
	b.StopTimer()
	if c, r, all := completed(); c != b.N || r != b.N || all != b.N {
		b.Fatalf("%d of %d cases completed, %d of %d case runs completed; want one completed run per case", c, b.N, r, all)
	}
	if calls := rb.fake.ChatCount(); calls != 2*b.N {
		b.Fatalf("%d model calls for %d cases, want two each (complete_case, final answer)", calls, b.N)
	}
	rows, err := db.Query("SELECT r.created_at - c.created_at FROM cases c JOIN runs r ON r.id = c.claimed_by_run_id WHERE c.queue_id = ?", q)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	lat := make([]time.Duration, 0, b.N)
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Duration(ms)*time.Millisecond)
	}
	if err := rows.Err(); err != nil || len(lat) != b.N {
		b.Fatalf("dispatch latencies for %d of %d cases (%v)", len(lat), b.N, err)
	}
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "cases/s")
	b.ReportMetric(floor, "floor_jobs/s")
	b.ReportMetric(rate/floor, "floor_ratio")
	b.ReportMetric(percentileMs(lat, 0.50), "dispatch_p50_ms")
	b.ReportMetric(percentileMs(lat, 0.99), "dispatch_p99_ms")
}
