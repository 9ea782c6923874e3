package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
)

// bulkWorld is a queue of 60 varied cases: priorities, labels, data, and the statuses
// the dispatcher and case tools leave (completed, failed, held by a run, postponed).
type bulkWorld struct {
	*casesFixture
	ids []string
}

func newBulkWorld(t *testing.T) *bulkWorld {
	t.Helper()
	f := startFixture(t)
	var batch []map[string]any
	for i := range 60 {
		labels := []any{map[string]any{"key": "team", "value": []string{"a", "b"}[i%2]}}
		if i%5 == 0 {
			labels = append(labels, map[string]any{"value": "vip"})
		}
		data := fmt.Sprintf("record %d", i)
		if i%4 == 0 {
			data += ": the customer wants a refund"
		}
		batch = append(batch, map[string]any{"title": fmt.Sprintf("Case %d", i), "priority": []string{"none", "medium", "high"}[i%3], "data": data, "labels": labels})
	}
	var ids []string
	for _, c := range f.create(t, f.owner, f.queue, batch...) {
		ids = append(ids, c["id"].(string))
	}
	now := time.Now().UnixMilli()
	for i, id := range ids {
		switch {
		case i%7 == 0:
			f.exec(t, "UPDATE cases SET status = 'completed', completed_at = ?, result = 'done' WHERE id = ?", now, id)
		case i%7 == 1:
			f.exec(t, "UPDATE cases SET status = 'failed', completed_at = ?, last_error = 'boom', attempt = 3 WHERE id = ?", now, id)
		case i%11 == 0:
			f.hold(t, id)
		case i%13 == 0:
			f.exec(t, "UPDATE cases SET postponed_to = ? WHERE id = ?", now+3_600_000, id)
		}
	}
	return &bulkWorld{casesFixture: f, ids: ids}
}

// ids runs a direct query returning case ids, sorted.
func (b *bulkWorld) query(t *testing.T, where string, args ...any) []string {
	t.Helper()
	rows, err := b.db.Query("SELECT c.id FROM cases c WHERE c.queue_id = ? AND "+where+" ORDER BY c.id", append([]any{b.queue}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out = append(out, id)
	}
	return out
}

// evented returns the ids of the cases with an event of type typ, sorted.
func (b *bulkWorld) evented(t *testing.T, typ string) []string {
	t.Helper()
	return b.query(t, "EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.type = ?)", typ)
}

func (b *bulkWorld) post(t *testing.T, key, verb string, body any) map[string]any {
	t.Helper()
	r := b.s.Do(t, "POST", "/v2/queues/"+b.queue+"/cases/"+verb, key, body)
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", verb, r.Status, r.Body)
	}
	return r.JSON(t)
}

func wantCountField(t *testing.T, m map[string]any, key string, n int) {
	t.Helper()
	if got, ok := m[key].(float64); !ok || int(got) != n {
		t.Fatalf("%s = %v, want %d (response %v)", key, m[key], n, m)
	}
}

// labelTeamA is the SQL for "carries label team=a", written independently of the store.
const labelTeamA = `EXISTS (SELECT 1 FROM case_labels cl JOIN queue_labels l ON l.id = cl.label_id WHERE cl.case_id = c.id AND l.key = 'team' AND l.value = 'a')`

