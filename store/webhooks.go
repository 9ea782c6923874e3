package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Webhook events. The first four are what runs report; ping is sent only by testWebhook.
const (
	EventRunCompleted        = "run_completed"
	EventRunFailed           = "run_failed"
	EventRunInterrupted      = "run_interrupted"
	EventHumanRequestCreated = "human_request_created"
	EventPing                = "ping"
)

// WebhookEventNames are the events a subscription can ask for.
func WebhookEventNames() []string {
	return []string{EventRunCompleted, EventRunFailed, EventRunInterrupted, EventHumanRequestCreated}
}

// Delivery statuses.
const (
	DeliveryPending    = "pending"
	DeliveryDelivering = "delivering"
	DeliveryDelivered  = "delivered"
	DeliveryFailed     = "failed"
)

// WebhookEvent is what one outbound webhook says. Its JSON is the body receivers get:
// {event, run_id, agent_id, status, request_id?, title?, description?, case_id?, timestamp}.
type WebhookEvent struct {
	Event, RunID, AgentID, Status string
	// Omitted from the JSON when empty.
	RequestID, Title, Description, CaseID string
	// Time is when the event happened; zero means when it is enqueued.
	Time time.Time
}

// MarshalJSON writes the payload with the timestamp as RFC 3339 with milliseconds, UTC.
func (e WebhookEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Event       string `json:"event"`
		RunID       string `json:"run_id"`
		AgentID     string `json:"agent_id"`
		Status      string `json:"status"`
		RequestID   string `json:"request_id,omitempty"`
		Title       string `json:"title,omitempty"`
		Description string `json:"description,omitempty"`
		CaseID      string `json:"case_id,omitempty"`
		Timestamp   string `json:"timestamp"`
	}{e.Event, e.RunID, e.AgentID, e.Status, e.RequestID, e.Title, e.Description, e.CaseID,
		e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
}

// Webhook is a team's subscription: events are POSTed to URL while it is enabled.
type Webhook struct {
	ID     string
	TeamID string
	URL    string
	// Events it receives; empty means all.
	Events      []string
	Enabled     bool
	Description string
	CreatedBy   *UserRef
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewWebhook is what CreateWebhook needs. The caller checks the URL's form (scheme, host);
// the delivery worker refuses anything but http(s) again.
type NewWebhook struct {
	URL         string
	Events      []string
	Enabled     bool
	Description string
}

// WebhookPatch changes the fields that are set. Deliveries already queued keep the URL
// they were queued with.
type WebhookPatch struct {
	URL         *string
	Events      *[]string
	Enabled     *bool
	Description *string
}

const webhookSelect = `SELECT w.id, w.team_id, w.url, w.events, w.enabled, w.description, w.created_at, w.updated_at,
	u.id, u.email, u.name FROM webhooks w LEFT JOIN users u ON u.id = w.created_by`

func scanWebhook(sc scanner) (Webhook, error) {
	var w Webhook
	var events string
	var created, updated int64
	var uID, uEmail, uName sql.NullString
	if err := sc.Scan(&w.ID, &w.TeamID, &w.URL, &events, &w.Enabled, &w.Description, &created, &updated, &uID, &uEmail, &uName); err != nil {
		return w, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return w, fmt.Errorf("webhook %s events: %w", w.ID, err)
	}
	w.CreatedAt, w.UpdatedAt, w.CreatedBy = Time(created), Time(updated), scanUserRef(uID, uEmail, uName)
	return w, nil
}

func webhookInTeam(ctx context.Context, q querier, team, id string) (Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx, webhookSelect+" WHERE w.id = ? AND w.team_id = ?", id, team))
	if err == sql.ErrNoRows {
		return w, notFound("webhook %s not found", id)
	}
	return w, err
}

// GetWebhook returns a team's subscription; another team's is reported as not found.
func (s *Store) GetWebhook(ctx context.Context, team, id string) (Webhook, error) {
	return webhookInTeam(ctx, s.r, team, id)
}

// ListWebhooks returns a team's subscriptions, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, team string, limit, offset int) ([]Webhook, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM webhooks WHERE team_id = ?", team).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, webhookSelect+" WHERE w.team_id = ? ORDER BY w.created_at, w.id LIMIT ? OFFSET ?", team, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, w)
	}
	return out, total, rows.Err()
}

