package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Schedule frequencies, as the reference names them.
const (
	FreqEvery5Minutes  = "every_5_minutes"
	FreqEvery15Minutes = "every_15_minutes"
	FreqHourly         = "hourly"
	FreqDaily          = "daily"
	FreqWorkday        = "workday"
	FreqWeekly         = "weekly"
	FreqMonthly        = "monthly"
	FreqCustom         = "custom"
)

// ScheduleSpec is when a schedule fires. Which fields matter depends on Frequency; the
// others are kept as given and ignored (runtime.CheckSchedule decides).
type ScheduleSpec struct {
	Frequency string
	// Time is "HH:MM" in Timezone.
	Time       *string
	Timezone   string
	Day        *string
	DayOfMonth *int
	Cron       *string
}

// Schedule starts runs of an agent's live build on a calendar.
type Schedule struct {
	ID      string
	AgentID string
	TeamID  string
	// BuildID is the agent's live build now, the one the next fire would run; "" when
	// the agent has none.
	BuildID   string
	UserID    *string
	UserName  *string
	UserEmail *string
	Enabled   bool
	ScheduleSpec
	Recurring bool
	// Message is the run's first message; empty means the scheduler writes one.
	Message            string
	Revision           int
	ActiveSince        time.Time
	AutoDisabledAt     *time.Time
	AutoDisabledReason *string
	CreatedAt          time.Time
	UpdatedAt          time.Time
	// The latest fire: its slot, the run it started, or why none started.
	LastFiredFor *time.Time
	LastRunID    *string
	LastError    *string
}

// NewSchedule is what CreateSchedule needs.
type NewSchedule struct {
	ScheduleSpec
	Enabled   bool
	Recurring bool
	Message   string
}

// Field is a PATCH field that can be left alone (Set false), cleared (Value nil) or set.
type Field[T any] struct {
	Set   bool
	Value *T
}

// SchedulePatch changes the fields that are set.
type SchedulePatch struct {
	Enabled    *bool
	Frequency  *string
	Timezone   *string
	Time       Field[string]
	Day        Field[string]
	DayOfMonth Field[int]
	Cron       Field[string]
	Recurring  *bool
	Message    *string
}

// ScheduleCheck validates a schedule's timing and returns it normalised; the store calls
// it on the merged definition inside the transaction of a create or update.
type ScheduleCheck func(ScheduleSpec) (ScheduleSpec, error)

const scheduleSelect = `SELECT s.id, s.agent_id, a.team_id, coalesce(a.live_build_id, ''), s.user_id, u.name, u.email, s.enabled,
	s.frequency, s.time, s.timezone, s.day, s.day_of_month, s.cron, s.recurring, s.message, s.revision, s.active_since,
	s.auto_disabled_at, s.auto_disabled_reason, s.created_at, s.updated_at, f.scheduled_for, f.run_id, f.error
	FROM schedules s JOIN agents a ON a.id = s.agent_id LEFT JOIN users u ON u.id = s.user_id
	LEFT JOIN schedule_fires f ON f.schedule_id = s.id
		AND f.scheduled_for = (SELECT max(scheduled_for) FROM schedule_fires WHERE schedule_id = s.id)`

func scanSchedule(sc scanner) (Schedule, error) {
	var s Schedule
	var user, uName, uEmail, tm, day, cron, reason, runID, fireErr sql.NullString
	var dom, autoAt, fired sql.NullInt64
	var since, created, updated int64
	err := sc.Scan(&s.ID, &s.AgentID, &s.TeamID, &s.BuildID, &user, &uName, &uEmail, &s.Enabled, &s.Frequency, &tm, &s.Timezone, &day, &dom,
		&cron, &s.Recurring, &s.Message, &s.Revision, &since, &autoAt, &reason, &created, &updated, &fired, &runID, &fireErr)
	if err != nil {
		return s, err
	}
	s.UserID, s.UserName, s.UserEmail = strPtr(user), strPtr(uName), strPtr(uEmail)
	s.Time, s.Day, s.Cron = strPtr(tm), strPtr(day), strPtr(cron)
	if dom.Valid {
		d := int(dom.Int64)
		s.DayOfMonth = &d
	}
	s.ActiveSince, s.AutoDisabledAt, s.AutoDisabledReason = Time(since), timePtr(autoAt), strPtr(reason)
	s.CreatedAt, s.UpdatedAt = Time(created), Time(updated)
	s.LastFiredFor, s.LastRunID, s.LastError = timePtr(fired), strPtr(runID), strPtr(fireErr)
	return s, nil
}