// TestBulkAllMatchingTouchesExactlyTheFilteredSet: each all_matching operation changes
// exactly the cases a direct SQL query over the same conditions finds, and nothing else.
func TestBulkAllMatchingTouchesExactlyTheFilteredSet(t *testing.T) {
	b := newBulkWorld(t)
	now := time.Now().UnixMilli()

	// Status: pending or failed, medium or high, label team=a, data mentioning a refund.
	want := b.query(t, `((c.status = 'pending' AND c.claimed_by_run_id IS NULL AND coalesce(c.postponed_to, 0) <= ?) OR c.status = 'failed')
		AND c.priority IN (1, 2) AND `+labelTeamA+` AND c.data LIKE '%refund%'`, now)
	if len(want) < 2 {
		t.Fatalf("the data set selects only %d cases; the test needs a real selection", len(want))
	}
	completedBefore := b.count(t, "SELECT count(*) FROM cases WHERE status = 'completed'")
	m := b.post(t, b.member, "bulk-update-status", map[string]any{"all_matching": true, "status": "completed", "search": "refund",
		"filters": map[string]any{"status": []string{"pending", "failed"}, "priority": []string{"high", "medium"}, "labels": map[string]any{"team": []string{"a"}}}})
	wantCountField(t, m, "updatedCount", len(want))
	wantCountField(t, m, "skippedCount", 0)
	if got := b.evented(t, "status_changed"); !slices.Equal(got, want) {
		t.Fatalf("status changed on %v, want exactly %v", got, want)
	}
	if n := b.count(t, "SELECT count(*) FROM cases WHERE status = 'completed'"); n != completedBefore+len(want) {
		t.Fatalf("%d completed cases, want %d", n, completedBefore+len(want))
	}
	statusChanged := len(want)

	// Priority: the cases runs hold (priority never waits for a run); those already high are skipped.
	matched := b.query(t, "c.claimed_by_run_id IS NOT NULL")
	want = b.query(t, "c.claimed_by_run_id IS NOT NULL AND c.priority != 2")
	if len(matched) == 0 || len(want) == len(matched) {
		t.Fatalf("data set: %d matched, %d to change; the test needs both kinds", len(matched), len(want))
	}
	m = b.post(t, b.member, "bulk-update-priority", map[string]any{"all_matching": true, "priority": "high",
		"filters": map[string]any{"status": []string{"claimed"}}})
	wantCountField(t, m, "updatedCount", len(want))
	wantCountField(t, m, "skippedCount", len(matched)-len(want))
	if got := b.evented(t, "priority_changed"); !slices.Equal(got, want) {
		t.Fatalf("priority changed on %v, want exactly %v", got, want)
	}
	priorityChanged := len(want)

	// Delete: every vip case (all created within the last minute); held ones stay.
	matched = b.query(t, "EXISTS (SELECT 1 FROM case_labels cl JOIN queue_labels l ON l.id = cl.label_id WHERE cl.case_id = c.id AND l.key = '' AND l.value = 'vip')")
	held := b.query(t, "c.id IN (SELECT value FROM json_each(?)) AND c.claimed_by_run_id IS NOT NULL", jsonString(t, matched))
	total := b.cases(t, b.queue)
	m = b.post(t, b.member, "bulk-delete", map[string]any{"all_matching": true, "filters": map[string]any{"labels": map[string]any{"": []string{"vip"}},
		"created_at_from": time.UnixMilli(now - 60_000).UTC().Format(time.RFC3339)}})
	wantCountField(t, m, "deletedCount", len(matched)-len(held))
	wantCountField(t, m, "skippedCount", len(held))
	if n := b.cases(t, b.queue); n != total-(len(matched)-len(held)) {
		t.Fatalf("%d cases left, want %d", n, total-(len(matched)-len(held)))
	}

	// Every call is one audit row carrying its counts.
	for op, changed := range map[string]int{"bulkUpdateCaseStatus": statusChanged, "bulkUpdateCasePriority": priorityChanged,
		"bulkDeleteCases": len(matched) - len(held)} {
		if n := b.count(t, "SELECT count(*) FROM audit_log WHERE operation = ? AND json_extract(detail, '$.changed') = ? AND json_extract(detail, '$.all_matching') = 1", op, changed); n != 1 {
			t.Errorf("%d audit rows for %s with changed=%d, want 1", n, op, changed)
		}
	}
	wantAudited(t, b.s, b.team, "bulkUpdateCaseStatus", b.queue, keyID(t, b.s, b.member), "success")
}

