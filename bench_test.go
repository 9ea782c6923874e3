package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"docket/store"
)

// startupAgents is how many Assignments (each with a live Setup) the data dir holds
// before BenchmarkStartup times anything.
const startupAgents = 5000

// BenchmarkStartup measures `docket serve` on an existing data dir that holds data: the
// time from exec to the first 200 from /healthz (startup_ms), and the process's resident
// memory after it has idled for a second (idle_rss_MB, sampled on the first start).
func BenchmarkStartup(b *testing.B) {
	data := b.TempDir()
	// The first start is a real first start (bootstrap included); the data is added after.
	startServe(b, data, nil).stop(b)
	fillAgents(b, data, startupAgents)
	info, err := os.Stat(filepath.Join(data, store.DBFile))
	if err != nil {
		b.Fatal(err)
	}

	var total time.Duration
	var rssKB int64
	starts := 0
	for b.Loop() {
		begin := time.Now()
		s := launch(b, data, nil)
		b.Cleanup(s.kill)
		if err := s.waitURL(15 * time.Second); err != nil {
			b.Fatal(err)
		}
		if status, body := s.call(b, "GET", "/healthz", "", nil); status != 200 {
			b.Fatalf("/healthz = %d: %s", status, body)
		}
		total += time.Since(begin)
		starts++

		b.StopTimer()
		if rssKB == 0 {
			time.Sleep(time.Second) // let it settle: the figure is the idle footprint
			rssKB = vmRSS(b, s.cmd.Process.Pid)
		}
		s.stop(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(starts), "startup_ms")
	b.ReportMetric(float64(rssKB)/1024, "idle_rss_MB")
	b.ReportMetric(float64(info.Size())/(1<<20), "db_MB")
}

// fillAgents adds n Assignments, each with a live Setup, through the store (with their
// audit entries), so a start has a database of some size to open.
func fillAgents(b *testing.B, data string, n int) {
	b.Helper()
	ctx := context.Background()
	d, err := store.OpenDataDir(data)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, d.DBPath(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	team, err := st.FirstTeam(ctx)
	if err != nil {
		b.Fatal(err)
	}
	owner, err := st.TeamOwner(ctx, team.ID)
	if err != nil {
		b.Fatal(err)
	}
	a := store.Actor{TeamID: team.ID, UserID: owner.ID, Channel: "cli", Operation: "createAgent"}
	for i := range n {
		cfg, _ := json.Marshal(map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}},
			"input":  fmt.Sprintf("You are assignment %d. Read the case, draft a reply, and ask for approval before sending it.", i),
		}})
		na := store.NewAgent{Name: fmt.Sprintf("Assignment %05d", i), Description: "benchmark data",
			Build: &store.NewBuild{Name: "v1", Config: cfg}}
		if _, _, err := st.CreateAgent(ctx, a, na); err != nil {
			b.Fatal(err)
		}
	}
}

// vmRSS reads a process's resident set size in kB from /proc/<pid>/status.
func vmRSS(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
