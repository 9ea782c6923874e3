package web_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// casesFixture is the world plus direct SQL on the server's database file: queues and
// case triggers are inserted directly (their APIs are not this file's subject), and
// effects are checked with counts the API did not compute.
type casesFixture struct {
	*world
	db         *sql.DB
	queue      string // the default team's queue
	otherQueue string // the other team's queue
}

func newCasesFixture(t *testing.T, w *world) *casesFixture {
	t.Helper()
	f := &casesFixture{world: w, db: openServerDB(t, w.s)}
	f.queue = f.insertQueue(t, w.team, "Invoices")
	f.otherQueue = f.insertQueue(t, w.otherTeam, "Their invoices")
	return f
}

func (f *casesFixture) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func (f *casesFixture) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// openDB opens the server's database file for direct SQL beside the server.
func openServerDB(t testing.TB, s *testkit.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.Store.Path()+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// insertQueue adds a queue to team with a direct insert.
func sqlInsertQueue(t testing.TB, db *sql.DB, team, name string) string {
	t.Helper()
	id, now := store.NewID(), time.Now().UnixMilli()
	if _, err := db.Exec("INSERT INTO queues(id, team_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)", id, team, name, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *casesFixture) insertQueue(t testing.TB, team, name string) string {
	t.Helper()
	return sqlInsertQueue(t, f.db, team, name)
}

// insertTrigger binds agent to queue with a direct insert.
func (f *casesFixture) insertTrigger(t testing.TB, team, agent, queue string, enabled bool) {
	t.Helper()
	now := time.Now().UnixMilli()
	f.exec(t, "INSERT INTO case_triggers(id, team_id, agent_id, case_queue_id, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		store.NewID(), team, agent, queue, enabled, now, now)
}

// idleConsumer is an Assignment without a live setup, for case triggers: the queue has
// an enabled consumer, yet no run can start, so nothing changes the cases behind a test's
// back between a call and the checks after it.
func (f *casesFixture) idleConsumer(t *testing.T, name string) string {
	t.Helper()
	id, _ := createAgent(t, f.s, f.team, f.owner, name, false)
	return id
}

// hold marks a case as held by a run, as the dispatcher's claim would. The run id names
// no run: what matters here is that one holds the case.
func (f *casesFixture) hold(t testing.TB, caseID string) string {
	t.Helper()
	run := store.NewID()
	f.exec(t, "UPDATE cases SET claimed_by_run_id = ?, claimed_at = ? WHERE id = ?", run, time.Now().UnixMilli(), caseID)
	return run
}

// create posts cases to queue and returns them as the API answered.
func (f *casesFixture) create(t testing.TB, key, queue string, cases ...map[string]any) []map[string]any {
	t.Helper()
	r := f.s.Do(t, "POST", "/v2/queues/"+queue+"/cases", key, map[string]any{"cases": cases})
	if r.Status != 201 {
		t.Fatalf("createCases: %d %s", r.Status, r.Body)
	}
	var out struct {
		AddedCases []map[string]any `json:"added_cases"`
	}
	r.Decode(t, &out)
	return out.AddedCases
}

// createN posts n cases titled prefix 0 … prefix n-1 and returns their ids.
func (f *casesFixture) createN(t testing.TB, queue, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 100 {
		var batch []map[string]any
		for i := start; i < min(n, start+100); i++ {
			batch = append(batch, map[string]any{"title": fmt.Sprintf("%s %d", prefix, i)})
		}
		for _, c := range f.create(t, f.owner, queue, batch...) {
			ids = append(ids, c["id"].(string))
		}
	}
	return ids
}

func (f *casesFixture) cases(t testing.TB, queue string) int {
	t.Helper()
	return f.count(t, "SELECT count(*) FROM cases WHERE queue_id = ?", queue)
}

// startFixture is newCasesFixture on a fresh world without a model.
func startFixture(t *testing.T) *casesFixture {
	t.Helper()
	return newCasesFixture(t, newWorld(t, testkit.Options{}))
}