func TestBulkCaseIDs(t *testing.T) {
	b := newBulkWorld(t)
	pending, completed, held := b.ids[2], b.ids[7], b.ids[11]
	unknown := randomID()

	m := b.post(t, b.member, "bulk-update-status", map[string]any{"case_ids": []string{pending, completed, held, unknown, pending}, "status": "failed"})
	wantCountField(t, m, "updatedCount", 2)
	wantCountField(t, m, "skippedCount", 2) // the held case and the unknown id; pending named twice counts once
	if ids, ok := m["interruptedRunIds"].([]any); !ok || len(ids) != 0 {
		t.Fatalf("interruptedRunIds %v, want []", m["interruptedRunIds"])
	}
	if n := b.count(t, "SELECT count(*) FROM cases WHERE id IN (?, ?) AND status = 'failed' AND completed_at IS NOT NULL", pending, completed); n != 2 {
		t.Fatalf("%d of the two cases failed, want 2", n)
	}
	if n := b.count(t, "SELECT count(*) FROM case_events WHERE case_id = ? AND type = 'status_changed' AND from_status = 'completed' AND to_status = 'failed'", completed); n != 1 {
		t.Fatal("no status_changed event from completed to failed")
	}

	m = b.post(t, b.member, "bulk-update-status", map[string]any{"case_ids": []string{pending}, "status": "pending"})
	wantCountField(t, m, "updatedCount", 1)
	if n := b.count(t, "SELECT count(*) FROM cases WHERE id = ? AND status = 'pending' AND completed_at IS NULL AND attempt = 0", pending); n != 1 {
		t.Fatal("resetting to pending did not clear the outcome")
	}
	m = b.post(t, b.member, "bulk-update-status", map[string]any{"case_ids": []string{pending}, "status": "pending"})
	wantCountField(t, m, "updatedCount", 0)
	wantCountField(t, m, "skippedCount", 1)

	m = b.post(t, b.member, "bulk-delete", map[string]any{"case_ids": []string{pending, held}})
	wantCountField(t, m, "deletedCount", 1)
	wantCountField(t, m, "skippedCount", 1)
	if n := b.count(t, "SELECT count(*) FROM cases WHERE id IN (?, ?)", pending, held); n != 1 {
		t.Fatalf("%d of the deleted and the held case left, want 1", n)
	}

	path := "/v2/queues/" + b.queue + "/cases/"
	theirs := "/v2/queues/" + b.otherQueue + "/cases/"
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = randomID()
	}
	before := b.cases(t, b.queue)
	runScenarios(t, b.s, slices.Concat(
		unauthenticated("POST", path+"bulk-delete", map[string]any{"case_ids": []string{completed}}),
		[]scenario{
			forbidden("403 status for a viewer", "POST", path+"bulk-update-status", b.viewer, map[string]any{"case_ids": []string{completed}, "status": "failed"}, "bulkUpdateCaseStatus"),
			forbidden("403 priority for a viewer", "POST", path+"bulk-update-priority", b.viewer, map[string]any{"case_ids": []string{completed}, "priority": "high"}, "bulkUpdateCasePriority"),
			forbidden("403 delete for a viewer", "POST", path+"bulk-delete", b.viewer, map[string]any{"case_ids": []string{completed}}, "bulkDeleteCases"),
			forbidden("403 reprocess for a viewer", "POST", path+"bulk-reprocess", b.viewer, map[string]any{"case_ids": []string{completed}}, "bulkReprocessCases"),
			notFound("404 another team's queue", "POST", theirs+"bulk-delete", b.member, map[string]any{"case_ids": []string{completed}}),
			notFound("404 with another team's key", "POST", path+"bulk-update-priority", b.otherKey, map[string]any{"case_ids": []string{completed}, "priority": "high"}),
			badRequest("400 neither case_ids nor all_matching", "POST", path+"bulk-delete", b.member, map[string]any{}, "case_ids"),
			badRequest("400 all_matching false", "POST", path+"bulk-delete", b.member, map[string]any{"all_matching": false}, "all_matching: true"),
			badRequest("400 both", "POST", path+"bulk-delete", b.member, map[string]any{"case_ids": []string{completed}, "all_matching": true}, "not both"),
			badRequest("400 filters with case_ids", "POST", path+"bulk-delete", b.member, map[string]any{"case_ids": []string{completed}, "search": "x"}, "all_matching"),
			badRequest("400 101 case ids", "POST", path+"bulk-delete", b.member, map[string]any{"case_ids": ids}, "case_ids"),
			badRequest("400 empty case ids", "POST", path+"bulk-delete", b.member, map[string]any{"case_ids": []string{}}, "case_ids"),
			badRequest("400 a case id that is not a uuid", "POST", path+"bulk-delete", b.member, map[string]any{"case_ids": []string{"nope"}}, "case_ids[0]"),
			badRequest("400 unknown status", "POST", path+"bulk-update-status", b.member, map[string]any{"case_ids": []string{completed}, "status": "done"}, "status"),
			badRequest("400 missing status", "POST", path+"bulk-update-status", b.member, map[string]any{"case_ids": []string{completed}}, "status"),
			badRequest("400 unknown priority", "POST", path+"bulk-update-priority", b.member, map[string]any{"case_ids": []string{completed}, "priority": "urgent"}, "priority"),
			badRequest("400 unknown filter status", "POST", path+"bulk-delete", b.member, map[string]any{"all_matching": true, "filters": map[string]any{"status": []string{"gone"}}}, "filters.status[0]"),
			badRequest("400 bad created_at_from", "POST", path+"bulk-delete", b.member, map[string]any{"all_matching": true, "filters": map[string]any{"created_at_from": "May"}}, "filters.created_at_from"),
		},
	))
	if n := b.cases(t, b.queue); n != before {
		t.Fatalf("refused bulk calls changed the queue: %d cases, want %d", n, before)
	}
}