// webhookEvents checks a subscription's event list and returns it as stored: deduplicated,
// in the order given.
func webhookEvents(events []string) (string, []string, error) {
	known := WebhookEventNames()
	out := []string{}
	for i, e := range events {
		if !slices.Contains(known, e) {
			return "", nil, invalid("events[%d]: %q is not an event a webhook can subscribe to: use %s, or an empty list for all", i, e, strings.Join(known, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	b, err := json.Marshal(out)
	return string(b), out, err
}

func webhookURL(raw string) (string, error) {
	u := strings.TrimSpace(raw)
	if u == "" || len(u) > 2048 {
		return "", invalid("url must be 1 to 2048 characters")
	}
	return u, nil
}

func webhookDescription(d string) (string, error) {
	if len(d) > 500 {
		return "", invalid("description must be at most 500 characters")
	}
	return d, nil
}

// CreateWebhook subscribes a URL to the team's events.
func (s *Store) CreateWebhook(ctx context.Context, a Actor, nw NewWebhook) (Webhook, error) {
	url, err := webhookURL(nw.URL)
	if err != nil {
		return Webhook{}, err
	}
	events, list, err := webhookEvents(nw.Events)
	if err != nil {
		return Webhook{}, err
	}
	desc, err := webhookDescription(nw.Description)
	if err != nil {
		return Webhook{}, err
	}
	id, now := NewID(), s.nowMs()
	var w Webhook
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks(id, team_id, url, events, enabled, description, created_by, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?)`, id, a.TeamID, url, events, nw.Enabled, desc, optional(a.UserID), now, now); err != nil {
			return Target{}, err
		}
		var err error
		w, err = webhookInTeam(ctx, tx, a.TeamID, id)
		// The URL stays out of the audit log: webhook URLs often carry a token.
		return Target{Type: "webhook", ID: id, Detail: map[string]any{"events": list, "enabled": nw.Enabled}}, err
	})
	return w, err
}

// UpdateWebhook applies p to a team's subscription.
func (s *Store) UpdateWebhook(ctx context.Context, a Actor, id string, p WebhookPatch) (Webhook, error) {
	sets, args, changed := []string{"updated_at = ?"}, []any{s.nowMs()}, []string{}
	add := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
		changed = append(changed, col)
	}
	if p.URL != nil {
		u, err := webhookURL(*p.URL)
		if err != nil {
			return Webhook{}, err
		}
		add("url", u)
	}
	if p.Events != nil {
		events, _, err := webhookEvents(*p.Events)
		if err != nil {
			return Webhook{}, err
		}
		add("events", events)
	}
	if p.Enabled != nil {
		add("enabled", *p.Enabled)
	}
	if p.Description != nil {
		d, err := webhookDescription(*p.Description)
		if err != nil {
			return Webhook{}, err
		}
		add("description", d)
	}
	var w Webhook
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		res, err := tx.ExecContext(ctx, "UPDATE webhooks SET "+strings.Join(sets, ", ")+" WHERE id = ? AND team_id = ?", append(args, id, a.TeamID)...)
		if err != nil {
			return Target{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Target{}, notFound("webhook %s not found", id)
		}
		w, err = webhookInTeam(ctx, tx, a.TeamID, id)
		return Target{Type: "webhook", ID: id, Detail: map[string]any{"changed": changed}}, err
	})
	return w, err
}

// DeleteWebhook removes a subscription. Its deliveries not yet made are given up in the same
// transaction (an attempt already in flight may still succeed); the log of past ones stays.
func (s *Store) DeleteWebhook(ctx context.Context, a Actor, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		res, err := tx.ExecContext(ctx, "DELETE FROM webhooks WHERE id = ? AND team_id = ?", id, a.TeamID)
		if err != nil {
			return Target{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Target{}, notFound("webhook %s not found", id)
		}
		res, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL,
			last_error = 'the webhook was deleted before this delivery succeeded'
			WHERE webhook_id = ? AND status IN ('pending','delivering')`, id)
		if err != nil {
			return Target{}, err
		}
		cancelled, _ := res.RowsAffected()
		return Target{Type: "webhook", ID: id, Detail: map[string]any{"cancelled_deliveries": cancelled}}, nil
	})
}

// RecordSigningSecretRead audits that the caller was shown the team's webhook signing
// secret: it changes nothing else.
func (s *Store) RecordSigningSecretRead(ctx context.Context, a Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		return s.appendAudit(ctx, tx, a, a.TeamID, Target{Type: "webhook_signing_secret", ID: a.TeamID}, "success")
	})
}

