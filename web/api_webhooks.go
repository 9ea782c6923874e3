package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

// webhookWaker is the delivery worker as the API sees it: told when a request queued a
// delivery, so it is sent now rather than at the worker's next check.
type webhookWaker interface{ Wake() }

// SetWebhookWorker connects the webhook delivery worker; without one, queued deliveries
// wait for whichever worker next looks at the database.
func (s *Server) SetWebhookWorker(w webhookWaker) { s.hooks = w }

type webhookJSON struct {
	ID          string       `json:"id"`
	TeamID      string       `json:"team_id"`
	URL         string       `json:"url"`
	Events      []string     `json:"events" doc:"Events POSTed to the URL; empty means all."`
	Enabled     bool         `json:"enabled"`
	Description string       `json:"description"`
	CreatedBy   *userRefJSON `json:"created_by"`
	CreatedAt   Timestamp    `json:"created_at"`
	UpdatedAt   Timestamp    `json:"updated_at"`
}

func webhookOut(w store.Webhook) webhookJSON {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	return webhookJSON{ID: w.ID, TeamID: w.TeamID, URL: w.URL, Events: events, Enabled: w.Enabled, Description: w.Description,
		CreatedBy: userRef(w.CreatedBy), CreatedAt: ts(w.CreatedAt), UpdatedAt: ts(w.UpdatedAt)}
}

type webhookOutBody struct {
	Webhook webhookJSON `json:"webhook"`
}

type webhooksOut struct {
	Webhooks []webhookJSON `json:"webhooks"`
	Total    int           `json:"total"`
	Limit    int           `json:"limit"`
	Offset   int           `json:"offset"`
}

type webhookDeliveryJSON struct {
	ID             string          `json:"id" doc:"The webhook-id header: the same on every attempt, so a receiver can drop duplicates."`
	TeamID         string          `json:"team_id"`
	WebhookID      *string         `json:"webhook_id" nullable:"true" doc:"The subscription; null for a run's own webhook_url."`
	RunID          *string         `json:"run_id" nullable:"true"`
	URL            string          `json:"url"`
	Event          string          `json:"event"`
	Payload        json.RawMessage `json:"payload" doc:"The JSON body sent, byte for byte."`
	Status         string          `json:"status" enum:"pending,delivering,delivered,failed"`
	Attempts       int             `json:"attempts" doc:"Attempts started so far."`
	NextAttemptAt  *Timestamp      `json:"next_attempt_at" nullable:"true" doc:"When the next attempt is due; null once delivered or failed."`
	LastStatusCode *int            `json:"last_status_code" nullable:"true" doc:"The receiver's last HTTP status; null when it did not answer."`
	LastError      *string         `json:"last_error" nullable:"true" doc:"Why the last attempt failed."`
	CreatedAt      Timestamp       `json:"created_at"`
	DeliveredAt    *Timestamp      `json:"delivered_at" nullable:"true"`
}

func deliveryOut(d store.WebhookDelivery) webhookDeliveryJSON {
	out := webhookDeliveryJSON{ID: d.ID, TeamID: d.TeamID, WebhookID: d.WebhookID, RunID: d.RunID, URL: d.URL, Event: d.Event,
		Payload: d.Payload, Status: d.Status, Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		CreatedAt: ts(d.CreatedAt), DeliveredAt: tsPtr(d.DeliveredAt)}
	if d.Status == store.DeliveryPending || d.Status == store.DeliveryDelivering {
		out.NextAttemptAt = tsPtr(&d.NextAttemptAt)
	}
	return out
}

type webhookDeliveriesOut struct {
	Deliveries []webhookDeliveryJSON `json:"deliveries"`
	Total      int                   `json:"total"`
	Limit      int                   `json:"limit"`
	Offset     int                   `json:"offset"`
}

// WebhookPath names one of a team's webhook subscriptions.
type WebhookPath struct {
	TeamPath
	WebhookID string `path:"webhook_id" format:"uuid" doc:"Webhook id."`
}

const webhookEventEnum = "run_completed,run_failed,run_interrupted,human_request_created"

type createWebhookIn struct {
	TeamPath
	Body struct {
		URL         string   `json:"url" minLength:"1" maxLength:"2048" doc:"Where events are POSTed: an http:// or https:// URL."`
		Events      []string `json:"events,omitempty" enum:"run_completed,run_failed,run_interrupted,human_request_created" doc:"Events to send; absent or empty: all."`
		Enabled     *bool    `json:"enabled,omitempty" doc:"Default true."`
		Description string   `json:"description,omitempty" maxLength:"500"`
	}
}

type updateWebhookIn struct {
	WebhookPath
	Body struct {
		URL         *string   `json:"url,omitempty" minLength:"1" maxLength:"2048" doc:"Deliveries already queued keep the URL they were queued with."`
		Events      *[]string `json:"events,omitempty" enum:"run_completed,run_failed,run_interrupted,human_request_created" doc:"Empty: all events."`
		Enabled     *bool     `json:"enabled,omitempty" doc:"A disabled webhook gets no new events; deliveries already queued still go out."`
		Description *string   `json:"description,omitempty" maxLength:"500"`
	}
}

type testWebhookOut struct {
	Delivery webhookDeliveryJSON `json:"delivery"`
}

type signingSecretOut struct {
	Secret string `json:"secret" doc:"The team's Standard Webhooks signing secret (whsec_…). Verify webhook-signature as base64(HMAC-SHA256(base64-decoded part after whsec_, webhook-id + \".\" + webhook-timestamp + \".\" + raw body)), after a v1, prefix."`
}

