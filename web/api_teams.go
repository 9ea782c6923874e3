package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

type teamJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	CreatedAt      Timestamp `json:"created_at"`
	OrganizationID *string   `json:"organization_id" nullable:"true" doc:"Always null: docket has no organizations."`
	SlackTeamID    *string   `json:"slack_team_id" nullable:"true" doc:"Always null: docket has no Slack integration."`
	DiscoveryMode  string    `json:"discovery_mode" doc:"Always request."`
}

type teamSummaryJSON struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	OrganizationID *string `json:"organization_id" nullable:"true"`
	Role           string  `json:"role" doc:"Your role in the team (docket addition)."`
}

type memberJSON struct {
	ID               string  `json:"id"`
	Name             *string `json:"name" nullable:"true"`
	Email            string  `json:"email"`
	Role             string  `json:"role"`
	InheritedFromOrg bool    `json:"inheritedFromOrg"`
}

type profileJSON struct {
	ID     string  `json:"id"`
	Name   *string `json:"name" nullable:"true"`
	Email  string  `json:"email"`
	TeamID *string `json:"teamId" nullable:"true" doc:"The team the credential belongs to."`
	Role   string  `json:"role" doc:"Your role in that team (docket addition)."`
}

type teamsOut struct {
	Teams []teamSummaryJSON `json:"teams"`
}

type teamOut struct {
	Team teamJSON `json:"team"`
}

type profileOut struct {
	Profile profileJSON `json:"profile"`
}

type TeamPath struct {
	TeamID string `path:"teamId" doc:"Team id."`
}

func (s *Server) registerTeams() {
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listMyTeams", Method: http.MethodGet, Path: "/v2/teams",
		Summary: "List the teams this credential can act in", Tags: []string{"Teams"}}, store.RoleViewer),
		func(ctx context.Context, _ *struct{}) (*body[teamsOut], error) {
			p := principal(ctx)
			t, err := s.store.GetTeam(ctx, p.TeamID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[teamsOut]{Body: teamsOut{Teams: []teamSummaryJSON{{ID: t.ID, Name: t.Name, Role: string(p.Role)}}}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getTeam", Method: http.MethodGet, Path: "/v2/teams/{teamId}",
		Summary: "Get a team", Tags: []string{"Teams"}}, store.RoleViewer),
		func(ctx context.Context, in *TeamPath) (*body[teamOut], error) {
			t, err := s.store.GetTeam(ctx, in.TeamID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[teamOut]{Body: teamOut{Team: teamJSON{ID: t.ID, Name: t.Name, CreatedAt: ts(t.CreatedAt), DiscoveryMode: "request"}}}, nil
		})

	type membersIn struct {
		TeamPath
		Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"100"`
		Offset int    `query:"offset" minimum:"0"`
		Search string `query:"search" maxLength:"200" doc:"Part of a name or email."`
	}
	type membersOut struct {
		Members []memberJSON `json:"members"`
		Total   int          `json:"total"`
		Limit   int          `json:"limit"`
		Offset  int          `json:"offset"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listTeamMembers", Method: http.MethodGet, Path: "/v2/teams/{teamId}/members",
		Summary: "List a team's members", Tags: []string{"Teams"}}, store.RoleViewer),
		func(ctx context.Context, in *membersIn) (*body[membersOut], error) {
			ms, total, err := s.store.ListMembers(ctx, in.TeamID, in.Search, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[membersOut]{Body: membersOut{Members: []memberJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, m := range ms {
				out.Body.Members = append(out.Body.Members, memberJSON{ID: m.ID, Name: m.Name, Email: m.Email, Role: string(m.Role)})
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getProfile", Method: http.MethodGet, Path: "/v2/profile",
		Summary: "Who this credential acts as", Tags: []string{"Teams"}}, store.RoleViewer),
		func(ctx context.Context, _ *struct{}) (*body[profileOut], error) {
			p := principal(ctx)
			out := &body[profileOut]{}
			out.Body.Profile = profileJSON{ID: p.UserID, Email: p.Email, TeamID: &p.TeamID, Role: string(p.Role)}
			if p.Name != "" {
				out.Body.Profile.Name = &p.Name
			}
			return out, nil
		})
}

// body wraps a response body for huma.
type body[T any] struct {
	Body T
}
