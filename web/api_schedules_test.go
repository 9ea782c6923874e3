package web_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"docket/internal/testkit"
	"docket/runtime"
	"docket/store"
)

// schedWorld is a server whose scheduler runs on a fake clock, with an Assignment whose
// runs a fake model completes.
type schedWorld struct {
	*world
	clock *clockwork.FakeClock
	agent string
}

func newSchedWorld(t *testing.T, start time.Time) *schedWorld {
	t.Helper()
	fake := testkit.NewFakeOllama(t)
	m, err := runtime.NewOllama(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(start)
	w := newWorld(t, testkit.Options{Model: m, ModelHost: fake.URL, Clock: clock})
	agent, _ := createAgent(t, w.s, w.team, w.owner, "Morning report", true)
	return &schedWorld{world: w, clock: clock, agent: agent}
}

func (w *schedWorld) path() string { return "/v2/agents/" + w.agent + "/schedules" }

func (w *schedWorld) create(t *testing.T, key string, body map[string]any) map[string]any {
	t.Helper()
	r := w.s.Do(t, "POST", w.path(), key, body)
	if r.Status != 200 {
		t.Fatalf("createSchedule: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

func (w *schedWorld) patch(t *testing.T, id string, body map[string]any) map[string]any {
	t.Helper()
	r := w.s.Do(t, "PATCH", w.path()+"/"+id, w.owner, body)
	if r.Status != 200 {
		t.Fatalf("updateSchedule: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// advanceTo moves the fake clock to target once the scheduler has its next timer set
// (timers is how many schedules it runs), so no tick is skipped.
func advanceTo(t *testing.T, clock *clockwork.FakeClock, timers int, target time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, timers); err != nil {
		t.Fatalf("the scheduler set no timer before %s: %v", target, err)
	}
	clock.Advance(target.Sub(clock.Now()))
}

// waitFires polls the schedule's fire records until there are n and returns them.
func waitFires(t *testing.T, s *testkit.Server, id string, n int) []store.ScheduleFireRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fires, err := s.Store.ScheduleFires(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(fires) > n {
			t.Fatalf("%d fires, want %d: %+v", len(fires), n, fires)
		}
		if len(fires) == n {
			return fires
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fires after 10 s, want %d: %+v", len(fires), n, fires)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func scheduleRuns(t *testing.T, s *testkit.Server, team string) []store.Run {
	t.Helper()
	runs, _, err := s.Store.ListRuns(context.Background(), team, store.RunFilter{Source: "schedule", Asc: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestScheduleWorkdayAcrossDST: "every workday at 08:30 Europe/Prague" on gocron's fake
// clock, hour by hour over a weekend with a DST change (spring and autumn): exactly one
// run per weekday slot, at 08:30 local on both sides of the change, none on the weekend.
func TestScheduleWorkdayAcrossDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Prague")
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, loc) }
	for _, tc := range []struct {
		name       string
		start, end time.Time
		slots      []time.Time
		utc        []string
	}{
		{"spring", at(2026, 3, 26, 12, 0), at(2026, 3, 31, 12, 0),
			[]time.Time{at(2026, 3, 27, 8, 30), at(2026, 3, 30, 8, 30), at(2026, 3, 31, 8, 30)},
			[]string{"2026-03-27T07:30:00Z", "2026-03-30T06:30:00Z", "2026-03-31T06:30:00Z"}},
		{"autumn", at(2026, 10, 22, 12, 0), at(2026, 10, 27, 12, 0),
			[]time.Time{at(2026, 10, 23, 8, 30), at(2026, 10, 26, 8, 30), at(2026, 10, 27, 8, 30)},
			[]string{"2026-10-23T06:30:00Z", "2026-10-26T07:30:00Z", "2026-10-27T07:30:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSchedWorld(t, tc.start)
			sc := w.create(t, w.member, map[string]any{"enabled": true, "frequency": "workday", "time": "08:30", "timezone": "Europe/Prague",
				"message": "Send the morning report."})
			id := sc["id"].(string)
			if got := sc["next_run_at"]; got != tc.slots[0].UTC().Format("2006-01-02T15:04:05.000Z") {
				t.Fatalf("next_run_at = %v, want %s", got, tc.slots[0].UTC())
			}
			// Hourly steps, landing exactly on every slot.
			var steps []time.Time
			for s := tc.start.Add(time.Hour); !s.After(tc.end); s = s.Add(time.Hour) {
				for _, slot := range tc.slots {
					if slot.After(s.Add(-time.Hour)) && slot.Before(s) {
						steps = append(steps, slot)
					}
				}
				steps = append(steps, s)
			}
			for _, step := range steps {
				advanceTo(t, w.clock, 1, step)
				due := 0
				for _, slot := range tc.slots {
					if !slot.After(step) {
						due++
					}
				}
				fires := waitFires(t, w.s, id, due)
				if due > 0 && !fires[due-1].ScheduledFor.Equal(tc.slots[due-1]) {
					t.Fatalf("at %s: fired %s, want %s", step, fires[due-1].ScheduledFor, tc.slots[due-1])
				}
			}
			fires := waitFires(t, w.s, id, len(tc.slots))
			runs := scheduleRuns(t, w.s, w.team)
			if len(runs) != len(tc.slots) {
				t.Fatalf("%d scheduled runs, want %d", len(runs), len(tc.slots))
			}
			for i, f := range fires {
				if got := f.ScheduledFor.UTC().Format(time.RFC3339); got != tc.utc[i] {
					t.Errorf("fire %d for %s, want %s", i, got, tc.utc[i])
				}
				if local := f.ScheduledFor.In(loc); local.Hour() != 8 || local.Minute() != 30 {
					t.Errorf("fire %d at %s local, want 08:30", i, local.Format("15:04"))
				}
				if f.RunID == nil || *f.RunID != runs[i].ID {
					t.Errorf("fire %d started run %v, want %s", i, f.RunID, runs[i].ID)
				}
			}
			// The runs are real: the engine picked them up and the model completed them,
			// with the schedule's message as the first message.
			j := &jobs{world: w.world}
			done := j.waitRun(t, runs[0].ID, "completed")
			if field(t, done, "run", "source") != "schedule" {
				t.Fatalf("source %v", field(t, done, "run", "source"))
			}
			if msgs := j.messages(t, runs[0].ID); msgs[0]["text_content"] != "Send the morning report." {
				t.Fatalf("first message %v", msgs[0]["text_content"])
			}
		})
	}
}

// runScheduler runs a second scheduler process-alike on the server's database until the
// returned stop is called; it returns once the start-up catch-up is done.
func runScheduler(t *testing.T, s *testkit.Server, clock clockwork.Clock) (stop func()) {
	t.Helper()
	sc, err := runtime.NewScheduler(runtime.SchedulerConfig{Store: s.Store, Clock: clock, Started: s.Engine.RunCreated,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	select {
	case <-sc.Ready():
	case err := <-done:
		t.Fatalf("scheduler stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("scheduler not ready after 10 s")
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
	}
}

// TestScheduleCatchUpOnceAfterDowntime: a daily schedule whose process was down from
// Monday 08:00 to Thursday 09:00 fires exactly one catch-up run (Thursday's slot), and
// restarts, quick or concurrent, never fire a slot twice.
func TestScheduleCatchUpOnceAfterDowntime(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Prague")
	w := newSchedWorld(t, time.Date(2026, 6, 1, 8, 0, 0, 0, loc))
	id := w.create(t, w.member, map[string]any{"enabled": true, "frequency": "daily", "time": "08:30", "timezone": "Europe/Prague"})["id"].(string)

	// The server's own scheduler stays at Monday 08:00: it stands for the process that
	// went down. The restarted one wakes on Thursday at 09:00.
	later := clockwork.NewFakeClockAt(time.Date(2026, 6, 4, 9, 0, 0, 0, loc))
	runScheduler(t, w.s, later)()
	fires := waitFires(t, w.s, id, 1)
	if want := time.Date(2026, 6, 4, 8, 30, 0, 0, loc); !fires[0].ScheduledFor.Equal(want) {
		t.Fatalf("catch-up fired %s, want %s (the latest missed slot)", fires[0].ScheduledFor, want)
	}
	if n := len(scheduleRuns(t, w.s, w.team)); n != 1 {
		t.Fatalf("%d runs after one restart, want 1", n)
	}

	// Quick restarts, one after another and two at the same moment.
	for range 3 {
		runScheduler(t, w.s, later)()
	}
	var wg sync.WaitGroup
	stops := make([]func(), 2)
	for i := range stops {
		wg.Go(func() { stops[i] = runScheduler(t, w.s, later) })
	}
	wg.Wait()
	if got := waitFires(t, w.s, id, 1); len(scheduleRuns(t, w.s, w.team)) != 1 {
		t.Fatalf("restarts fired again: %+v", got)
	}

	// Both running processes tick at Friday 08:30: one fire, one run.
	advanceTo(t, later, 2, time.Date(2026, 6, 5, 8, 30, 0, 0, loc))
	fires = waitFires(t, w.s, id, 2)
	if want := time.Date(2026, 6, 5, 8, 30, 0, 0, loc); !fires[1].ScheduledFor.Equal(want) {
		t.Fatalf("fired %s, want %s", fires[1].ScheduledFor, want)
	}
	for _, stop := range stops {
		stop()
	}
	if n := len(scheduleRuns(t, w.s, w.team)); n != 2 {
		t.Fatalf("%d runs for two slots", n)
	}
}

// TestScheduleChangesApplyLive: moving a schedule's time takes effect without a restart;
// disabling stops it; enabling again fires no catch-up for the days it was off; a
// one-time schedule fires once and disables itself; a deleted one stops.
func TestScheduleChangesApplyLive(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Prague")
	day := func(d, h, m int) time.Time { return time.Date(2026, 6, d, h, m, 0, 0, loc) }
	w := newSchedWorld(t, day(1, 8, 0))
	id := w.create(t, w.member, map[string]any{"enabled": true, "frequency": "daily", "time": "08:30", "timezone": "Europe/Prague"})["id"].(string)

	sc := w.patch(t, id, map[string]any{"time": "08:10"})
	if sc["time"] != "08:10" || sc["next_run_at"] != "2026-06-01T06:10:00.000Z" {
		t.Fatalf("after the change: time %v, next_run_at %v", sc["time"], sc["next_run_at"])
	}
	advanceTo(t, w.clock, 1, day(1, 8, 10))
	if f := waitFires(t, w.s, id, 1); !f[0].ScheduledFor.Equal(day(1, 8, 10)) {
		t.Fatalf("fired for %s, want 08:10", f[0].ScheduledFor)
	}
	advanceTo(t, w.clock, 1, day(1, 8, 30))
	advanceTo(t, w.clock, 1, day(2, 8, 10))
	waitFires(t, w.s, id, 2)

	w.patch(t, id, map[string]any{"enabled": false})
	w.clock.Advance(day(4, 9, 0).Sub(w.clock.Now())) // no timer is set while disabled
	sc = w.patch(t, id, map[string]any{"enabled": true})
	if sc["next_run_at"] != "2026-06-05T06:10:00.000Z" {
		t.Fatalf("re-enabled: next_run_at %v", sc["next_run_at"])
	}
	runScheduler(t, w.s, w.clock)() // a restart now has nothing to catch up
	waitFires(t, w.s, id, 2)

	once := w.create(t, w.member, map[string]any{"enabled": true, "frequency": "daily", "time": "09:30", "timezone": "Europe/Prague",
		"recurring": false, "message": "Just once."})["id"].(string)
	advanceTo(t, w.clock, 2, day(4, 9, 30))
	waitFires(t, w.s, once, 1)
	r := w.s.Do(t, "GET", w.path(), w.viewer, nil)
	var list struct{ Schedules []map[string]any }
	r.Decode(t, &list)
	for _, s := range list.Schedules {
		if s["id"] == once && (s["enabled"] != false || s["auto_disabled_at"] == nil || s["next_run_at"] != nil || s["task"] != "Just once.") {
			t.Fatalf("one-time schedule after firing: %v", s)
		}
	}
	if r := w.s.Do(t, "DELETE", w.path()+"/"+id, w.member, nil); r.Status != 200 {
		t.Fatalf("deleteSchedule: %d %s", r.Status, r.Body)
	}
	before := len(scheduleRuns(t, w.s, w.team))
	w.clock.Advance(day(6, 12, 0).Sub(w.clock.Now()))
	if n := len(scheduleRuns(t, w.s, w.team)); n != before {
		t.Fatalf("a deleted or one-time schedule fired: %d runs, had %d", n, before)
	}
	if before != 3 {
		t.Fatalf("%d scheduled runs, want 3 (two daily, one one-time)", before)
	}
}

func TestScheduleAPIScenarios(t *testing.T) {
	w := newSchedWorld(t, time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	base := w.path()
	valid := map[string]any{"enabled": true, "frequency": "workday", "time": "08:30", "timezone": "Europe/Prague"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range valid {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	var adminSched, memberSched string
	runScenarios(t, w.s, []scenario{
		{name: "bad timezone names the field", method: "POST", path: base, key: w.member, body: with("timezone", "Europe/Atlantis"),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"timezone", "Europe/Atlantis", "IANA"}},
		{name: "missing timezone", method: "POST", path: base, key: w.member, body: with("timezone", nil),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"timezone"}},
		{name: "bad time", method: "POST", path: base, key: w.member, body: with("time", "8.30am"),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"time:", "HH:MM"}},
		{name: "daily without time", method: "POST", path: base, key: w.member, body: with("time", nil),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"time: required"}},
		{name: "weekly without day", method: "POST", path: base, key: w.member, body: with("frequency", "weekly"),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"day: required"}},
		{name: "unknown frequency", method: "POST", path: base, key: w.member, body: with("frequency", "fortnightly"),
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"frequency"}},
		{name: "bad cron", method: "POST", path: base, key: w.member, body: map[string]any{"enabled": true, "frequency": "custom", "cron": "99 * * * *", "timezone": "UTC"},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"cron:", "99 * * * *"}},
		{name: "viewer cannot create", method: "POST", path: base, key: w.viewer, body: valid, wantStatus: 403, wantError: "forbidden"},
		{name: "other team's assignment", method: "POST", path: "/v2/agents/" + w.otherAgent + "/schedules", key: w.owner, body: valid,
			wantStatus: 404, wantError: "not_found"},
		{name: "other team lists nothing of ours", method: "GET", path: base, key: w.otherKey, wantStatus: 404, wantError: "not_found"},
		{name: "custom without cron", method: "POST", path: base, key: w.admin, body: with("frequency", "custom"),
			wantStatus: 400, wantContains: []string{"cron: required"}},
		{name: "admin creates custom", method: "POST", path: base, key: w.admin,
			body: map[string]any{"enabled": true, "frequency": "custom", "cron": "*/10 9-17 * * 1-5", "timezone": "America/New_York"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) { adminSched = r.JSON(t)["id"].(string) }},
		{name: "member creates monthly", method: "POST", path: base, key: w.member,
			body: map[string]any{"enabled": true, "frequency": "monthly", "time": "7:05", "day_of_month": 31, "timezone": "UTC", "task": "Close the month."}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				memberSched = m["id"].(string)
				if m["time"] != "07:05" || m["task"] != "Close the month." || m["message"] != "Close the month." || m["next_run_at"] != "2026-06-30T07:05:00.000Z" {
					t.Fatalf("monthly on the 31st: %v", m)
				}
			}},
	})
	runScenarios(t, w.s, []scenario{
		{name: "member cannot change an admin's schedule", method: "PATCH", path: base + "/" + adminSched, key: w.member, body: map[string]any{"enabled": false},
			wantStatus: 403, wantError: "forbidden", wantContains: []string{"owner"}},
		{name: "admin changes a member's schedule", method: "PATCH", path: base + "/" + memberSched, key: w.admin, body: map[string]any{"day_of_month": 15},
			wantStatus: 200, wantContains: []string{`"day_of_month":15`}},
		{name: "clearing a required field", method: "PATCH", path: base + "/" + memberSched, key: w.member, body: map[string]any{"day_of_month": nil},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"day_of_month: required"}},
		{name: "message and task must agree", method: "PATCH", path: base + "/" + memberSched, key: w.member, body: map[string]any{"message": "a", "task": "b"},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"message and task"}},
		{name: "unknown schedule", method: "PATCH", path: base + "/" + randomID(), key: w.owner, body: map[string]any{"enabled": false},
			wantStatus: 404, wantError: "not_found"},
		{name: "member cannot delete an admin's schedule", method: "DELETE", path: base + "/" + adminSched, key: w.member, wantStatus: 403, wantError: "forbidden"},
		{name: "owner deletes", method: "DELETE", path: base + "/" + adminSched, key: w.owner, wantStatus: 200, wantContains: []string{`"success":true`}},
		{name: "list", method: "GET", path: base, key: w.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			var out struct{ Schedules []map[string]any }
			r.Decode(t, &out)
			if len(out.Schedules) != 1 || out.Schedules[0]["id"] != memberSched {
				t.Fatalf("schedules %v, want only the member's", out.Schedules)
			}
		}},
	})
	entries, _, err := w.s.Store.ListAudit(context.Background(), w.team, store.AuditFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, e := range entries {
		if e.TargetType == "schedule" && e.Outcome == "success" {
			ops[e.Operation]++
		}
	}
	if ops["createSchedule"] != 2 || ops["updateSchedule"] != 1 || ops["deleteSchedule"] != 1 {
		t.Fatalf("audited schedule changes: %v", ops)
	}
	if !strings.Contains(string(w.s.Do(t, "GET", base, w.viewer, nil).Body), `"build_id":"`) {
		t.Fatal("schedules carry no build_id")
	}
}

func TestSchedulesResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	w := newSchedWorld(t, time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	doc := fetchOpenAPI(t, w.s)
	var id string
	coverReference(t, ref, doc, []responseCase{
		{"createSchedule", "200", func(t *testing.T) *testkit.Response {
			r := w.s.Do(t, "POST", w.path(), w.member, map[string]any{"enabled": true, "frequency": "hourly", "timezone": "UTC"})
			id, _ = r.JSON(t)["id"].(string)
			return r
		}, 1},
		{"updateSchedule", "200", func(t *testing.T) *testkit.Response {
			return w.s.Do(t, "PATCH", w.path()+"/"+id, w.member, map[string]any{"frequency": "every_15_minutes"})
		}, 1},
		{"listAgentSchedules", "200", func(t *testing.T) *testkit.Response { return w.s.Do(t, "GET", w.path(), w.viewer, nil) }, 2},
		{"deleteSchedule", "200", func(t *testing.T) *testkit.Response { return w.s.Do(t, "DELETE", w.path()+"/"+id, w.member, nil) }, 1},
	})
}

// TestScheduleWithoutLiveSetup: a slot of an Assignment with no live setup fires without a
// run, and the schedule says why instead of retrying the slot.
func TestScheduleWithoutLiveSetup(t *testing.T) {
	w := newSchedWorld(t, time.Date(2026, 6, 1, 8, 1, 0, 0, time.UTC))
	bare, _ := createAgent(t, w.s, w.team, w.owner, "No setup yet", false)
	r := w.s.Do(t, "POST", "/v2/agents/"+bare+"/schedules", w.member, map[string]any{"enabled": true, "frequency": "every_5_minutes", "timezone": "UTC"})
	if r.Status != 200 {
		t.Fatalf("createSchedule: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	advanceTo(t, w.clock, 1, time.Date(2026, 6, 1, 8, 5, 0, 0, time.UTC))
	f := waitFires(t, w.s, id, 1)
	if f[0].RunID != nil || f[0].Error == nil || !strings.Contains(*f[0].Error, "no live setup") {
		t.Fatalf("fire without a setup: %+v", f[0])
	}
	var list struct{ Schedules []map[string]any }
	w.s.Do(t, "GET", "/v2/agents/"+bare+"/schedules", w.viewer, nil).Decode(t, &list)
	if s := list.Schedules[0]; s["last_run_at"] != "2026-06-01T08:05:00.000Z" || !strings.Contains(s["last_error"].(string), "no live setup") || s["build_id"] != "" {
		t.Fatalf("schedule after a fire without a setup: %v", s)
	}
}
