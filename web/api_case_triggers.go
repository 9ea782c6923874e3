package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

type caseTriggerJSON struct {
	ID                 string       `json:"id"`
	AgentID            string       `json:"agent_id"`
	CaseQueueID        string       `json:"case_queue_id"`
	CaseQueueName      string       `json:"case_queue_name"`
	UserID             string       `json:"user_id"`
	Enabled            bool         `json:"enabled"`
	Concurrency        *int         `json:"concurrency" nullable:"true" doc:"At most this many of the queue's cases in progress for this Assignment at once."`
	CreatedAt          Timestamp    `json:"created_at"`
	UpdatedAt          Timestamp    `json:"updated_at"`
	CreatorDisplayName *string      `json:"creator_display_name" nullable:"true"`
	CanDisable         bool         `json:"can_disable"`
	HasConflict        bool         `json:"has_conflict" doc:"Other Assignments consume the same queue."`
	ConflictingAgents  []idNameJSON `json:"conflicting_agents"`
	MaxAttempts        int          `json:"max_attempts" doc:"docket addition: attempts per case after infrastructure failures before it is failed."`
}

func caseTriggerOut(t store.CaseTrigger) caseTriggerJSON {
	c := t.Concurrency
	out := caseTriggerJSON{ID: t.ID, AgentID: t.AgentID, CaseQueueID: t.CaseQueueID, CaseQueueName: t.CaseQueueName, UserID: orEmpty(t.UserID),
		Enabled: t.Enabled, Concurrency: &c, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt), CreatorDisplayName: t.CreatorName,
		CanDisable: true, HasConflict: len(t.ConflictingAgents) > 0, ConflictingAgents: agentRefsOut(t.ConflictingAgents), MaxAttempts: t.MaxAttempts}
	return out
}

func agentRefsOut(refs []store.AgentRef) []idNameJSON {
	out := []idNameJSON{}
	for _, r := range refs {
		out = append(out, idNameJSON{ID: r.ID, Name: r.Name})
	}
	return out
}

func orEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type caseTriggerOutBody struct {
	CaseTrigger caseTriggerJSON `json:"case_trigger"`
}

// TriggerPath names one of an Assignment's case triggers.
type TriggerPath struct {
	AgentPath
	TriggerID string `path:"trigger_id" format:"uuid" doc:"Case trigger id."`
}

func (s *Server) registerCaseTriggers() {
	tags := []string{"Case triggers"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentCaseTriggers", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/case-triggers",
		Summary: "List an Assignment's case triggers", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *AgentPath) (*body[struct {
			CaseTriggers []caseTriggerJSON `json:"case_triggers"`
		}], error) {
			ts, err := s.store.ListCaseTriggers(ctx, principal(ctx).TeamID, in.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				CaseTriggers []caseTriggerJSON `json:"case_triggers"`
			}]{}
			out.Body.CaseTriggers = []caseTriggerJSON{}
			for _, t := range ts {
				out.Body.CaseTriggers = append(out.Body.CaseTriggers, caseTriggerOut(t))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createAgentCaseTrigger", Method: http.MethodPost, Path: "/v2/agents/{agent_id}/case-triggers",
		Summary: "Bind an Assignment to a queue", Description: "An Assignment consumes at most one queue: a second trigger answers 409.",
		DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			AgentPath
			Body struct {
				CaseQueueID string `json:"case_queue_id" format:"uuid"`
				Enabled     bool   `json:"enabled"`
				Concurrency *int   `json:"concurrency,omitempty" minimum:"1" maximum:"1000" doc:"Cases in progress at once (default 1)."`
				MaxAttempts *int   `json:"max_attempts,omitempty" minimum:"1" maximum:"100" doc:"docket addition: attempts per case after infrastructure failures (default 3)."`
			}
		}) (*body[caseTriggerOutBody], error) {
			nt := store.NewCaseTrigger{CaseQueueID: in.Body.CaseQueueID, Enabled: in.Body.Enabled}
			if in.Body.Concurrency != nil {
				nt.Concurrency = *in.Body.Concurrency
			}
			if in.Body.MaxAttempts != nil {
				nt.MaxAttempts = *in.Body.MaxAttempts
			}
			t, err := s.store.CreateCaseTrigger(ctx, actor(ctx), in.AgentID, nt)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			return &body[caseTriggerOutBody]{Body: caseTriggerOutBody{CaseTrigger: caseTriggerOut(t)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "previewAgentCaseTriggerConflicts", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/case-triggers/conflict-preview",
		Summary: "Which other Assignments consume a queue", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			AgentPath
			CaseQueueID string `query:"case_queue_id" required:"true" format:"uuid"`
		}) (*body[struct {
			HasConflict       bool         `json:"has_conflict"`
			ConflictingAgents []idNameJSON `json:"conflicting_agents"`
		}], error) {
			p := principal(ctx)
			if _, err := s.store.GetAgent(ctx, p.TeamID, in.AgentID, p.UserID); err != nil {
				return nil, fail(ctx, err)
			}
			refs, err := s.store.QueueConsumers(ctx, p.TeamID, in.CaseQueueID, in.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				HasConflict       bool         `json:"has_conflict"`
				ConflictingAgents []idNameJSON `json:"conflicting_agents"`
			}]{}
			out.Body.HasConflict, out.Body.ConflictingAgents = len(refs) > 0, agentRefsOut(refs)
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getAgentCaseTrigger", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/case-triggers/{trigger_id}",
		Summary: "Get a case trigger", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *TriggerPath) (*body[caseTriggerOutBody], error) {
			t, err := s.store.GetCaseTrigger(ctx, principal(ctx).TeamID, in.AgentID, in.TriggerID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[caseTriggerOutBody]{Body: caseTriggerOutBody{CaseTrigger: caseTriggerOut(t)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateAgentCaseTrigger", Method: http.MethodPatch, Path: "/v2/agents/{agent_id}/case-triggers/{trigger_id}",
		Summary: "Change a case trigger", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TriggerPath
			Body struct {
				CaseQueueID *string       `json:"case_queue_id,omitempty" format:"uuid"`
				Enabled     *bool         `json:"enabled,omitempty"`
				Concurrency nullable[int] `json:"concurrency,omitempty" doc:"Cases in progress at once; null restores the default (1)."`
				MaxAttempts *int          `json:"max_attempts,omitempty" minimum:"1" maximum:"100"`
			}
		}) (*body[caseTriggerOutBody], error) {
			p := store.CaseTriggerPatch{CaseQueueID: in.Body.CaseQueueID, Enabled: in.Body.Enabled, MaxAttempts: in.Body.MaxAttempts}
			if in.Body.Concurrency.Sent {
				c := 1
				if v := in.Body.Concurrency.Value; v != nil {
					if *v < 1 || *v > 1000 {
						return nil, badRequest("concurrency: %d must be from 1 to 1000, or null for the default (1)", *v)
					}
					c = *v
				}
				p.Concurrency = &c
			}
			t, err := s.store.UpdateCaseTrigger(ctx, actor(ctx), in.AgentID, in.TriggerID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			return &body[caseTriggerOutBody]{Body: caseTriggerOutBody{CaseTrigger: caseTriggerOut(t)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteAgentCaseTrigger", Method: http.MethodDelete, Path: "/v2/agents/{agent_id}/case-triggers/{trigger_id}",
		Summary: "Unbind an Assignment from its queue", Description: "Cases in progress finish; no new ones start.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *TriggerPath) (*body[successOut], error) {
			if err := s.store.DeleteCaseTrigger(ctx, actor(ctx), in.AgentID, in.TriggerID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})
}