func scheduleInAgent(ctx context.Context, q querier, team, agentID, id string) (Schedule, error) {
	s, err := scanSchedule(q.QueryRowContext(ctx, scheduleSelect+" WHERE s.id = ? AND s.agent_id = ? AND a.team_id = ? AND a.deleted_at IS NULL",
		id, agentID, team))
	if err == sql.ErrNoRows {
		return s, notFound("schedule %s not found on assignment %s", id, agentID)
	}
	return s, err
}

// GetSchedule returns one of an agent's schedules; another team's is not found.
func (s *Store) GetSchedule(ctx context.Context, team, agentID, id string) (Schedule, error) {
	return scheduleInAgent(ctx, s.r, team, agentID, id)
}

// ScheduleByID returns a schedule whatever its team (for the scheduler); a schedule of a
// deleted agent is not found.
func (s *Store) ScheduleByID(ctx context.Context, id string) (Schedule, error) {
	sc, err := scanSchedule(s.r.QueryRowContext(ctx, scheduleSelect+" WHERE s.id = ? AND a.deleted_at IS NULL", id))
	if err == sql.ErrNoRows {
		return sc, notFound("schedule %s not found", id)
	}
	return sc, err
}

// ListSchedules returns a team agent's schedules, oldest first.
func (s *Store) ListSchedules(ctx context.Context, team, agentID string) ([]Schedule, error) {
	if err := agentExists(ctx, s.r, team, agentID); err != nil {
		return nil, err
	}
	return s.schedules(ctx, " WHERE s.agent_id = ? AND a.team_id = ? ORDER BY s.created_at, s.id", agentID, team)
}

// EnabledSchedules returns every enabled schedule of a live agent, for the scheduler.
func (s *Store) EnabledSchedules(ctx context.Context) ([]Schedule, error) {
	return s.schedules(ctx, " WHERE s.enabled = 1 AND a.deleted_at IS NULL ORDER BY s.created_at, s.id")
}