func checkWebhookURL(field, raw string) error {
	if err := runtime.ValidateWebhookURL(raw); err != nil {
		return badRequest("%s: %s", field, err.Error())
	}
	return nil
}

func (s *Server) registerWebhooks() {
	tags := []string{"Webhooks"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listWebhooks", Method: http.MethodGet, Path: "/v2/teams/{teamId}/webhooks",
		Summary: "List the team's webhook subscriptions", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
		}) (*body[webhooksOut], error) {
			hooks, total, err := s.store.ListWebhooks(ctx, in.TeamID, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[webhooksOut]{Body: webhooksOut{Webhooks: []webhookJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, w := range hooks {
				out.Body.Webhooks = append(out.Body.Webhooks, webhookOut(w))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createWebhook", Method: http.MethodPost, Path: "/v2/teams/{teamId}/webhooks",
		Summary: "Subscribe a URL to the team's run events", DefaultStatus: http.StatusCreated, Tags: tags,
		Description: "Events (" + webhookEventEnum + ") are POSTed as JSON {event, run_id, agent_id, status, request_id?, title?, description?, case_id?, timestamp}, " +
			"signed per Standard Webhooks with the team's signing secret (getWebhookSigningSecret), and retried with backoff for up to 24 h."}, store.RoleAdmin),
		func(ctx context.Context, in *createWebhookIn) (*body[webhookOutBody], error) {
			if err := checkWebhookURL("url", in.Body.URL); err != nil {
				return nil, err
			}
			nw := store.NewWebhook{URL: in.Body.URL, Events: in.Body.Events, Enabled: true, Description: in.Body.Description}
			if in.Body.Enabled != nil {
				nw.Enabled = *in.Body.Enabled
			}
			w, err := s.store.CreateWebhook(ctx, actor(ctx), nw)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[webhookOutBody]{Body: webhookOutBody{Webhook: webhookOut(w)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateWebhook", Method: http.MethodPatch, Path: "/v2/teams/{teamId}/webhooks/{webhook_id}",
		Summary: "Change a webhook subscription", Tags: tags}, store.RoleAdmin),
		func(ctx context.Context, in *updateWebhookIn) (*body[webhookOutBody], error) {
			b := in.Body
			if b.URL != nil {
				if err := checkWebhookURL("url", *b.URL); err != nil {
					return nil, err
				}
			}
			w, err := s.store.UpdateWebhook(ctx, actor(ctx), in.WebhookID, store.WebhookPatch{URL: b.URL, Events: b.Events, Enabled: b.Enabled, Description: b.Description})
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[webhookOutBody]{Body: webhookOutBody{Webhook: webhookOut(w)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteWebhook", Method: http.MethodDelete, Path: "/v2/teams/{teamId}/webhooks/{webhook_id}",
		Summary: "Delete a webhook subscription", Description: "Its deliveries not yet made are given up; the delivery log keeps the past ones.", Tags: tags}, store.RoleAdmin),
		func(ctx context.Context, in *WebhookPath) (*body[successOut], error) {
			if err := s.store.DeleteWebhook(ctx, actor(ctx), in.WebhookID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "testWebhook", Method: http.MethodPost, Path: "/v2/teams/{teamId}/webhooks/{webhook_id}/test",
		Summary: "Send a ping to a webhook", Tags: tags,
		Description: "Queues a signed {\"event\":\"ping\", …} delivery to this subscription, enabled or not; follow it in listWebhookDeliveries."}, store.RoleAdmin),
		func(ctx context.Context, in *WebhookPath) (*body[testWebhookOut], error) {
			d, err := s.store.EnqueueWebhookPing(ctx, actor(ctx), in.WebhookID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			if s.hooks != nil {
				s.hooks.Wake()
			}
			return &body[testWebhookOut]{Body: testWebhookOut{Delivery: deliveryOut(d)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listWebhookDeliveries", Method: http.MethodGet, Path: "/v2/teams/{teamId}/webhook-deliveries",
		Summary: "List webhook deliveries, newest first", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Page
			Status    string `query:"status" enum:"pending,delivering,delivered,failed"`
			WebhookID string `query:"webhook_id" format:"uuid" doc:"Only this subscription's deliveries."`
			RunID     string `query:"run_id" format:"uuid" doc:"Only this run's deliveries."`
		}) (*body[webhookDeliveriesOut], error) {
			ds, total, err := s.store.ListWebhookDeliveries(ctx, in.TeamID, store.DeliveryFilter{Status: in.Status, WebhookID: in.WebhookID,
				RunID: in.RunID, Limit: in.Limit, Offset: in.Offset})
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[webhookDeliveriesOut]{Body: webhookDeliveriesOut{Deliveries: []webhookDeliveryJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, d := range ds {
				out.Body.Deliveries = append(out.Body.Deliveries, deliveryOut(d))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getWebhookSigningSecret", Method: http.MethodGet, Path: "/v2/teams/{teamId}/webhooks/signing-secret",
		Summary: "Get the team's webhook signing secret", Tags: tags,
		Description: "Every webhook of the team, and every run's webhook_url, is signed with this secret. Each read is audited."}, store.RoleAdmin),
		func(ctx context.Context, in *TeamPath) (*body[signingSecretOut], error) {
			if len(s.cfg.MasterKey) == 0 {
				return nil, fail(ctx, errors.New("web.Config.MasterKey is not set: cannot derive the webhook signing secret"))
			}
			if err := s.store.RecordSigningSecretRead(ctx, actor(ctx)); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[signingSecretOut]{Body: signingSecretOut{Secret: runtime.SigningSecret(s.cfg.MasterKey, in.TeamID)}}, nil
		})
}
