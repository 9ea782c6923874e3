package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"math/big"
	"strings"
	"time"
)

// Inbound trigger types: what a delivery to the trigger's URL does.
const (
	TriggerStartRun   = "start_run"
	TriggerCreateCase = "create_case"
	// IntegrationWebhook is the one integration docket has triggers for: a plain
	// HTTPS webhook from any sender.
	IntegrationWebhook = "webhook"
)

// InboundTrigger is an agent's secret webhook URL and what a delivery to it does.
type InboundTrigger struct {
	ID              string
	AgentID         string
	TeamID          string
	UserID          *string
	IntegrationSlug string
	TriggerType     string
	// QueueID is where create_case puts cases; nil when the queue was deleted.
	QueueID     *string
	Enabled     bool
	TokenPrefix string
	// SealedSecret is the sender's signing secret sealed with the master key; nil means
	// deliveries are not signed.
	SealedSecret    []byte
	SignatureHeader string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// InboundTriggerUpsert is what UpsertInboundTrigger sets. The caller validated the slug,
// type and header name.
type InboundTriggerUpsert struct {
	IntegrationSlug string
	TriggerType     string
	QueueID         *string
	Enabled         bool
	SignatureHeader string
	// SetSecret replaces the sealed secret with SealedSecret (nil removes it); otherwise
	// the current one stays.
	SetSecret    bool
	SealedSecret []byte
	// RotateToken issues a new URL token; the old one stops working at once.
	RotateToken bool
}

const hookTokenPrefix = "dkh_"

func newHookToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hookTokenPrefix + new(big.Int).SetBytes(b).Text(62)
}

const inboundSelect = `SELECT t.id, t.agent_id, a.team_id, t.user_id, t.integration_slug, t.trigger_type, t.queue_id, t.enabled,
	t.token_prefix, t.signing_secret, t.signature_header, t.created_at, t.updated_at
	FROM inbound_triggers t JOIN agents a ON a.id = t.agent_id`

func scanInbound(sc scanner) (InboundTrigger, error) {
	var t InboundTrigger
	var user, queue sql.NullString
	var created, updated int64
	err := sc.Scan(&t.ID, &t.AgentID, &t.TeamID, &user, &t.IntegrationSlug, &t.TriggerType, &queue, &t.Enabled, &t.TokenPrefix,
		&t.SealedSecret, &t.SignatureHeader, &created, &updated)
	t.UserID, t.QueueID, t.CreatedAt, t.UpdatedAt = strPtr(user), strPtr(queue), Time(created), Time(updated)
	return t, err
}

// ListInboundTriggers returns a team agent's inbound triggers.
func (s *Store) ListInboundTriggers(ctx context.Context, team, agentID string) ([]InboundTrigger, error) {
	if err := agentExists(ctx, s.r, team, agentID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, inboundSelect+" WHERE t.agent_id = ? AND a.team_id = ? ORDER BY t.created_at, t.id", agentID, team)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []InboundTrigger{}
	for rows.Next() {
		t, err := scanInbound(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// InboundTriggerByToken resolves a hook URL's token; an unknown token, or one of a
// deleted agent, is not found.
func (s *Store) InboundTriggerByToken(ctx context.Context, raw string) (InboundTrigger, error) {
	if !strings.HasPrefix(raw, hookTokenPrefix) {
		return InboundTrigger{}, notFound("unknown webhook URL")
	}
	t, err := scanInbound(s.r.QueryRowContext(ctx, inboundSelect+" WHERE t.token_hash = ? AND a.deleted_at IS NULL", hashKey(raw)))
	if err == sql.ErrNoRows {
		return t, notFound("unknown webhook URL")
	}
	return t, err
}

// UpsertInboundTrigger creates the agent's trigger for u.IntegrationSlug, or changes it.
// token is the new URL token when one was issued (creation or rotation), shown once:
// only its hash is kept.
func (s *Store) UpsertInboundTrigger(ctx context.Context, a Actor, agentID string, u InboundTriggerUpsert) (t InboundTrigger, token string, created bool, err error) {
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, agentID); err != nil {
			return Target{}, err
		}
		if u.QueueID != nil {
			if err := queueInTeam(ctx, tx, a.TeamID, *u.QueueID, "filter_config.queue_id"); err != nil {
				return Target{}, err
			}
		}
		var id string
		err := tx.QueryRowContext(ctx, "SELECT id FROM inbound_triggers WHERE agent_id = ? AND integration_slug = ?", agentID, u.IntegrationSlug).Scan(&id)
		if err != nil && err != sql.ErrNoRows {
			return Target{}, err
		}
		now := s.nowMs()
		created = err == sql.ErrNoRows
		if created || u.RotateToken {
			token = newHookToken()
		}
		switch {
		case created:
			id = NewID()
			var secret []byte
			if u.SetSecret {
				secret = u.SealedSecret
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO inbound_triggers(id, agent_id, user_id, integration_slug, trigger_type, queue_id, enabled,
				token_hash, token_prefix, signing_secret, signature_header, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
				id, agentID, optional(a.UserID), u.IntegrationSlug, u.TriggerType, nullStr(u.QueueID), u.Enabled, hashKey(token), token[:10],
				secret, u.SignatureHeader, now, now)
		default:
			sets := "trigger_type = ?, queue_id = ?, enabled = ?, signature_header = ?, updated_at = ?"
			args := []any{u.TriggerType, nullStr(u.QueueID), u.Enabled, u.SignatureHeader, now}
			if u.SetSecret {
				sets += ", signing_secret = ?"
				args = append(args, u.SealedSecret)
			}
			if token != "" {
				sets += ", token_hash = ?, token_prefix = ?"
				args = append(args, hashKey(token), token[:10])
			}
			_, err = tx.ExecContext(ctx, "UPDATE inbound_triggers SET "+sets+" WHERE id = ?", append(args, id)...)
		}
		if err != nil {
			return Target{}, err
		}
		t, err = scanInbound(tx.QueryRowContext(ctx, inboundSelect+" WHERE t.id = ?", id))
		// Neither the token nor the secret goes to the audit log.
		return Target{Type: "inbound_trigger", ID: id, Detail: map[string]any{"agent_id": agentID, "trigger_type": u.TriggerType,
			"enabled": u.Enabled, "created": created, "token_issued": token != "", "signed": t.SealedSecret != nil}}, err
	})
	if err != nil {
		return InboundTrigger{}, "", false, err
	}
	return t, token, created, nil
}
