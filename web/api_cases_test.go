package web_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// caseRequired are the keys the reference requires on every case object.
var caseRequired = []string{"id", "queue_id", "title", "data", "status", "priority", "display_status", "claimed_at", "claimed_by_run_id",
	"completed_at", "postponed_to", "created_at", "updated_at", "created_by_user_id", "created_by_user_name", "created_by_user_email",
	"agent_run_status", "agent_run_user_id", "pending_human_request_id", "pending_approval_batch_id", "pending_approval_assignee_user_ids",
	"approval_approved_count", "approval_rejected_count", "labels"}

func TestCreateCases(t *testing.T) {
	f := startFixture(t)
	path := "/v2/queues/" + f.queue + "/cases"
	titles := func(n int, long int) []map[string]any {
		var cs []map[string]any
		for i := range n {
			title := fmt.Sprintf("case %d", i)
			if i == long {
				title = strings.Repeat("x", 501)
			}
			cs = append(cs, map[string]any{"title": title})
		}
		return cs
	}
	nothingInserted := func(t *testing.T, _ *testkit.Response) {
		if n := f.cases(t, f.queue); n != 0 {
			t.Fatalf("%d cases in the queue after a refused request, want 0", n)
		}
		if n := f.count(t, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", f.queue); n != 0 {
			t.Fatalf("%d labels created by a refused request, want 0", n)
		}
	}
	bad := func(name string, body any, field string) scenario {
		sc := badRequest(name, "POST", path, f.member, body, field)
		sc.after = nothingInserted
		return sc
	}
	var single string
	scenarios := append(unauthenticated("POST", path, map[string]any{"case": map[string]any{"title": "x"}}),
		bad("400 title over 500 characters names the case", map[string]any{"cases": titles(5, 3)}, "cases[3].title"),
		bad("400 for 101 cases", map[string]any{"cases": titles(101, -1)}, "cases"),
		bad("400 for an empty batch", map[string]any{"cases": []any{}}, "cases"),
		bad("400 unknown priority", map[string]any{"cases": []any{map[string]any{"title": "a"}, map[string]any{"title": "b", "priority": "urgent"}}}, "cases[1].priority"),
		bad("400 blank title of a single case is named case.title", map[string]any{"case": map[string]any{"title": "   "}}, "case.title"),
		bad("400 blank title in a batch", map[string]any{"cases": []any{map[string]any{"title": "ok", "labels": []any{map[string]any{"value": "new"}}}, map[string]any{"title": "\t"}}}, "cases[1].title"),
		bad("400 empty label value", map[string]any{"cases": []any{map[string]any{"title": "a", "labels": []any{map[string]any{"key": "k", "value": ""}}}}}, "cases[0].labels[0].value"),
		bad("400 both case and cases", map[string]any{"case": map[string]any{"title": "a"}, "cases": []any{map[string]any{"title": "b"}}}, "not both"),
		bad("400 neither case nor cases", map[string]any{}, "case or cases"),
		bad("400 unknown field", map[string]any{"case": map[string]any{"title": "a", "colour": "red"}}, "colour"),
		bad("400 data that is not a string", map[string]any{"case": map[string]any{"title": "a", "data": map[string]any{"k": 1}}}, "case.data"),
		forbidden("403 for a viewer", "POST", path, f.viewer, map[string]any{"case": map[string]any{"title": "x"}}, "createCases"),
		notFound("404 for another team's queue", "POST", "/v2/queues/"+f.otherQueue+"/cases", f.owner, map[string]any{"case": map[string]any{"title": "x"}}),
		notFound("404 for this queue with another team's key", "POST", path, f.otherKey, map[string]any{"case": map[string]any{"title": "x"}}),
		notFound("404 for a queue that does not exist", "POST", "/v2/queues/"+randomID()+"/cases", f.owner, map[string]any{"case": map[string]any{"title": "x"}}),
		badRequest("400 for a queue id that is not a uuid", "POST", "/v2/queues/nope/cases", f.owner, map[string]any{"case": map[string]any{"title": "x"}}, "queue_id"),
		scenario{name: "201 one case", method: "POST", path: path, key: f.member, wantStatus: 201,
			body: map[string]any{"case": map[string]any{"title": "Invoice 17", "data": `{"amount": 42}`, "priority": "high",
				"labels": []any{map[string]any{"key": "vendor", "value": "ACME"}, map[string]any{"value": "urgent"}}}},
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createCases response", m, "added_cases")
				added := m["added_cases"].([]any)
				if len(added) != 1 {
					t.Fatalf("added_cases has %d cases, want 1", len(added))
				}
				c := added[0].(map[string]any)
				for _, k := range caseRequired {
					if _, ok := c[k]; !ok {
						t.Errorf("case lacks %q", k)
					}
				}
				single = c["id"].(string)
				if c["title"] != "Invoice 17" || c["data"] != `{"amount": 42}` || c["priority"] != "high" || c["status"] != "pending" ||
					c["display_status"] != "pending" || c["queue_id"] != f.queue || c["created_by_user_email"] == nil {
					t.Fatalf("case as created: %v", c)
				}
				if labels := c["labels"].([]any); len(labels) != 2 {
					t.Fatalf("labels: %v, want vendor=ACME and urgent", labels)
				}
				if n := f.count(t, "SELECT count(*) FROM case_events WHERE case_id = ? AND type = 'created' AND to_status = 'pending' AND channel = 'api'", single); n != 1 {
					t.Fatalf("%d created events, want 1", n)
				}
			}},
		scenario{name: "201 a batch reuses the queue's labels", method: "POST", path: path, key: f.member, wantStatus: 201,
			body: map[string]any{"cases": []any{
				map[string]any{"title": "a", "labels": []any{map[string]any{"key": "vendor", "value": "ACME"}}},
				map[string]any{"title": "b", "labels": []any{map[string]any{"key": "vendor", "value": "Globex"}, map[string]any{"key": "vendor", "value": "Globex"}}},
				map[string]any{"title": strings.Repeat("é", 500)},
			}},
			after: func(t *testing.T, r *testkit.Response) {
				var out struct {
					AddedCases []struct {
						Title  string
						Labels []struct{ Key, Value string }
					} `json:"added_cases"`
				}
				r.Decode(t, &out)
				if len(out.AddedCases) != 3 || out.AddedCases[0].Title != "a" || len(out.AddedCases[1].Labels) != 1 || len(out.AddedCases[2].Labels) != 0 {
					t.Fatalf("batch answered %+v", out.AddedCases)
				}
				if n := f.count(t, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", f.queue); n != 3 {
					t.Fatalf("queue has %d labels, want 3 (vendor=ACME reused, vendor=Globex and urgent)", n)
				}
				if n := f.cases(t, f.queue); n != 4 {
					t.Fatalf("queue has %d cases, want 4", n)
				}
			}},
	)
	runScenarios(t, f.s, scenarios)

	e := wantAudited(t, f.s, f.team, "createCases", f.queue, keyID(t, f.s, f.member), "success")
	if e.Target.Type != "queue" {
		t.Fatalf("createCases audit target %+v, want the queue", e.Target)
	}
	if n := f.count(t, "SELECT count(*) FROM audit_log WHERE operation = 'createCases' AND json_extract(detail, '$.count') = 3"); n != 1 {
		t.Fatalf("%d audit rows for the batch of 3 with its count, want 1", n)
	}
}

