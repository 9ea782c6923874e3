package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

// Runs is what the API needs from the run engine (runtime.Engine provides it).
type Runs interface {
	StartRun(ctx context.Context, a store.Actor, nr store.NewRun) (store.Run, error)
	Respond(ctx context.Context, a store.Actor, runID, gateID string, r store.GateResponse) (store.Gate, error)
	PostMessage(ctx context.Context, a store.Actor, runID, text string) (store.Message, error)
	Stop(ctx context.Context, a store.Actor, runID string) (store.Run, error)
	Hub() *runtime.Hub
	Tools() *runtime.Registry
}

// RunPath names a run. Runs are addressed without their team; another team's run is 404.
type RunPath struct {
	RunID string `path:"run_id" format:"uuid" doc:"The run's id."`
}

type usageJSON struct {
	PromptTokens int64 `json:"prompt_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	ModelMs      int64 `json:"model_ms" doc:"Time spent in model calls, as docket measured it."`
	ModelTurns   int64 `json:"model_turns" doc:"Model calls the run made."`
	// What the model reported about its own work, summed over the run's model calls.
	TotalDurationMs      int64 `json:"total_duration_ms" doc:"Ollama's total_duration: model_ms minus this is what transport and streaming cost."`
	LoadDurationMs       int64 `json:"load_duration_ms" doc:"Ollama's load_duration: loading the model into memory."`
	PromptEvalDurationMs int64 `json:"prompt_eval_duration_ms" doc:"Ollama's prompt_eval_duration: reading the prompt."`
	EvalDurationMs       int64 `json:"eval_duration_ms" doc:"Ollama's eval_duration: generating the answer."`
}

// RunJSON is a run (Job) as startRun and getRun return it: the reference's fields plus
// docket's additions.
type RunJSON struct {
	ID                     string     `json:"id" format:"uuid"`
	AgentID                string     `json:"agent_id" format:"uuid"`
	BuildID                string     `json:"build_id" format:"uuid"`
	Status                 string     `json:"status" doc:"pending, running, waiting (a gate is open), completed, failed or stopped."`
	Source                 *string    `json:"source" nullable:"true" doc:"api, cli, mcp, ui, schedule, case, webhook, handover or subagent."`
	SandboxID              *string    `json:"sandbox_id" nullable:"true"`
	StartedAt              *Timestamp `json:"started_at" nullable:"true"`
	CompletedAt            *Timestamp `json:"completed_at" nullable:"true"`
	CreatedAt              Timestamp  `json:"created_at"`
	UpdatedAt              Timestamp  `json:"updated_at"`
	HumanInTheLoopEnabled  bool       `json:"human_in_the_loop_enabled"`
	Title                  string     `json:"title" doc:"docket addition."`
	RunNumber              int        `json:"run_number" doc:"docket addition: the run's number within its Assignment."`
	CaseID                 *string    `json:"case_id" nullable:"true" doc:"docket addition."`
	ParentRunID            *string    `json:"parent_run_id" nullable:"true" doc:"docket addition."`
	HandoverFromRunID      *string    `json:"handover_from_run_id" nullable:"true" doc:"docket addition."`
	Error                  *string    `json:"error" nullable:"true" doc:"docket addition: why the run failed, in words a person can act on."`
	ToolMode               *string    `json:"tool_mode" nullable:"true" doc:"docket addition: how the model was asked for tool calls."`
	Attempt                int        `json:"attempt" doc:"docket addition: how many times an executor picked the run up."`
	Usage                  usageJSON  `json:"usage" doc:"docket addition."`
	Artifacts              []fileJSON `json:"artifacts" doc:"docket addition: the files the run wrote (runs/<run id>/…), by path; getRun fills it."`
	PendingHumanRequest    *gateJSON  `json:"pending_human_request,omitempty" doc:"getRun only: the open gate, repeated here for clients that read it inside run."`
	pendingHumanRequestSet bool
}

// MarshalJSON sends pending_human_request (possibly null) only where getRun set it.
func (r RunJSON) MarshalJSON() ([]byte, error) {
	type plain RunJSON
	if !r.pendingHumanRequestSet {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		PendingHumanRequest *gateJSON `json:"pending_human_request"`
	}{plain(r), r.PendingHumanRequest})
}

func (s *Server) runOut(ctx context.Context, r store.Run) RunJSON {
	src := r.Source
	return RunJSON{ID: r.ID, AgentID: r.AgentID, BuildID: r.BuildID, Status: r.Status, Source: &src, SandboxID: r.SandboxID,
		StartedAt: tsPtr(r.StartedAt), CompletedAt: tsPtr(r.CompletedAt), CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
		HumanInTheLoopEnabled: s.humanInTheLoop(ctx, r), Title: r.Title, RunNumber: r.RunNumber, CaseID: r.CaseID,
		ParentRunID: r.ParentRunID, HandoverFromRunID: r.HandoverFromRunID, Error: r.Error, ToolMode: r.ToolMode, Attempt: r.Attempt,
		Usage: usageJSON{PromptTokens: r.PromptTokens, OutputTokens: r.OutputTokens, ModelMs: r.ModelMs, ModelTurns: r.Model.Turns,
			TotalDurationMs: r.Model.TotalMs, LoadDurationMs: r.Model.LoadMs, PromptEvalDurationMs: r.Model.PromptEvalMs, EvalDurationMs: r.Model.EvalMs},
		Artifacts: []fileJSON{}}
}

// humanInTheLoop reports whether the run's setup can stop for a person: it offers a
// human tool or requires approval for some tool.
func (s *Server) humanInTheLoop(ctx context.Context, r store.Run) bool {
	b, err := s.store.GetBuild(ctx, r.TeamID, "", r.BuildID)
	if err != nil {
		return false
	}
	c, err := runtime.ParseSetupConfig(b.Config)
	if err != nil {
		return false
	}
	if c.Data.Approval != nil && len(c.Data.Approval.Require) > 0 {
		return true
	}
	for _, t := range s.runs.Tools().Enabled(c.Data) {
		if t.Human != "" || t.Gated != nil {
			return true
		}
	}
	return false
}

type questionJSON struct {
	Question    string               `json:"question"`
	Header      string               `json:"header,omitempty"`
	Options     []questionOptionJSON `json:"options,omitempty"`
	MultiSelect bool                 `json:"multi_select,omitempty"`
}

type questionOptionJSON struct {
	Label       string `json:"label"`
	Description string `json:"description,omitempty"`
}

// gateJSON is a human request (gate) as getRun's pending_human_request and the inbox show it.
type gateJSON struct {
	// Nullable wherever it appears: getRun sends null when no gate is open.
	_           struct{}          `nullable:"true"`
	ID          string            `json:"id" format:"uuid"`
	Title       string            `json:"title"`
	Description *string           `json:"description" nullable:"true"`
	CreatedAt   Timestamp         `json:"created_at"`
	Type        string            `json:"type" enum:"approval,question"`
	Questions   []questionJSON    `json:"questions,omitempty"`
	RunID       string            `json:"run_id" format:"uuid" doc:"docket addition."`
	AgentID     string            `json:"agent_id" format:"uuid" doc:"docket addition."`
	AgentName   string            `json:"agent_name" doc:"docket addition."`
	RunTitle    string            `json:"run_title" doc:"docket addition."`
	Kind        string            `json:"kind" enum:"model,policy,recovery" doc:"docket addition: model (the assignment asked), policy (the setup's approval.require), recovery (outcome unknown after a crash)."`
	Details     any               `json:"details,omitempty" doc:"docket addition: the exact tool call the gate guards."`
	Status      string            `json:"status" enum:"open,approved,denied,answered,expired,superseded" doc:"docket addition."`
	ExpiresAt   *Timestamp        `json:"expires_at" nullable:"true" doc:"docket addition."`
	DecidedBy   *string           `json:"decided_by" nullable:"true" doc:"docket addition: the email (or API key) of whoever decided."`
	DecidedAt   *Timestamp        `json:"decided_at" nullable:"true" doc:"docket addition."`
	Channel     *string           `json:"channel" nullable:"true" doc:"docket addition: api, cli, mcp or ui."`
	Reason      *string           `json:"reason" nullable:"true" doc:"docket addition."`
	Answers     map[string]string `json:"answers,omitempty" doc:"docket addition."`
}

func gateOut(g store.Gate) gateJSON {
	out := gateJSON{ID: g.ID, Title: g.Title, Description: g.Description, CreatedAt: ts(g.CreatedAt), Type: g.Type, RunID: g.RunID,
		AgentID: g.AgentID, AgentName: g.AgentName, RunTitle: g.RunTitle, Kind: g.Kind, Status: g.Status, ExpiresAt: tsPtr(g.ExpiresAt),
		DecidedAt: tsPtr(g.DecidedAt), Channel: g.Channel, Reason: g.Reason, Answers: g.Answers, DecidedBy: decidedBy(g)}
	if len(g.Questions) > 0 {
		json.Unmarshal(g.Questions, &out.Questions)
	}
	if len(g.Details) > 0 {
		json.Unmarshal(g.Details, &out.Details)
	}
	return out
}

func decidedBy(g store.Gate) *string {
	switch {
	case g.DecidedByEmail != nil:
		return g.DecidedByEmail
	case g.DecidedByKey != nil:
		k := "api key " + *g.DecidedByKey
		return &k
	}
	return nil
}

type toolCallJSON struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

type toolResultJSON struct {
	ToolCallID string  `json:"tool_call_id"`
	Result     any     `json:"result,omitempty"`
	Error      *string `json:"error,omitempty"`
}

// messageJSON is one message of a run's conversation.
type messageJSON struct {
	ID          string          `json:"id"`
	Type        string          `json:"type" doc:"text, tool_call or tool_result."`
	Role        string          `json:"role" doc:"user, assistant or tool."`
	Timestamp   Timestamp       `json:"timestamp"`
	TextContent *string         `json:"text_content,omitempty"`
	ToolCall    *toolCallJSON   `json:"tool_call,omitempty"`
	ToolResult  *toolResultJSON `json:"tool_result,omitempty"`
	Seq         int             `json:"seq" doc:"docket addition: the message's position in the run."`
	Thinking    *string         `json:"thinking,omitempty" doc:"docket addition: the model's reasoning, when the setup enables think."`
}

func messageOut(m store.Message) messageJSON {
	out := messageJSON{ID: m.ID, Type: m.Type, Role: m.Role, Timestamp: ts(m.CreatedAt), TextContent: m.Text, Seq: m.Seq, Thinking: m.Thinking}
	if c := m.ToolCall; c != nil {
		tc := &toolCallJSON{ID: c.ID, Name: c.Name}
		json.Unmarshal(c.Arguments, &tc.Arguments)
		out.ToolCall = tc
	}
	if r := m.ToolResult; r != nil {
		tr := &toolResultJSON{ToolCallID: r.ToolCallID, Error: r.Error}
		if r.Result != nil {
			// A JSON result is sent as JSON, anything else as the text it is.
			var v any
			if json.Unmarshal([]byte(*r.Result), &v) == nil {
				tr.Result = v
			} else {
				tr.Result = *r.Result
			}
		}
		out.ToolResult = tr
	}
	return out
}

type startRunIn struct {
	TeamPath
	Body struct {
		AgentID    string `json:"agent_id" format:"uuid" doc:"The Assignment to run (its live Setup)."`
		Message    string `json:"message,omitempty" maxLength:"200000" doc:"The first message, e.g. a trigger payload or an instruction."`
		SandboxID  string `json:"sandbox_id,omitempty" doc:"A sandbox (createSandbox) whose files the run reads with read_file at their /workspace/… paths."`
		WebhookURL string `json:"webhook_url,omitempty" maxLength:"2048" doc:"Receives human_request_created, run_completed, run_failed and run_interrupted, signed (Standard Webhooks)."`
	}
}

type runOut struct {
	Run RunJSON `json:"run"`
}

type getRunOut struct {
	Run                 RunJSON   `json:"run"`
	PendingHumanRequest *gateJSON `json:"pending_human_request"`
}

type listRunsOut struct {
	Data  []runListItemJSON `json:"data"`
	Total int               `json:"total"`
}

// runListItemJSON is a run as listRuns returns it.
type runListItemJSON struct {
	ID                   string     `json:"id" format:"uuid"`
	CreatedAt            Timestamp  `json:"created_at"`
	UpdatedAt            Timestamp  `json:"updated_at"`
	StartedAt            *Timestamp `json:"started_at" nullable:"true"`
	CompletedAt          *Timestamp `json:"completed_at" nullable:"true"`
	Status               string     `json:"status"`
	Source               *string    `json:"source" nullable:"true"`
	Title                string     `json:"title"`
	RunNumber            int        `json:"run_number"`
	AgentID              string     `json:"agent_id" format:"uuid"`
	AgentName            string     `json:"agent_name"`
	BuildID              string     `json:"build_id" format:"uuid"`
	UserID               *string    `json:"user_id" nullable:"true"`
	CaseQueueItemID      *string    `json:"case_queue_item_id" nullable:"true"`
	CaseQueueID          *string    `json:"case_queue_id" nullable:"true"`
	CaseQueueName        *string    `json:"case_queue_name" nullable:"true"`
	CaseTitle            *string    `json:"case_title" nullable:"true"`
	PostponedTo          *Timestamp `json:"postponed_to" nullable:"true"`
	SubmittedPromptCount int        `json:"submitted_prompt_count"`
	Error                *string    `json:"error" nullable:"true" doc:"docket addition."`
}

type messagesOut struct {
	Messages []messageJSON `json:"messages"`
	Total    int           `json:"total"`
	Limit    int           `json:"limit"`
	Offset   int           `json:"offset"`
}

type respondIn struct {
	RunPath
	RequestID string `path:"request_id" format:"uuid" doc:"The human request's id."`
	Body      struct {
		Approved *bool             `json:"approved,omitempty" doc:"For approval requests: true approves, false denies."`
		Answers  map[string]string `json:"answers,omitempty" doc:"For question requests: question text → answer (multi-select answers comma-separated)."`
		Reason   string            `json:"reason,omitempty" maxLength:"2000" doc:"docket addition: why; the model sees it with a denial."`
	}
}

type humanRequestJSON struct {
	ID          string     `json:"id" format:"uuid"`
	RunID       string     `json:"run_id" format:"uuid"`
	Title       string     `json:"title"`
	Description *string    `json:"description" nullable:"true"`
	Response    *string    `json:"response" nullable:"true" doc:"approved, denied, or the answers as JSON."`
	RespondedAt *Timestamp `json:"responded_at" nullable:"true"`
	CreatedAt   Timestamp  `json:"created_at"`
	Status      string     `json:"status" doc:"docket addition."`
	DecidedBy   *string    `json:"decided_by" nullable:"true" doc:"docket addition."`
	Channel     *string    `json:"channel" nullable:"true" doc:"docket addition."`
	Reason      *string    `json:"reason" nullable:"true" doc:"docket addition."`
}

type stopOut struct {
	Success bool   `json:"success"`
	Message string `json:"message,omitempty"`
}

type humanRequestsOut struct {
	HumanRequests []gateJSON `json:"human_requests"`
	Total         int        `json:"total"`
	Limit         int        `json:"limit"`
	Offset        int        `json:"offset"`
}

func (s *Server) registerRuns() {
	tags := []string{"Jobs"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "startRun", Method: http.MethodPost, Path: "/v2/teams/{teamId}/runs",
		Summary: "Start a Job on an Assignment's live Setup", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *startRunIn) (*body[runOut], error) {
			if u := in.Body.WebhookURL; u != "" {
				if err := runtime.ValidateWebhookURL(u); err != nil {
					return nil, badRequest("webhook_url: %s", err)
				}
			}
			nr := store.NewRun{AgentID: in.Body.AgentID, Message: in.Body.Message, Source: "api", WebhookURL: in.Body.WebhookURL}
			if in.Body.SandboxID != "" {
				nr.SandboxID = &in.Body.SandboxID
			}
			r, err := s.runs.StartRun(ctx, actor(ctx), nr)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[runOut]{Body: runOut{Run: s.runOut(ctx, r)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listRuns", Method: http.MethodGet, Path: "/v2/teams/{teamId}/runs",
		Summary: "List Jobs", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
			SortBy    string    `query:"sort_by" enum:"created_at" default:"created_at"`
			SortOrder string    `query:"sort_order" enum:"asc,desc" default:"desc"`
			Status    string    `query:"status" enum:"pending,running,waiting,completed,failed,stopped" doc:"Only runs in this status."`
			AgentID   string    `query:"agent_id" format:"uuid"`
			Source    string    `query:"source" doc:"Only runs started this way (api, schedule, case, …)."`
			CaseID    string    `query:"case_id" format:"uuid" doc:"docket addition: only the runs of this case."`
			Since     time.Time `query:"since" doc:"Only runs created at or after this time."`
			Until     time.Time `query:"until" doc:"docket addition: only runs created before this time."`
		}) (*body[listRunsOut], error) {
			f := store.RunFilter{Status: in.Status, AgentID: in.AgentID, Source: in.Source, CaseID: in.CaseID, Asc: in.SortOrder == "asc", Limit: in.Limit, Offset: in.Offset}
			if !in.Since.IsZero() {
				f.Since = &in.Since
			}
			if !in.Until.IsZero() {
				f.Until = &in.Until
			}
			rs, total, err := s.store.ListRuns(ctx, principal(ctx).TeamID, f)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[listRunsOut]{Body: listRunsOut{Data: []runListItemJSON{}, Total: total}}
			for _, r := range rs {
				src := r.Source
				out.Body.Data = append(out.Body.Data, runListItemJSON{ID: r.ID, CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
					StartedAt: tsPtr(r.StartedAt), CompletedAt: tsPtr(r.CompletedAt), Status: r.Status, Source: &src, Title: r.Title,
					RunNumber: r.RunNumber, AgentID: r.AgentID, AgentName: r.AgentName, BuildID: r.BuildID, UserID: r.UserID,
					CaseQueueItemID: r.CaseID, SubmittedPromptCount: r.UserMessages, Error: r.Error})
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getRun", Method: http.MethodGet, Path: "/v2/runs/{run_id}",
		Summary: "Get a Job, with the gate it waits on", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *RunPath) (*body[getRunOut], error) {
			team := principal(ctx).TeamID
			r, err := s.store.GetRun(ctx, team, in.RunID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := getRunOut{Run: s.runOut(ctx, r)}
			arts, err := s.store.RunArtifacts(ctx, r.ID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			for _, f := range arts {
				out.Run.Artifacts = append(out.Run.Artifacts, fileOut(f))
			}
			if r.Status == store.RunWaiting {
				g, err := s.store.OpenGateOf(ctx, r.ID)
				if err != nil {
					return nil, fail(ctx, err)
				}
				if g != nil {
					gj := gateOut(*g)
					out.PendingHumanRequest = &gj
				}
			}
			out.Run.PendingHumanRequest, out.Run.pendingHumanRequestSet = out.PendingHumanRequest, true
			return &body[getRunOut]{Body: out}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listRunMessages", Method: http.MethodGet, Path: "/v2/runs/{run_id}/messages",
		Summary: "List a Job's messages", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			RunPath
			Limit  int    `query:"limit" default:"20" minimum:"1" maximum:"50" doc:"Messages per page (1-50)."`
			Offset int    `query:"offset" minimum:"0"`
			Order  string `query:"order" enum:"asc,desc" default:"asc" doc:"docket addition: asc (chronological, default) or desc (newest first)."`
		}) (*body[messagesOut], error) {
			ms, total, err := s.store.ListMessages(ctx, principal(ctx).TeamID, in.RunID, in.Limit, in.Offset, in.Order == "desc")
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[messagesOut]{Body: messagesOut{Messages: []messageJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, m := range ms {
				out.Body.Messages = append(out.Body.Messages, messageOut(m))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "postRunMessage", Method: http.MethodPost, Path: "/v2/runs/{run_id}/messages",
		Summary: "Send a message to a waiting or finished Job, which resumes it", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			RunPath
			Body struct {
				Message string `json:"message" minLength:"1" maxLength:"200000"`
			}
		}) (*body[struct {
			Message messageJSON `json:"message"`
		}], error) {
			m, err := s.runs.PostMessage(ctx, actor(ctx), in.RunID, in.Body.Message)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Message messageJSON `json:"message"`
			}]{}
			out.Body.Message = messageOut(m)
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "respondToHumanRequest", Method: http.MethodPost, Path: "/v2/runs/{run_id}/human-requests/{request_id}/respond",
		Summary: "Approve, deny or answer a gate", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *respondIn) (*body[struct {
			HumanRequest humanRequestJSON `json:"human_request"`
		}], error) {
			resp := store.GateResponse{Approved: in.Body.Approved, Reason: in.Body.Reason, Answers: in.Body.Answers}
			g, err := s.runs.Respond(ctx, actor(ctx), in.RunID, in.RequestID, resp)
			if err != nil {
				return nil, fail(ctx, err)
			}
			response := g.Status
			if len(g.Answers) > 0 {
				b, _ := json.Marshal(g.Answers)
				response = string(b)
			}
			out := &body[struct {
				HumanRequest humanRequestJSON `json:"human_request"`
			}]{}
			out.Body.HumanRequest = humanRequestJSON{ID: g.ID, RunID: g.RunID, Title: g.Title, Description: g.Description, Response: &response,
				RespondedAt: tsPtr(g.DecidedAt), CreatedAt: ts(g.CreatedAt), Status: g.Status, DecidedBy: decidedBy(g), Channel: g.Channel, Reason: g.Reason}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "stopRun", Method: http.MethodPost, Path: "/v2/runs/{run_id}/stop",
		Summary: "Stop a Job", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *RunPath) (*body[stopOut], error) {
			r, err := s.runs.Stop(ctx, actor(ctx), in.RunID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[stopOut]{Body: stopOut{Success: true, Message: "run " + r.ID + " stopped"}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listHumanRequests", Method: http.MethodGet, Path: "/v2/teams/{teamId}/human-requests",
		Summary: "List gates (the approvals inbox)", Description: "docket addition: every gate of the team, oldest first; status=open is the inbox.", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
			Status string `query:"status" enum:"open,approved,denied,answered,expired,superseded"`
			RunID  string `query:"run_id" format:"uuid"`
		}) (*body[humanRequestsOut], error) {
			gs, total, err := s.store.ListGates(ctx, principal(ctx).TeamID, store.GateFilter{Status: in.Status, RunID: in.RunID, Limit: in.Limit, Offset: in.Offset})
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[humanRequestsOut]{Body: humanRequestsOut{HumanRequests: []gateJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, g := range gs {
				out.Body.HumanRequests = append(out.Body.HumanRequests, gateOut(g))
			}
			return out, nil
		})

	s.registerRunEvents()
}
