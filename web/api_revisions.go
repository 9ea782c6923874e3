package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

// configJSON is stored Setup config passed through as is, documented as a SetupConfig.
type configJSON json.RawMessage

func (c configJSON) MarshalJSON() ([]byte, error) {
	if len(c) == 0 {
		return []byte("null"), nil
	}
	return c, nil
}

func (configJSON) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[runtime.SetupConfig](), true, "SetupConfig")
}

// buildJSON is a Setup (build/revision).
type buildJSON struct {
	ID                  string     `json:"id"`
	CopilotID           string     `json:"copilot_id" doc:"Same as agent_id (kept for compatibility)."`
	AgentID             string     `json:"agent_id"`
	Name                string     `json:"name"`
	RevisionName        *string    `json:"revision_name" nullable:"true"`
	RevisionDescription *string    `json:"revision_description" nullable:"true"`
	Config              configJSON `json:"config"`
	Status              string     `json:"status" doc:"draft, live or archived."`
	RevisionNumber      int        `json:"revision_number"`
	ParentBuildID       *string    `json:"parent_build_id" nullable:"true"`
	CreatedBy           *string    `json:"created_by" nullable:"true"`
	CreatedByName       *string    `json:"created_by_name" nullable:"true"`
	CreatedAt           Timestamp  `json:"created_at"`
	UpdatedAt           Timestamp  `json:"updated_at"`
	HandoverTargetIDs   []string   `json:"handover_target_ids" doc:"Assignments this Setup may hand work over to (docket addition)."`
	PromotedAt          *Timestamp `json:"promoted_at" nullable:"true" doc:"When it last went live (docket addition)."`
	Locked              bool       `json:"locked" doc:"True once a run used it: it can no longer change (docket addition)."`
	// A pointer, so listAgents?include_schedules=true can send an empty list: omitempty
	// drops an empty slice, but not a pointer to one.
	Schedules *[]struct{} `json:"schedules,omitempty" maxItems:"0" doc:"With include_schedules=true; always empty until docket has schedules."`
}

func buildOut(b store.Build) buildJSON {
	return buildJSON{ID: b.ID, CopilotID: b.AgentID, AgentID: b.AgentID, Name: b.Name, RevisionName: b.RevisionName,
		RevisionDescription: b.RevisionDescription, Config: configJSON(b.Config), Status: b.Status, RevisionNumber: b.RevisionNumber,
		ParentBuildID: b.ParentBuildID, CreatedBy: b.CreatedBy, CreatedByName: b.CreatedByName, CreatedAt: ts(b.CreatedAt),
		UpdatedAt: ts(b.UpdatedAt), HandoverTargetIDs: b.HandoverTargetIDs, PromotedAt: tsPtr(b.PromotedAt), Locked: b.FirstRunAt != nil}
}

// buildBody is a new Setup inside createAgent.
type buildBody struct {
	Name              string              `json:"name" minLength:"1" maxLength:"200"`
	Config            runtime.SetupConfig `json:"config"`
	HandoverTargetIDs []string            `json:"handover_target_ids,omitempty" doc:"Assignments this Setup may hand work over to."`
}

func (b *buildBody) newBuild(prefix string) (store.NewBuild, error) {
	raw, err := normalizeConfig(prefix, &b.Config)
	if err != nil {
		return store.NewBuild{}, err
	}
	return store.NewBuild{Name: b.Name, Config: raw, SubAgentIDs: b.Config.Data.SubAgents, HandoverTargetIDs: b.HandoverTargetIDs}, nil
}

func normalizeConfig(prefix string, c *runtime.SetupConfig) (json.RawMessage, error) {
	raw, err := setupConfigJSON(c)
	if err != nil {
		return nil, badRequest("%s%s", prefix, err.Error())
	}
	return raw, nil
}