func (s *Store) schedules(ctx context.Context, where string, args ...any) ([]Schedule, error) {
	rows, err := s.r.QueryContext(ctx, scheduleSelect+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// CreateSchedule adds a schedule to a team's agent, owned by the actor's user. Slots at
// or before at (the scheduler's now) never fire.
func (s *Store) CreateSchedule(ctx context.Context, a Actor, agentID string, ns NewSchedule, at time.Time, check ScheduleCheck) (Schedule, error) {
	spec, err := check(ns.ScheduleSpec)
	if err != nil {
		return Schedule{}, err
	}
	id := NewID()
	var out Schedule
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, agentID); err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		_, err := tx.ExecContext(ctx, `INSERT INTO schedules(id, agent_id, user_id, enabled, frequency, time, timezone, day, day_of_month, cron,
			recurring, message, active_since, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			id, agentID, optional(a.UserID), ns.Enabled, spec.Frequency, nullStr(spec.Time), spec.Timezone, nullStr(spec.Day), nullInt(spec.DayOfMonth),
			nullStr(spec.Cron), ns.Recurring, ns.Message, at.UnixMilli(), now, now)
		if err != nil {
			return Target{}, err
		}
		out, err = scheduleInAgent(ctx, tx, a.TeamID, agentID, id)
		return Target{Type: "schedule", ID: id, Detail: map[string]any{"agent_id": agentID, "frequency": spec.Frequency, "enabled": ns.Enabled}}, err
	})
	return out, err
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func sameStr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// UpdateSchedule applies p to one of an agent's schedules. onlyOwner, when not empty, is
// the user who must own the schedule (a member changes only their own). A change of
// timing, or enabling, moves active_since to at (the scheduler's now): no catch-up for
// slots the schedule did not define.
func (s *Store) UpdateSchedule(ctx context.Context, a Actor, agentID, id, onlyOwner string, p SchedulePatch, at time.Time, check ScheduleCheck) (Schedule, error) {
	var out Schedule
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		cur, err := scheduleInAgent(ctx, tx, a.TeamID, agentID, id)
		if err != nil {
			return Target{}, err
		}
		if onlyOwner != "" && (cur.UserID == nil || *cur.UserID != onlyOwner) {
			return Target{}, forbidden("schedule %s belongs to another user: only its owner or a team admin can change it", id)
		}
		spec, enabled, recurring, message := cur.ScheduleSpec, cur.Enabled, cur.Recurring, cur.Message
		changed := []string{}
		if p.Frequency != nil {
			spec.Frequency = *p.Frequency
			changed = append(changed, "frequency")
		}
		if p.Timezone != nil {
			spec.Timezone = *p.Timezone
			changed = append(changed, "timezone")
		}
		if p.Time.Set {
			spec.Time = p.Time.Value
			changed = append(changed, "time")
		}
		if p.Day.Set {
			spec.Day = p.Day.Value
			changed = append(changed, "day")
		}
		if p.DayOfMonth.Set {
			spec.DayOfMonth = p.DayOfMonth.Value
			changed = append(changed, "day_of_month")
		}
		if p.Cron.Set {
			spec.Cron = p.Cron.Value
			changed = append(changed, "cron")
		}
		if p.Enabled != nil {
			enabled = *p.Enabled
			changed = append(changed, "enabled")
		}
		if p.Recurring != nil {
			recurring = *p.Recurring
			changed = append(changed, "recurring")
		}
		if p.Message != nil {
			message = *p.Message
			changed = append(changed, "message")
		}
		if spec, err = check(spec); err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		since := cur.ActiveSince.UnixMilli()
		old := cur.ScheduleSpec
		retimed := old.Frequency != spec.Frequency || old.Timezone != spec.Timezone || !sameStr(old.Time, spec.Time) ||
			!sameStr(old.Day, spec.Day) || !sameInt(old.DayOfMonth, spec.DayOfMonth) || !sameStr(old.Cron, spec.Cron)
		if retimed || (enabled && !cur.Enabled) {
			since = at.UnixMilli()
		}
		var autoAt sql.NullInt64
		var reason sql.NullString
		if !enabled && cur.AutoDisabledAt != nil {
			autoAt, reason = sql.NullInt64{Int64: cur.AutoDisabledAt.UnixMilli(), Valid: true}, nullStr(cur.AutoDisabledReason)
		}
		_, err = tx.ExecContext(ctx, `UPDATE schedules SET enabled = ?, frequency = ?, time = ?, timezone = ?, day = ?, day_of_month = ?, cron = ?,
			recurring = ?, message = ?, revision = revision + 1, active_since = ?, auto_disabled_at = ?, auto_disabled_reason = ?, updated_at = ?
			WHERE id = ?`, enabled, spec.Frequency, nullStr(spec.Time), spec.Timezone, nullStr(spec.Day), nullInt(spec.DayOfMonth), nullStr(spec.Cron),
			recurring, message, since, autoAt, reason, now, id)
		if err != nil {
			return Target{}, err
		}
		out, err = scheduleInAgent(ctx, tx, a.TeamID, agentID, id)
		return Target{Type: "schedule", ID: id, Detail: map[string]any{"changed": changed}}, err
	})
	return out, err
}

// DeleteSchedule removes a schedule and its fire records; runs it started stay.
func (s *Store) DeleteSchedule(ctx context.Context, a Actor, agentID, id, onlyOwner string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		cur, err := scheduleInAgent(ctx, tx, a.TeamID, agentID, id)
		if err != nil {
			return Target{}, err
		}
		if onlyOwner != "" && (cur.UserID == nil || *cur.UserID != onlyOwner) {
			return Target{}, forbidden("schedule %s belongs to another user: only its owner or a team admin can delete it", id)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM schedules WHERE id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "schedule", ID: id, Detail: map[string]any{"agent_id": agentID}}, nil
	})
}

// ScheduleFire asks for one slot of a schedule to fire.
type ScheduleFire struct {
	ScheduleID string
	// Revision is the definition the slot was computed from; a newer one refuses it.
	Revision int
	Slot     time.Time
	// Message starts the run when the schedule has none of its own.
	Message string
}

// FireResult is what FireSchedule did. Fired is false when the slot was not fired: it
// already was (here or by another process), a later one was, or the schedule changed,
// was disabled or deleted meanwhile.
type FireResult struct {
	Fired bool
	// Run is the run started; nil when the slot fired without one (Error says why).
	Run   *Run
	Error string
	// Disabled reports that a one-time schedule switched itself off.
	Disabled bool
}

// FireSchedule records the slot and starts its run in one transaction, so a slot fires at
// most once whatever the number of processes or restarts: the (schedule_id,
// scheduled_for) key is taken, or the fire does not happen. A one-time schedule is
// disabled in the same transaction.
func (s *Store) FireSchedule(ctx context.Context, f ScheduleFire) (FireResult, error) {
	var res FireResult
	var runID string
	err := s.write(ctx, func(tx *sql.Tx) error {
		var enabled, recurring bool
		var revision int
		var message, team, agentName string
		var user, live sql.NullString
		var deleted sql.NullInt64
		var agentID string
		err := tx.QueryRowContext(ctx, `SELECT s.enabled, s.revision, s.recurring, s.message, s.user_id, s.agent_id, a.team_id, a.name,
			a.live_build_id, a.deleted_at FROM schedules s JOIN agents a ON a.id = s.agent_id WHERE s.id = ?`, f.ScheduleID).
			Scan(&enabled, &revision, &recurring, &message, &user, &agentID, &team, &agentName, &live, &deleted)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		if !enabled || revision != f.Revision || deleted.Valid {
			return nil
		}
		slot, now := f.Slot.UnixMilli(), s.nowMs()
		var later int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schedule_fires WHERE schedule_id = ? AND scheduled_for >= ?", f.ScheduleID, slot).
			Scan(&later); err != nil {
			return err
		}
		if later > 0 {
			return nil
		}
		var fireErr sql.NullString
		if live.Valid {
			runID = NewID()
		} else {
			fireErr = optional("assignment " + agentName + " has no live setup to run: create one and promote it")
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO schedule_fires(schedule_id, scheduled_for, run_id, error, fired_at) VALUES (?,?,?,?,?)
			ON CONFLICT DO NOTHING`, f.ScheduleID, slot, optional(runID), fireErr, now)
		if err != nil {
			return fmt.Errorf("record schedule fire: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			runID = ""
			return nil
		}
		res.Fired, res.Error = true, fireErr.String
		if message == "" {
			message = f.Message
		}
		if runID != "" {
			nr := NewRun{AgentID: agentID, Message: message, Source: "schedule"}
			if _, err := insertRunWithID(ctx, tx, runID, team, agentID, agentName, live.String, nr, user.String, "", now); err != nil {
				return err
			}
			a := Actor{TeamID: team, UserID: user.String, Channel: "schedule", Operation: "fireSchedule"}
			t := Target{Type: "run", ID: runID, Detail: map[string]any{"schedule_id": f.ScheduleID, "scheduled_for": Time(slot).Format(time.RFC3339)}}
			if err := s.appendAudit(ctx, tx, a, team, t, "success"); err != nil {
				return err
			}
		}
		if !recurring {
			res.Disabled = true
			_, err = tx.ExecContext(ctx, `UPDATE schedules SET enabled = 0, revision = revision + 1, auto_disabled_at = ?,
				auto_disabled_reason = 'a one-time schedule (recurring false) disables itself after it fires', updated_at = ? WHERE id = ?`, now, now, f.ScheduleID)
		}
		return err
	})
	if err != nil || runID == "" {
		return res, err
	}
	r, err := s.RunByID(ctx, runID)
	if err != nil {
		return res, err
	}
	res.Run = &r
	return res, nil
}

// ScheduleFireRecord is one fired slot.
type ScheduleFireRecord struct {
	ScheduledFor time.Time
	RunID        *string
	Error        *string
	FiredAt      time.Time
}

// ScheduleFires returns a schedule's fired slots, oldest first.
func (s *Store) ScheduleFires(ctx context.Context, scheduleID string) ([]ScheduleFireRecord, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT scheduled_for, run_id, error, fired_at FROM schedule_fires WHERE schedule_id = ? ORDER BY scheduled_for", scheduleID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ScheduleFireRecord
	for rows.Next() {
		var f ScheduleFireRecord
		var slot, fired int64
		var run, e sql.NullString
		if err := rows.Scan(&slot, &run, &e, &fired); err != nil {
			return nil, err
		}
		f.ScheduledFor, f.RunID, f.Error, f.FiredAt = Time(slot), strPtr(run), strPtr(e), Time(fired)
		out = append(out, f)
	}
	return out, rows.Err()
}