func TestBulkReprocess(t *testing.T) {
	b := newBulkWorld(t)
	consumer, bystander := b.idleConsumer(t, "Consumer"), b.idleConsumer(t, "Bystander")
	path := "/v2/queues/" + b.queue + "/cases/bulk-reprocess"
	completed, failed, held := b.ids[7], b.ids[1], b.ids[11]
	body := map[string]any{"case_ids": []string{completed, failed, held}}

	b.insertTrigger(t, b.team, bystander, b.queue, false)
	runScenarios(t, b.s, []scenario{
		{name: "409 without an enabled consumer", method: "POST", path: path, key: b.member, body: body, wantStatus: 409, wantError: "conflict",
			wantContains: []string{"POST /v2/agents/{agent_id}/case-triggers"}},
		badRequest("400 agent_id with a disabled trigger", "POST", path, b.member, map[string]any{"case_ids": []string{completed}, "agent_id": bystander}, "agent_id "+bystander),
	})
	b.insertTrigger(t, b.team, consumer, b.queue, true)
	otherAgent := b.idleConsumer(t, "Elsewhere")
	b.insertTrigger(t, b.team, otherAgent, b.insertQueue(t, b.team, "Elsewhere"), true)
	runScenarios(t, b.s, []scenario{
		badRequest("400 agent_id consuming another queue", "POST", path, b.member, map[string]any{"case_ids": []string{completed}, "agent_id": otherAgent}, "agent_id"),
		badRequest("400 agent_id of another team", "POST", path, b.member, map[string]any{"case_ids": []string{completed}, "agent_id": b.otherAgent}, "agent_id"),
		{name: "200 reprocesses all but the held case", method: "POST", path: path, key: b.member, wantStatus: 200,
			body: map[string]any{"case_ids": []string{completed, failed, held}, "agent_id": consumer}, after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "bulkReprocessCases response", m, "reprocessedCount", "skippedCount", "delegatedCount", "retriedCount")
				wantCountField(t, m, "reprocessedCount", 2)
				wantCountField(t, m, "skippedCount", 1)
				if n := b.count(t, `SELECT count(*) FROM case_events WHERE type = 'reprocess' AND to_status = 'pending' AND json_extract(detail, '$.agent_id') = ?
					AND case_id IN (?, ?)`, consumer, completed, failed); n != 2 {
					t.Fatalf("%d reprocess events, want 2", n)
				}
				if n := b.count(t, "SELECT count(*) FROM case_events WHERE type = 'reprocess' AND case_id = ?", held); n != 0 {
					t.Fatal("the held case was reprocessed")
				}
			}},
	})
	if n := b.count(t, `SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id WHERE e.type = 'reprocess' AND e.case_id = ?
		AND e.from_status = 'failed'`, failed); n != 1 {
		t.Fatal("the reprocess event does not record the failed case's status before")
	}

	// all_matching: every completed or failed case.
	want := b.query(t, "c.status IN ('completed', 'failed')")
	m := b.post(t, b.member, "bulk-reprocess", map[string]any{"all_matching": true, "filters": map[string]any{"status": []string{"completed", "failed"}}})
	wantCountField(t, m, "reprocessedCount", len(want))
	if n := b.count(t, "SELECT count(*) FROM audit_log WHERE operation = 'bulkReprocessCases' AND json_extract(detail, '$.changed') = ?", len(want)); n != 1 {
		t.Fatalf("%d audit rows for the all_matching reprocess with its count, want 1", n)
	}
}

// TestBulkReprocessResetsCases checks every field the reset clears.
func TestBulkReprocessResetsCases(t *testing.T) {
	f := startFixture(t)
	f.insertTrigger(t, f.team, f.idleConsumer(t, "No setup"), f.queue, true)
	ids := f.createN(t, f.queue, "case", 2)
	f.exec(t, "UPDATE cases SET status = 'failed', attempt = 3, last_error = 'boom', completed_at = 1, result = 'r', run_after = 5, postponed_to = 9 WHERE id = ?", ids[0])
	start := time.Now().UnixMilli()
	r := f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/bulk-reprocess", f.member, map[string]any{"case_ids": ids})
	if r.Status != 200 {
		t.Fatalf("reprocess: %d %s", r.Status, r.Body)
	}
	if n := f.count(t, `SELECT count(*) FROM cases WHERE id = ? AND status = 'pending' AND attempt = 0 AND last_error IS NULL AND completed_at IS NULL
		AND result IS NULL AND postponed_to IS NULL AND run_after >= ?`, ids[0], start); n != 1 {
		t.Fatal("the failed case was not reset to a fresh pending case")
	}
}

