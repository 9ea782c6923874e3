package web_test

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// queueOps are the queue and label operations, as the reference defines them.
var queueOps = map[string][2]string{
	"listQueues":       {"GET", "/v2/teams/{teamId}/queues"},
	"createQueue":      {"POST", "/v2/teams/{teamId}/queues"},
	"getQueue":         {"GET", "/v2/queues/{queue_id}"},
	"updateQueue":      {"PATCH", "/v2/queues/{queue_id}"},
	"deleteQueue":      {"DELETE", "/v2/queues/{queue_id}"},
	"listQueueAgents":  {"GET", "/v2/queues/{queue_id}/agents"},
	"listQueueLabels":  {"GET", "/v2/queues/{queue_id}/labels"},
	"createQueueLabel": {"POST", "/v2/queues/{queue_id}/labels"},
	"updateQueueLabel": {"PATCH", "/v2/queues/{queue_id}/labels/{label_id}"},
	"deleteQueueLabel": {"DELETE", "/v2/queues/{queue_id}/labels/{label_id}"},
	"listCaseLabels":   {"GET", "/v2/queues/{queue_id}/cases/{case_id}/labels"},
	"assignCaseLabels": {"POST", "/v2/queues/{queue_id}/cases/{case_id}/labels"},
	"unlinkCaseLabels": {"POST", "/v2/queues/{queue_id}/cases/{case_id}/labels/unlink"},
}

// TestQueueResponseFieldsCoverReference: the published schema and a real response of
// every queue and label operation carry each field the reference requires.
func TestQueueResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	w := newWorld(t, testkit.Options{})
	s := w.s
	doc := fetchOpenAPI(t, s)
	queue := apiCreateQueue(t, s, w.team, w.member, "Shape")
	agent, _ := createAgent(t, s, w.team, w.owner, "Consumer", true)
	seedTrigger(t, s, w.team, agent, queue, 2, true)
	kase := seedCase(t, s, w.team, queue, seededCase{})
	var label string
	cases := []responseCase{
		{"createQueue", "201", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", "/v2/teams/"+w.team+"/queues", w.member, map[string]any{"name": "Shape 2"})
		}, 2},
		{"listQueues", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/teams/"+w.team+"/queues", w.viewer, nil)
		}, 2},
		{"getQueue", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/queues/"+queue, w.viewer, nil)
		}, 2},
		{"updateQueue", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "PATCH", "/v2/queues/"+queue, w.member, map[string]any{"description": "d"})
		}, 2},
		{"listQueueAgents", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/queues/"+queue+"/agents", w.viewer, nil)
		}, 2},
		{"createQueueLabel", "200", func(t *testing.T) *testkit.Response {
			r := s.Do(t, "POST", "/v2/queues/"+queue+"/labels", w.member, map[string]any{"key": "k", "value": "v"})
			label, _ = field(t, r.JSON(t), "label", "id").(string)
			return r
		}, 2},
		{"listQueueLabels", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/queues/"+queue+"/labels", w.viewer, nil)
		}, 2},
		{"updateQueueLabel", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "PATCH", "/v2/queues/"+queue+"/labels/"+label, w.member, map[string]any{"value": "v2"})
		}, 2},
		{"assignCaseLabels", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", "/v2/queues/"+queue+"/cases/"+kase+"/labels", w.member, map[string]any{"labels": []any{map[string]any{"key": "k", "value": "v2"}}})
		}, 2},
		{"listCaseLabels", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/queues/"+queue+"/cases/"+kase+"/labels", w.viewer, nil)
		}, 2},
		{"unlinkCaseLabels", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", "/v2/queues/"+queue+"/cases/"+kase+"/labels/unlink", w.member, map[string]any{"label_ids": []string{label}})
		}, 1},
		{"deleteQueueLabel", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "DELETE", "/v2/queues/"+queue+"/labels/"+label, w.member, nil)
		}, 1},
		{"deleteQueue", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "DELETE", "/v2/queues/"+queue, w.member, nil)
		}, 1},
	}
	coverReference(t, ref, doc, cases)
}

// apiCreateQueue creates a queue over the API.
func apiCreateQueue(t *testing.T, s *testkit.Server, team, key, name string) string {
	t.Helper()
	r := s.Do(t, "POST", "/v2/teams/"+team+"/queues", key, map[string]any{"name": name})
	if r.Status != 201 {
		t.Fatalf("create queue %q: status %d: %s", name, r.Status, r.Body)
	}
	return field(t, r.JSON(t), "queue", "id").(string)
}

