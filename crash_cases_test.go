package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"docket/internal/testkit"
)

// caseInMessage finds the case id in the first message of a run started on a case.
var caseInMessage = regexp.MustCompile(`Case ([0-9a-f-]{36}) from queue`)

// TestCrashMidDrainCompletesEachCaseOnce is the cases crash test with the real binary: a
// trigger with concurrency 8 drains 1,000 cases through a model that completes each one;
// once a few hundred are done the server is killed with SIGKILL while cases are in
// progress, and restarted on the same data dir. Every case must end completed exactly
// once: decided by one completed run, with one completed event, none lost, none left in
// progress; the runs cut off by the kill resume and keep their case (no second run).
func TestCrashMidDrainCompletesEachCaseOnce(t *testing.T) {
	t.Parallel()
	const total, concurrency = 1000, 8
	fake := testkit.NewFakeOllama(t)
	fake.SetRecording(false)
	// A little time per streamed chunk keeps model calls in flight when the kill comes.
	fake.SetTokenDelay(time.Millisecond)
	fake.Default().ReplyFunc(func(req *api.ChatRequest) api.Message {
		if req.Messages[len(req.Messages)-1].Role == "tool" {
			return api.Message{Role: "assistant", Content: "Done with the case."}
		}
		var id string
		for _, m := range req.Messages {
			if g := caseInMessage.FindStringSubmatch(m.Content); m.Role == "user" && g != nil {
				id = g[1]
				break
			}
		}
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": id, "result": "handled"})}}
	})

	data := t.TempDir()
	env := []string{"OLLAMA_HOST=" + fake.URL}
	// The test polls the queue closely; the per-key rate limit is not what it is about.
	args := []string{"--workers", fmt.Sprint(concurrency), "--rate-limit", "-1"}
	s := startServe(t, data, env, args...)
	key := createKey(t, data)
	agent := s.createAgent(t, key, "Caseworker")
	var queue struct{ Queue struct{ ID string } }
	s.apiJSON(t, "POST", "/v2/teams/"+key.TeamID+"/queues", key.Key, map[string]any{"name": "Inbound"}, http.StatusCreated, &queue)
	q := queue.Queue.ID
	s.apiJSON(t, "POST", "/v2/agents/"+agent+"/case-triggers", key.Key,
		map[string]any{"case_queue_id": q, "enabled": true, "concurrency": concurrency}, http.StatusCreated, nil)
	for start := 0; start < total; start += 100 {
		batch := make([]map[string]any, 0, 100)
		for i := start; i < start+100; i++ {
			batch = append(batch, map[string]any{"title": fmt.Sprintf("Invoice %d", i), "data": fmt.Sprintf(`{"n":%d}`, i)})
		}
		s.apiJSON(t, "POST", "/v2/queues/"+q+"/cases", key.Key, map[string]any{"cases": batch}, http.StatusCreated, nil)
	}

	completed := func(s *server) int {
		var page struct{ Total int }
		s.apiJSON(t, "GET", "/v2/queues/"+q+"/cases?limit=1&display_status=completed", key.Key, nil, http.StatusOK, &page)
		return page.Total
	}
	eventually(t, 20*time.Second, "a few hundred cases to complete", func() (bool, string) {
		n := completed(s)
		return n >= 300, fmt.Sprintf("%d completed", n)
	})
	s.kill()

	// What the kill cut off: the cases claimed by a run that had not decided them.
	db := openDB(t, filepath.Join(data, "docket.db"))
	heldBy := map[string]string{} // case id → the run that held it at the kill
	rows, err := db.Query("SELECT id, claimed_by_run_id FROM cases WHERE queue_id = ? AND status = 'pending' AND claimed_by_run_id IS NOT NULL", q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, r string
		if err := rows.Scan(&c, &r); err != nil {
			t.Fatal(err)
		}
		heldBy[c] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var doneAtKill int
	if err := db.QueryRow("SELECT count(*) FROM cases WHERE queue_id = ? AND status = 'completed'", q).Scan(&doneAtKill); err != nil {
		t.Fatal(err)
	}
	if len(heldBy) == 0 || doneAtKill >= total {
		t.Fatalf("the kill came with %d cases in progress and %d completed: not mid-drain", len(heldBy), doneAtKill)
	}
	t.Logf("killed with %d cases completed and %d in progress", doneAtKill, len(heldBy))

	s = startServe(t, data, env, args...)
	// A run decides its case with complete_case and then still gives its final answer, so
	// the drain is over when every case and every case run is completed; a stop before
	// that would leave runs to resume, not a finished drain to check.
	runs := func(s *server, status string) int {
		var page struct{ Total int }
		s.apiJSON(t, "GET", "/v2/teams/"+key.TeamID+"/runs?limit=1&source=case"+status, key.Key, nil, http.StatusOK, &page)
		return page.Total
	}
	eventually(t, 30*time.Second, "all cases and their runs to complete after the restart", func() (bool, string) {
		n, all, done := completed(s), runs(s, ""), runs(s, "&status=completed")
		return n == total && done == all, fmt.Sprintf("%d of %d cases completed; %d of %d case runs completed", n, total, done, all)
	})
	s.stop(t)

	// Every case completed, decided by a completed run of its own, none left in progress.
	var casesDone, decidedByRun, inProgress int
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE c.status = 'completed'),
		count(*) FILTER (WHERE c.status = 'completed' AND r.status = 'completed' AND r.case_id = c.id),
		count(*) FILTER (WHERE c.status = 'pending' AND c.claimed_by_run_id IS NOT NULL)
		FROM cases c LEFT JOIN runs r ON r.id = c.claimed_by_run_id WHERE c.queue_id = ?`, q).Scan(&casesDone, &decidedByRun, &inProgress); err != nil {
		t.Fatal(err)
	}
	if casesDone != total || decidedByRun != total || inProgress != 0 {
		t.Errorf("after the restart: %d of %d cases completed, %d decided by the completed run that holds them, %d still in progress",
			casesDone, total, decidedByRun, inProgress)
	}
	// Exactly once: one run per case (the fake never fails, so only the kill could cause a
	// second), one completed run and one completed event per case.
	for _, check := range []struct{ what, query string }{
		{"more than one run", `SELECT case_id, count(*), group_concat(id || ' ' || status, ', ') FROM runs WHERE case_id IN (SELECT id FROM cases WHERE queue_id = ?)
			GROUP BY case_id HAVING count(*) > 1`},
		{"more than one completed run", `SELECT case_id, count(*), group_concat(id, ', ') FROM runs WHERE case_id IN (SELECT id FROM cases WHERE queue_id = ?)
			AND status = 'completed' GROUP BY case_id HAVING count(*) > 1`},
		{"other than one completed event", `SELECT c.id, count(e.id), coalesce(group_concat(e.run_id, ', '), '') FROM cases c
			LEFT JOIN case_events e ON e.case_id = c.id AND e.type = 'completed' WHERE c.queue_id = ? GROUP BY c.id HAVING count(e.id) <> 1`},
	} {
		rows, err := db.Query(check.query, q)
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for rows.Next() {
			var c, detail string
			var n int
			if err := rows.Scan(&c, &n, &detail); err != nil {
				t.Fatal(err)
			}
			bad = append(bad, fmt.Sprintf("case %s: %d (%s)", c, n, detail))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if len(bad) > 0 {
			t.Errorf("%d cases have %s: %s", len(bad), check.what, strings.Join(bad[:min(len(bad), 5)], "; "))
		}
	}
	// The runs the kill cut off resumed and decided their own case.
	for c, run := range heldBy {
		var now, status string
		if err := db.QueryRow("SELECT c.claimed_by_run_id, r.status FROM cases c JOIN runs r ON r.id = c.claimed_by_run_id WHERE c.id = ?", c).Scan(&now, &status); err != nil {
			t.Fatalf("case %s: %v", c, err)
		}
		if now != run || status != "completed" {
			t.Errorf("case %s was held by run %s at the kill; after the restart it is held by run %s (%s), want the same run, completed", c, run, now, status)
		}
	}
	if r := docket(t, "audit", "verify", "--data", data); r.code != 0 {
		t.Fatalf("audit verify after kill -9 and recovery: exit %d: %s", r.code, r.stderr)
	}
}
