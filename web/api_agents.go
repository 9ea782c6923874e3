package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

type userRefJSON struct {
	ID    string  `json:"id"`
	Name  *string `json:"name" nullable:"true"`
	Email string  `json:"email"`
}

func userRef(u *store.UserRef) *userRefJSON {
	if u == nil {
		return nil
	}
	return &userRefJSON{ID: u.ID, Name: u.Name, Email: u.Email}
}

// AgentJSON is an Assignment as getAgent and createAgent return it. It is exported
// because listAgents embeds it: huma leaves an unexported embedded struct's fields out
// of the OpenAPI schema, though encoding/json still sends them.
type AgentJSON struct {
	ID                    string       `json:"id"`
	Name                  string       `json:"name"`
	Description           string       `json:"description" doc:"What the assignment does (docket addition)."`
	SlackEnabled          bool         `json:"slack_enabled"`
	MicrosoftTeamsEnabled bool         `json:"microsoft_teams_enabled"`
	AgenticMemoryEnabled  bool         `json:"agentic_memory_enabled"`
	TeamID                *string      `json:"team_id" nullable:"true"`
	ThreadID              *string      `json:"thread_id" nullable:"true"`
	FolderID              *string      `json:"folder_id" nullable:"true"`
	AutomationID          *string      `json:"automation_id" nullable:"true"`
	LiveBuildID           *string      `json:"live_build_id" nullable:"true" doc:"The Setup new runs use (docket addition)."`
	CreatedAt             *Timestamp   `json:"created_at" nullable:"true"`
	UpdatedAt             *Timestamp   `json:"updated_at" nullable:"true"`
	CreatedBy             *userRefJSON `json:"created_by"`
	UpdatedBy             *userRefJSON `json:"updated_by"`
}

func agentOut(a store.Agent) AgentJSON {
	c, u := ts(a.CreatedAt), ts(a.UpdatedAt)
	return AgentJSON{ID: a.ID, Name: a.Name, Description: a.Description, SlackEnabled: a.SlackEnabled,
		MicrosoftTeamsEnabled: a.MicrosoftTeamsEnabled, AgenticMemoryEnabled: a.AgenticMemoryEnabled, TeamID: &a.TeamID,
		ThreadID: a.ThreadID, FolderID: a.FolderID, AutomationID: a.AutomationID, LiveBuildID: a.LiveBuildID,
		CreatedAt: &c, UpdatedAt: &u, CreatedBy: userRef(a.CreatedBy), UpdatedBy: userRef(a.UpdatedBy)}
}

type userTriggersJSON struct {
	SlackMention bool `json:"slack_mention"`
	SlackChannel bool `json:"slack_channel"`
	TeamsMention bool `json:"teams_mention"`
}

type idNameJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// agentListItemJSON is an Assignment as listAgents returns it, with its latest Setup.
type agentListItemJSON struct {
	AgentJSON
	PinnedAt                     *Timestamp       `json:"pinned_at" nullable:"true"`
	LastRunAt                    *Timestamp       `json:"last_run_at" nullable:"true"`
	LatestBuild                  *buildJSON       `json:"latest_build" doc:"The live Setup, or the newest when none is live yet."`
	IntegrationConfigs           []struct{}       `json:"integration_configs" maxItems:"0" doc:"Always empty: docket has no cloud integrations."`
	UserTriggers                 userTriggersJSON `json:"user_triggers"`
	CaseTriggerEnabled           bool             `json:"case_trigger_enabled"`
	CaseTriggerHasConflict       bool             `json:"case_trigger_has_conflict"`
	CaseTriggerConflictingAgents []idNameJSON     `json:"case_trigger_conflicting_agents"`
	CaseQueueName                *string          `json:"case_queue_name" nullable:"true"`
}

type agentsOut struct {
	Agents []agentListItemJSON `json:"agents"`
	Total  int                 `json:"total"`
	Limit  int                 `json:"limit"`
	Offset int                 `json:"offset"`
}

type agentOutBody struct {
	Agent       AgentJSON `json:"agent"`
	UserContext struct {
		PinnedAt *Timestamp `json:"pinned_at" nullable:"true"`
	} `json:"user_context"`
}

// AgentPath names an Assignment. Ids are UUIDs, as in the reference: a malformed one is
// a 400 naming agent_id, not a 404 for something that could exist.
type AgentPath struct {
	AgentID string `path:"agent_id" format:"uuid" doc:"Assignment id."`
}

