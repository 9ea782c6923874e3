package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	// Schedules name IANA zones: the binary carries the zone database so a box without
	// one (a scratch container) still knows Europe/Prague.
	_ "time/tzdata"

	gocron "github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"docket/store"
)

// Weekday names a schedule's day takes, in cron's numbering (0 = Sunday).
var weekdays = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

var timeOfDay = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):([0-5][0-9])(:00)?$`)

func invalidSchedule(format string, args ...any) error {
	return &store.Error{Kind: store.ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

// slots is when a schedule's runs are due: Next returns the first slot strictly after t.
type slots interface{ Next(t time.Time) time.Time }

// compiled is a schedule made executable: tick is the gocron crontab that wakes the
// scheduler at every slot (sometimes more often), slots says which instants are slots.
type compiled struct {
	loc   *time.Location
	tick  string
	slots slots
}

// CheckSchedule validates a schedule's timing field by field and returns it normalised
// (time as HH:MM). Fields the frequency does not use are kept as given and ignored.
func CheckSchedule(spec store.ScheduleSpec) (store.ScheduleSpec, error) {
	if spec.Time != nil {
		m := timeOfDay.FindStringSubmatch(strings.TrimSpace(*spec.Time))
		if m == nil {
			return spec, invalidSchedule("time: %q is not a time of day: use HH:MM on a 24-hour clock, e.g. \"08:30\"", *spec.Time)
		}
		h, _ := strconv.Atoi(m[1])
		t := fmt.Sprintf("%02d:%s", h, m[2])
		spec.Time = &t
	}
	if spec.Day != nil {
		d := strings.ToLower(strings.TrimSpace(*spec.Day))
		if _, ok := weekdays[d]; !ok {
			return spec, invalidSchedule("day: %q is not a day of the week: use monday, tuesday, wednesday, thursday, friday, saturday or sunday", *spec.Day)
		}
		spec.Day = &d
	}
	if spec.DayOfMonth != nil && (*spec.DayOfMonth < 1 || *spec.DayOfMonth > 31) {
		return spec, invalidSchedule("day_of_month: %d is out of range: use 1 to 31 (29 to 31 fire on the last day of shorter months)", *spec.DayOfMonth)
	}
	if spec.Cron != nil {
		c := strings.TrimSpace(*spec.Cron)
		spec.Cron = &c
	}
	if _, err := compileSchedule(spec, time.Now()); err != nil {
		return spec, err
	}
	return spec, nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, invalidSchedule("timezone: %q is not an IANA time zone name: use one like \"Europe/Prague\" or \"UTC\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, invalidSchedule("timezone: %q is not an IANA time zone name: use one like \"Europe/Prague\" or \"UTC\"", name)
	}
	return loc, nil
}

// compileSchedule turns a checked spec into its tick crontab and slot function.
func compileSchedule(spec store.ScheduleSpec, now time.Time) (compiled, error) {
	loc, err := loadZone(spec.Timezone)
	if err != nil {
		return compiled{}, err
	}
	hour, minute := -1, -1
	if spec.Time != nil {
		if m := timeOfDay.FindStringSubmatch(*spec.Time); m != nil {
			hour, _ = strconv.Atoi(m[1])
			minute, _ = strconv.Atoi(m[2])
		}
	}
	needTime := func() error {
		if hour < 0 {
			return invalidSchedule("time: required for frequency %s: give the time of day as HH:MM in the schedule's timezone, e.g. \"08:30\"", spec.Frequency)
		}
		return nil
	}
	var expr string
	switch spec.Frequency {
	case store.FreqEvery5Minutes:
		expr = "*/5 * * * *"
	case store.FreqEvery15Minutes:
		expr = "*/15 * * * *"
	case store.FreqHourly:
		expr = fmt.Sprintf("%d * * * *", max(minute, 0)) // the minute of time, if given
	case store.FreqDaily, store.FreqWorkday:
		if err := needTime(); err != nil {
			return compiled{}, err
		}
		dow := "*"
		if spec.Frequency == store.FreqWorkday {
			dow = "1-5"
		}
		expr = fmt.Sprintf("%d %d * * %s", minute, hour, dow)
	case store.FreqWeekly:
		if err := needTime(); err != nil {
			return compiled{}, err
		}
		if spec.Day == nil {
			return compiled{}, invalidSchedule("day: required for frequency weekly: name the day, e.g. \"monday\"")
		}
		expr = fmt.Sprintf("%d %d * * %d", minute, hour, weekdays[*spec.Day])
	case store.FreqMonthly:
		if err := needTime(); err != nil {
			return compiled{}, err
		}
		if spec.DayOfMonth == nil {
			return compiled{}, invalidSchedule("day_of_month: required for frequency monthly: give a day from 1 to 31")
		}
		d := *spec.DayOfMonth
		tick := fmt.Sprintf("CRON_TZ=%s %d %d %d * *", loc, minute, hour, d)
		if d > 28 {
			// Shorter months fire on their last day, so wake on every possible one.
			tick = fmt.Sprintf("CRON_TZ=%s %d %d 28-31 * *", loc, minute, hour)
		}
		return compiled{loc: loc, tick: tick, slots: monthlySlots{day: d, hour: hour, minute: minute, loc: loc}}, nil
	case store.FreqCustom:
		if spec.Cron == nil || *spec.Cron == "" {
			return compiled{}, invalidSchedule("cron: required for frequency custom: give a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. \"30 8 * * 1-5\"")
		}
		expr = *spec.Cron
		if err := checkCustomCron(expr); err != nil {
			return compiled{}, err
		}
	default:
		return compiled{}, invalidSchedule("frequency: %q is not a frequency: use every_5_minutes, every_15_minutes, hourly, daily, workday, weekly, monthly or custom", spec.Frequency)
	}
	tick := "CRON_TZ=" + loc.String() + " " + expr
	// gocron's own parser, so what is accepted here is exactly what the scheduler runs.
	c := gocron.NewDefaultCron(false)
	if err := c.IsValid(tick, time.UTC, now); err != nil {
		if spec.Frequency == store.FreqCustom {
			return compiled{}, invalidSchedule("cron: %q is not a valid schedule (%s): use 5 fields, minute hour day-of-month month day-of-week, e.g. \"30 8 * * 1-5\"",
				expr, cronReason(err))
		}
		return compiled{}, fmt.Errorf("schedule crontab %q: %w", tick, err)
	}
	return compiled{loc: loc, tick: tick, slots: cronSlots{c: c, loc: loc}}, nil
}

// checkCustomCron refuses what the parser would take but a schedule must not carry: a
// zone of its own (the timezone field says it) and @every intervals (not calendar slots).
func checkCustomCron(expr string) error {
	upper := strings.ToUpper(expr)
	if strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return invalidSchedule("cron: %q names a time zone: drop the TZ= prefix and set the timezone field instead", expr)
	}
	if strings.HasPrefix(expr, "@every") {
		return invalidSchedule("cron: %q is an interval, not a calendar schedule: use every_5_minutes, every_15_minutes, or a cron expression like \"*/10 * * * *\"", expr)
	}
	if !strings.HasPrefix(expr, "@") && len(strings.Fields(expr)) != 5 {
		return invalidSchedule("cron: %q has %d fields: use exactly 5, minute hour day-of-month month day-of-week, e.g. \"30 8 * * 1-5\"", expr, len(strings.Fields(expr)))
	}
	return nil
}

// cronReason is the parser's complaint without gocron's wrapper text.
func cronReason(err error) string {
	if errors.Is(err, gocron.ErrCronJobInvalid) {
		return "it never fires"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	return msg
}

// cronSlots are a crontab's fire times. During a fall-back DST change a wall-clock time
// happens twice; like gocron, the second is not another slot.
type cronSlots struct {
	c   gocron.Cron
	loc *time.Location
}

func (s cronSlots) Next(t time.Time) time.Time {
	n := s.c.Next(t)
	if !n.IsZero() && sameWallClock(t.In(s.loc), n.In(s.loc)) {
		n = s.c.Next(n)
	}
	return n
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute()
}

// monthlySlots fire on day of each month at hour:minute, or on the month's last day when
// it is shorter. A time that does not exist that day (a spring-forward gap) is skipped,
// as cron skips it.
type monthlySlots struct {
	day, hour, minute int
	loc               *time.Location
}

func (m monthlySlots) Next(t time.Time) time.Time {
	lt := t.In(m.loc)
	first := time.Date(lt.Year(), lt.Month(), 1, 0, 0, 0, 0, m.loc)
	for i := range 14 {
		month := first.AddDate(0, i, 0)
		last := month.AddDate(0, 1, -1).Day()
		c := time.Date(month.Year(), month.Month(), min(m.day, last), m.hour, m.minute, 0, 0, m.loc)
		if c.Hour() == m.hour && c.Minute() == m.minute && c.After(t) {
			return c
		}
	}
	return time.Time{}
}

// lookback are the windows latestDue searches, shortest first: the most recent slot is
// found in a few steps whatever the frequency (a custom cron may fire only on 29 Feb).
var lookback = []time.Duration{time.Hour, 25 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour}

// latestDue is the most recent slot in (since, now], if any: the one slot a scheduler
// fires after a tick or a downtime, never one per missed slot.
func latestDue(sl slots, since, now time.Time) (time.Time, bool) {
	if !now.After(since) {
		return time.Time{}, false
	}
	for _, w := range lookback {
		from := now.Add(-w)
		clamped := !from.After(since)
		if clamped {
			from = since
		}
		t := sl.Next(from)
		if t.IsZero() || t.After(now) {
			if clamped {
				return time.Time{}, false
			}
			continue
		}
		for {
			n := sl.Next(t)
			if n.IsZero() || n.After(now) {
				return t, true
			}
			t = n
		}
	}
	return time.Time{}, false
}

// NextSlot is the schedule's next slot after now, or nil when it is disabled or never
// fires again.
func NextSlot(sc store.Schedule, now time.Time) *time.Time {
	if !sc.Enabled {
		return nil
	}
	c, err := compileSchedule(sc.ScheduleSpec, now)
	if err != nil {
		return nil
	}
	from := now
	if sc.ActiveSince.After(from) {
		from = sc.ActiveSince
	}
	n := c.slots.Next(from)
	if n.IsZero() {
		return nil
	}
	n = n.UTC()
	return &n
}

// describeSchedule says when a schedule fires, for the message of a run it starts.
func describeSchedule(spec store.ScheduleSpec) string {
	at := ""
	if spec.Time != nil {
		at = " at " + *spec.Time
	}
	switch spec.Frequency {
	case store.FreqEvery5Minutes:
		return "every 5 minutes"
	case store.FreqEvery15Minutes:
		return "every 15 minutes"
	case store.FreqHourly:
		return "hourly"
	case store.FreqDaily:
		return "daily" + at + " " + spec.Timezone
	case store.FreqWorkday:
		return "every workday" + at + " " + spec.Timezone
	case store.FreqWeekly:
		return "every " + deref(spec.Day) + at + " " + spec.Timezone
	case store.FreqMonthly:
		dom := 0
		if spec.DayOfMonth != nil {
			dom = *spec.DayOfMonth
		}
		return fmt.Sprintf("monthly on day %d%s %s", dom, at, spec.Timezone)
	}
	return "cron " + deref(spec.Cron) + " " + spec.Timezone
}

// SchedulerConfig wires the scheduler.
type SchedulerConfig struct {
	Store *store.Store
	Log   *slog.Logger
	// Clock drives gocron and decides what is due; nil is the real clock (tests pass a
	// fake one).
	Clock clockwork.Clock
	// Started is told about every run a fire created, so it starts at once (the
	// engine's RunCreated).
	Started func(store.Run)
}

// Scheduler fires schedules on gocron, one singleton job per enabled schedule. The job
// only says "look now": which slot is due, and whether it already fired, is decided from
// the database (FireSchedule), so restarts and a second process can never double a slot.
type Scheduler struct {
	st      *store.Store
	log     *slog.Logger
	clock   clockwork.Clock
	started func(store.Run)
	cron    gocron.Scheduler

	mu    sync.Mutex
	jobs  map[string]uuid.UUID
	ready chan struct{}
}

// NewScheduler builds a scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c, err := gocron.NewScheduler(gocron.WithClock(cfg.Clock), gocron.WithLocation(time.UTC))
	if err != nil {
		return nil, fmt.Errorf("start gocron: %w", err)
	}
	return &Scheduler{st: cfg.Store, log: cfg.Log, clock: cfg.Clock, started: cfg.Started, cron: c, jobs: map[string]uuid.UUID{},
		ready: make(chan struct{})}, nil
}

// Run registers every enabled schedule, fires the one catch-up run of each whose latest
// slot passed while the process was down, and serves until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	list, err := s.st.EnabledSchedules(ctx)
	if err != nil {
		s.cron.Shutdown()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("load schedules: %w", err)
	}
	for _, sc := range list {
		s.register(sc)
	}
	s.cron.Start()
	for _, sc := range list {
		s.check(ctx, sc.ID)
	}
	close(s.ready)
	<-ctx.Done()
	if err := s.cron.Shutdown(); err != nil {
		s.log.Warn("scheduler shutdown", "err", err)
	}
	return nil
}

// Ready is closed once Run has registered every schedule and fired the catch-up runs.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// ScheduleChanged brings the scheduler in line with a schedule that was created, changed,
// enabled, disabled or deleted, without a restart.
func (s *Scheduler) ScheduleChanged(ctx context.Context, id string) {
	sc, err := s.st.ScheduleByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.unregister(id)
		return
	}
	if err != nil {
		s.log.Error("schedule reload failed", "schedule_id", id, "err", err)
		return
	}
	s.register(sc)
}

// Now is the scheduler's clock.
func (s *Scheduler) Now() time.Time { return s.clock.Now() }

// NextRun is when sc fires next by the scheduler's clock.
func (s *Scheduler) NextRun(sc store.Schedule) *time.Time { return NextSlot(sc, s.clock.Now()) }

func (s *Scheduler) unregister(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregisterLocked(id)
}

func (s *Scheduler) unregisterLocked(id string) {
	if j, ok := s.jobs[id]; ok {
		if err := s.cron.RemoveJob(j); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
			s.log.Warn("schedule job not removed", "schedule_id", id, "err", err)
		}
		delete(s.jobs, id)
	}
}

// register replaces the schedule's gocron job with one for its current definition.
func (s *Scheduler) register(sc store.Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregisterLocked(sc.ID)
	if !sc.Enabled {
		return
	}
	c, err := compileSchedule(sc.ScheduleSpec, s.clock.Now())
	if err != nil {
		s.log.Error("schedule not registered: its definition no longer compiles", "schedule_id", sc.ID, "err", err)
		return
	}
	id := sc.ID
	j, err := s.cron.NewJob(gocron.CronJob(c.tick, false), gocron.NewTask(func(ctx context.Context) { s.check(ctx, id) }),
		// Singleton: a schedule's checks never overlap. Wait rather than Reschedule:
		// with LimitModeReschedule we saw gocron (v2.21.2) drop the next day's timer
		// after a run under load, silently skipping a slot.
		gocron.WithName(id), gocron.WithSingletonMode(gocron.LimitModeWait))
	if err != nil {
		s.log.Error("schedule not registered", "schedule_id", id, "err", err)
		return
	}
	s.jobs[id] = j.ID()
}

// check fires the schedule's latest due slot, if it has one that has not fired.
func (s *Scheduler) check(ctx context.Context, id string) {
	sc, err := s.st.ScheduleByID(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			s.log.Error("schedule check failed", "schedule_id", id, "err", err)
		}
		return
	}
	if !sc.Enabled {
		return
	}
	c, err := compileSchedule(sc.ScheduleSpec, s.clock.Now())
	if err != nil {
		return
	}
	since := sc.ActiveSince
	if sc.LastFiredFor != nil && sc.LastFiredFor.After(since) {
		since = *sc.LastFiredFor
	}
	now := s.clock.Now()
	slot, ok := latestDue(c.slots, since, now)
	if !ok {
		return
	}
	msg := fmt.Sprintf("Scheduled run (%s) for %s.", describeSchedule(sc.ScheduleSpec), slot.In(c.loc).Format("Mon 2 Jan 2006 15:04 MST"))
	res, err := s.st.FireSchedule(ctx, store.ScheduleFire{ScheduleID: id, Revision: sc.Revision, Slot: slot, Message: msg})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("schedule fire failed", "schedule_id", id, "slot", slot, "err", err)
		}
		return
	}
	if !res.Fired {
		return
	}
	attrs := []any{"schedule_id", id, "slot", slot.UTC(), "late_ms", now.Sub(slot).Milliseconds()}
	switch {
	case res.Run != nil:
		s.log.Info("schedule fired", append(attrs, "run_id", res.Run.ID)...)
		if s.started != nil {
			s.started(*res.Run)
		}
	default:
		s.log.Warn("schedule fired without a run", append(attrs, "reason", res.Error)...)
	}
	if res.Disabled {
		s.unregister(id)
	}
}