func insertDelivery(ctx context.Context, tx *sql.Tx, team string, webhookID sql.NullString, runID, url, event string, payload []byte, now int64) (string, error) {
	id := NewID()
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries(id, team_id, webhook_id, run_id, url, event, payload, status, next_attempt_at, created_at)
		VALUES (?,?,?,?,?,?,?,'pending',?,?)`, id, team, webhookID, optional(runID), url, event, string(payload), now, now)
	if err != nil {
		return "", fmt.Errorf("enqueue webhook: %w", err)
	}
	return id, nil
}

// enqueueWebhooks writes the outbox rows for ev inside tx, the transaction of the state
// change it reports: one for the run's own webhook_url (runURL, when set) and one per
// enabled team subscription that wants ev.Event. After the commit the caller wakes the
// delivery worker.
func (s *Store) enqueueWebhooks(ctx context.Context, tx *sql.Tx, teamID, runURL string, ev WebhookEvent) error {
	if !slices.Contains(WebhookEventNames(), ev.Event) {
		return fmt.Errorf("enqueue webhook: unknown event %q", ev.Event)
	}
	now := s.nowMs()
	if ev.Time.IsZero() {
		ev.Time = Time(now)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("enqueue webhook: %w", err)
	}
	if runURL != "" {
		if _, err := insertDelivery(ctx, tx, teamID, sql.NullString{}, ev.RunID, runURL, ev.Event, payload, now); err != nil {
			return err
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT id, url, events FROM webhooks WHERE team_id = ? AND enabled = 1 ORDER BY created_at, id", teamID)
	if err != nil {
		return fmt.Errorf("enqueue webhook: %w", err)
	}
	type target struct{ id, url string }
	var targets []target
	for rows.Next() {
		var t target
		var events string
		var list []string
		if err := rows.Scan(&t.id, &t.url, &events); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(events), &list); err != nil {
			rows.Close()
			return fmt.Errorf("webhook %s events: %w", t.id, err)
		}
		if len(list) == 0 || slices.Contains(list, ev.Event) {
			targets = append(targets, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range targets {
		if _, err := insertDelivery(ctx, tx, teamID, optional(t.id), ev.RunID, t.url, ev.Event, payload, now); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueWebhookPing queues a ping to one subscription, enabled or not, so an admin can
// check the receiver and its signature check.
func (s *Store) EnqueueWebhookPing(ctx context.Context, a Actor, id string) (WebhookDelivery, error) {
	var d WebhookDelivery
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		w, err := webhookInTeam(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		payload, err := json.Marshal(WebhookEvent{Event: EventPing, Time: Time(now)})
		if err != nil {
			return Target{}, err
		}
		did, err := insertDelivery(ctx, tx, a.TeamID, optional(w.ID), "", w.URL, EventPing, payload, now)
		if err != nil {
			return Target{}, err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, deliverySelect+" WHERE id = ?", did))
		return Target{Type: "webhook", ID: id, Detail: map[string]any{"delivery_id": did}}, err
	})
	return d, err
}

// WebhookDelivery is one outbox row: a message to one URL and how its delivery went.
type WebhookDelivery struct {
	// ID is the Standard Webhooks webhook-id, the same on every attempt.
	ID        string
	TeamID    string
	WebhookID *string
	RunID     *string
	URL       string
	Event     string
	Payload   json.RawMessage
	Status    string
	// Attempts counts the attempts started, the current one included.
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode *int
	LastError      *string
	CreatedAt      time.Time
	DeliveredAt    *time.Time
}

const deliverySelect = `SELECT id, team_id, webhook_id, run_id, url, event, payload, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, delivered_at FROM webhook_deliveries`

const deliveryCols = `id, team_id, webhook_id, run_id, url, event, payload, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, delivered_at`

func scanDelivery(sc scanner) (WebhookDelivery, error) {
	var d WebhookDelivery
	var webhook, run, lastErr sql.NullString
	var payload string
	var code, delivered sql.NullInt64
	var next, created int64
	if err := sc.Scan(&d.ID, &d.TeamID, &webhook, &run, &d.URL, &d.Event, &payload, &d.Status, &d.Attempts, &next,
		&code, &lastErr, &created, &delivered); err != nil {
		return d, err
	}
	d.WebhookID, d.RunID, d.LastError = strPtr(webhook), strPtr(run), strPtr(lastErr)
	d.Payload, d.NextAttemptAt, d.CreatedAt, d.DeliveredAt = json.RawMessage(payload), Time(next), Time(created), timePtr(delivered)
	if code.Valid {
		c := int(code.Int64)
		d.LastStatusCode = &c
	}
	return d, nil
}

// DeliveryFilter narrows ListWebhookDeliveries; empty fields match everything.
type DeliveryFilter struct {
	Status    string
	WebhookID string
	RunID     string
	Limit     int
	Offset    int
}

// ListWebhookDeliveries returns a team's deliveries, newest first, and how many match in all.
func (s *Store) ListWebhookDeliveries(ctx context.Context, team string, f DeliveryFilter) ([]WebhookDelivery, int, error) {
	where, args := []string{"team_id = ?"}, []any{team}
	for _, c := range []struct{ col, v string }{{"status", f.Status}, {"webhook_id", f.WebhookID}, {"run_id", f.RunID}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	cond := " WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM webhook_deliveries"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, deliverySelect+cond+" ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, d)
	}
	return out, total, rows.Err()
}

// ClaimWebhookDeliveries reserves up to limit due deliveries for lease: pending ones whose
// time has come and ones whose previous holder's lease ran out (a process that died
// mid-delivery). Each claim counts as an attempt; Attempts in the result is the number of
// this one, which the caller passes back when it reports the outcome.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, lease time.Duration, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET status = 'delivering', lease_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM webhook_deliveries
				WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'delivering' AND lease_until < ?)
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+deliveryCols, now+lease.Milliseconds(), now, now, limit)
		if err != nil {
			return fmt.Errorf("claim webhook deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order; deliver the longest-waiting first.
	slices.SortFunc(out, func(a, b WebhookDelivery) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// MarkWebhookDelivered records the receiver's 2xx for attempt. A success always wins, even
// over a delete that gave the delivery up while the request was in flight; an attempt whose
// lease was taken over by a later one is ignored.
func (s *Store) MarkWebhookDelivered(ctx context.Context, id string, attempt, statusCode int) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?, lease_until = NULL,
			last_status_code = ?, last_error = NULL WHERE id = ? AND attempts = ?`, s.nowMs(), statusCode, id, attempt)
		return err
	})
}