// setupConfigJSON validates a Setup config and encodes it as stored: the one path the
// API and the dashboard's Setup form take. A broken rule is a *runtime.FieldError.
func setupConfigJSON(c *runtime.SetupConfig) (json.RawMessage, error) {
	if err := c.Normalize(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return raw, nil
}

type buildsOut struct {
	Builds []buildJSON `json:"builds"`
	Total  int         `json:"total"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
}

type buildOutBody struct {
	Build buildJSON `json:"build"`
}

type createRevisionIn struct {
	AgentPath
	Body struct {
		Name              string               `json:"name" minLength:"1" maxLength:"200"`
		Config            *runtime.SetupConfig `json:"config,omitempty" doc:"Absent: copy source_build_id's config, else the live Setup's."`
		HandoverTargetIDs []string             `json:"handover_target_ids,omitempty"`
		SourceBuildID     *string              `json:"source_build_id,omitempty"`
	}
}

type createRevisionOut struct {
	Build buildJSON `json:"build"`
	Agent struct {
		ID string `json:"id"`
	} `json:"agent"`
}

// BuildPath names a Setup; a malformed id is a 400 naming build_id (see AgentPath).
type BuildPath struct {
	BuildID string `path:"build_id" format:"uuid" doc:"Setup id."`
}

type updateRevisionIn struct {
	BuildPath
	Body struct {
		Config              *runtime.SetupConfig `json:"config,omitempty"`
		HandoverTargetIDs   []string             `json:"handoverTargetIds,omitempty" doc:"The reference's spelling."`
		HandoverTargetIDs2  []string             `json:"handover_target_ids,omitempty" doc:"Same as handoverTargetIds."`
		RevisionName        *string              `json:"revision_name,omitempty" nullable:"true" minLength:"1" maxLength:"80"`
		RevisionDescription *string              `json:"revision_description,omitempty" nullable:"true" maxLength:"500"`
	}
}

type promoteIn struct {
	BuildPath
	Body *struct {
		RevisionName        *string `json:"revision_name,omitempty" minLength:"1" maxLength:"80"`
		RevisionDescription *string `json:"revision_description,omitempty" nullable:"true" maxLength:"500"`
	}
}

func (s *Server) registerRevisions() {
	tags := []string{"Setups"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentRevisions", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/revisions",
		Summary: "List an Assignment's Setups, newest first", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			AgentPath
			Page
		}) (*body[buildsOut], error) {
			builds, total, err := s.store.ListBuilds(ctx, principal(ctx).TeamID, in.AgentID, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[buildsOut]{Body: buildsOut{Builds: []buildJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, b := range builds {
				out.Body.Builds = append(out.Body.Builds, buildOut(b))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createRevision", Method: http.MethodPost, Path: "/v2/agents/{agent_id}/revisions",
		Summary: "Create a draft Setup", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *createRevisionIn) (*body[createRevisionOut], error) {
			nb := store.NewBuild{Name: in.Body.Name, HandoverTargetIDs: in.Body.HandoverTargetIDs, SourceBuildID: in.Body.SourceBuildID}
			if in.Body.Config != nil {
				raw, err := normalizeConfig("", in.Body.Config)
				if err != nil {
					return nil, err
				}
				nb.Config, nb.SubAgentIDs = raw, in.Body.Config.Data.SubAgents
			}
			b, err := s.store.CreateBuild(ctx, actor(ctx), in.AgentID, nb)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[createRevisionOut]{Body: createRevisionOut{Build: buildOut(b)}}
			out.Body.Agent.ID = b.AgentID
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getRevision", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/revisions/{build_id}",
		Summary: "Get a Setup", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			AgentPath
			BuildPath
		}) (*body[buildOutBody], error) {
			b, err := s.store.GetBuild(ctx, principal(ctx).TeamID, in.AgentID, in.BuildID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[buildOutBody]{Body: buildOutBody{Build: buildOut(b)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateRevision", Method: http.MethodPatch, Path: "/v2/revisions/{build_id}",
		Summary: "Update a Setup that no run has used yet", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *updateRevisionIn) (*body[buildOutBody], error) {
			b := in.Body
			p := store.BuildPatch{RevisionName: b.RevisionName, RevisionDescription: b.RevisionDescription}
			if b.Config != nil {
				raw, err := normalizeConfig("", b.Config)
				if err != nil {
					return nil, err
				}
				p.Config, p.SubAgentIDs = raw, b.Config.Data.SubAgents
			}
			if b.HandoverTargetIDs != nil || b.HandoverTargetIDs2 != nil {
				p.SetHandover = true
				p.HandoverTargetIDs = append(b.HandoverTargetIDs, b.HandoverTargetIDs2...)
			}
			build, err := s.store.UpdateBuild(ctx, actor(ctx), in.BuildID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[buildOutBody]{Body: buildOutBody{Build: buildOut(build)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "promoteRevision", Method: http.MethodPost, Path: "/v2/revisions/{build_id}/promote",
		Summary: "Make a Setup live: new runs use it", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *promoteIn) (*body[successOut], error) {
			var name, desc *string
			if in.Body != nil {
				name, desc = in.Body.RevisionName, in.Body.RevisionDescription
			}
			if err := s.store.PromoteBuild(ctx, actor(ctx), in.BuildID, name, desc); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})
}