// TestCreateCasesIdempotencyKey: a client retrying a batch with the same key gets the
// first answer back and the cases exist once.
func TestCreateCasesIdempotencyKey(t *testing.T) {
	f := startFixture(t)
	body := map[string]any{"cases": []any{map[string]any{"title": "one"}, map[string]any{"title": "two"}}}
	path := "/v2/queues/" + f.queue + "/cases"
	first := f.s.Do(t, "POST", path, f.member, body, "Idempotency-Key", "batch-1")
	second := f.s.Do(t, "POST", path, f.member, body, "Idempotency-Key", "batch-1")
	if first.Status != 201 || second.Status != 201 {
		t.Fatalf("statuses %d, %d: %s", first.Status, second.Status, second.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" || string(first.Body) != string(second.Body) {
		t.Fatalf("the replay is not the first response: %s vs %s", first.Body, second.Body)
	}
	if n := f.cases(t, f.queue); n != 2 {
		t.Fatalf("%d cases after a replayed batch of 2, want 2", n)
	}
	if n := f.count(t, "SELECT count(*) FROM audit_log WHERE operation = 'createCases'"); n != 1 {
		t.Fatalf("%d createCases audit rows, want 1", n)
	}
}

// seedCases creates a varied queue: priorities, labels, data, and statuses set the way
// the dispatcher and the case tools would leave them.
type seeded struct {
	pendingHigh, pendingNone, completed, failed, postponed, held string
	heldRun                                                      string
}

func seedCases(t *testing.T, f *casesFixture) seeded {
	t.Helper()
	cs := f.create(t, f.owner, f.queue,
		map[string]any{"title": "Pending high invoice", "priority": "high", "data": "The customer paid 42 euros for hello-world widgets and asked for a refund.",
			"labels": []any{map[string]any{"key": "vendor", "value": "ACME"}}},
		map[string]any{"title": "Pending plain", "data": "nothing to see",
			"labels": []any{map[string]any{"key": "vendor", "value": "Globex"}}},
		map[string]any{"title": "Completed invoice", "priority": "medium", "labels": []any{map[string]any{"key": "vendor", "value": "ACME"}, map[string]any{"value": "vip"}}},
		map[string]any{"title": "Failed one", "data": "invoice number 7"},
		map[string]any{"title": "Postponed one"},
		map[string]any{"title": "Held invoice", "priority": "high"},
	)
	s := seeded{pendingHigh: cs[0]["id"].(string), pendingNone: cs[1]["id"].(string), completed: cs[2]["id"].(string),
		failed: cs[3]["id"].(string), postponed: cs[4]["id"].(string), held: cs[5]["id"].(string)}
	now := time.Now().UnixMilli()
	f.exec(t, "UPDATE cases SET status = 'completed', completed_at = ?, result = 'paid' WHERE id = ?", now, s.completed)
	f.exec(t, "UPDATE cases SET status = 'failed', completed_at = ?, last_error = 'model unreachable', attempt = 3 WHERE id = ?", now, s.failed)
	f.exec(t, "UPDATE cases SET postponed_to = ? WHERE id = ?", now+3_600_000, s.postponed)
	s.heldRun = f.hold(t, s.held)
	return s
}

func caseIDs(t *testing.T, r *testkit.Response) []string {
	t.Helper()
	var out struct {
		Cases []struct{ ID string } `json:"cases"`
		Total int                   `json:"total"`
	}
	r.Decode(t, &out)
	ids := []string{}
	for _, c := range out.Cases {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestListCases(t *testing.T) {
	f := startFixture(t)
	s := seedCases(t, f)
	path := "/v2/queues/" + f.queue + "/cases"
	want := func(ids ...string) func(t *testing.T, r *testkit.Response) {
		return func(t *testing.T, r *testkit.Response) {
			got := caseIDs(t, r)
			if !slices.Equal(got, ids) {
				t.Fatalf("cases %v, want %v", got, ids)
			}
			if total := r.JSON(t)["total"].(float64); int(total) != len(ids) {
				t.Fatalf("total %v, want %d", total, len(ids))
			}
		}
	}
	newestFirst := []string{s.held, s.postponed, s.failed, s.completed, s.pendingNone, s.pendingHigh}
	q := func(v url.Values) string { return path + "?" + v.Encode() }
	runScenarios(t, f.s, append(unauthenticated("GET", path, nil),
		scenario{name: "200 newest first", method: "GET", path: path, key: f.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			want(newestFirst...)(t, r)
			m := r.JSON(t)
			wantKeys(t, "listCases response", m, "cases", "total", "limit", "offset")
			if m["limit"].(float64) != 20 || m["offset"].(float64) != 0 {
				t.Fatalf("limit/offset %v/%v, want 20/0", m["limit"], m["offset"])
			}
			var held map[string]any
			for _, c := range m["cases"].([]any) {
				if c.(map[string]any)["id"] == s.held {
					held = c.(map[string]any)
				}
			}
			if held["display_status"] != "in_progress" || held["claimed_by_run_id"] != s.heldRun || held["claimed_at"] == nil {
				t.Fatalf("held case: %v", held)
			}
		}},
		scenario{name: "200 oldest first", method: "GET", path: q(url.Values{"sort_order": {"asc"}}), key: f.viewer, wantStatus: 200,
			after: want(reversedIDs(newestFirst)...)},
		scenario{name: "200 status claimed is in progress", method: "GET", path: q(url.Values{"status": {"claimed"}}), key: f.viewer, wantStatus: 200, after: want(s.held)},
		scenario{name: "200 status pending excludes held and postponed", method: "GET", path: q(url.Values{"status": {"pending"}}), key: f.viewer, wantStatus: 200,
			after: want(s.pendingNone, s.pendingHigh)},
		scenario{name: "200 several statuses", method: "GET", path: q(url.Values{"status": {"completed,failed,postponed"}}), key: f.viewer, wantStatus: 200,
			after: want(s.postponed, s.failed, s.completed)},
		scenario{name: "200 display_status", method: "GET", path: q(url.Values{"display_status": {"in_progress,postponed"}}), key: f.viewer, wantStatus: 200,
			after: want(s.held, s.postponed)},
		scenario{name: "200 priority", method: "GET", path: q(url.Values{"priority": {"high"}}), key: f.viewer, wantStatus: 200, after: want(s.held, s.pendingHigh)},
		scenario{name: "200 label key:value", method: "GET", path: q(url.Values{"label": {"vendor:ACME"}}), key: f.viewer, wantStatus: 200,
			after: want(s.completed, s.pendingHigh)},
		scenario{name: "200 labels of one key are alternatives", method: "GET", path: q(url.Values{"label": {"vendor:ACME", "vendor:Globex"}}), key: f.viewer, wantStatus: 200,
			after: want(s.completed, s.pendingNone, s.pendingHigh)},
		scenario{name: "200 labels of two keys are both required", method: "GET", path: q(url.Values{"label": {"vendor:ACME", "vip"}}), key: f.viewer, wantStatus: 200,
			after: want(s.completed)},
		scenario{name: "200 search over title and data", method: "GET", path: q(url.Values{"search": {"invoice"}}), key: f.viewer, wantStatus: 200,
			after: want(s.held, s.failed, s.completed, s.pendingHigh)},
		scenario{name: "200 search with a snippet of data", method: "GET", path: q(url.Values{"search": {"refund"}}), key: f.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				c := r.JSON(t)["cases"].([]any)[0].(map[string]any)
				sn, _ := c["search_match_data_snippet"].(map[string]any)
				if sn == nil || sn["match"] != "refund" || !strings.Contains(sn["before"].(string), "asked for a ") || sn["after"] != "." {
					t.Fatalf("snippet %v", c["search_match_data_snippet"])
				}
			}},
		scenario{name: "200 no snippet when only the title matched", method: "GET", path: q(url.Values{"search": {"plain"}}), key: f.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				c := r.JSON(t)["cases"].([]any)[0].(map[string]any)
				if _, ok := c["search_match_data_snippet"]; ok {
					t.Fatalf("snippet on a title-only match: %v", c)
				}
			}},
		scenario{name: "200 prefix search", method: "GET", path: q(url.Values{"search": {"widg*"}}), key: f.viewer, wantStatus: 200, after: want(s.pendingHigh)},
		scenario{name: "200 created_at_from in the future", method: "GET", path: q(url.Values{"created_at_from": {time.Now().Add(time.Hour).Format(time.RFC3339)}}),
			key: f.viewer, wantStatus: 200, after: want()},
		scenario{name: "200 updated_at_from a date", method: "GET", path: q(url.Values{"updated_at_from": {"2000-01-01"}}), key: f.viewer, wantStatus: 200,
			after: want(newestFirst...)},
		scenario{name: "200 sort by postponed_to puts the postponed first", method: "GET", path: q(url.Values{"sort_by": {"postponed_to"}, "limit": {"1"}}), key: f.viewer,
			wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
				if got := caseIDs(t, r); !slices.Equal(got, []string{s.postponed}) {
					t.Fatalf("first by postponed_to: %v, want the postponed case", got)
				}
			}},
		scenario{name: "200 page", method: "GET", path: q(url.Values{"limit": {"2"}, "offset": {"1"}}), key: f.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := caseIDs(t, r); !slices.Equal(got, newestFirst[1:3]) || r.JSON(t)["total"].(float64) != 6 {
					t.Fatalf("page %v total %v, want %v of 6", got, r.JSON(t)["total"], newestFirst[1:3])
				}
			}},
		badRequest("400 unknown status", "GET", q(url.Values{"status": {"pending,stuck"}}), f.viewer, nil, "status"),
		badRequest("400 unknown display_status", "GET", q(url.Values{"display_status": {"claimed"}}), f.viewer, nil, "display_status"),
		badRequest("400 status and display_status", "GET", q(url.Values{"status": {"pending"}, "display_status": {"pending"}}), f.viewer, nil, "not both"),
		badRequest("400 unknown priority", "GET", q(url.Values{"priority": {"urgent"}}), f.viewer, nil, "priority"),
		badRequest("400 bad created_at_from", "GET", q(url.Values{"created_at_from": {"yesterday"}}), f.viewer, nil, "created_at_from"),
		badRequest("400 bad sort_by", "GET", q(url.Values{"sort_by": {"title"}}), f.viewer, nil, "sort_by"),
		badRequest("400 limit over 100", "GET", q(url.Values{"limit": {"101"}}), f.viewer, nil, "limit"),
		notFound("404 another team's queue", "GET", "/v2/queues/"+f.otherQueue+"/cases", f.viewer, nil),
		notFound("404 with another team's key", "GET", path, f.otherKey, nil),
	))
}

