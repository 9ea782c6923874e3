package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"docket/runtime"
	"docket/store"
)

// hookBodyLimit caps an inbound delivery: it becomes one message or one case.
const hookBodyLimit = 1 << 20

// metaPublic marks an operation that authenticates itself (the hook URL's token).
const metaPublic = "docket.public"

// TriggerAgentPath is the reference's triggers path parameter (camelCase there).
type TriggerAgentPath struct {
	AgentID string `path:"agentId" format:"uuid" doc:"The agent's unique identifier."`
}

// hookFilterJSON is filter_config of docket's webhook integration.
type hookFilterJSON struct {
	QueueID          *string `json:"queue_id" nullable:"true" doc:"create_case: the queue cases go to; null once that queue was deleted."`
	RequireSignature bool    `json:"require_signature" doc:"Deliveries must be signed with the trigger's signing secret."`
	SignatureHeader  string  `json:"signature_header" doc:"The header carrying sha256=<hex HMAC-SHA256 of the raw body>; Standard Webhooks headers are accepted too."`
}

// inboundTriggerJSON is a trigger as listAgentTriggers and upsertAgentTrigger return it.
type inboundTriggerJSON struct {
	ID                                   string         `json:"id" format:"uuid"`
	AgentID                              string         `json:"agent_id" format:"uuid"`
	UserID                               string         `json:"user_id"`
	IntegrationSlug                      string         `json:"integration_slug" doc:"Always webhook in docket."`
	TriggerType                          string         `json:"trigger_type" enum:"start_run,create_case"`
	FilterConfig                         hookFilterJSON `json:"filter_config"`
	IntegrationInstanceID                string         `json:"integration_instance_id" doc:"Always empty: a docket webhook needs no connection."`
	Enabled                              bool           `json:"enabled"`
	AutoDisabledAt                       *Timestamp     `json:"auto_disabled_at" nullable:"true"`
	AutoDisabledReason                   *string        `json:"auto_disabled_reason" nullable:"true"`
	ConsecutiveMissingConnectionFailures int            `json:"consecutive_missing_connection_failures"`
	FirstMissingConnectionFailureAt      *Timestamp     `json:"first_missing_connection_failure_at" nullable:"true"`
	LastMissingConnectionFailureAt       *Timestamp     `json:"last_missing_connection_failure_at" nullable:"true"`
	CreatedAt                            Timestamp      `json:"created_at"`
	UpdatedAt                            Timestamp      `json:"updated_at"`
	TokenPrefix                          string         `json:"token_prefix" doc:"docket addition: the start of the URL token, to tell tokens apart."`
	Token                                string         `json:"token,omitempty" doc:"docket addition: the URL token, shown only when issued (creation or rotate_token)."`
	HookPath                             string         `json:"hook_path,omitempty" doc:"docket addition: POST deliveries here (/v2/hooks/<token>); shown only when the token is issued."`
	SigningSecret                        string         `json:"signing_secret,omitempty" doc:"docket addition: the signing secret docket generated, shown only then."`
}

func inboundOut(t store.InboundTrigger) inboundTriggerJSON {
	return inboundTriggerJSON{ID: t.ID, AgentID: t.AgentID, UserID: orEmpty(t.UserID), IntegrationSlug: t.IntegrationSlug, TriggerType: t.TriggerType,
		FilterConfig: hookFilterJSON{QueueID: t.QueueID, RequireSignature: t.SealedSecret != nil, SignatureHeader: t.SignatureHeader},
		Enabled:      t.Enabled, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt), TokenPrefix: t.TokenPrefix}
}

type hookFilterIn struct {
	QueueID          *string `json:"queue_id,omitempty" format:"uuid" doc:"create_case: the queue (by id) cases go to. Required for create_case."`
	RequireSignature *bool   `json:"require_signature,omitempty" doc:"true: deliveries must be signed; docket generates a secret unless signing_secret is given. false: removes the secret. Absent: unchanged."`
	SigningSecret    *string `json:"signing_secret,omitempty" minLength:"16" maxLength:"256" doc:"The sender's shared secret, when the sender chose it. Write-only."`
	SignatureHeader  *string `json:"signature_header,omitempty" doc:"Header carrying sha256=<hex>; default X-Docket-Signature (GitHub: X-Hub-Signature-256)."`
}

