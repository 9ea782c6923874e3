package runtime

import (
	"strings"
	"testing"
	"time"

	"docket/store"
)

func ptr[T any](v T) *T { return &v }

func mustCompile(t *testing.T, spec store.ScheduleSpec) compiled {
	t.Helper()
	spec, err := CheckSchedule(spec)
	if err != nil {
		t.Fatalf("CheckSchedule(%+v): %v", spec, err)
	}
	c, err := compileSchedule(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func prague(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Prague")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// slotsBetween lists every slot in (from, to].
func slotsBetween(c compiled, from, to time.Time) []time.Time {
	var out []time.Time
	for t := c.slots.Next(from); !t.IsZero() && !t.After(to); t = c.slots.Next(t) {
		out = append(out, t)
	}
	return out
}

// TestWorkdayPragueAcrossDST: "workday 08:30 Europe/Prague" is every Monday to Friday at
// 08:30 on the wall clock, on both sides of the spring and the autumn change: the UTC
// instant moves by an hour, the local time does not, and weekends never fire.
func TestWorkdayPragueAcrossDST(t *testing.T) {
	loc := prague(t)
	c := mustCompile(t, store.ScheduleSpec{Frequency: store.FreqWorkday, Time: ptr("08:30"), Timezone: "Europe/Prague"})
	for _, tc := range []struct {
		name               string
		from, to           time.Time
		beforeUTC, afterUT int // UTC hour of the slot before and after the change
		change             time.Time
	}{
		{"spring 2026", time.Date(2026, 3, 23, 0, 0, 0, 0, loc), time.Date(2026, 4, 4, 0, 0, 0, 0, loc), 7, 6, time.Date(2026, 3, 29, 3, 0, 0, 0, loc)},
		{"autumn 2026", time.Date(2026, 10, 19, 0, 0, 0, 0, loc), time.Date(2026, 10, 31, 0, 0, 0, 0, loc), 6, 7, time.Date(2026, 10, 25, 3, 0, 0, 0, loc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slotsBetween(c, tc.from, tc.to)
			var want []time.Time
			for d := tc.from; d.Before(tc.to); d = d.AddDate(0, 0, 1) {
				if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
					want = append(want, time.Date(d.Year(), d.Month(), d.Day(), 8, 30, 0, 0, loc))
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d slots, want %d: %v", len(got), len(want), got)
			}
			for i, s := range got {
				if !s.Equal(want[i]) {
					t.Errorf("slot %d = %s, want %s", i, s, want[i])
				}
				local := s.In(loc)
				if local.Hour() != 8 || local.Minute() != 30 || local.Weekday() == time.Saturday || local.Weekday() == time.Sunday {
					t.Errorf("slot %s is %s local", s, local.Format("Mon 15:04"))
				}
				wantUTC := tc.beforeUTC
				if s.After(tc.change) {
					wantUTC = tc.afterUT
				}
				if h := s.UTC().Hour(); h != wantUTC {
					t.Errorf("slot %s: %02d:30 UTC, want %02d:30", local.Format("Mon 2 Jan"), h, wantUTC)
				}
			}
		})
	}
}

// TestFallBackFiresOnce: a daily 02:30 in Prague on the night the clock goes back (02:30
// happens twice) is one slot, not two.
func TestFallBackFiresOnce(t *testing.T) {
	loc := prague(t)
	c := mustCompile(t, store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("02:30"), Timezone: "Europe/Prague"})
	got := slotsBetween(c, time.Date(2026, 10, 24, 12, 0, 0, 0, loc), time.Date(2026, 10, 26, 12, 0, 0, 0, loc))
	if len(got) != 2 {
		t.Fatalf("slots %v, want one on the 25th and one on the 26th", got)
	}
}

func TestMonthlyLastDayOfShorterMonths(t *testing.T) {
	c := mustCompile(t, store.ScheduleSpec{Frequency: store.FreqMonthly, Time: ptr("09:00"), DayOfMonth: ptr(31), Timezone: "UTC"})
	got := slotsBetween(c, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	want := []string{"2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"}
	if len(got) != len(want) {
		t.Fatalf("slots %v, want %v", got, want)
	}
	for i, s := range got {
		if d := s.Format("2006-01-02"); d != want[i] || s.Hour() != 9 {
			t.Errorf("slot %d = %s, want %s 09:00", i, s, want[i])
		}
	}
}

// TestLatestDue: after a downtime only the most recent missed slot is due, found in a
// few steps even for a frequent schedule down for a year.
func TestLatestDue(t *testing.T) {
	loc := prague(t)
	daily := mustCompile(t, store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("08:30"), Timezone: "Europe/Prague"})
	mon9 := time.Date(2026, 6, 1, 9, 0, 0, 0, loc)
	for _, tc := range []struct {
		name       string
		since, now time.Time
		want       time.Time // zero: nothing due
	}{
		{"three days down", mon9, time.Date(2026, 6, 4, 10, 0, 0, 0, loc), time.Date(2026, 6, 4, 8, 30, 0, 0, loc)},
		{"before today's slot", mon9, time.Date(2026, 6, 4, 8, 0, 0, 0, loc), time.Date(2026, 6, 3, 8, 30, 0, 0, loc)},
		{"exactly at the slot", mon9, time.Date(2026, 6, 2, 8, 30, 0, 0, loc), time.Date(2026, 6, 2, 8, 30, 0, 0, loc)},
		{"nothing since", mon9, time.Date(2026, 6, 2, 8, 29, 0, 0, loc), time.Time{}},
		{"last fired slot is not due again", time.Date(2026, 6, 2, 8, 30, 0, 0, loc), time.Date(2026, 6, 2, 9, 0, 0, 0, loc), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := latestDue(daily.slots, tc.since, tc.now)
			if ok != !tc.want.IsZero() || (ok && !got.Equal(tc.want)) {
				t.Fatalf("latestDue = %v %v, want %v", got, ok, tc.want)
			}
		})
	}
	every5 := mustCompile(t, store.ScheduleSpec{Frequency: store.FreqEvery5Minutes, Timezone: "UTC"})
	now := time.Date(2027, 6, 1, 12, 7, 13, 0, time.UTC)
	start := time.Now()
	got, ok := latestDue(every5.slots, now.AddDate(-1, 0, 0), now)
	if !ok || !got.Equal(time.Date(2027, 6, 1, 12, 5, 0, 0, time.UTC)) {
		t.Fatalf("every 5 minutes after a year down: %v %v", got, ok)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("latestDue took %s: it should not walk every missed slot", d)
	}
}

func TestCheckScheduleNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  store.ScheduleSpec
		field string
	}{
		{"unknown zone", store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("08:30"), Timezone: "Mars/Olympus"}, "timezone:"},
		{"empty zone", store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("08:30")}, "timezone:"},
		{"Local zone", store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("08:30"), Timezone: "Local"}, "timezone:"},
		{"bad time", store.ScheduleSpec{Frequency: store.FreqDaily, Time: ptr("25:00"), Timezone: "UTC"}, "time:"},
		{"missing time", store.ScheduleSpec{Frequency: store.FreqWorkday, Timezone: "UTC"}, "time: required"},
		{"missing day", store.ScheduleSpec{Frequency: store.FreqWeekly, Time: ptr("08:30"), Timezone: "UTC"}, "day: required"},
		{"bad day", store.ScheduleSpec{Frequency: store.FreqWeekly, Time: ptr("08:30"), Day: ptr("funday"), Timezone: "UTC"}, "day:"},
		{"missing day_of_month", store.ScheduleSpec{Frequency: store.FreqMonthly, Time: ptr("08:30"), Timezone: "UTC"}, "day_of_month: required"},
		{"day_of_month 32", store.ScheduleSpec{Frequency: store.FreqMonthly, Time: ptr("08:30"), DayOfMonth: ptr(32), Timezone: "UTC"}, "day_of_month:"},
		{"missing cron", store.ScheduleSpec{Frequency: store.FreqCustom, Timezone: "UTC"}, "cron: required"},
		{"bad cron", store.ScheduleSpec{Frequency: store.FreqCustom, Cron: ptr("61 * * * *"), Timezone: "UTC"}, "cron:"},
		{"six fields", store.ScheduleSpec{Frequency: store.FreqCustom, Cron: ptr("0 30 8 * * *"), Timezone: "UTC"}, "cron:"},
		{"zone in cron", store.ScheduleSpec{Frequency: store.FreqCustom, Cron: ptr("TZ=UTC 30 8 * * *"), Timezone: "UTC"}, "timezone field"},
		{"interval", store.ScheduleSpec{Frequency: store.FreqCustom, Cron: ptr("@every 1h"), Timezone: "UTC"}, "cron:"},
		{"never fires", store.ScheduleSpec{Frequency: store.FreqCustom, Cron: ptr("0 0 30 2 *"), Timezone: "UTC"}, "never fires"},
		{"unknown frequency", store.ScheduleSpec{Frequency: "fortnightly", Timezone: "UTC"}, "frequency:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckSchedule(tc.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("%q does not name %q", err, tc.field)
			}
		})
	}
	got, err := CheckSchedule(store.ScheduleSpec{Frequency: store.FreqHourly, Time: ptr("7:05:00"), Timezone: "UTC"})
	if err != nil || *got.Time != "07:05" {
		t.Fatalf("time 7:05:00 normalised to %v (%v), want 07:05", got.Time, err)
	}
}

// FuzzCustomCron: whatever the cron text, validation answers without panicking, and a
// schedule it accepts has slots that move forward.
func FuzzCustomCron(f *testing.F) {
	for _, s := range []string{"30 8 * * 1-5", "*/5 * * * *", "@daily", "0 0 29 2 *", "61 * * * *", "TZ=UTC * * * * *", "@every 1s", "", "* * * * * *", "0 0 1,15 * MON-FRI"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		spec, err := CheckSchedule(store.ScheduleSpec{Frequency: store.FreqCustom, Cron: &expr, Timezone: "Europe/Prague"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cron:") {
				t.Fatalf("error does not name the cron field: %v", err)
			}
			return
		}
		c, err := compileSchedule(spec, from)
		if err != nil {
			t.Fatalf("accepted %q but it does not compile: %v", expr, err)
		}
		prev := from
		for range 3 {
			n := c.slots.Next(prev)
			if n.IsZero() {
				return
			}
			if !n.After(prev) {
				t.Fatalf("%q: slot %s is not after %s", expr, n, prev)
			}
			prev = n
		}
	})
}
