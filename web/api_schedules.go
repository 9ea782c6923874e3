package web

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

// Schedules is the scheduler as the API sees it (runtime.Scheduler provides it): told
// about every change so it takes effect without a restart.
type Schedules interface {
	ScheduleChanged(ctx context.Context, id string)
	NextRun(sc store.Schedule) *time.Time
	// Now is the scheduler's clock: a new or retimed schedule fires no slot before it.
	Now() time.Time
}

const frequencyEnum = "every_5_minutes,every_15_minutes,hourly,daily,workday,weekly,monthly,custom"

// scheduleJSON is a schedule as every schedule operation returns it: the reference's
// fields plus docket's additions.
type scheduleJSON struct {
	ID                                   string     `json:"id" format:"uuid"`
	BuildID                              string     `json:"build_id" doc:"The Assignment's live setup, which the next fire runs; empty when it has none."`
	AgentID                              string     `json:"agent_id" format:"uuid"`
	UserID                               string     `json:"user_id" doc:"The schedule's owner; its runs are started as this user."`
	Enabled                              bool       `json:"enabled"`
	Frequency                            string     `json:"frequency" enum:"every_5_minutes,every_15_minutes,hourly,daily,workday,weekly,monthly,custom"`
	Time                                 *string    `json:"time" nullable:"true" doc:"HH:MM in timezone."`
	Timezone                             string     `json:"timezone" doc:"IANA time zone name."`
	Day                                  *string    `json:"day" nullable:"true"`
	DayOfMonth                           *int       `json:"day_of_month" nullable:"true"`
	Cron                                 *string    `json:"cron" nullable:"true"`
	Source                               *string    `json:"source" nullable:"true" doc:"Always null in docket."`
	Task                                 *string    `json:"task" nullable:"true" doc:"The run's first message (docket's message); null when the scheduler writes one."`
	Recurring                            *bool      `json:"recurring" nullable:"true"`
	AutoDisabledAt                       *Timestamp `json:"auto_disabled_at" nullable:"true" doc:"When a one-time schedule switched itself off after firing."`
	AutoDisabledReason                   *string    `json:"auto_disabled_reason" nullable:"true"`
	ConsecutiveMissingConnectionFailures int        `json:"consecutive_missing_connection_failures" doc:"Always 0: docket schedules need no connection."`
	FirstMissingConnectionFailureAt      *Timestamp `json:"first_missing_connection_failure_at" nullable:"true"`
	LastMissingConnectionFailureAt       *Timestamp `json:"last_missing_connection_failure_at" nullable:"true"`
	CreatedAt                            Timestamp  `json:"created_at"`
	UpdatedAt                            Timestamp  `json:"updated_at"`
	UserName                             *string    `json:"user_name" nullable:"true"`
	UserEmail                            *string    `json:"user_email" nullable:"true"`
	Message                              string     `json:"message" doc:"docket addition: the run's first message; empty means the scheduler writes one naming the slot."`
	NextRunAt                            *Timestamp `json:"next_run_at" nullable:"true" doc:"docket addition: the next slot; null when disabled."`
	LastRunAt                            *Timestamp `json:"last_run_at" nullable:"true" doc:"docket addition: the latest slot that fired."`
	LastRunID                            *string    `json:"last_run_id" nullable:"true" doc:"docket addition: the run the latest slot started."`
	LastError                            *string    `json:"last_error" nullable:"true" doc:"docket addition: why the latest slot started no run."`
}

func (s *Server) scheduleOut(sc store.Schedule) scheduleJSON {
	recurring := sc.Recurring
	out := scheduleJSON{ID: sc.ID, BuildID: sc.BuildID, AgentID: sc.AgentID, UserID: orEmpty(sc.UserID), Enabled: sc.Enabled,
		Frequency: sc.Frequency, Time: sc.Time, Timezone: sc.Timezone, Day: sc.Day, DayOfMonth: sc.DayOfMonth, Cron: sc.Cron,
		Recurring: &recurring, AutoDisabledAt: tsPtr(sc.AutoDisabledAt), AutoDisabledReason: sc.AutoDisabledReason,
		CreatedAt: ts(sc.CreatedAt), UpdatedAt: ts(sc.UpdatedAt), UserName: sc.UserName, UserEmail: sc.UserEmail, Message: sc.Message,
		LastRunAt: tsPtr(sc.LastFiredFor), LastRunID: sc.LastRunID, LastError: sc.LastError}
	if sc.Message != "" {
		out.Task = &sc.Message
	}
	if s.cfg.Schedules != nil {
		out.NextRunAt = tsPtr(s.cfg.Schedules.NextRun(sc))
	}
	return out
}

