package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"docket/store"
)

// metaRole is the operation metadata key holding the minimum role it needs.
const metaRole = "docket.role"

// principal returns who the current request acts as; the auth middleware put it there.
func principal(ctx context.Context) store.Principal {
	p, _ := ctx.Value(keyPrincipal).(store.Principal)
	return p
}

// actor is the audit identity of the current request.
func actor(ctx context.Context) store.Actor {
	p := principal(ctx)
	a := store.ActorFor(p, "api", "", "")
	if info, ok := ctx.Value(keyActorMeta).(actorMeta); ok {
		a.Operation, a.IP = info.op, info.ip
		if info.channel != "" {
			a.Channel = info.channel
		}
	}
	return a
}

// actorMeta is what the audit records about how a request arrived; channel is empty for
// the API and "ui" for the dashboard.
type actorMeta struct{ op, ip, channel string }

// authenticate resolves the bearer key, applies the rate limit, hides other teams'
// resources (404) and enforces the operation's minimum role (403, audited).
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if public, _ := op.Metadata[metaPublic].(bool); public {
		next(ctx)
		return
	}
	min, _ := op.Metadata[metaRole].(store.Role)
	write := func(e *APIError) {
		ctx.SetHeader("Content-Type", "application/json")
		ctx.SetStatus(e.status)
		ctx.BodyWriter().Write(mustJSON(e))
	}
	raw, ok := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
	if !ok || raw == "" {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="docket"`)
		write(apiError(http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key> (create one with `docket apikey create`)"))
		return
	}
	p, err := s.store.Authenticate(ctx.Context(), strings.TrimSpace(raw))
	if errors.Is(err, store.ErrNotFound) {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="docket", error="invalid_token"`)
		write(apiError(http.StatusUnauthorized, "invalid API key: it is unknown or was revoked"))
		return
	}
	if err != nil {
		if info := requestInfoFrom(ctx.Context()); info != nil {
			info.cause = err
		}
		write(apiError(http.StatusInternalServerError, errInternal))
		return
	}
	if info := requestInfoFrom(ctx.Context()); info != nil {
		info.actor = p.APIKeyID
	}
	if s.limiter != nil {
		allowed, remaining, reset, retry := s.limiter.take(p.APIKeyID)
		ctx.SetHeader("X-Ratelimit-Limit", strconv.Itoa(s.cfg.RateLimit))
		ctx.SetHeader("X-Ratelimit-Remaining", strconv.Itoa(remaining))
		ctx.SetHeader("X-Ratelimit-Reset", strconv.Itoa(reset))
		if !allowed {
			ctx.SetHeader("Retry-After", strconv.Itoa(retry))
			write(apiError(http.StatusTooManyRequests, "rate limit of %d requests per minute exceeded for this API key: retry after %d s", s.cfg.RateLimit, retry))
			return
		}
	}
	if team := ctx.Param("teamId"); team != "" && team != p.TeamID {
		write(apiError(http.StatusNotFound, "team %s not found", team))
		return
	}
	meta := actorMeta{op: op.OperationID}
	c := context.WithValue(context.WithValue(ctx.Context(), keyPrincipal, p), keyActorMeta, meta)
	if r, _ := humago.Unwrap(ctx); r != nil {
		meta.ip = clientIP(r)
		c = context.WithValue(context.WithValue(c, keyActorMeta, meta), keyRequest, r)
	}
	if !p.Role.Allows(min) {
		if op.Method != http.MethodGet {
			a := store.ActorFor(p, "api", op.OperationID, meta.ip)
			target := store.Target{Type: "operation", ID: op.OperationID, Detail: map[string]any{"path": ctx.URL().Path, "role": p.Role}}
			if err := s.store.RecordDenied(c, a, target); err != nil {
				s.log.Error("audit of denied request failed", "err", err)
			}
		}
		write(apiError(http.StatusForbidden, "your role %q cannot %s: it needs %s or higher", p.Role, op.OperationID, min))
		return
	}
	next(huma.WithContext(ctx, c))
}