func TestSearchCases(t *testing.T) {
	f := startFixture(t)
	s := seedCases(t, f)
	path := "/v2/queues/" + f.queue + "/cases/search"
	want := func(ids ...string) func(t *testing.T, r *testkit.Response) {
		return func(t *testing.T, r *testkit.Response) {
			if got := caseIDs(t, r); !slices.Equal(got, ids) {
				t.Fatalf("cases %v, want %v", got, ids)
			}
		}
	}
	runScenarios(t, f.s, append(unauthenticated("POST", path, map[string]any{}),
		scenario{name: "200 everything with the reference's default page", method: "POST", path: path, key: f.viewer, body: map[string]any{}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["limit"].(float64) != 25 || m["total"].(float64) != 6 {
					t.Fatalf("limit %v total %v, want 25 and 6", m["limit"], m["total"])
				}
			}},
		scenario{name: "200 filters combine", method: "POST", path: path, key: f.viewer, wantStatus: 200,
			body:  map[string]any{"filters": map[string]any{"status": []string{"pending", "completed"}, "labels": map[string]any{"vendor": []string{"ACME"}}}, "sort_order": "asc"},
			after: want(s.pendingHigh, s.completed)},
		scenario{name: "200 claimed and needs_input", method: "POST", path: path, key: f.viewer, wantStatus: 200,
			body: map[string]any{"filters": map[string]any{"status": []string{"claimed", "needs_input"}}}, after: want(s.held)},
		scenario{name: "200 search with priority", method: "POST", path: path, key: f.viewer, wantStatus: 200,
			body: map[string]any{"search": "invoice", "filters": map[string]any{"priority": []string{"high"}}}, after: want(s.held, s.pendingHigh)},
		scenario{name: "200 search snippet", method: "POST", path: path, key: f.viewer, wantStatus: 200, body: map[string]any{"search": "hello-world"},
			after: func(t *testing.T, r *testkit.Response) {
				c := r.JSON(t)["cases"].([]any)[0].(map[string]any)
				sn := c["search_match_data_snippet"].(map[string]any)
				if sn["match"] != "hello-world" || !strings.HasPrefix(sn["after"].(string), " widgets") {
					t.Fatalf("snippet %v", sn)
				}
			}},
		badRequest("400 unknown status", "POST", path, f.viewer, map[string]any{"filters": map[string]any{"status": []string{"stuck"}}}, "filters.status[0]"),
		badRequest("400 bad updated_at_from", "POST", path, f.viewer, map[string]any{"filters": map[string]any{"updated_at_from": "soon"}}, "filters.updated_at_from"),
		badRequest("400 limit over 100", "POST", path, f.viewer, map[string]any{"limit": 101}, "limit"),
		notFound("404 another team's queue", "POST", "/v2/queues/"+f.otherQueue+"/cases/search", f.viewer, map[string]any{}),
	))
}

