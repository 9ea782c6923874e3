package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/files"
	"docket/runtime"
	"docket/store"
)

// QueueIDPath names a queue. Queues are addressed without their team; another team's
// queue is 404. A malformed id is a 400 naming queue_id.
type QueueIDPath struct {
	QueueID string `path:"queue_id" format:"uuid" doc:"The queue's unique identifier."`
}

type queueCountsJSON struct {
	Pending    int `json:"pending"`
	InProgress int `json:"in_progress"`
	NeedsInput int `json:"needs_input"`
	Postponed  int `json:"postponed"`
	Completed  int `json:"completed"`
	Failed     int `json:"failed"`
	Total      int `json:"total"`
}

// QueueJSON is a queue as every queue operation returns it: the reference's fields plus
// docket's additions. Exported because listQueues embeds it (see AgentJSON).
type QueueJSON struct {
	ID           string          `json:"id" format:"uuid"`
	Name         string          `json:"name"`
	Description  *string         `json:"description" nullable:"true"`
	FolderID     *string         `json:"folder_id" nullable:"true" format:"uuid" doc:"An Assignment folder of the team; null once that folder is deleted."`
	AutomationID *string         `json:"automation_id" nullable:"true" format:"uuid"`
	TeamID       *string         `json:"team_id" nullable:"true"`
	CreatedAt    Timestamp       `json:"created_at"`
	HasApprovals bool            `json:"has_approvals" doc:"Some case's run waits for a person (a case with display status needs_input)."`
	UpdatedAt    Timestamp       `json:"updated_at" doc:"docket addition."`
	CreatedBy    *userRefJSON    `json:"created_by" doc:"docket addition."`
	CaseCounts   queueCountsJSON `json:"case_counts" doc:"How many cases are in each display status (docket addition)."`
	Intake       *intakeJSON     `json:"intake" doc:"docket addition: the queue's drop folder; null when intake is off."`
}

// intakeJSON is a queue's drop folder as the API shows it: the folder as an absolute path.
type intakeJSON struct {
	Dir   string `json:"dir" doc:"Absolute path of the folder watched for dropped files."`
	Mode  string `json:"mode" enum:"file,records" doc:"file: one case per file; records: one case per JSONL line or CSV row."`
	After string `json:"after" enum:"move,delete,keep" doc:"What happens to an ingested file: move to processed/<date>/, delete, or keep in place."`
}

// intakeBody turns a queue's drop folder on or changes it; omitted fields keep their
// current value (or the default when intake was off).
type intakeBody struct {
	Dir   *string `json:"dir,omitempty" doc:"Folder inside the data dir, absolute or relative to it. Default: <data>/intake/<queue-slug>/."`
	Mode  *string `json:"mode,omitempty" doc:"file (default): one case per file; records: one case per JSONL line or CSV row, all or nothing."`
	After *string `json:"after,omitempty" doc:"move (default): to processed/<date>/; delete; or keep in place."`
}

// intakeSpec checks b and says how the store should set it up: the folder is resolved
// against the data dir and created before the change commits.
func (s *Server) intakeSpec(b intakeBody) (*store.IntakeSpec, error) {
	if s.cfg.DataDir == "" {
		return nil, apiError(http.StatusServiceUnavailable, "intake: this server was started without a data dir, so it has no drop folders")
	}
	spec := &store.IntakeSpec{Prepare: func(dir string) error { return files.PrepareIntakeDir(s.cfg.DataDir, dir) }}
	if b.Dir != nil {
		dir, err := files.ResolveIntakeDir(s.cfg.DataDir, *b.Dir)
		if err != nil {
			return nil, badRequest("intake.dir %q: %v", *b.Dir, err)
		}
		spec.Dir = dir
	}
	if b.Mode != nil {
		if spec.Mode = *b.Mode; spec.Mode == "" {
			return nil, badRequest("intake.mode must not be empty: want file or records")
		}
	}
	if b.After != nil {
		if spec.After = *b.After; spec.After == "" {
			return nil, badRequest("intake.after must not be empty: want move, delete or keep")
		}
	}
	return spec, nil
}

// reconcileIntake tells the intake watcher that a queue's drop folder changed.
func (s *Server) reconcileIntake() {
	if s.cfg.Intake != nil {
		s.cfg.Intake.Reconcile()
	}
}

