package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one row of the hash-chained audit log.
type AuditEntry struct {
	Seq        int64
	ID         string
	Time       time.Time
	TeamID     string
	UserID     *string
	UserEmail  *string
	APIKeyID   *string
	APIKeyName *string
	Channel    string
	Operation  string
	TargetType string
	TargetID   string
	Outcome    string
	IP         *string
	Detail     json.RawMessage
	PrevHash   string
	Hash       string
}

func optional(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// canonicalAudit is the exact byte string a row's hash covers, in a fixed field order.
func canonicalAudit(id string, ts int64, team string, user, keyID, keyName sql.NullString, channel, op, ttype, tid, outcome string, ip, detail sql.NullString) string {
	ns := func(v sql.NullString) any {
		if !v.Valid {
			return nil
		}
		return v.String
	}
	b, _ := json.Marshal([]any{id, ts, team, ns(user), ns(keyID), ns(keyName), channel, op, ttype, tid, outcome, ns(ip), ns(detail)})
	return string(b)
}

func chainHash(prev, canonical string) string {
	h := sha256.Sum256([]byte(prev + "\n" + canonical))
	return hex.EncodeToString(h[:])
}

// appendAudit adds a row to the chain. It must run inside the writer transaction of the
// change it records; the single writer keeps the chain linear.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, a Actor, team string, t Target, outcome string) error {
	var prev string
	err := tx.QueryRowContext(ctx, "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&prev)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("audit tail: %w", err)
	}
	var detail sql.NullString
	if len(t.Detail) > 0 {
		b, err := json.Marshal(t.Detail)
		if err != nil {
			return fmt.Errorf("audit detail: %w", err)
		}
		detail = sql.NullString{String: string(b), Valid: true}
	}
	id, ts := NewID(), s.nowMs()
	user, keyID, keyName, ip := optional(a.UserID), optional(a.APIKeyID), optional(a.APIKeyName), optional(a.IP)
	channel := a.Channel
	if channel == "" {
		channel = "system"
	}
	hash := chainHash(prev, canonicalAudit(id, ts, team, user, keyID, keyName, channel, a.Operation, t.Type, t.ID, outcome, ip, detail))
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log(id, ts, team_id, user_id, api_key_id, api_key_name, channel, operation,
		target_type, target_id, outcome, ip, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		id, ts, team, user, keyID, keyName, channel, a.Operation, t.Type, t.ID, outcome, ip, detail, prev, hash)
	if err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

// RecordDenied audits an attempt the caller's role did not allow; it changes nothing else.
func (s *Store) RecordDenied(ctx context.Context, a Actor, t Target) error {
	return s.write(ctx, func(tx *sql.Tx) error { return s.appendAudit(ctx, tx, a, a.TeamID, t, "denied") })
}

// AuditFilter narrows ListAudit. Actor matches a user id, a user's email or an API key id.
type AuditFilter struct {
	Actor     string
	Operation string
	Channel   string
	Since     *time.Time
	Until     *time.Time
	Limit     int
	Offset    int
}

// ListAudit returns a team's audit entries, newest first, and how many match in all.
func (s *Store) ListAudit(ctx context.Context, team string, f AuditFilter) ([]AuditEntry, int, error) {
	where := []string{"a.team_id = ?"}
	args := []any{team}
	if f.Actor != "" {
		where = append(where, "(a.user_id = ? OR a.api_key_id = ? OR u.email = ?)")
		args = append(args, f.Actor, f.Actor, f.Actor)
	}
	if f.Operation != "" {
		where = append(where, "a.operation = ?")
		args = append(args, f.Operation)
	}
	if f.Channel != "" {
		where = append(where, "a.channel = ?")
		args = append(args, f.Channel)
	}
	if f.Since != nil {
		where = append(where, "a.ts >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if f.Until != nil {
		where = append(where, "a.ts < ?")
		args = append(args, f.Until.UnixMilli())
	}
	from := " FROM audit_log a LEFT JOIN users u ON u.id = a.user_id WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*)"+from, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT a.seq, a.id, a.ts, a.team_id, a.user_id, u.email, a.api_key_id, a.api_key_name, a.channel,
		a.operation, a.target_type, a.target_id, a.outcome, a.ip, a.detail, a.prev_hash, a.hash`+from+
		" ORDER BY a.seq DESC LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var ts int64
		var user, email, keyID, keyName, ip, detail sql.NullString
		if err := rows.Scan(&e.Seq, &e.ID, &ts, &e.TeamID, &user, &email, &keyID, &keyName, &e.Channel, &e.Operation,
			&e.TargetType, &e.TargetID, &e.Outcome, &ip, &detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, 0, err
		}
		e.Time = Time(ts)
		e.UserID, e.UserEmail, e.APIKeyID, e.APIKeyName, e.IP = strPtr(user), strPtr(email), strPtr(keyID), strPtr(keyName), strPtr(ip)
		if detail.Valid {
			e.Detail = json.RawMessage(detail.String)
		}
		out = append(out, e)
	}
	return out, total, rows.Err()
}

// AuditBreak describes the first row whose hash does not follow from the chain.
type AuditBreak struct {
	Seq    int64
	ID     string
	Reason string
}

// VerifyAudit walks the whole chain in order and returns the first broken row, or nil
// and the number of rows checked when every hash follows from its predecessor.
func (s *Store) VerifyAudit(ctx context.Context) (*AuditBreak, int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, ts, team_id, user_id, api_key_id, api_key_name, channel, operation,
		target_type, target_id, outcome, ip, detail, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	prev, n := "", 0
	for rows.Next() {
		var seq, ts int64
		var id, team, channel, op, ttype, tid, outcome, prevHash, hash string
		var user, keyID, keyName, ip, detail sql.NullString
		if err := rows.Scan(&seq, &id, &ts, &team, &user, &keyID, &keyName, &channel, &op, &ttype, &tid, &outcome, &ip, &detail, &prevHash, &hash); err != nil {
			return nil, n, err
		}
		n++
		if prevHash != prev {
			return &AuditBreak{Seq: seq, ID: id, Reason: "prev_hash does not match the hash of the row before it (a row was removed or reordered)"}, n, nil
		}
		if want := chainHash(prev, canonicalAudit(id, ts, team, user, keyID, keyName, channel, op, ttype, tid, outcome, ip, detail)); want != hash {
			return &AuditBreak{Seq: seq, ID: id, Reason: "row content does not match its hash (the row was edited)"}, n, nil
		}
		prev = hash
	}
	return nil, n, rows.Err()
}
