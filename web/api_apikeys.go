package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"The key's first characters, to recognise it."`
	TeamID     string     `json:"team_id"`
	UserID     string     `json:"user_id"`
	UserEmail  string     `json:"user_email"`
	CreatedAt  Timestamp  `json:"created_at"`
	LastUsedAt *Timestamp `json:"last_used_at" nullable:"true"`
	RevokedAt  *Timestamp `json:"revoked_at" nullable:"true"`
}

func apiKeyOut(k store.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, TeamID: k.TeamID, UserID: k.UserID, UserEmail: k.UserEmail,
		CreatedAt: ts(k.CreatedAt), LastUsedAt: tsPtr(k.LastUsedAt), RevokedAt: tsPtr(k.RevokedAt)}
}

type apiKeysOut struct {
	APIKeys []apiKeyJSON `json:"api_keys"`
	Total   int          `json:"total"`
	Limit   int          `json:"limit"`
	Offset  int          `json:"offset"`
}

type createAPIKeyIn struct {
	TeamPath
	Body struct {
		Name   string `json:"name" minLength:"1" maxLength:"100" doc:"Where the key is used, e.g. ci or my-laptop."`
		UserID string `json:"user_id,omitempty" doc:"Member the key acts as; default: you. The key carries that member's role."`
	}
}

type createAPIKeyOut struct {
	APIKey apiKeyJSON `json:"api_key"`
	Key    string     `json:"key" doc:"The secret. Shown only in this response: store it now."`
}

func (s *Server) registerAPIKeys() {
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listApiKeys", Method: http.MethodGet, Path: "/v2/teams/{teamId}/api-keys",
		Summary: "List the team's API keys (secrets are never shown again)", Tags: []string{"API keys"}}, store.RoleAdmin),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
		}) (*body[apiKeysOut], error) {
			keys, total, err := s.store.ListAPIKeys(ctx, in.TeamID, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[apiKeysOut]{Body: apiKeysOut{APIKeys: []apiKeyJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, k := range keys {
				out.Body.APIKeys = append(out.Body.APIKeys, apiKeyOut(k))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createApiKey", Method: http.MethodPost, Path: "/v2/teams/{teamId}/api-keys",
		Summary: "Create an API key", DefaultStatus: http.StatusCreated, Tags: []string{"API keys"}}, store.RoleAdmin),
		func(ctx context.Context, in *createAPIKeyIn) (*body[createAPIKeyOut], error) {
			p := principal(ctx)
			user, bad := s.keyUser(ctx, p, in.Body.UserID)
			if bad != nil {
				return nil, bad
			}
			k, raw, err := s.store.CreateAPIKey(ctx, actor(ctx), p.TeamID, user, in.Body.Name)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[createAPIKeyOut]{Body: createAPIKeyOut{APIKey: apiKeyOut(k), Key: raw}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "revokeApiKey", Method: http.MethodDelete, Path: "/v2/teams/{teamId}/api-keys/{key_id}",
		Summary: "Revoke an API key", Tags: []string{"API keys"}}, store.RoleAdmin),
		func(ctx context.Context, in *struct {
			TeamPath
			KeyID string `path:"key_id" format:"uuid" doc:"API key id."`
		}) (*body[successOut], error) {
			if err := s.store.RevokeAPIKey(ctx, actor(ctx), in.TeamID, in.KeyID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})
}

// keyUser is who a new key acts as (default: its creator): a member of the team whose
// role is not above the creator's, since a key carries its user's role. The API and the
// dashboard's settings page both ask it.
func (s *Server) keyUser(ctx context.Context, p store.Principal, user string) (string, *APIError) {
	if user == "" {
		user = p.UserID
	}
	role, err := s.store.MemberRole(ctx, p.TeamID, user)
	if err != nil {
		return "", apiError(http.StatusBadRequest, "user_id: %s is not a member of this team", user)
	}
	if !p.Role.Allows(role) {
		return "", apiError(http.StatusForbidden, "user_id: %s is %s, above your role %s: a key may not carry more rights than its creator", user, role, p.Role)
	}
	return user, nil
}

type successOut struct {
	Success bool `json:"success"`
}