func (s *Server) queueOut(q store.Queue) QueueJSON {
	out := QueueJSON{ID: q.ID, Name: q.Name, FolderID: q.FolderID, AutomationID: q.AutomationID, TeamID: &q.TeamID,
		CreatedAt: ts(q.CreatedAt), HasApprovals: q.HasApprovals(), UpdatedAt: ts(q.UpdatedAt), CreatedBy: userRef(q.CreatedBy),
		CaseCounts: queueCountsJSON{Pending: q.Counts.Pending, InProgress: q.Counts.InProgress, NeedsInput: q.Counts.NeedsInput,
			Postponed: q.Counts.Postponed, Completed: q.Counts.Completed, Failed: q.Counts.Failed, Total: q.Counts.Total}}
	if q.Description != "" {
		out.Description = &q.Description
	}
	if q.Intake != nil {
		out.Intake = &intakeJSON{Dir: files.IntakeAbs(s.cfg.DataDir, q.Intake.Dir), Mode: q.Intake.Mode, After: q.Intake.After}
	}
	return out
}

type queuesOut struct {
	Queues []QueueJSON `json:"queues"`
	Total  int         `json:"total"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
}

type queueOutBody struct {
	Queue QueueJSON `json:"queue"`
}

type deleteQueueOut struct {
	Success           bool     `json:"success"`
	DeletedCaseCount  int      `json:"deleted_case_count"`
	InterruptedRunIDs []string `json:"interrupted_run_ids"`
}

type queueProducerJSON struct {
	AgentID              string   `json:"agent_id" format:"uuid"`
	AgentName            string   `json:"agent_name"`
	CaseTriggerEnabled   bool     `json:"case_trigger_enabled"`
	CaseTriggerQueueName *string  `json:"case_trigger_queue_name" nullable:"true"`
	Problems             []string `json:"problems"`
}

type queueConsumerJSON struct {
	AgentID            string   `json:"agent_id" format:"uuid"`
	AgentName          string   `json:"agent_name"`
	CaseTriggerEnabled bool     `json:"case_trigger_enabled"`
	IsHandoverTarget   bool     `json:"is_handover_target" doc:"Another Assignment's live Setup may hand work over to this one."`
	Problems           []string `json:"problems" doc:"Always empty: an Assignment has at most one case trigger and producers are not bound to queues."`
	ConcurrencyLimit   int      `json:"concurrency_limit" doc:"How many of the queue's cases the Assignment works on at once."`
	AtConcurrencyLimit bool     `json:"at_concurrency_limit"`
	CaseTriggerID      string   `json:"case_trigger_id" format:"uuid" doc:"docket addition."`
	MaxAttempts        int      `json:"max_attempts" doc:"docket addition."`
	InProgressCount    int      `json:"in_progress_count" doc:"Cases of the queue its runs hold now (docket addition)."`
}

type queueAgentsOut struct {
	QueueName string              `json:"queue_name"`
	Producers []queueProducerJSON `json:"producers" doc:"Always empty: in docket any Assignment with the add_cases tool may add cases to any queue of its team."`
	Consumers []queueConsumerJSON `json:"consumers"`
}

func (s *Server) registerQueues() {
	tags := []string{"Queues"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listQueues", Method: http.MethodGet, Path: "/v2/teams/{teamId}/queues",
		Summary: "List the team's queues", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			TeamPath
			Limit        int    `query:"limit" default:"250" minimum:"1" maximum:"250" doc:"Number of queues per page (1-250, default 250)."`
			Offset       int    `query:"offset" minimum:"0" doc:"Number of queues to skip."`
			AutomationID string `query:"automation_id" format:"uuid" doc:"Only return queues belonging to this automation."`
		}) (*body[queuesOut], error) {
			qs, total, err := s.store.ListQueues(ctx, in.TeamID, store.QueueFilter{AutomationID: in.AutomationID, Limit: in.Limit, Offset: in.Offset})
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[queuesOut]{Body: queuesOut{Queues: []QueueJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, q := range qs {
				out.Body.Queues = append(out.Body.Queues, s.queueOut(q))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createQueue", Method: http.MethodPost, Path: "/v2/teams/{teamId}/queues",
		Summary: "Create a queue", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Body struct {
				Name         string      `json:"name" minLength:"1" maxLength:"100" doc:"Queue name. Must be unique within the team."`
				Description  *string     `json:"description,omitempty" nullable:"true" maxLength:"500" doc:"Optional human-readable description."`
				FolderID     *string     `json:"folder_id,omitempty" nullable:"true" format:"uuid" doc:"Optional Assignment folder of the team to nest the queue under."`
				AutomationID *string     `json:"automation_id,omitempty" nullable:"true" format:"uuid" doc:"Automation this queue belongs to; recorded and filterable."`
				Intake       *intakeBody `json:"intake,omitempty" doc:"docket addition: turn on the queue's drop folder ({} for the defaults)."`
			}
		}) (*body[queueOutBody], error) {
			nq := store.NewQueue{Name: in.Body.Name, FolderID: in.Body.FolderID, AutomationID: in.Body.AutomationID}
			if in.Body.Description != nil {
				nq.Description = *in.Body.Description
			}
			if in.Body.Intake != nil {
				spec, err := s.intakeSpec(*in.Body.Intake)
				if err != nil {
					return nil, err
				}
				nq.Intake = spec
			}
			q, err := s.store.CreateQueue(ctx, actor(ctx), nq)
			if err != nil {
				return nil, fail(ctx, err)
			}
			if q.Intake != nil {
				s.reconcileIntake()
			}
			return &body[queueOutBody]{Body: queueOutBody{Queue: s.queueOut(q)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getQueue", Method: http.MethodGet, Path: "/v2/queues/{queue_id}",
		Summary: "Get a queue", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *QueueIDPath) (*body[queueOutBody], error) {
			q, err := s.store.GetQueue(ctx, principal(ctx).TeamID, in.QueueID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[queueOutBody]{Body: queueOutBody{Queue: s.queueOut(q)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateQueue", Method: http.MethodPatch, Path: "/v2/queues/{queue_id}",
		Summary: "Rename, describe or move a queue", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueIDPath
			Body struct {
				Name        *string              `json:"name,omitempty" minLength:"1" maxLength:"100" doc:"New queue name. Must be unique within the team."`
				Description nullable[string]     `json:"description,omitempty" maxLength:"500" doc:"New description, or null to clear."`
				FolderID    nullable[string]     `json:"folder_id,omitempty" format:"uuid" doc:"New folder id, or null to move to the root."`
				Intake      nullable[intakeBody] `json:"intake,omitempty" doc:"docket addition: turn on or change the queue's drop folder (omitted fields keep their value), or null to turn it off."`
			}
		}) (*body[queueOutBody], error) {
			p := store.QueuePatch{Name: in.Body.Name, SetDescription: in.Body.Description.Sent, Description: in.Body.Description.Value,
				SetFolder: in.Body.FolderID.Sent, FolderID: in.Body.FolderID.Value, SetIntake: in.Body.Intake.Sent}
			if in.Body.Intake.Value != nil {
				spec, err := s.intakeSpec(*in.Body.Intake.Value)
				if err != nil {
					return nil, err
				}
				p.Intake = spec
			}
			q, err := s.store.UpdateQueue(ctx, actor(ctx), in.QueueID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			if p.SetIntake {
				s.reconcileIntake()
			}
			return &body[queueOutBody]{Body: queueOutBody{Queue: s.queueOut(q)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteQueue", Method: http.MethodDelete, Path: "/v2/queues/{queue_id}",
		Summary: "Delete a queue with its cases and labels",
		Description: "Deletes the queue, its cases, labels and the case triggers that consume it. While runs hold some of its cases " +
			"the delete answers 409, unless force=true: then those runs are stopped first, in the same transaction, and listed in interrupted_run_ids.",
		Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueIDPath
			Force string `query:"force" enum:"true,false" doc:"true: stop the runs working on the queue's cases, then delete it."`
		}) (*body[deleteQueueOut], error) {
			d, err := s.store.DeleteQueue(ctx, actor(ctx), in.QueueID, in.Force == "true")
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.reconcileIntake()
			// The runs ended in the store; tell their watchers, and wake the webhook
			// worker for the run_interrupted deliveries queued with them.
			for _, id := range d.InterruptedRunIDs {
				s.runs.Hub().Publish(runtime.Event{Type: "status", RunID: id, TeamID: principal(ctx).TeamID, Status: store.RunStopped})
			}
			if len(d.InterruptedRunIDs) > 0 && s.hooks != nil {
				s.hooks.Wake()
			}
			return &body[deleteQueueOut]{Body: deleteQueueOut{Success: true, DeletedCaseCount: d.DeletedCases, InterruptedRunIDs: d.InterruptedRunIDs}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listQueueAgents", Method: http.MethodGet, Path: "/v2/queues/{queue_id}/agents",
		Summary: "List the Assignments that consume a queue", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *QueueIDPath) (*body[queueAgentsOut], error) {
			name, cs, err := s.store.QueueAgents(ctx, principal(ctx).TeamID, in.QueueID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[queueAgentsOut]{Body: queueAgentsOut{QueueName: name, Producers: []queueProducerJSON{}, Consumers: []queueConsumerJSON{}}}
			for _, c := range cs {
				out.Body.Consumers = append(out.Body.Consumers, queueConsumerJSON{AgentID: c.AgentID, AgentName: c.AgentName,
					CaseTriggerEnabled: c.Enabled, IsHandoverTarget: c.IsHandoverTarget, Problems: []string{}, ConcurrencyLimit: c.Concurrency,
					AtConcurrencyLimit: c.AtLimit(), CaseTriggerID: c.TriggerID, MaxAttempts: c.MaxAttempts, InProgressCount: c.InProgress})
			}
			return out, nil
		})
}