type upsertTriggerIn struct {
	TriggerAgentPath
	Body struct {
		IntegrationSlug     string        `json:"integration_slug" doc:"webhook: the only integration docket has (see listAgentTriggerTypes)."`
		TriggerType         string        `json:"trigger_type" doc:"start_run: each delivery starts a run; create_case: each delivery creates a case in filter_config.queue_id."`
		FilterConfig        *hookFilterIn `json:"filter_config,omitempty"`
		Enabled             *bool         `json:"enabled,omitempty" doc:"Default true. A disabled trigger's URL answers 409."`
		RotateToken         bool          `json:"rotate_token,omitempty" doc:"docket addition: issue a new URL token; the old URL stops working at once."`
		RotateSigningSecret bool          `json:"rotate_signing_secret,omitempty" doc:"docket addition: generate a new signing secret (shown once)."`
	}
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

type triggerTypeJSON struct {
	IntegrationSlug string         `json:"integration_slug"`
	IntegrationName string         `json:"integration_name"`
	IconURL         string         `json:"icon_url"`
	TriggerType     string         `json:"trigger_type"`
	Label           string         `json:"label"`
	Description     string         `json:"description"`
	FilterSchema    map[string]any `json:"filter_schema"`
}

func hookFilterSchema(withQueue bool) map[string]any {
	props := map[string]any{
		"require_signature": map[string]any{"type": "boolean"},
		"signing_secret":    map[string]any{"type": "string", "minLength": 16, "maxLength": 256, "writeOnly": true},
		"signature_header":  map[string]any{"type": "string", "default": runtime.DefaultSignatureHeader},
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if withQueue {
		props["queue_id"] = map[string]any{"type": "string", "format": "uuid"}
		s["required"] = []string{"queue_id"}
	}
	return s
}

var triggerTypes = []triggerTypeJSON{
	{IntegrationSlug: store.IntegrationWebhook, IntegrationName: "Webhook", TriggerType: store.TriggerStartRun, Label: "Start a run",
		Description:  "Each POST to the trigger's URL starts a run; the body is its first message (JSON pretty-printed, text as is).",
		FilterSchema: hookFilterSchema(false)},
	{IntegrationSlug: store.IntegrationWebhook, IntegrationName: "Webhook", TriggerType: store.TriggerCreateCase, Label: "Create a case",
		Description:  "Each POST to the trigger's URL creates a case in a queue; the body is its data, the title its JSON title field if any.",
		FilterSchema: hookFilterSchema(true)},
}

type hookIn struct {
	Token          string `path:"token" doc:"The URL token from upsertAgentTrigger: the credential."`
	IdempotencyKey string `header:"Idempotency-Key" doc:"A retry with the same key within 24 h returns the first response and creates nothing."`
	RawBody        []byte
	req            *http.Request
}

// Resolve keeps the request: the signature header's name is known only once the token
// has named the trigger.
func (h *hookIn) Resolve(ctx huma.Context) []error {
	h.req, _ = humago.Unwrap(ctx)
	return nil
}

type hookOut struct {
	Body struct {
		RunID  string `json:"run_id,omitempty" doc:"The run started (start_run)."`
		CaseID string `json:"case_id,omitempty" doc:"The case created (create_case)."`
	}
}

// hookMessage is a delivery as a run's first message: JSON pretty-printed, text as is.
func hookMessage(b []byte) string {
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

// hookTitle is a case's title from a delivery: its JSON "title" field when it has one, the
// first line of a text body, or the time it arrived.
func hookTitle(b []byte, now time.Time) string {
	var obj struct {
		Title any `json:"title"`
	}
	if json.Unmarshal(b, &obj) == nil {
		if t, ok := obj.Title.(string); ok && strings.TrimSpace(t) != "" {
			return truncRunes(strings.TrimSpace(t), store.MaxCaseTitle)
		}
	} else if line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); line != "" {
		return truncRunes(strings.TrimSpace(line), 120)
	}
	return "Webhook delivery " + now.UTC().Format("2006-01-02 15:04:05Z")
}

func truncRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (s *Server) registerInboundTriggers() {
	tags := []string{"Triggers"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentTriggers", Method: http.MethodGet, Path: "/v2/triggers/{agentId}",
		Summary: "List an Assignment's inbound webhook triggers", Tags: tags,
		Description: "docket's triggers are webhook URLs: each POST starts a run or creates a case. Tokens and secrets are never shown again."}, store.RoleViewer),
		func(ctx context.Context, in *TriggerAgentPath) (*body[struct {
			Triggers []inboundTriggerJSON `json:"triggers"`
		}], error) {
			list, err := s.store.ListInboundTriggers(ctx, principal(ctx).TeamID, in.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Triggers []inboundTriggerJSON `json:"triggers"`
			}]{}
			out.Body.Triggers = []inboundTriggerJSON{}
			for _, t := range list {
				out.Body.Triggers = append(out.Body.Triggers, inboundOut(t))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentTriggerTypes", Method: http.MethodGet, Path: "/v2/trigger-config/{agentId}",
		Summary: "List the trigger types an Assignment can have", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *TriggerAgentPath) (*body[struct {
			TriggerTypes []triggerTypeJSON `json:"trigger_types"`
		}], error) {
			p := principal(ctx)
			if _, err := s.store.GetAgent(ctx, p.TeamID, in.AgentID, p.UserID); err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				TriggerTypes []triggerTypeJSON `json:"trigger_types"`
			}]{}
			out.Body.TriggerTypes = triggerTypes
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "upsertAgentTrigger", Method: http.MethodPut, Path: "/v2/triggers/{agentId}",
		Summary: "Create or change an Assignment's webhook trigger", Tags: tags,
		Description: "One webhook trigger per Assignment. Creating it (or rotate_token) returns token and hook_path once: POST deliveries to " +
			"/v2/hooks/<token>. With require_signature, each delivery must carry X-Docket-Signature: sha256=<hex HMAC-SHA256 of the raw body> " +
			"(header name configurable) or Standard Webhooks headers."}, store.RoleMember),
		func(ctx context.Context, in *upsertTriggerIn) (*body[inboundTriggerJSON], error) {
			return s.upsertTrigger(ctx, in)
		})

	hook := huma.Operation{OperationID: "receiveHook", Method: http.MethodPost, Path: "/v2/hooks/{token}", DefaultStatus: http.StatusAccepted,
		Summary: "Deliver an event to an inbound webhook trigger", Tags: tags,
		Description: "No API key: the token in the URL is the credential. The body (at most 1 MiB, JSON or text) becomes the run's first message " +
			"or the case's data. Answers 202 with run_id or case_id; 404 for an unknown token, 401 for a missing or wrong signature, " +
			"409 while the trigger is disabled.",
		Metadata: map[string]any{metaPublic: true}, MaxBodyBytes: min(hookBodyLimit, s.cfg.MaxBodyBytes)}
	huma.Register(s.api, hook, func(ctx context.Context, in *hookIn) (*hookOut, error) {
		return s.receiveHook(ctx, in)
	})
}