// SchedulePath names one of an Assignment's schedules.
type SchedulePath struct {
	AgentPath
	ScheduleID string `path:"schedule_id" format:"uuid" doc:"The schedule's unique identifier."`
}

type createScheduleIn struct {
	AgentPath
	Body struct {
		Enabled    bool    `json:"enabled"`
		Frequency  string  `json:"frequency" enum:"every_5_minutes,every_15_minutes,hourly,daily,workday,weekly,monthly,custom"`
		Time       *string `json:"time,omitempty" nullable:"true" doc:"HH:MM (24-hour) in timezone; required for daily, workday, weekly and monthly; for hourly its minute is used."`
		Timezone   string  `json:"timezone" doc:"IANA time zone name, e.g. Europe/Prague or UTC."`
		Day        *string `json:"day,omitempty" nullable:"true" doc:"monday … sunday; required for weekly."`
		DayOfMonth *int    `json:"day_of_month,omitempty" nullable:"true" doc:"1–31, required for monthly; 29–31 fire on the last day of shorter months."`
		Cron       *string `json:"cron,omitempty" nullable:"true" doc:"5-field cron expression (minute hour day-of-month month day-of-week) in timezone; required for custom."`
		Recurring  *bool   `json:"recurring,omitempty" nullable:"true" doc:"false fires once at the next slot, then disables the schedule. Default true."`
		Message    *string `json:"message,omitempty" maxLength:"100000" doc:"docket addition: the run's first message. Default: a sentence naming the slot."`
		Task       *string `json:"task,omitempty" maxLength:"100000" doc:"docket addition: the same as message, under the name schedules are read back with."`
	}
}

type updateScheduleIn struct {
	SchedulePath
	Body struct {
		Enabled    *bool            `json:"enabled,omitempty" doc:"Enabling never fires the slots that passed while disabled."`
		Frequency  *string          `json:"frequency,omitempty" enum:"every_5_minutes,every_15_minutes,hourly,daily,workday,weekly,monthly,custom"`
		Time       nullable[string] `json:"time,omitempty"`
		Timezone   *string          `json:"timezone,omitempty"`
		Day        nullable[string] `json:"day,omitempty"`
		DayOfMonth nullable[int]    `json:"day_of_month,omitempty"`
		Cron       nullable[string] `json:"cron,omitempty"`
		Recurring  nullable[bool]   `json:"recurring,omitempty" doc:"null means true."`
		Message    *string          `json:"message,omitempty" maxLength:"100000" doc:"docket addition."`
		Task       *string          `json:"task,omitempty" maxLength:"100000" doc:"docket addition: the same as message."`
	}
}

// scheduleMessage picks message or its alias task; both must agree when both are sent.
func scheduleMessage(message, task *string) (*string, error) {
	if message != nil && task != nil && *message != *task {
		return nil, badRequest("message and task are the same field under two names: send one of them")
	}
	if message != nil {
		return message, nil
	}
	return task, nil
}

// scheduleOwner is the user whose schedules the caller may change: "" (any) for admins.
func scheduleOwner(p store.Principal) string {
	if p.Role.Allows(store.RoleAdmin) {
		return ""
	}
	return p.UserID
}

func (s *Server) scheduleNow() time.Time {
	if s.cfg.Schedules != nil {
		return s.cfg.Schedules.Now()
	}
	return time.Now()
}

func (s *Server) scheduleChanged(ctx context.Context, id string) {
	if s.cfg.Schedules != nil {
		s.cfg.Schedules.ScheduleChanged(context.WithoutCancel(ctx), id)
	}
}