// WebhookFailure is how an attempt failed and what happens next.
type WebhookFailure struct {
	// StatusCode is the receiver's answer; 0 when there was none.
	StatusCode int
	// Reason is for the delivery log, e.g. "HTTP 503 Service Unavailable".
	Reason string
	// RetryIn is when to try again; ignored when Final.
	RetryIn time.Duration
	// Final gives up: the delivery becomes failed.
	Final bool
}

// MarkWebhookFailed records a failed attempt and schedules the next one, or gives up. It
// changes nothing when attempt no longer holds the delivery (a later attempt took over its
// expired lease, or the webhook was deleted meanwhile).
func (s *Store) MarkWebhookFailed(ctx context.Context, id string, attempt int, f WebhookFailure) error {
	code := sql.NullInt64{Int64: int64(f.StatusCode), Valid: f.StatusCode != 0}
	return s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if f.Final {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL, last_status_code = ?, last_error = ?
				WHERE id = ? AND attempts = ? AND status = 'delivering'`, code, f.Reason, id, attempt)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ?,
				last_status_code = ?, last_error = ? WHERE id = ? AND attempts = ? AND status = 'delivering'`,
				s.nowMs()+max(f.RetryIn, 0).Milliseconds(), code, f.Reason, id, attempt)
		}
		return err
	})
}

// NextWebhookDue is when the next delivery becomes claimable: the earliest pending attempt
// or expiring lease. ok is false when nothing is waiting.
func (s *Store) NextWebhookDue(ctx context.Context) (t time.Time, ok bool, err error) {
	var ms sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT min(t) FROM (
		SELECT min(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending'
		UNION ALL SELECT min(lease_until) + 1 FROM webhook_deliveries WHERE status = 'delivering')`).Scan(&ms)
	if err != nil || !ms.Valid {
		return time.Time{}, false, err
	}
	return Time(ms.Int64), true, nil
}