// TestSearchCasesOddInput: whatever a person types into the search box is searched as
// plain words; FTS5 syntax in it is never a syntax error (400/500) and never an operator.
func TestSearchCasesOddInput(t *testing.T) {
	f := startFixture(t)
	f.create(t, f.owner, f.queue,
		map[string]any{"title": `Quote "this" (now)`, "data": "AND OR NOT NEAR title:data col*umn ^start -minus"},
		map[string]any{"title": "Ünïcödé 日本語 emoji 🎉", "data": "plain"},
	)
	for _, tc := range []struct {
		search string
		hits   int
	}{
		{`"`, 0}, {`""`, 0}, {`"this"`, 1}, {`this"`, 1}, {`(now`, 1}, {`now)`, 1}, {`AND`, 1}, {`OR`, 1}, {`NOT`, 1}, {`NEAR(`, 1},
		{`quote OR nothing`, 0}, {`title:data`, 1}, {`data:plain`, 0}, {`*`, 0}, {`**`, 0}, {`col*`, 1}, {`^start`, 1}, {`-minus`, 1},
		{`{title}: quote`, 1}, {`a + b`, 0}, {"tab\tquote", 0}, {"nul\x00quote", 0}, {`日本語`, 1}, {`ünïcödé`, 1}, {`🎉`, 0},
		{strings.Repeat("quote ", 150), 1}, {`'; DROP TABLE cases; --`, 0}, {`\`, 0}, {"\xff\xfe", 0},
	} {
		for _, via := range []string{"GET", "POST"} {
			var r *testkit.Response
			if via == "GET" {
				r = f.s.Do(t, "GET", "/v2/queues/"+f.queue+"/cases?"+url.Values{"search": {tc.search}}.Encode(), f.viewer, nil)
			} else {
				r = f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/search", f.viewer, map[string]any{"search": tc.search})
			}
			if r.Status != 200 {
				t.Errorf("%s search %q: %d %s", via, tc.search, r.Status, r.Body)
				continue
			}
			if got := len(caseIDs(t, r)); got != tc.hits {
				t.Errorf("%s search %q: %d hits, want %d", via, tc.search, got, tc.hits)
			}
		}
	}
	if n := f.cases(t, f.queue); n != 2 {
		t.Fatalf("%d cases after the searches, want 2", n)
	}
}

func TestGetCase(t *testing.T) {
	f := startFixture(t)
	c := f.create(t, f.member, f.queue, map[string]any{"title": "One", "labels": []any{map[string]any{"key": "k", "value": "v"}}})[0]
	id := c["id"].(string)
	r := f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/bulk-update-priority", f.member, map[string]any{"case_ids": []string{id}, "priority": "medium"})
	if r.Status != 200 {
		t.Fatalf("bulk priority: %d %s", r.Status, r.Body)
	}
	path := "/v2/cases/" + id
	runScenarios(t, f.s, append(unauthenticated("GET", path, nil),
		scenario{name: "200 with the event history", method: "GET", path: path, key: f.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			wantKeys(t, "getCase response", m, "case", "events", "approvalBatches")
			cj := m["case"].(map[string]any)
			for _, k := range caseRequired {
				if _, ok := cj[k]; !ok {
					t.Errorf("case lacks %q", k)
				}
			}
			if cj["priority"] != "medium" || len(cj["labels"].([]any)) != 1 {
				t.Fatalf("case %v", cj)
			}
			var events []struct {
				Type            string         `json:"type"`
				CaseQueueItemID string         `json:"case_queue_item_id"`
				UserEmail       *string        `json:"user_email"`
				ToStatus        *string        `json:"to_status"`
				Channel         string         `json:"channel"`
				Detail          map[string]any `json:"detail"`
			}
			b, _ := json.Marshal(m["events"])
			json.Unmarshal(b, &events)
			if len(events) != 2 || events[0].Type != "created" || events[1].Type != "priority_changed" {
				t.Fatalf("events %+v, want created then priority_changed", events)
			}
			if events[0].CaseQueueItemID != id || events[0].UserEmail == nil || events[0].ToStatus == nil || *events[0].ToStatus != "pending" || events[0].Channel != "api" {
				t.Fatalf("created event %+v", events[0])
			}
			if events[1].Detail["from_priority"] != "none" || events[1].Detail["to_priority"] != "medium" {
				t.Fatalf("priority event detail %v", events[1].Detail)
			}
		}},
		notFound("404 with another team's key", "GET", path, f.otherKey, nil),
		notFound("404 for a case that does not exist", "GET", "/v2/cases/"+randomID(), f.viewer, nil),
		badRequest("400 for an id that is not a uuid", "GET", "/v2/cases/x", f.viewer, nil, "case_id"),
	))
}

func TestDeleteCase(t *testing.T) {
	f := startFixture(t)
	ids := f.createN(t, f.queue, "case", 2)
	run := f.hold(t, ids[1])
	runScenarios(t, f.s, append(unauthenticated("DELETE", "/v2/cases/"+ids[0], nil),
		forbidden("403 for a viewer", "DELETE", "/v2/cases/"+ids[0], f.viewer, nil, "deleteCase"),
		notFound("404 with another team's key", "DELETE", "/v2/cases/"+ids[0], f.otherKey, nil),
		scenario{name: "409 while a run holds it", method: "DELETE", path: "/v2/cases/" + ids[1], key: f.member, wantStatus: 409, wantError: "conflict",
			wantContains: []string{run, "/v2/runs/" + run + "/stop"}},
		scenario{name: "200 deletes it", method: "DELETE", path: "/v2/cases/" + ids[0], key: f.member, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			wantKeys(t, "deleteCase response", m, "success", "interruptedRunIds")
			if m["success"] != true || f.count(t, "SELECT count(*) FROM cases WHERE id = ?", ids[0]) != 0 ||
				f.count(t, "SELECT count(*) FROM case_events WHERE case_id = ?", ids[0]) != 0 {
				t.Fatalf("case not deleted with its history: %s", r.Body)
			}
		}},
		notFound("404 the second time", "DELETE", "/v2/cases/"+ids[0], f.member, nil),
	))
	wantAudited(t, f.s, f.team, "deleteCase", ids[0], keyID(t, f.s, f.member), "success")
	if n := f.cases(t, f.queue); n != 1 {
		t.Fatalf("%d cases left, want the held one", n)
	}
}

func TestClearQueueCases(t *testing.T) {
	f := startFixture(t)
	ids := f.createN(t, f.queue, "case", 5)
	f.hold(t, ids[2])
	other := f.createN(t, f.insertQueue(t, f.team, "Other queue"), "keep", 3)
	path := "/v2/queues/" + f.queue + "/cases"
	confirmed := path + "?confirm=" + f.queue
	runScenarios(t, f.s, append(unauthenticated("DELETE", confirmed, nil),
		forbidden("403 for a viewer", "DELETE", confirmed, f.viewer, nil, "clearQueueCases"),
		badRequest("400 without confirm", "DELETE", path, f.member, nil, "confirm="+f.queue),
		badRequest("400 confirming another queue", "DELETE", path+"?confirm="+f.otherQueue, f.member, nil, "confirm"),
		notFound("404 another team's queue", "DELETE", "/v2/queues/"+f.otherQueue+"/cases?confirm="+f.otherQueue, f.member, nil),
		scenario{name: "200 deletes all but the held case", method: "DELETE", path: confirmed, key: f.member, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			wantKeys(t, "clearQueueCases response", m, "success", "deletedCount", "interruptedRunIds", "skippedCount")
			if m["deletedCount"].(float64) != 4 || m["skippedCount"].(float64) != 1 || m["success"] != true {
				t.Fatalf("clear answered %s, want 4 deleted and 1 skipped", r.Body)
			}
			if f.cases(t, f.queue) != 1 || f.count(t, "SELECT count(*) FROM cases WHERE id IN (?, ?, ?)", other[0], other[1], other[2]) != 3 {
				t.Fatal("clear deleted the wrong cases")
			}
		}},
	))
	if n := f.count(t, "SELECT count(*) FROM audit_log WHERE operation = 'clearQueueCases' AND json_extract(detail, '$.deleted') = 4 AND json_extract(detail, '$.skipped') = 1"); n != 1 {
		t.Fatalf("%d audit rows for the clear with its counts, want 1", n)
	}
}

// TestCaseRuns: a run started for a case shows in the case's runs, and its latest
// assistant messages in recent-messages.
func TestCaseRuns(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().Reply("The invoice is paid.")
	f := newCasesFixture(t, j.world)
	ids := f.createN(t, f.queue, "case", 2)
	agent := j.assignment(t, "Check invoices.", nil)
	owner := store.Actor{TeamID: f.team, UserID: f.s.OwnerID, Channel: "api", Operation: "test"}
	run, err := f.s.Engine.StartRun(t.Context(), owner, store.NewRun{AgentID: agent, Message: "Case: case 0", Source: "case", CaseID: &ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	j.waitRun(t, run.ID, "completed")
	path := "/v2/cases/" + ids[0] + "/runs"
	recent := "/v2/cases/" + ids[0] + "/runs/" + run.ID + "/recent-messages"
	runScenarios(t, f.s, append(unauthenticated("GET", path, nil),
		scenario{name: "200 the case's runs", method: "GET", path: path, key: f.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			runs := r.JSON(t)["runs"].([]any)
			if len(runs) != 1 {
				t.Fatalf("runs %v, want 1", runs)
			}
			got := runs[0].(map[string]any)
			wantKeys(t, "case run", got, "id", "case_queue_item_id", "agent_id", "agent_name", "status", "source", "created_at", "started_at",
				"completed_at", "claimed_at", "has_pending_human_request", "pending_human_request_title", "evaluation", "user_id", "user_name",
				"user_email", "title", "run_number", "error")
			if got["id"] != run.ID || got["case_queue_item_id"] != ids[0] || got["status"] != "completed" || got["source"] != "case" ||
				got["has_pending_human_request"] != false || got["user_id"] != f.s.OwnerID {
				t.Fatalf("case run %v", got)
			}
		}},
		scenario{name: "200 no runs for the other case", method: "GET", path: "/v2/cases/" + ids[1] + "/runs", key: f.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if runs := r.JSON(t)["runs"].([]any); len(runs) != 0 {
					t.Fatalf("runs %v, want none", runs)
				}
			}},
		scenario{name: "200 recent messages", method: "GET", path: recent, key: f.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			ms := r.JSON(t)["messages"].([]any)
			if len(ms) != 1 {
				t.Fatalf("messages %v, want the one assistant text", ms)
			}
			if m := ms[0].(map[string]any); m["role"] != "assistant" || m["text_content"] != "The invoice is paid." {
				t.Fatalf("message %v", m)
			}
		}},
		notFound("404 recent messages of a run of another case", "GET", "/v2/cases/"+ids[1]+"/runs/"+run.ID+"/recent-messages", f.viewer, nil),
		notFound("404 runs with another team's key", "GET", path, f.otherKey, nil),
		notFound("404 recent messages with another team's key", "GET", recent, f.otherKey, nil),
		badRequest("400 limit over 10", "GET", recent+"?limit=11", f.viewer, nil, "limit"),
	))
}

func reversedIDs(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// casesOps are this file's operations, as the reference defines them.
var casesOps = map[string][2]string{
	"createCases":               {"POST", "/v2/queues/{queue_id}/cases"},
	"listCases":                 {"GET", "/v2/queues/{queue_id}/cases"},
	"searchCases":               {"POST", "/v2/queues/{queue_id}/cases/search"},
	"getCase":                   {"GET", "/v2/cases/{case_id}"},
	"deleteCase":                {"DELETE", "/v2/cases/{case_id}"},
	"clearQueueCases":           {"DELETE", "/v2/queues/{queue_id}/cases"},
	"listCaseRuns":              {"GET", "/v2/cases/{case_id}/runs"},
	"listCaseRunRecentMessages": {"GET", "/v2/cases/{case_id}/runs/{run_id}/recent-messages"},
	"bulkReprocessCases":        {"POST", "/v2/queues/{queue_id}/cases/bulk-reprocess"},
	"bulkUpdateCaseStatus":      {"POST", "/v2/queues/{queue_id}/cases/bulk-update-status"},
	"bulkUpdateCasePriority":    {"POST", "/v2/queues/{queue_id}/cases/bulk-update-priority"},
	"bulkDeleteCases":           {"POST", "/v2/queues/{queue_id}/cases/bulk-delete"},
	"bulkRetryCases":            {"POST", "/v2/queues/{queue_id}/cases/bulk-retry"},
	"bulkDelegateCases":         {"POST", "/v2/queues/{queue_id}/cases/bulk-delegate"},
}

// TestCasesOpenAPI: every case operation is published under the reference's id, method
// and path, secured, and its responses carry every field the reference requires, in
// docket's schema and in a real response.
func TestCasesOpenAPI(t *testing.T) {
	ref := loadReference(t)
	j := newJobs(t, nil)
	j.fake.Default().Reply("Done.")
	f := newCasesFixture(t, j.world)
	doc := fetchOpenAPI(t, f.s)
	ours := doc.operations()
	for _, id := range []string{"bulkRetryCases", "bulkDelegateCases"} {
		if _, ok := ours[id].op["responses"].(map[string]any)["308"]; !ok {
			t.Errorf("%s does not document its 308", id)
		}
	}

	agent := j.assignment(t, "Work cases.", nil)
	f.insertTrigger(t, f.team, f.idleConsumer(t, "Consumer"), f.queue, true)
	c := f.create(t, f.owner, f.queue, map[string]any{"title": "Shape", "data": "shape of a refund", "labels": []any{map[string]any{"key": "k", "value": "v"}}})[0]
	id := c["id"].(string)
	run, err := f.s.Engine.StartRun(t.Context(), store.Actor{TeamID: f.team, UserID: f.s.OwnerID, Channel: "api"}, store.NewRun{AgentID: agent, Source: "case", CaseID: &id, Message: "go"})
	if err != nil {
		t.Fatal(err)
	}
	j.waitRun(t, run.ID, "completed")
	queue := "/v2/queues/" + f.queue + "/cases"
	bulk := map[string]any{"case_ids": []string{id}}
	coverReference(t, ref, doc, []responseCase{
		{"createCases", "201", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue, f.member, map[string]any{"case": map[string]any{"title": "x", "labels": []any{map[string]any{"value": "tag"}}}})
		}, 0},
		{"listCases", "200", func(t *testing.T) *testkit.Response { return f.s.Do(t, "GET", queue+"?search=refund", f.viewer, nil) }, 0},
		{"searchCases", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue+"/search", f.viewer, map[string]any{"search": "refund"})
		}, 0},
		{"getCase", "200", func(t *testing.T) *testkit.Response { return f.s.Do(t, "GET", "/v2/cases/"+id, f.viewer, nil) }, 0},
		{"listCaseRuns", "200", func(t *testing.T) *testkit.Response { return f.s.Do(t, "GET", "/v2/cases/"+id+"/runs", f.viewer, nil) }, 0},
		{"listCaseRunRecentMessages", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "GET", "/v2/cases/"+id+"/runs/"+run.ID+"/recent-messages", f.viewer, nil)
		}, 1},
		{"bulkUpdateCasePriority", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue+"/bulk-update-priority", f.member, map[string]any{"case_ids": []string{id}, "priority": "high"})
		}, 1},
		{"bulkUpdateCaseStatus", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue+"/bulk-update-status", f.member, map[string]any{"case_ids": []string{id}, "status": "failed"})
		}, 1},
		{"bulkReprocessCases", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue+"/bulk-reprocess", f.member, bulk)
		}, 1},
		{"bulkDeleteCases", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "POST", queue+"/bulk-delete", f.member, map[string]any{"case_ids": []string{randomID()}})
		}, 1},
		{"deleteCase", "200", func(t *testing.T) *testkit.Response {
			other := f.create(t, f.owner, f.queue, map[string]any{"title": "gone"})[0]["id"].(string)
			return f.s.Do(t, "DELETE", "/v2/cases/"+other, f.member, nil)
		}, 1},
		{"clearQueueCases", "200", func(t *testing.T) *testkit.Response {
			return f.s.Do(t, "DELETE", queue+"?confirm="+f.queue, f.member, nil)
		}, 1},
	})
}

// TestCaseWaitingAtAGate: a case whose run waits at a gate shows needs_input with the
// gate, filters as needs_input, lists the run's open request, and cannot be deleted.
func TestCaseWaitingAtAGate(t *testing.T) {
	j := newJobs(t, nil)
	j.fake.Default().CallTool("request_human_approval", map[string]any{"title": "Pay 42 EUR", "description": "Confirm the payment"})
	f := newCasesFixture(t, j.world)
	id := f.createN(t, f.queue, "case", 1)[0]
	agent := j.assignment(t, "Pay invoices.", nil)
	run, err := f.s.Engine.StartRun(t.Context(), store.Actor{TeamID: f.team, UserID: f.s.OwnerID, Channel: "api"}, store.NewRun{AgentID: agent, Source: "case", CaseID: &id, Message: "pay"})
	if err != nil {
		t.Fatal(err)
	}
	gate := j.waitRun(t, run.ID, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
	f.exec(t, "UPDATE cases SET claimed_by_run_id = ?, claimed_by_agent_id = ?, claimed_at = ? WHERE id = ?", run.ID, agent, time.Now().UnixMilli(), id)

	r := f.s.Do(t, "GET", "/v2/cases/"+id, f.viewer, nil)
	c := field(t, r.JSON(t), "case").(map[string]any)
	if c["display_status"] != "needs_input" || c["status"] != "pending" || c["pending_human_request_id"] != gate || c["agent_run_status"] != "waiting" ||
		c["agent_run_user_id"] != f.s.OwnerID || c["claimed_by_run_id"] != run.ID || c["claimed_by_agent_id"] != agent {
		t.Fatalf("case waiting at a gate: %v", c)
	}
	r = f.s.Do(t, "GET", "/v2/queues/"+f.queue+"/cases?status=needs_input", f.viewer, nil)
	if got := caseIDs(t, r); !slices.Equal(got, []string{id}) {
		t.Fatalf("needs_input lists %v, want the case", got)
	}
	r = f.s.Do(t, "GET", "/v2/queues/"+f.queue+"/cases?status=claimed", f.viewer, nil)
	if got := caseIDs(t, r); len(got) != 0 {
		t.Fatalf("claimed lists %v; a case waiting at a gate is needs_input", got)
	}
	r = f.s.Do(t, "GET", "/v2/cases/"+id+"/runs", f.viewer, nil)
	cr := r.JSON(t)["runs"].([]any)[0].(map[string]any)
	if cr["status"] != "waiting" || cr["has_pending_human_request"] != true || cr["pending_human_request_title"] != "Pay 42 EUR" {
		t.Fatalf("case run waiting at a gate: %v", cr)
	}
	if r := f.s.Do(t, "DELETE", "/v2/cases/"+id, f.member, nil); r.Status != 409 {
		t.Fatalf("deleting a case a waiting run holds: %d %s, want 409", r.Status, r.Body)
	}
	m := f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/bulk-update-status", f.member, map[string]any{"case_ids": []string{id}, "status": "completed"}).JSON(t)
	wantCountField(t, m, "updatedCount", 0)
	wantCountField(t, m, "skippedCount", 1)
}