// TestBulkRetryAndDelegateRedirect: the deprecated verbs answer 308 to bulk-reprocess,
// and Go's standard client, following it, ends up reprocessing (with the same body,
// credentials and Idempotency-Key).
func TestBulkRetryAndDelegateRedirect(t *testing.T) {
	b := newBulkWorld(t)
	consumer := b.idleConsumer(t, "Consumer")
	b.insertTrigger(t, b.team, consumer, b.queue, true)
	post := func(client *http.Client, verb string, body any, headers ...string) (*http.Response, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", b.s.URL+"/v2/queues/"+b.queue+"/cases/"+verb, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+b.member)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(out, &m)
		return resp, m
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ := post(noFollow, "bulk-retry", map[string]any{"case_ids": []string{b.ids[7]}})
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/v2/queues/"+b.queue+"/cases/bulk-reprocess" {
		t.Fatalf("bulk-retry: %d Location %q, want 308 to bulk-reprocess", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := b.count(t, "SELECT count(*) FROM case_events WHERE type = 'reprocess'"); n != 0 {
		t.Fatal("the redirect itself reprocessed")
	}

	std := &http.Client{}
	resp, m := post(std, "bulk-retry", map[string]any{"case_ids": []string{b.ids[7], b.ids[1]}}, "Idempotency-Key", "retry-1")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/v2/queues/"+b.queue+"/cases/bulk-reprocess" {
		t.Fatalf("followed bulk-retry ended at %s with %d: %v", resp.Request.URL.Path, resp.StatusCode, m)
	}
	wantCountField(t, m, "retriedCount", 2)
	resp, m = post(std, "bulk-retry", map[string]any{"case_ids": []string{b.ids[7], b.ids[1]}}, "Idempotency-Key", "retry-1")
	if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed bulk-retry: %d replayed=%q %v", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), m)
	}
	resp, m = post(std, "bulk-delegate", map[string]any{"case_ids": []string{b.ids[14]}, "agent_id": consumer})
	if resp.StatusCode != 200 {
		t.Fatalf("followed bulk-delegate: %d %v", resp.StatusCode, m)
	}
	wantCountField(t, m, "delegatedCount", 1)
	if n := b.count(t, "SELECT count(*) FROM case_events WHERE type = 'reprocess'"); n != 3 {
		t.Fatalf("%d reprocess events after following retry and delegate, want 3", n)
	}
	if n := b.count(t, "SELECT count(*) FROM audit_log WHERE operation = 'bulkReprocessCases'"); n != 2 {
		t.Fatalf("%d bulkReprocessCases audit rows, want 2 (the replay wrote none)", n)
	}

	resp, m = post(std, "bulk-retry", map[string]any{"case_ids": []string{"nope"}})
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(m["message"]), "case_ids[0]") {
		t.Fatalf("a bad body followed to bulk-reprocess: %d %v, want 400 naming case_ids[0]", resp.StatusCode, m)
	}
	runScenarios(t, b.s, append(unauthenticated("POST", "/v2/queues/"+b.queue+"/cases/bulk-retry", map[string]any{"case_ids": []string{b.ids[7]}}),
		forbidden("403 for a viewer", "POST", "/v2/queues/"+b.queue+"/cases/bulk-delegate", b.viewer, map[string]any{"case_ids": []string{b.ids[7]}}, "bulkDelegateCases")))
}