func (s *Server) registerSchedules() {
	tags := []string{"Schedules"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentSchedules", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/schedules",
		Summary: "List an Assignment's schedules", Description: "Every schedule of the team on this Assignment, oldest first.", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *AgentPath) (*body[struct {
			Schedules []scheduleJSON `json:"schedules"`
		}], error) {
			list, err := s.store.ListSchedules(ctx, principal(ctx).TeamID, in.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Schedules []scheduleJSON `json:"schedules"`
			}]{}
			out.Body.Schedules = []scheduleJSON{}
			for _, sc := range list {
				out.Body.Schedules = append(out.Body.Schedules, s.scheduleOut(sc))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createSchedule", Method: http.MethodPost, Path: "/v2/agents/{agent_id}/schedules",
		Summary: "Schedule an Assignment", Tags: tags,
		Description: "Each slot starts one run of the Assignment's live setup (source schedule) as the schedule's owner. A slot never fires twice; " +
			"after downtime only the latest missed slot fires, once."}, store.RoleMember),
		func(ctx context.Context, in *createScheduleIn) (*body[scheduleJSON], error) {
			b := in.Body
			msg, err := scheduleMessage(b.Message, b.Task)
			if err != nil {
				return nil, err
			}
			ns := store.NewSchedule{ScheduleSpec: store.ScheduleSpec{Frequency: b.Frequency, Time: b.Time, Timezone: b.Timezone, Day: b.Day,
				DayOfMonth: b.DayOfMonth, Cron: b.Cron}, Enabled: b.Enabled, Recurring: b.Recurring == nil || *b.Recurring}
			if msg != nil {
				ns.Message = *msg
			}
			sc, err := s.store.CreateSchedule(ctx, actor(ctx), in.AgentID, ns, s.scheduleNow(), runtime.CheckSchedule)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.scheduleChanged(ctx, sc.ID)
			return &body[scheduleJSON]{Body: s.scheduleOut(sc)}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateSchedule", Method: http.MethodPatch, Path: "/v2/agents/{agent_id}/schedules/{schedule_id}",
		Summary: "Change a schedule", Tags: tags,
		Description: "Only the fields sent change; the scheduler follows at once. Members change their own schedules, admins any."}, store.RoleMember),
		func(ctx context.Context, in *updateScheduleIn) (*body[scheduleJSON], error) {
			b := in.Body
			msg, err := scheduleMessage(b.Message, b.Task)
			if err != nil {
				return nil, err
			}
			p := store.SchedulePatch{Enabled: b.Enabled, Frequency: b.Frequency, Timezone: b.Timezone, Message: msg,
				Time: store.Field[string]{Set: b.Time.Sent, Value: b.Time.Value}, Day: store.Field[string]{Set: b.Day.Sent, Value: b.Day.Value},
				DayOfMonth: store.Field[int]{Set: b.DayOfMonth.Sent, Value: b.DayOfMonth.Value}, Cron: store.Field[string]{Set: b.Cron.Sent, Value: b.Cron.Value}}
			if b.Recurring.Sent {
				r := b.Recurring.Value == nil || *b.Recurring.Value
				p.Recurring = &r
			}
			sc, err := s.store.UpdateSchedule(ctx, actor(ctx), in.AgentID, in.ScheduleID, scheduleOwner(principal(ctx)), p, s.scheduleNow(), runtime.CheckSchedule)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.scheduleChanged(ctx, sc.ID)
			return &body[scheduleJSON]{Body: s.scheduleOut(sc)}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteSchedule", Method: http.MethodDelete, Path: "/v2/agents/{agent_id}/schedules/{schedule_id}",
		Summary: "Delete a schedule", Description: "Runs it started stay. Members delete their own schedules, admins any.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *SchedulePath) (*body[successOut], error) {
			if err := s.store.DeleteSchedule(ctx, actor(ctx), in.AgentID, in.ScheduleID, scheduleOwner(principal(ctx))); err != nil {
				return nil, fail(ctx, err)
			}
			s.scheduleChanged(ctx, in.ScheduleID)
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})
}