func (s *Server) upsertTrigger(ctx context.Context, in *upsertTriggerIn) (*body[inboundTriggerJSON], error) {
	b := in.Body
	p := principal(ctx)
	if b.IntegrationSlug != store.IntegrationWebhook {
		return nil, badRequest("integration_slug: %q is not an integration docket has: use \"webhook\" (listAgentTriggerTypes lists the types)", b.IntegrationSlug)
	}
	if b.TriggerType != store.TriggerStartRun && b.TriggerType != store.TriggerCreateCase {
		return nil, badRequest("trigger_type: %q is not a webhook trigger type: use start_run or create_case", b.TriggerType)
	}
	f := b.FilterConfig
	if f == nil {
		f = &hookFilterIn{}
	}
	u := store.InboundTriggerUpsert{IntegrationSlug: b.IntegrationSlug, TriggerType: b.TriggerType, Enabled: b.Enabled == nil || *b.Enabled,
		SignatureHeader: runtime.DefaultSignatureHeader, RotateToken: b.RotateToken}
	switch {
	case b.TriggerType == store.TriggerCreateCase && f.QueueID == nil:
		return nil, badRequest("filter_config.queue_id: required for trigger_type create_case: give the id of the queue cases go to")
	case b.TriggerType == store.TriggerCreateCase:
		u.QueueID = f.QueueID
	}
	var cur *store.InboundTrigger
	list, err := s.store.ListInboundTriggers(ctx, p.TeamID, in.AgentID)
	if err != nil {
		return nil, fail(ctx, err)
	}
	for i := range list {
		if list[i].IntegrationSlug == b.IntegrationSlug {
			cur = &list[i]
		}
	}
	if f.SignatureHeader != nil {
		if !headerName.MatchString(*f.SignatureHeader) {
			return nil, badRequest("filter_config.signature_header: %q is not a header name: use letters, digits and dashes, e.g. X-Docket-Signature", *f.SignatureHeader)
		}
		u.SignatureHeader = *f.SignatureHeader
	} else if cur != nil {
		u.SignatureHeader = cur.SignatureHeader
	}
	// The signing secret: given, generated, removed, or left as it is.
	signed := cur != nil && cur.SealedSecret != nil
	if f.RequireSignature != nil {
		signed = *f.RequireSignature
	}
	if f.SigningSecret != nil && !signed {
		return nil, badRequest("filter_config.signing_secret: given with require_signature false: set require_signature true to use it")
	}
	var secret, generated string
	switch {
	case !signed:
		u.SetSecret = cur != nil && cur.SealedSecret != nil
	case f.SigningSecret != nil:
		secret = *f.SigningSecret
	case b.RotateSigningSecret || cur == nil || cur.SealedSecret == nil:
		secret = runtime.NewSigningSecret()
		generated = secret
	}
	if b.RotateSigningSecret && !signed {
		return nil, badRequest("rotate_signing_secret: the trigger requires no signature: set filter_config.require_signature true")
	}
	if secret != "" {
		if len(s.cfg.MasterKey) == 0 {
			return nil, fail(ctx, errors.New("web.Config.MasterKey is not set: cannot seal a signing secret"))
		}
		sealed, err := runtime.SealSecret(s.cfg.MasterKey, in.AgentID, secret)
		if err != nil {
			return nil, fail(ctx, err)
		}
		u.SetSecret, u.SealedSecret = true, sealed
	}
	t, token, _, err := s.store.UpsertInboundTrigger(ctx, actor(ctx), in.AgentID, u)
	if err != nil {
		return nil, fail(ctx, err)
	}
	out := inboundOut(t)
	out.SigningSecret = generated
	if token != "" {
		out.Token, out.HookPath = token, "/v2/hooks/"+token
	}
	return &body[inboundTriggerJSON]{Body: out}, nil
}

