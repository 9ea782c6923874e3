package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookFixture is a store with a fake clock, the Default team and an actor for it.
type hookFixture struct {
	s     *Store
	ctx   context.Context
	team  string
	actor Actor
	clock time.Time
}

func newHookFixture(t *testing.T) *hookFixture {
	t.Helper()
	f := &hookFixture{s: openTest(t), ctx: context.Background(), clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.s.now = func() time.Time { return f.clock }
	team, _, err := f.s.Bootstrap(f.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := f.s.TeamOwner(f.ctx, team.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.team = team.ID
	f.actor = Actor{TeamID: team.ID, UserID: owner.ID, Channel: "api", Operation: "test"}
	return f
}

func (f *hookFixture) hook(t *testing.T, a Actor, url string, enabled bool, events ...string) Webhook {
	t.Helper()
	w, err := f.s.CreateWebhook(f.ctx, a, NewWebhook{URL: url, Events: events, Enabled: enabled})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// enqueue runs enqueueWebhooks in its own transaction, as a state change would.
func (f *hookFixture) enqueue(t *testing.T, team, runURL string, ev WebhookEvent) {
	t.Helper()
	if err := f.s.write(f.ctx, func(tx *sql.Tx) error { return f.s.enqueueWebhooks(f.ctx, tx, team, runURL, ev) }); err != nil {
		t.Fatal(err)
	}
}

func (f *hookFixture) deliveries(t *testing.T, df DeliveryFilter) []WebhookDelivery {
	t.Helper()
	if df.Limit == 0 {
		df.Limit = 100
	}
	ds, total, err := f.s.ListWebhookDeliveries(f.ctx, f.team, df)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(ds) {
		t.Fatalf("total %d, listed %d", total, len(ds))
	}
	return ds
}

func urlsOf(ds []WebhookDelivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.URL)
	}
	slices.Sort(out)
	return out
}

func TestEnqueueWebhooksFansOutToRunURLAndMatchingSubscriptions(t *testing.T) {
	f := newHookFixture(t)
	all := f.hook(t, f.actor, "https://all.example/hook", true)
	f.hook(t, f.actor, "https://failures.example/hook", true, EventRunFailed, EventRunInterrupted)
	f.hook(t, f.actor, "https://disabled.example/hook", false)
	otherTeam, err := f.s.CreateTeam(f.ctx, f.actor, "Other", f.actor.UserID)
	if err != nil {
		t.Fatal(err)
	}
	f.hook(t, Actor{TeamID: otherTeam.ID, UserID: f.actor.UserID, Channel: "api", Operation: "test"}, "https://other-team.example/hook", true)

	at := time.Date(2026, 3, 1, 11, 59, 58, 123_000_000, time.FixedZone("CET", 3600))
	f.enqueue(t, f.team, "https://run.example/cb?token=x", WebhookEvent{Event: EventRunCompleted, RunID: "run-1", AgentID: "agent-1", Status: "completed", Time: at})
	ds := f.deliveries(t, DeliveryFilter{RunID: "run-1"})
	if got, want := urlsOf(ds), []string{"https://all.example/hook", "https://run.example/cb?token=x"}; !slices.Equal(got, want) {
		t.Fatalf("run_completed went to %v, want %v (the run's URL and the subscription to all events only)", got, want)
	}
	for _, d := range ds {
		if d.Status != DeliveryPending || d.Attempts != 0 || d.Event != EventRunCompleted || d.TeamID != f.team {
			t.Fatalf("new delivery = %+v", d)
		}
		if want := `{"event":"run_completed","run_id":"run-1","agent_id":"agent-1","status":"completed","timestamp":"2026-03-01T10:59:58.123Z"}`; string(d.Payload) != want {
			t.Fatalf("payload = %s\nwant      %s", d.Payload, want)
		}
		if d.URL == "https://run.example/cb?token=x" && d.WebhookID != nil {
			t.Fatalf("the run's own delivery has webhook_id %s, want NULL", *d.WebhookID)
		}
		if d.URL == all.URL && (d.WebhookID == nil || *d.WebhookID != all.ID) {
			t.Fatalf("subscription delivery has webhook_id %v, want %s", d.WebhookID, all.ID)
		}
	}

	// Without a run URL only subscriptions get it; optional fields appear when set, and a
	// zero Time becomes the enqueue time.
	f.enqueue(t, f.team, "", WebhookEvent{Event: EventRunFailed, RunID: "run-2", AgentID: "agent-1", Status: "failed", CaseID: "case-9"})
	ds = f.deliveries(t, DeliveryFilter{RunID: "run-2"})
	if got, want := urlsOf(ds), []string{"https://all.example/hook", "https://failures.example/hook"}; !slices.Equal(got, want) {
		t.Fatalf("run_failed went to %v, want %v", got, want)
	}
	if want := `{"event":"run_failed","run_id":"run-2","agent_id":"agent-1","status":"failed","case_id":"case-9","timestamp":"2026-03-01T12:00:00.000Z"}`; string(ds[0].Payload) != want {
		t.Fatalf("payload = %s\nwant      %s", ds[0].Payload, want)
	}
	f.enqueue(t, f.team, "", WebhookEvent{Event: EventHumanRequestCreated, RunID: "run-3", AgentID: "a", Status: "waiting",
		RequestID: "req-1", Title: "Approve refund", Description: "Refund 40 EUR?"})
	ds = f.deliveries(t, DeliveryFilter{RunID: "run-3"})
	if len(ds) != 1 || string(ds[0].Payload) != `{"event":"human_request_created","run_id":"run-3","agent_id":"a","status":"waiting","request_id":"req-1","title":"Approve refund","description":"Refund 40 EUR?","timestamp":"2026-03-01T12:00:00.000Z"}` {
		t.Fatalf("human_request_created deliveries = %+v", ds)
	}

	// The outbox is part of the caller's transaction: a rolled-back state change sends nothing.
	before := len(f.deliveries(t, DeliveryFilter{}))
	boom := errors.New("state change failed")
	err = f.s.write(f.ctx, func(tx *sql.Tx) error {
		if err := f.s.enqueueWebhooks(f.ctx, tx, f.team, "https://run.example/cb", WebhookEvent{Event: EventRunInterrupted, RunID: "run-4"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write = %v", err)
	}
	if after := len(f.deliveries(t, DeliveryFilter{})); after != before {
		t.Fatalf("a rolled-back transaction left %d outbox rows", after-before)
	}
	if err := f.s.write(f.ctx, func(tx *sql.Tx) error {
		return f.s.enqueueWebhooks(f.ctx, tx, f.team, "", WebhookEvent{Event: EventPing})
	}); err == nil || !strings.Contains(err.Error(), "ping") {
		t.Fatalf("enqueueing a non-run event = %v, want an error naming it", err)
	}
}

func TestWebhookEventsAreValidated(t *testing.T) {
	f := newHookFixture(t)
	_, err := f.s.CreateWebhook(f.ctx, f.actor, NewWebhook{URL: "https://x.example", Events: []string{EventRunFailed, "run_exploded"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "events[1]") || !strings.Contains(err.Error(), "run_exploded") {
		t.Fatalf("unknown event: %v, want an invalid error naming events[1]", err)
	}
	w := f.hook(t, f.actor, "https://x.example", true, EventRunFailed, EventRunFailed)
	if !slices.Equal(w.Events, []string{EventRunFailed}) {
		t.Fatalf("events = %v, want duplicates dropped", w.Events)
	}
	if _, err := f.s.UpdateWebhook(f.ctx, f.actor, w.ID, WebhookPatch{Events: &[]string{EventPing}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("subscribing to ping = %v, want invalid", err)
	}
	other := Actor{TeamID: NewID(), UserID: f.actor.UserID, Channel: "api", Operation: "test"}
	if _, err := f.s.UpdateWebhook(f.ctx, other, w.ID, WebhookPatch{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update from another team = %v, want not found", err)
	}
}

// TestClaimLeaseAndRetry walks deliveries through claim, success, retry, lease expiry and
// final failure on a fake clock.
func TestClaimLeaseAndRetry(t *testing.T) {
	f := newHookFixture(t)
	t0 := f.clock
	for _, run := range []string{"r1", "r2", "r3"} {
		f.enqueue(t, f.team, "https://"+run+".example/", WebhookEvent{Event: EventRunCompleted, RunID: run})
		f.clock = f.clock.Add(time.Millisecond)
	}
	f.clock = t0.Add(time.Second)
	lease := time.Minute
	claim := func(t *testing.T, limit int) []WebhookDelivery {
		t.Helper()
		ds, err := f.s.ClaimWebhookDeliveries(f.ctx, lease, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	first := claim(t, 2)
	if len(first) != 2 || first[0].RunID == nil || *first[0].RunID != "r1" || *first[1].RunID != "r2" {
		t.Fatalf("first claim = %+v, want r1 and r2, oldest first", first)
	}
	for _, d := range first {
		if d.Status != DeliveryDelivering || d.Attempts != 1 {
			t.Fatalf("claimed = %+v, want delivering, attempt 1", d)
		}
	}
	d1, d2 := first[0], first[1]
	rest := claim(t, 10)
	if len(rest) != 1 || *rest[0].RunID != "r3" {
		t.Fatalf("second claim = %+v, want only r3", rest)
	}
	d3 := rest[0]
	if more := claim(t, 10); len(more) != 0 {
		t.Fatalf("a leased delivery was claimed again before its lease ended: %+v", more)
	}

	if err := f.s.MarkWebhookDelivered(f.ctx, d1.ID, 1, 204); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkWebhookFailed(f.ctx, d2.ID, 1, WebhookFailure{StatusCode: 503, Reason: "HTTP 503 Service Unavailable", RetryIn: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Next due: d3's lease ends (t0+1s+60s) before d2's retry (t0+1s+2m).
	next, ok, err := f.s.NextWebhookDue(f.ctx)
	if err != nil || !ok || !next.Equal(t0.Add(time.Second+lease+time.Millisecond)) {
		t.Fatalf("next due = %v %v %v, want d3's lease end %v", next, ok, err, t0.Add(time.Second+lease))
	}

	// d3's holder "died": after the lease it is claimed again, as attempt 2, same id.
	f.clock = t0.Add(62 * time.Second)
	again := claim(t, 10)
	if len(again) != 1 || again[0].ID != d3.ID || again[0].Attempts != 2 {
		t.Fatalf("claim after lease expiry = %+v, want d3 as attempt 2", again)
	}
	// The dead holder's late reports change nothing.
	if err := f.s.MarkWebhookFailed(f.ctx, d3.ID, 1, WebhookFailure{Reason: "late", Final: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkWebhookDelivered(f.ctx, d3.ID, 1, 200); err != nil {
		t.Fatal(err)
	}
	if ds := f.deliveries(t, DeliveryFilter{Status: DeliveryDelivering}); len(ds) != 1 || ds[0].ID != d3.ID || ds[0].Attempts != 2 {
		t.Fatalf("after stale reports: delivering = %+v, want d3 untouched", ds)
	}

	f.clock = t0.Add(time.Second + 2*time.Minute)
	retry := claim(t, 10)
	if len(retry) != 1 || retry[0].ID != d2.ID || retry[0].Attempts != 2 {
		t.Fatalf("claim at retry time = %+v, want d2 as attempt 2", retry)
	}
	if err := f.s.MarkWebhookFailed(f.ctx, d2.ID, 2, WebhookFailure{Reason: "connection refused", Final: true}); err != nil {
		t.Fatal(err)
	}

	delivered := f.deliveries(t, DeliveryFilter{Status: DeliveryDelivered})
	if len(delivered) != 1 || delivered[0].ID != d1.ID || delivered[0].DeliveredAt == nil || *delivered[0].LastStatusCode != 204 {
		t.Fatalf("delivered = %+v", delivered)
	}
	failed := f.deliveries(t, DeliveryFilter{Status: DeliveryFailed})
	if len(failed) != 1 || failed[0].ID != d2.ID || failed[0].LastError == nil || *failed[0].LastError != "connection refused" || failed[0].LastStatusCode != nil {
		t.Fatalf("failed = %+v", failed)
	}
	f.clock = f.clock.Add(48 * time.Hour)
	if ds := claim(t, 10); len(ds) != 1 || ds[0].ID != d3.ID {
		t.Fatalf("claim much later = %+v, want only d3 (lease expired again); delivered and failed rows are never claimed", ds)
	}
}

func TestNextWebhookDueWhenIdle(t *testing.T) {
	f := newHookFixture(t)
	if _, ok, err := f.s.NextWebhookDue(f.ctx); ok || err != nil {
		t.Fatalf("empty outbox: ok=%v err=%v, want nothing due", ok, err)
	}
	f.enqueue(t, f.team, "https://x.example/", WebhookEvent{Event: EventRunCompleted, RunID: "r"})
	if next, ok, _ := f.s.NextWebhookDue(f.ctx); !ok || !next.Equal(f.clock) {
		t.Fatalf("next due = %v %v, want now", next, ok)
	}
}

func TestDeleteWebhookGivesUpItsPendingDeliveries(t *testing.T) {
	f := newHookFixture(t)
	w := f.hook(t, f.actor, "https://gone.example/", true)
	f.enqueue(t, f.team, "", WebhookEvent{Event: EventRunCompleted, RunID: "r1"})
	f.enqueue(t, f.team, "https://run.example/", WebhookEvent{Event: EventRunFailed, RunID: "r2"})
	inFlight, err := f.s.ClaimWebhookDeliveries(f.ctx, time.Minute, 1)
	if err != nil || len(inFlight) != 1 || inFlight[0].WebhookID == nil || *inFlight[0].WebhookID != w.ID {
		t.Fatalf("claim = %+v %v, want r1's delivery to the webhook", inFlight, err)
	}
	if err := f.s.DeleteWebhook(f.ctx, f.actor, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GetWebhook(f.ctx, f.team, w.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted webhook still readable: %v", err)
	}
	for _, d := range f.deliveries(t, DeliveryFilter{WebhookID: w.ID}) {
		if d.Status != DeliveryFailed || d.LastError == nil || !strings.Contains(*d.LastError, "deleted") {
			t.Fatalf("delivery of the deleted webhook = %+v, want failed naming the deletion", d)
		}
	}
	if ds := f.deliveries(t, DeliveryFilter{Status: DeliveryPending}); len(ds) != 1 || ds[0].URL != "https://run.example/" {
		t.Fatalf("pending = %+v, want only the run's own delivery", ds)
	}
	// An attempt in flight when the webhook was deleted may still succeed; the log says so.
	if err := f.s.MarkWebhookDelivered(f.ctx, inFlight[0].ID, 1, 200); err != nil {
		t.Fatal(err)
	}
	if ds := f.deliveries(t, DeliveryFilter{Status: DeliveryDelivered}); len(ds) != 1 || ds[0].ID != inFlight[0].ID {
		t.Fatalf("delivered = %+v, want the attempt that was in flight", ds)
	}
	if err := f.s.DeleteWebhook(f.ctx, f.actor, w.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete = %v, want not found", err)
	}
	entries, _, _ := f.s.ListAudit(f.ctx, f.team, AuditFilter{Limit: 100})
	if !slices.ContainsFunc(entries, func(e AuditEntry) bool {
		return e.TargetType == "webhook" && e.TargetID == w.ID && e.Outcome == "success"
	}) {
		t.Fatal("the delete was not audited")
	}
}

// TestClaimIsExclusiveAcrossProcesses has two stores on one file (as two processes would)
// claim the same outbox at once: every delivery is claimed exactly once.
func TestClaimIsExclusiveAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFile)
	a, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	team, _, err := a.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		if err := a.write(ctx, func(tx *sql.Tx) error {
			return a.enqueueWebhooks(ctx, tx, team.ID, "https://x.example/", WebhookEvent{Event: EventRunCompleted, RunID: string(rune('a' + i%26))})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for {
				ds, err := s.ClaimWebhookDeliveries(ctx, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d deliveries claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %s claimed %d times", id, c)
		}
	}
}