type createAgentIn struct {
	TeamPath
	Body struct {
		Name          string     `json:"name" minLength:"1" maxLength:"200"`
		Description   string     `json:"description,omitempty" maxLength:"2000" doc:"What the assignment does (docket addition)."`
		ThreadID      *string    `json:"thread_id,omitempty" nullable:"true"`
		SourceBuildID *string    `json:"source_build_id,omitempty" nullable:"true" doc:"Copy this Setup (of any assignment in the team) as the first, live Setup."`
		AutomationID  *string    `json:"automation_id,omitempty" nullable:"true"`
		Build         *buildBody `json:"build,omitempty" doc:"The first Setup; it goes live at once."`
	}
}

type createAgentOut struct {
	Agent AgentJSON  `json:"agent"`
	Build *buildJSON `json:"build,omitempty"`
}

type updateAgentIn struct {
	AgentPath
	Body struct {
		Name                  *string          `json:"name,omitempty" minLength:"1" maxLength:"200"`
		Description           *string          `json:"description,omitempty" maxLength:"2000"`
		SlackEnabled          *bool            `json:"slack_enabled,omitempty"`
		MicrosoftTeamsEnabled *bool            `json:"microsoft_teams_enabled,omitempty"`
		AgenticMemoryEnabled  *bool            `json:"agentic_memory_enabled,omitempty"`
		ThreadID              nullable[string] `json:"thread_id,omitempty"`
		Pinned                *bool            `json:"pinned,omitempty" doc:"Pin for you (each user has their own pins)."`
	}
}

type moveAgentIn struct {
	AgentPath
	DryRun bool `query:"dry_run" doc:"Report what would move without moving it."`
	Body   struct {
		TargetTeamID         string `json:"target_team_id" doc:"A team where you are admin or owner."`
		MoveLearnings        *bool  `json:"move_learnings,omitempty" doc:"Accepted; the agent's memory always moves with it."`
		BypassStandaloneGate *bool  `json:"bypass_standalone_gate,omitempty" doc:"Accepted and ignored (cloud-only)."`
	}
}

type moveAgentOut struct {
	SourceTeamID   string       `json:"source_team_id"`
	TargetTeamID   string       `json:"target_team_id"`
	RootAgentID    string       `json:"root_agent_id"`
	Agents         []idNameJSON `json:"agents"`
	Queues         []struct{}   `json:"queues"`
	TotalCaseItems int          `json:"total_case_items"`
	TotalRuns      int          `json:"total_runs"`
	SkillsToClone  []idNameJSON `json:"skills_to_clone"`
	FilesToCopy    []struct{}   `json:"files_to_copy"`
	Warnings       moveWarnings `json:"warnings"`
	Options        moveOptions  `json:"options"`
	Applied        bool         `json:"applied"`
}

type moveWarnings struct {
	Outcome struct {
		InstancesReconnected        []struct{} `json:"instances_reconnected"`
		InstancesDisconnected       []struct{} `json:"instances_disconnected"`
		CustomIntegrationsToRebuild []struct{} `json:"custom_integrations_to_rebuild"`
		CatalogRowsCreatedOnTarget  int        `json:"catalog_rows_created_on_target"`
	} `json:"outcome"`
	DroppedFolders       []idNameJSON `json:"dropped_folders"`
	DroppedMemoryCount   int          `json:"dropped_memory_count"`
	FilesCopiedCount     int          `json:"files_copied_count"`
	FilesSkippedConflict []string     `json:"files_skipped_conflict"`
}

type moveOptions struct {
	MoveLearnings bool `json:"move_learnings"`
}