func (s *Server) receiveHook(ctx context.Context, in *hookIn) (*hookOut, error) {
	t, err := s.store.InboundTriggerByToken(ctx, in.Token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundErr("no webhook trigger has this URL: check it, or issue a new one with upsertAgentTrigger (rotate_token)")
	}
	if err != nil {
		return nil, fail(ctx, err)
	}
	if t.SealedSecret != nil {
		secret, err := runtime.OpenSecret(s.cfg.MasterKey, t.AgentID, t.SealedSecret)
		if err != nil {
			return nil, fail(ctx, err)
		}
		if err := runtime.VerifyInbound(secret, t.SignatureHeader, in.req.Header.Get, in.RawBody, time.Now()); err != nil {
			return nil, apiError(http.StatusUnauthorized, "%s", strings.TrimPrefix(err.Error(), runtime.ErrBadSignature.Error()+": "))
		}
	}
	if !t.Enabled {
		return nil, apiError(http.StatusConflict, "this webhook trigger is disabled: enable it with upsertAgentTrigger (\"enabled\": true) to accept deliveries")
	}
	if len(bytes.TrimSpace(in.RawBody)) == 0 {
		return nil, badRequest("the request body is empty: send the event as JSON or text")
	}
	if !utf8.Valid(in.RawBody) {
		return nil, badRequest("the request body is not UTF-8 text: send the event as JSON or text")
	}
	a := store.Actor{TeamID: t.TeamID, UserID: orEmpty(t.UserID), Channel: "webhook", Operation: "receiveHook", IP: clientIP(in.req)}
	out := &hookOut{}
	switch t.TriggerType {
	case store.TriggerStartRun:
		r, err := s.runs.StartRun(ctx, a, store.NewRun{AgentID: t.AgentID, Message: hookMessage(in.RawBody), Source: "webhook",
			Title: "Webhook: " + hookTitle(in.RawBody, time.Now())})
		if err != nil {
			return nil, fail(ctx, err)
		}
		out.Body.RunID = r.ID
	default:
		if t.QueueID == nil {
			return nil, apiError(http.StatusConflict, "this webhook trigger's queue was deleted: set filter_config.queue_id with upsertAgentTrigger")
		}
		cs, err := s.store.CreateCases(ctx, a, *t.QueueID, []store.NewCase{{Title: hookTitle(in.RawBody, time.Now()), Data: string(in.RawBody)}})
		if err != nil {
			return nil, fail(ctx, err)
		}
		s.wakeDispatcher()
		out.Body.CaseID = cs[0].ID
	}
	return out, nil
}