// seedDB is a second connection to the server's database file, for writing rows that
// other operations (or only runs) produce. It closes before the server does.
func seedDB(t *testing.T, s *testkit.Server) *sql.DB {
	t.Helper()
	if db, ok := seedDBs.Load(s); ok {
		return db.(*sql.DB)
	}
	db, err := sql.Open("sqlite", "file:"+s.Store.Path()+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	seedDBs.Store(s, db)
	t.Cleanup(func() {
		seedDBs.Delete(s)
		db.Close()
	})
	return db
}

var seedDBs sync.Map // *testkit.Server → *sql.DB

// seededCase is a case written straight into the database: createCases belongs to the
// cases API, and held or postponed cases are states only the dispatcher makes.
type seededCase struct {
	title     string
	status    string // default pending
	runID     string // the run holding it
	agentID   string // the agent whose run holds it
	postponed time.Duration
}

func seedCase(t *testing.T, s *testkit.Server, team, queue string, c seededCase) string {
	t.Helper()
	if c.status == "" {
		c.status = "pending"
	}
	if c.title == "" {
		c.title = "case " + randomID()[:8]
	}
	id, now := store.NewID(), time.Now().UnixMilli()
	var postponed, run, agent, claimed any
	if c.postponed != 0 {
		postponed = now + c.postponed.Milliseconds()
	}
	if c.runID != "" {
		run, agent, claimed = c.runID, c.agentID, now
	}
	_, err := seedDB(t, s).Exec(`INSERT INTO cases(id, queue_id, team_id, title, data, status, run_after, postponed_to, claimed_by_run_id,
		claimed_by_agent_id, claimed_at, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, queue, team, c.title, c.status, now, postponed, run, agent, claimed, now, now)
	if err != nil {
		t.Fatalf("insert case: %v", err)
	}
	return id
}

// seedTrigger binds agent to queue as the case triggers API would.
func seedTrigger(t *testing.T, s *testkit.Server, team, agent, queue string, concurrency int, enabled bool) string {
	t.Helper()
	id, now := store.NewID(), time.Now().UnixMilli()
	_, err := seedDB(t, s).Exec(`INSERT INTO case_triggers(id, team_id, agent_id, case_queue_id, enabled, concurrency, max_attempts, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 3, ?, ?)`, id, team, agent, queue, enabled, concurrency, now, now)
	if err != nil {
		t.Fatalf("insert case trigger: %v", err)
	}
	return id
}

func countRows(t *testing.T, s *testkit.Server, query string, args ...any) int {
	t.Helper()
	var n int
	if err := seedDB(t, s).QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func queueBody(t *testing.T, r *testkit.Response) map[string]any {
	t.Helper()
	m := r.JSON(t)
	wantKeys(t, "queue body", m, "queue")
	q := m["queue"].(map[string]any)
	wantKeys(t, "queue", q, "id", "name", "description", "folder_id", "automation_id", "team_id", "created_at", "has_approvals",
		"updated_at", "created_by", "case_counts", "intake")
	return q
}

func TestListQueues(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	auto := randomID()
	b := apiCreateQueue(t, s, w.team, w.member, "beta")
	r := s.Do(t, "POST", "/v2/teams/"+w.team+"/queues", w.member, map[string]any{"name": "Alpha", "automation_id": auto})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	a := field(t, r.JSON(t), "queue", "id").(string)
	apiCreateQueue(t, s, w.team, w.member, "gamma")
	apiCreateQueue(t, s, w.otherTeam, w.otherKey, "theirs")
	seedCase(t, s, w.team, b, seededCase{})
	seedCase(t, s, w.team, b, seededCase{status: "completed"})
	seedCase(t, s, w.team, b, seededCase{postponed: time.Hour})
	base := "/v2/teams/" + w.team + "/queues"
	scenarios := []scenario{
		{name: "200 by name with case counts, envelope key for key", method: "GET", path: base, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listQueues body", m, "queues", "total", "limit", "offset")
				if m["total"] != float64(3) || m["limit"] != float64(250) || m["offset"] != float64(0) {
					t.Fatalf("total/limit/offset = %v/%v/%v, want 3/250/0 (team B's queue must not count)", m["total"], m["limit"], m["offset"])
				}
				qs := m["queues"].([]any)
				var names []string
				for _, q := range qs {
					names = append(names, q.(map[string]any)["name"].(string))
				}
				if strings.Join(names, ",") != "Alpha,beta,gamma" {
					t.Fatalf("names = %v, want Alpha,beta,gamma", names)
				}
				beta := qs[1].(map[string]any)
				if beta["id"] != b || beta["team_id"] != w.team || beta["has_approvals"] != false || beta["description"] != nil {
					t.Fatalf("beta = %v", beta)
				}
				counts := beta["case_counts"].(map[string]any)
				want := map[string]any{"pending": 1.0, "in_progress": 0.0, "needs_input": 0.0, "postponed": 1.0, "completed": 1.0, "failed": 0.0, "total": 3.0}
				for k, v := range want {
					if counts[k] != v {
						t.Fatalf("case_counts = %v, want %v", counts, want)
					}
				}
			}},
		{name: "200 a page", method: "GET", path: base + "?limit=1&offset=1", key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				qs := m["queues"].([]any)
				if len(qs) != 1 || qs[0].(map[string]any)["id"] != b || m["total"] != float64(3) || m["limit"] != float64(1) || m["offset"] != float64(1) {
					t.Fatalf("page = %s", r.Body)
				}
			}},
		{name: "200 filtered by automation", method: "GET", path: base + "?automation_id=" + auto, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				qs := m["queues"].([]any)
				if len(qs) != 1 || qs[0].(map[string]any)["id"] != a || qs[0].(map[string]any)["automation_id"] != auto || m["total"] != float64(1) {
					t.Fatalf("filtered = %s", r.Body)
				}
			}},
		badRequest("400 limit 0", "GET", base+"?limit=0", w.viewer, nil, "limit"),
		badRequest("400 limit over 250", "GET", base+"?limit=251", w.viewer, nil, "limit"),
		badRequest("400 negative offset", "GET", base+"?offset=-1", w.viewer, nil, "offset"),
		badRequest("400 malformed automation_id", "GET", base+"?automation_id=x", w.viewer, nil, "automation_id"),
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/queues", w.owner, nil),
		notFound("404 random team", "GET", "/v2/teams/"+randomID()+"/queues", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestCreateQueue(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	folder := createFolder(t, s, w.team, w.owner, "Finance", nil)
	base := "/v2/teams/" + w.team + "/queues"
	auto := randomID()
	scenarios := []scenario{
		{name: "201 with every field", method: "POST", path: base, key: w.member,
			body: map[string]any{"name": " Invoices ", "description": "Supplier invoices", "folder_id": folder, "automation_id": auto}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				q := queueBody(t, r)
				id := q["id"].(string)
				if q["name"] != "Invoices" || q["description"] != "Supplier invoices" || q["folder_id"] != folder || q["automation_id"] != auto ||
					q["team_id"] != w.team || q["has_approvals"] != false || q["case_counts"].(map[string]any)["total"] != float64(0) {
					t.Fatalf("queue = %v", q)
				}
				if field(t, q, "created_by", "id") == nil {
					t.Fatalf("created_by = %v", q["created_by"])
				}
				got, err := s.Store.GetQueue(t.Context(), w.team, id)
				if err != nil || got.Name != "Invoices" {
					t.Fatalf("stored = %+v, %v", got, err)
				}
				wantAudited(t, s, w.team, "createQueue", id, keyID(t, s, w.member), "success")
			}},
		{name: "201 with only a name; null description", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "Claims", "description": nil}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				if q := queueBody(t, r); q["description"] != nil || q["folder_id"] != nil || q["automation_id"] != nil {
					t.Fatalf("queue = %v", q)
				}
			}},
		{name: "409 the name is taken in the team", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "Invoices"}, wantStatus: 409,
			wantError: "conflict", wantContains: []string{`"Invoices"`}},
		badRequest("400 name missing", "POST", base, w.owner, map[string]any{}, "name"),
		badRequest("400 name empty", "POST", base, w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 name blank", "POST", base, w.owner, map[string]any{"name": "   "}, "name"),
		badRequest("400 name too long", "POST", base, w.owner, map[string]any{"name": strings.Repeat("n", 101)}, "name"),
		badRequest("400 description too long", "POST", base, w.owner, map[string]any{"name": "x", "description": strings.Repeat("d", 501)}, "description"),
		badRequest("400 folder of another team", "POST", base, w.owner, map[string]any{"name": "x", "folder_id": w.otherFolder}, "folder_id"),
		badRequest("400 malformed folder_id", "POST", base, w.owner, map[string]any{"name": "x", "folder_id": "f1"}, "folder_id"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"name": "x", "colour": "red"}, "colour"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"name": "x"}, "createQueue"),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/queues", w.owner, map[string]any{"name": "x"}),
		notFound("404 random team", "POST", "/v2/teams/"+randomID()+"/queues", w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("the same name is free in another team", func(t *testing.T) {
		apiCreateQueue(t, s, w.otherTeam, w.otherKey, "Invoices")
		if qs, total, _ := s.Store.ListQueues(t.Context(), w.team, store.QueueFilter{Limit: 10}); total != 2 || len(qs) != 2 {
			t.Fatalf("team A's queues = %d, want 2 (refused creates made none)", total)
		}
	})
}

func TestGetQueue(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	queue := apiCreateQueue(t, s, w.team, w.member, "Mine")
	theirs := apiCreateQueue(t, s, w.otherTeam, w.otherKey, "Theirs")
	path := "/v2/queues/" + queue
	scenarios := []scenario{
		{name: "200", method: "GET", path: path, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if q := queueBody(t, r); q["id"] != queue || q["name"] != "Mine" {
					t.Fatalf("queue = %v", q)
				}
			}},
		badRequest("400 malformed id", "GET", "/v2/queues/q1", w.viewer, nil, "queue_id"),
		notFound("404 another team's queue", "GET", "/v2/queues/"+theirs, w.owner, nil),
		notFound("404 random id", "GET", "/v2/queues/"+randomID(), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
}

// TestQueueCaseCounts: a queue counts its cases by display status, and has_approvals
// says a run working on one of them waits for a person.
func TestQueueCaseCounts(t *testing.T) {
	j := newJobs(t, nil)
	s := j.s
	j.fake.On(testkit.LastUserContains("approve")).CallTool("request_human_approval", map[string]any{"title": "t", "description": "d"})
	agent := j.assignment(t, "x", nil)
	waiting := j.start(t, j.member, agent, "approve this")
	j.waitRun(t, waiting, "waiting")
	j.fake.Block()
	t.Cleanup(j.fake.Release)
	running := j.start(t, j.member, agent, "think")
	waitModelHeld(t, j.fake)

	queue := apiCreateQueue(t, s, j.team, j.member, "Counted")
	seedCase(t, s, j.team, queue, seededCase{})
	seedCase(t, s, j.team, queue, seededCase{})
	seedCase(t, s, j.team, queue, seededCase{postponed: time.Hour})
	seedCase(t, s, j.team, queue, seededCase{postponed: -time.Hour}) // due again: pending
	seedCase(t, s, j.team, queue, seededCase{status: "completed"})
	seedCase(t, s, j.team, queue, seededCase{status: "failed"})
	seedCase(t, s, j.team, queue, seededCase{runID: running, agentID: agent})
	seedCase(t, s, j.team, queue, seededCase{runID: waiting, agentID: agent})

	q := queueBody(t, s.Do(t, "GET", "/v2/queues/"+queue, j.viewer, nil))
	want := map[string]any{"pending": 3.0, "in_progress": 1.0, "needs_input": 1.0, "postponed": 1.0, "completed": 1.0, "failed": 1.0, "total": 8.0}
	got := q["case_counts"].(map[string]any)
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("case_counts = %v, want %v", got, want)
		}
	}
	if q["has_approvals"] != true {
		t.Fatalf("has_approvals = %v, want true while a case's run waits at a gate", q["has_approvals"])
	}
}

// waitModelHeld waits until the fake model holds a request (Block).
func waitModelHeld(t *testing.T, f *testkit.FakeOllama) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.Held() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no model call arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUpdateQueue(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	folder := createFolder(t, s, w.team, w.owner, "Ops", nil)
	queue := apiCreateQueue(t, s, w.team, w.member, "Inbox")
	apiCreateQueue(t, s, w.team, w.member, "Taken")
	theirs := apiCreateQueue(t, s, w.otherTeam, w.otherKey, "Theirs")
	path := "/v2/queues/" + queue
	stored := func(t *testing.T) store.Queue {
		t.Helper()
		q, err := s.Store.GetQueue(t.Context(), w.team, queue)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	scenarios := []scenario{
		{name: "200 renames, describes and files it", method: "PATCH", path: path, key: w.member,
			body: map[string]any{"name": "Triage", "description": "Incoming mail", "folder_id": folder}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				q := queueBody(t, r)
				if q["name"] != "Triage" || q["description"] != "Incoming mail" || q["folder_id"] != folder {
					t.Fatalf("queue = %v", q)
				}
				if got := stored(t); got.Name != "Triage" || got.Description != "Incoming mail" || got.FolderID == nil || *got.FolderID != folder {
					t.Fatalf("stored = %+v", got)
				}
				wantAudited(t, s, w.team, "updateQueue", queue, keyID(t, s, w.member), "success")
			}},
		{name: "200 an empty body changes nothing", method: "PATCH", path: path, key: w.member, body: map[string]any{}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := stored(t); got.Name != "Triage" || got.Description != "Incoming mail" || got.FolderID == nil {
					t.Fatalf("stored = %+v", got)
				}
			}},
		{name: "200 null clears description and folder", method: "PATCH", path: path, key: w.member, body: `{"description":null,"folder_id":null}`, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if q := queueBody(t, r); q["description"] != nil || q["folder_id"] != nil || q["name"] != "Triage" {
					t.Fatalf("queue = %v", q)
				}
			}},
		{name: "200 keeping its own name", method: "PATCH", path: path, key: w.member, body: map[string]any{"name": "Triage"}, wantStatus: 200},
		{name: "409 another queue's name", method: "PATCH", path: path, key: w.member, body: map[string]any{"name": "Taken"}, wantStatus: 409,
			wantError: "conflict", wantContains: []string{`"Taken"`},
			after: func(t *testing.T, r *testkit.Response) {
				if got := stored(t); got.Name != "Triage" {
					t.Fatalf("name = %q after a refused rename", got.Name)
				}
			}},
		badRequest("400 name empty", "PATCH", path, w.member, map[string]any{"name": ""}, "name"),
		badRequest("400 description too long", "PATCH", path, w.member, map[string]any{"description": strings.Repeat("d", 501)}, "description"),
		badRequest("400 random folder", "PATCH", path, w.member, map[string]any{"folder_id": randomID()}, "folder_id"),
		badRequest("400 automation_id is not patchable", "PATCH", path, w.member, map[string]any{"automation_id": randomID()}, "automation_id"),
		badRequest("400 malformed id", "PATCH", "/v2/queues/q1", w.member, map[string]any{"name": "x"}, "queue_id"),
		forbidden("403 viewer", "PATCH", path, w.viewer, map[string]any{"name": "x"}, "updateQueue"),
		notFound("404 another team's queue", "PATCH", "/v2/queues/"+theirs, w.owner, map[string]any{"name": "x"}),
		notFound("404 random id", "PATCH", "/v2/queues/"+randomID(), w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("a deleted folder reads as null", func(t *testing.T) {
		gone := createFolder(t, s, w.team, w.owner, "Gone", nil)
		if r := s.Do(t, "PATCH", path, w.member, map[string]any{"folder_id": gone}); r.Status != 200 {
			t.Fatalf("file: %d %s", r.Status, r.Body)
		}
		if r := s.Do(t, "DELETE", "/v2/agent-folders/"+gone, w.member, nil); r.Status != 200 {
			t.Fatalf("delete folder: %d %s", r.Status, r.Body)
		}
		if q := queueBody(t, s.Do(t, "GET", path, w.viewer, nil)); q["folder_id"] != nil {
			t.Fatalf("folder_id = %v after its folder was deleted", q["folder_id"])
		}
	})
}

func TestDeleteQueue(t *testing.T) {
	j := newJobs(t, nil)
	s, w := j.s, j.world
	theirs := apiCreateQueue(t, s, w.otherTeam, w.otherKey, "Theirs")
	queue := apiCreateQueue(t, s, w.team, w.member, "Doomed")
	agent := j.assignment(t, "x", nil)
	seedTrigger(t, s, w.team, agent, queue, 1, true)
	kase := seedCase(t, s, w.team, queue, seededCase{title: "zebra crossing"})
	seedCase(t, s, w.team, queue, seededCase{status: "completed"})
	if r := s.Do(t, "POST", "/v2/queues/"+queue+"/cases/"+kase+"/labels", w.member, map[string]any{"labels": []any{map[string]any{"value": "urgent"}}}); r.Status != 200 {
		t.Fatalf("label: %d %s", r.Status, r.Body)
	}
	if n := countRows(t, s, "SELECT count(*) FROM cases_fts WHERE cases_fts MATCH 'zebra'"); n != 1 {
		t.Fatalf("search index holds %d rows for the case before the delete, want 1", n)
	}
	path := "/v2/queues/" + queue
	scenarios := []scenario{
		badRequest("400 malformed id", "DELETE", "/v2/queues/q1", w.member, nil, "queue_id"),
		badRequest("400 force not a boolean", "DELETE", path+"?force=yes", w.member, nil, "force"),
		forbidden("403 viewer", "DELETE", path, w.viewer, nil, "deleteQueue"),
		notFound("404 another team's queue", "DELETE", "/v2/queues/"+theirs, w.owner, nil),
		notFound("404 random id", "DELETE", "/v2/queues/"+randomID(), w.owner, nil),
		{name: "200 deletes cases, labels, triggers and the search index rows", method: "DELETE", path: path, key: w.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "deleteQueue body", m, "success", "deleted_case_count", "interrupted_run_ids")
				if m["success"] != true || m["deleted_case_count"] != float64(2) || len(m["interrupted_run_ids"].([]any)) != 0 {
					t.Fatalf("body = %s", r.Body)
				}
				for table, n := range map[string]int{
					"cases":         countRows(t, s, "SELECT count(*) FROM cases WHERE queue_id = ?", queue),
					"queue_labels":  countRows(t, s, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", queue),
					"case_labels":   countRows(t, s, "SELECT count(*) FROM case_labels WHERE case_id = ?", kase),
					"case_events":   countRows(t, s, "SELECT count(*) FROM case_events WHERE case_id = ?", kase),
					"case_triggers": countRows(t, s, "SELECT count(*) FROM case_triggers WHERE case_queue_id = ?", queue),
					"cases_fts":     countRows(t, s, "SELECT count(*) FROM cases_fts WHERE cases_fts MATCH 'zebra'"),
				} {
					if n != 0 {
						t.Errorf("%s still holds %d row(s) of the deleted queue", table, n)
					}
				}
				if _, err := seedDB(t, s).Exec("INSERT INTO cases_fts(cases_fts) VALUES ('integrity-check')"); err != nil {
					t.Fatalf("search index after delete: %v", err)
				}
				wantAudited(t, s, w.team, "deleteQueue", queue, keyID(t, s, w.member), "success")
			}},
		notFound("404 once deleted", "GET", path, w.owner, nil),
		notFound("404 deleting twice", "DELETE", path, w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", "/v2/queues/"+theirs, nil)...)
	runScenarios(t, s, scenarios)

	t.Run("409 while a run holds a case; force stops the run", func(t *testing.T) {
		busy := apiCreateQueue(t, s, w.team, w.member, "Busy")
		j.fake.Block()
		defer j.fake.Release()
		run := j.start(t, j.member, agent, "work")
		waitModelHeld(t, j.fake)
		seedCase(t, s, w.team, busy, seededCase{runID: run, agentID: agent})
		seedCase(t, s, w.team, busy, seededCase{})
		r := s.Do(t, "DELETE", "/v2/queues/"+busy, w.member, nil)
		if r.Status != 409 || !strings.Contains(errorBody(t, r).Message, `"Busy"`) || !strings.Contains(string(r.Body), "force=true") {
			t.Fatalf("delete while in progress: %d %s", r.Status, r.Body)
		}
		if n := countRows(t, s, "SELECT count(*) FROM cases WHERE queue_id = ?", busy); n != 2 {
			t.Fatalf("cases after a refused delete = %d, want 2", n)
		}
		r = s.Do(t, "DELETE", "/v2/queues/"+busy+"?force=false", w.member, nil)
		if r.Status != 409 {
			t.Fatalf("force=false: %d %s", r.Status, r.Body)
		}
		r = s.Do(t, "DELETE", "/v2/queues/"+busy+"?force=true", w.member, nil)
		if r.Status != 200 {
			t.Fatalf("forced delete: %d %s", r.Status, r.Body)
		}
		m := r.JSON(t)
		if ids := m["interrupted_run_ids"].([]any); len(ids) != 1 || ids[0] != run || m["deleted_case_count"] != float64(2) {
			t.Fatalf("forced delete = %s", r.Body)
		}
		got := j.waitRun(t, run, "stopped")
		if e := str(field(t, got, "run", "error")); !strings.Contains(e, "Busy") {
			t.Fatalf("stopped run's error = %q, want it to name the deleted queue", e)
		}
	})
}

func TestListQueueAgents(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	queue := apiCreateQueue(t, s, w.team, w.member, "Shared")
	other := apiCreateQueue(t, s, w.team, w.member, "Elsewhere")
	theirs := apiCreateQueue(t, s, w.otherTeam, w.otherKey, "Theirs")
	zed, _ := createAgent(t, s, w.team, w.owner, "Zed", true)
	amy, _ := createAgent(t, s, w.team, w.owner, "amy", true)
	bob, _ := createAgent(t, s, w.team, w.owner, "Bob", true)
	// Handing over to Zed makes Zed a handover target.
	r := s.Do(t, "POST", "/v2/teams/"+w.team+"/agents", w.owner, map[string]any{"name": "Router",
		"build": map[string]any{"name": "v1", "config": setupConfig("Route."), "handover_target_ids": []string{zed}}})
	if r.Status != 201 {
		t.Fatalf("create router: %d %s", r.Status, r.Body)
	}
	zedTrigger := seedTrigger(t, s, w.team, zed, queue, 1, true)
	seedTrigger(t, s, w.team, amy, queue, 3, false)
	seedTrigger(t, s, w.team, bob, other, 1, true)
	seedCase(t, s, w.team, queue, seededCase{runID: randomID(), agentID: zed})
	seedCase(t, s, w.team, queue, seededCase{status: "completed", runID: randomID(), agentID: amy})
	path := "/v2/queues/" + queue + "/agents"
	scenarios := []scenario{
		{name: "200 the consumers by name", method: "GET", path: path, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listQueueAgents body", m, "queue_name", "producers", "consumers")
				if m["queue_name"] != "Shared" || len(m["producers"].([]any)) != 0 {
					t.Fatalf("body = %s", r.Body)
				}
				cs := m["consumers"].([]any)
				if len(cs) != 2 {
					t.Fatalf("consumers = %d, want amy and Zed (Bob consumes another queue): %s", len(cs), r.Body)
				}
				a, z := cs[0].(map[string]any), cs[1].(map[string]any)
				wantKeys(t, "consumer", z, "agent_id", "agent_name", "case_trigger_enabled", "is_handover_target", "problems", "concurrency_limit",
					"at_concurrency_limit", "case_trigger_id", "max_attempts", "in_progress_count")
				if z["agent_id"] != zed || z["agent_name"] != "Zed" || z["case_trigger_enabled"] != true || z["is_handover_target"] != true ||
					z["concurrency_limit"] != float64(1) || z["at_concurrency_limit"] != true || z["in_progress_count"] != float64(1) ||
					z["case_trigger_id"] != zedTrigger || len(z["problems"].([]any)) != 0 {
					t.Fatalf("Zed = %v", z)
				}
				if a["agent_id"] != amy || a["case_trigger_enabled"] != false || a["is_handover_target"] != false ||
					a["concurrency_limit"] != float64(3) || a["at_concurrency_limit"] != false || a["in_progress_count"] != float64(0) {
					t.Fatalf("amy = %v (a completed case is not in progress)", a)
				}
			}},
		{name: "200 no consumers", method: "GET", path: "/v2/queues/" + apiCreateQueue(t, s, w.team, w.member, "Idle") + "/agents", key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if m := r.JSON(t); m["queue_name"] != "Idle" || len(m["consumers"].([]any)) != 0 || len(m["producers"].([]any)) != 0 {
					t.Fatalf("body = %s", r.Body)
				}
			}},
		badRequest("400 malformed id", "GET", "/v2/queues/q1/agents", w.viewer, nil, "queue_id"),
		notFound("404 another team's queue", "GET", "/v2/queues/"+theirs+"/agents", w.owner, nil),
		notFound("404 random id", "GET", "/v2/queues/"+randomID()+"/agents", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
	t.Run("a deleted agent is no consumer", func(t *testing.T) {
		if r := s.Do(t, "DELETE", "/v2/agents/"+amy, w.owner, nil); r.Status != 200 {
			t.Fatalf("delete agent: %d %s", r.Status, r.Body)
		}
		r := s.Do(t, "GET", path, w.viewer, nil)
		if cs := r.JSON(t)["consumers"].([]any); len(cs) != 1 {
			t.Fatalf("consumers = %s", fmt.Sprint(cs))
		}
	})
}