func (s *Server) registerAgents() {
	tags := []string{"Assignments"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgents", Method: http.MethodGet, Path: "/v2/teams/{teamId}/agents",
		Summary: "List Assignments with their latest Setup", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
			IncludeSchedules string `query:"include_schedules" enum:"true,false" default:"false" doc:"Include each latest Setup's schedules."`
			AutomationID     string `query:"automation_id"`
		}) (*body[agentsOut], error) {
			p := principal(ctx)
			agents, total, err := s.store.ListAgents(ctx, in.TeamID, p.UserID, store.AgentFilter{AutomationID: in.AutomationID, Limit: in.Limit, Offset: in.Offset})
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[agentsOut]{Body: agentsOut{Agents: []agentListItemJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, a := range agents {
				item := agentListItemJSON{AgentJSON: agentOut(a), PinnedAt: tsPtr(a.PinnedAt), LastRunAt: tsPtr(a.LastRunAt),
					IntegrationConfigs: []struct{}{}, CaseTriggerConflictingAgents: []idNameJSON{}}
				if a.LatestBuild != nil {
					b := buildOut(*a.LatestBuild)
					if in.IncludeSchedules == "true" {
						b.Schedules = &[]struct{}{}
					}
					item.LatestBuild = &b
				}
				out.Body.Agents = append(out.Body.Agents, item)
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createAgent", Method: http.MethodPost, Path: "/v2/teams/{teamId}/agents",
		Summary: "Create an Assignment, optionally with its first (live) Setup", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *createAgentIn) (*body[createAgentOut], error) {
			na := store.NewAgent{Name: in.Body.Name, Description: in.Body.Description, ThreadID: in.Body.ThreadID,
				AutomationID: in.Body.AutomationID, SourceBuildID: in.Body.SourceBuildID}
			if in.Body.Build != nil {
				nb, err := in.Body.Build.newBuild("build.")
				if err != nil {
					return nil, err
				}
				na.Build = &nb
			}
			a, b, err := s.store.CreateAgent(ctx, actor(ctx), na)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[createAgentOut]{Body: createAgentOut{Agent: agentOut(a)}}
			if b != nil {
				bj := buildOut(*b)
				out.Body.Build = &bj
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getAgent", Method: http.MethodGet, Path: "/v2/agents/{agent_id}",
		Summary: "Get an Assignment", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *AgentPath) (*body[agentOutBody], error) {
			p := principal(ctx)
			a, err := s.store.GetAgent(ctx, p.TeamID, in.AgentID, p.UserID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return agentResponse(a), nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateAgent", Method: http.MethodPatch, Path: "/v2/agents/{agent_id}",
		Summary: "Update an Assignment", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *updateAgentIn) (*body[agentOutBody], error) {
			b := in.Body
			p := store.AgentPatch{Name: b.Name, Description: b.Description, SlackEnabled: b.SlackEnabled,
				MicrosoftTeamsEnabled: b.MicrosoftTeamsEnabled, AgenticMemoryEnabled: b.AgenticMemoryEnabled, Pinned: b.Pinned}
			if b.ThreadID.Sent {
				p.ThreadID = &b.ThreadID.Value
			}
			a, err := s.store.UpdateAgent(ctx, actor(ctx), in.AgentID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return agentResponse(a), nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteAgent", Method: http.MethodDelete, Path: "/v2/agents/{agent_id}",
		Summary: "Delete an Assignment", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *AgentPath) (*body[successOut], error) {
			if err := s.store.DeleteAgent(ctx, actor(ctx), in.AgentID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "moveAgent", Method: http.MethodPost, Path: "/v2/agents/{agent_id}/move",
		Summary: "Move an Assignment and its Setups to another team", Tags: tags}, store.RoleAdmin),
		func(ctx context.Context, in *moveAgentIn) (*body[moveAgentOut], error) {
			p := principal(ctx)
			target := in.Body.TargetTeamID
			// A team the caller cannot administer is reported like one that does not exist.
			if role, err := s.store.MemberRole(ctx, target, p.UserID); err != nil || !role.Allows(store.RoleAdmin) {
				return nil, notFoundErr("target_team_id: team %s not found among the teams you administer", target)
			}
			m, err := s.store.MoveAgentToTeam(ctx, actor(ctx), in.AgentID, target, in.DryRun)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := moveAgentOut{SourceTeamID: m.SourceTeamID, TargetTeamID: m.TargetTeamID, RootAgentID: m.AgentID,
				Agents: []idNameJSON{{ID: m.AgentID, Name: m.AgentName}}, Queues: []struct{}{}, SkillsToClone: []idNameJSON{},
				FilesToCopy: []struct{}{}, Options: moveOptions{MoveLearnings: true}, Applied: m.Applied}
			w := &out.Warnings
			w.Outcome.InstancesReconnected, w.Outcome.InstancesDisconnected, w.Outcome.CustomIntegrationsToRebuild = []struct{}{}, []struct{}{}, []struct{}{}
			w.DroppedFolders, w.FilesSkippedConflict = []idNameJSON{}, []string{}
			for _, f := range m.DroppedFolders {
				w.DroppedFolders = append(w.DroppedFolders, idNameJSON{ID: f.ID, Name: f.Name})
			}
			return &body[moveAgentOut]{Body: out}, nil
		})
}

func agentResponse(a store.Agent) *body[agentOutBody] {
	out := &body[agentOutBody]{Body: agentOutBody{Agent: agentOut(a)}}
	out.Body.UserContext.PinnedAt = tsPtr(a.PinnedAt)
	return out
}