// TestBulkAddLabels: all_matching labels exactly the filtered cases, held ones too;
// cases that already carry the label are skipped and get no event; a second label is
// created on the queue once; viewers are refused.
func TestBulkAddLabels(t *testing.T) {
	b := newBulkWorld(t)
	const vip = `EXISTS (SELECT 1 FROM case_labels cl JOIN queue_labels l ON l.id = cl.label_id WHERE cl.case_id = c.id AND l.key = '' AND l.value = 'vip')`
	want := b.query(t, "c.data LIKE '%refund%' AND NOT "+vip)
	matched := b.query(t, "c.data LIKE '%refund%'")
	if len(want) == 0 || len(want) == len(matched) {
		t.Fatalf("data set: %d matched, %d to change; the test needs both kinds", len(matched), len(want))
	}
	m := b.post(t, b.member, "bulk-add-labels", map[string]any{"all_matching": true, "search": "refund",
		"labels": []any{map[string]any{"value": "vip"}}})
	wantCountField(t, m, "updatedCount", len(want))
	wantCountField(t, m, "skippedCount", len(matched)-len(want))
	if got := b.evented(t, "labels_assigned"); !slices.Equal(got, want) {
		t.Fatalf("labels assigned on %v, want exactly %v", got, want)
	}
	if got := b.query(t, "c.data LIKE '%refund%' AND NOT "+vip); len(got) != 0 {
		t.Fatalf("%d refund cases still lack vip", len(got))
	}

	m = b.post(t, b.member, "bulk-add-labels", map[string]any{"case_ids": []string{b.ids[3], b.ids[11]}, "labels": []any{map[string]any{"value": "escalated"}}})
	wantCountField(t, m, "updatedCount", 2)
	if n := b.count(t, "SELECT count(*) FROM queue_labels WHERE queue_id = ? AND key = '' AND value = 'escalated'", b.queue); n != 1 {
		t.Fatalf("%d escalated labels on the queue, want 1", n)
	}
	wantAudited(t, b.s, b.team, "bulkAddCaseLabels", b.queue, keyID(t, b.s, b.member), "success")

	path := "/v2/queues/" + b.queue + "/cases/bulk-add-labels"
	runScenarios(t, b.s, []scenario{
		forbidden("403 for a viewer", "POST", path, b.viewer, map[string]any{"case_ids": []string{b.ids[3]}, "labels": []any{map[string]any{"value": "x"}}}, "bulkAddCaseLabels"),
		badRequest("400 no labels", "POST", path, b.member, map[string]any{"case_ids": []string{b.ids[3]}, "labels": []any{}}, "labels"),
		badRequest("400 empty value", "POST", path, b.member, map[string]any{"case_ids": []string{b.ids[3]}, "labels": []any{map[string]any{"key": "k", "value": " "}}}, "labels[0].value"),
	})
}

// TestDecidedCasesAreNotHeld: a case its run completed or failed still names that run,
// but no run holds it: it can be reprocessed (and runs again, its run link cleared),
// have its status set, be deleted one by one or with the queue's other cases.
func TestDecidedCasesAreNotHeld(t *testing.T) {
	f := startFixture(t)
	f.insertTrigger(t, f.team, f.idleConsumer(t, "Consumer"), f.queue, true)
	ids := f.createN(t, f.queue, "case", 5)
	for i, id := range ids[:4] {
		f.hold(t, id)
		f.exec(t, "UPDATE cases SET status = ?, completed_at = 1 WHERE id = ?", []string{"completed", "failed"}[i%2], id)
	}
	held := ids[4]
	f.hold(t, held)

	r := f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/bulk-reprocess", f.member, map[string]any{"case_ids": []string{ids[0], ids[1], held}})
	m := r.JSON(t)
	wantCountField(t, m, "reprocessedCount", 2)
	wantCountField(t, m, "skippedCount", 1)
	if n := f.count(t, "SELECT count(*) FROM cases WHERE id IN (?, ?) AND status = 'pending' AND claimed_by_run_id IS NULL", ids[0], ids[1]); n != 2 {
		t.Fatalf("%d of the 2 decided cases are pending and free to dispatch, want 2", n)
	}
	r = f.s.Do(t, "POST", "/v2/queues/"+f.queue+"/cases/bulk-update-status", f.member, map[string]any{"case_ids": []string{ids[2], held}, "status": "failed"})
	wantCountField(t, r.JSON(t), "updatedCount", 1)
	if r := f.s.Do(t, "DELETE", "/v2/cases/"+ids[3], f.member, nil); r.Status != 200 {
		t.Fatalf("deleting a completed case: %d %s", r.Status, r.Body)
	}
	if r := f.s.Do(t, "DELETE", "/v2/cases/"+held, f.member, nil); r.Status != 409 {
		t.Fatalf("deleting a held case: %d %s, want 409", r.Status, r.Body)
	}
	r = f.s.Do(t, "DELETE", "/v2/queues/"+f.queue+"/cases?confirm="+f.queue, f.member, nil)
	m = r.JSON(t)
	wantCountField(t, m, "deletedCount", 3)
	wantCountField(t, m, "skippedCount", 1)
}
