package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

type auditEntryJSON struct {
	ID        string          `json:"id"`
	Seq       int64           `json:"seq" doc:"Position in the hash chain."`
	CreatedAt Timestamp       `json:"created_at"`
	TeamID    string          `json:"team_id"`
	Actor     auditActorJSON  `json:"actor"`
	Channel   string          `json:"channel" doc:"api, cli, ui, mcp or system."`
	Operation string          `json:"operation" doc:"The operation id that made the change."`
	Target    auditTargetJSON `json:"target"`
	Outcome   string          `json:"outcome" doc:"success, or denied when the role did not allow it."`
	IP        *string         `json:"ip" nullable:"true"`
	Detail    json.RawMessage `json:"detail,omitempty"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

type auditActorJSON struct {
	UserID     *string `json:"user_id" nullable:"true"`
	Email      *string `json:"email" nullable:"true"`
	APIKeyID   *string `json:"api_key_id" nullable:"true"`
	APIKeyName *string `json:"api_key_name" nullable:"true"`
}

type auditTargetJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type auditOut struct {
	Entries []auditEntryJSON `json:"entries"`
	Total   int              `json:"total"`
	Limit   int              `json:"limit"`
	Offset  int              `json:"offset"`
}

type auditIn struct {
	TeamPath
	Page
	Actor     string    `query:"actor" doc:"A user id, a user's email or an API key id."`
	Operation string    `query:"operation" doc:"An operation id, e.g. createAgent."`
	Since     time.Time `query:"since" doc:"Only entries at or after this time (RFC 3339)."`
	Until     time.Time `query:"until" doc:"Only entries before this time (RFC 3339)."`
}

func (s *Server) registerAudit() {
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAuditLog", Method: http.MethodGet, Path: "/v2/teams/{teamId}/audit-log",
		Summary: "Read the team's audit log, newest first", Tags: []string{"Audit"}}, store.RoleAdmin),
		func(ctx context.Context, in *auditIn) (*body[auditOut], error) {
			f := store.AuditFilter{Actor: in.Actor, Operation: in.Operation, Limit: in.Limit, Offset: in.Offset}
			if !in.Since.IsZero() {
				f.Since = &in.Since
			}
			if !in.Until.IsZero() {
				f.Until = &in.Until
			}
			entries, total, err := s.store.ListAudit(ctx, in.TeamID, f)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[auditOut]{Body: auditOut{Entries: []auditEntryJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, e := range entries {
				out.Body.Entries = append(out.Body.Entries, auditEntryJSON{ID: e.ID, Seq: e.Seq, CreatedAt: ts(e.Time), TeamID: e.TeamID,
					Actor:   auditActorJSON{UserID: e.UserID, Email: e.UserEmail, APIKeyID: e.APIKeyID, APIKeyName: e.APIKeyName},
					Channel: e.Channel, Operation: e.Operation, Target: auditTargetJSON{Type: e.TargetType, ID: e.TargetID},
					Outcome: e.Outcome, IP: e.IP, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
			}
			return out, nil
		})
}
