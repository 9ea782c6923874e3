package web_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"docket/files"
	"docket/internal/testkit"
	"docket/store"
)

// benchIntake starts a server with the watcher and one file-mode intake queue.
func benchIntake(b *testing.B, debounce time.Duration) (s *testkit.Server, queue, dir string) {
	b.Helper()
	s = testkit.StartServer(b, testkit.Options{Intake: func(c *files.IntakeConfig) { c.Debounce = debounce }})
	r := s.Do(b, "POST", "/v2/teams/"+s.TeamID+"/queues", s.OwnerKey, map[string]any{"name": "Bench", "intake": map[string]any{}})
	if r.Status != 201 {
		b.Fatalf("createQueue: %d %s", r.Status, r.Body)
	}
	var out struct {
		Queue struct {
			ID     string `json:"id"`
			Intake struct {
				Dir string `json:"dir"`
			} `json:"intake"`
		} `json:"queue"`
	}
	r.Decode(b, &out)
	return s, out.Queue.ID, out.Queue.Intake.Dir
}

func caseTotal(b *testing.B, s *testkit.Server, queue string) int {
	q, err := s.Store.GetQueue(context.Background(), s.TeamID, queue)
	if err != nil {
		b.Fatal(err)
	}
	return q.Counts.Total
}

// BenchmarkIntakeThroughput drops b.N small files in a burst (4 writers, each file via
// .part + rename) and reports files/s from the first drop to the last case committed.
func BenchmarkIntakeThroughput(b *testing.B) {
	s, queue, dir := benchIntake(b, 50*time.Millisecond)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < b.N; i += 4 {
				drop(b, dir, fmt.Sprintf("f%07d.txt", i), fmt.Sprintf("file %d\n", i))
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for caseTotal(b, s, queue) < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d files ingested after 5 min", caseTotal(b, s, queue), b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "files/s")

}

// BenchmarkIntakeLatency drops files one every 20 ms and reports drop → case committed,
// p50 and p99: with the default 500 ms debounce (most of the latency: a file is read only
// once it has been quiet that long), and with 50 ms to show what the pipeline adds.
func BenchmarkIntakeLatency(b *testing.B) {
	for _, d := range []time.Duration{500 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("debounce="+d.String(), func(b *testing.B) { benchLatency(b, d) })
	}
}

func benchLatency(b *testing.B, debounce time.Duration) {
	s, queue, dir := benchIntake(b, debounce)
	dropped := make([]time.Time, b.N)
	b.ResetTimer()
	for i := range b.N {
		dropped[i] = time.Now()
		drop(b, dir, fmt.Sprintf("l%07d.txt", i), fmt.Sprintf("latency %d\n", i))
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(time.Minute)
	for caseTotal(b, s, queue) < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d files ingested after 1 min", caseTotal(b, s, queue), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	page, err := s.Store.ListCases(context.Background(), s.TeamID, queue, store.CaseQuery{Limit: b.N, Asc: true})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	for _, c := range page.Cases {
		var i int
		fmt.Sscanf(c.Title, "l%07d.txt", &i)
		lat = append(lat, c.CreatedAt.Sub(dropped[i]))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
