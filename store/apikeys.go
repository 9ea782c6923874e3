package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"math/big"
	"strings"
	"time"
)

// APIKey is a credential's metadata; the secret itself is only ever returned on creation.
type APIKey struct {
	ID         string
	TeamID     string
	UserID     string
	UserEmail  string
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const keyPrefix = "dk_"

// newKeySecret returns "dk_" + 32 random bytes in base62.
func newKeySecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return keyPrefix + new(big.Int).SetBytes(b).Text(62)
}

func hashKey(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// CreateAPIKey issues a key for user in team and returns its metadata and the secret.
func (s *Store) CreateAPIKey(ctx context.Context, a Actor, team, user, name string) (APIKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return APIKey{}, "", invalid("name must not be empty: give the key a name that says where it is used")
	}
	raw := newKeySecret()
	now := s.nowMs()
	k := APIKey{ID: NewID(), TeamID: team, UserID: user, Name: name, Prefix: raw[:10], CreatedAt: Time(now)}
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := tx.QueryRowContext(ctx, "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.team_id = ? AND m.user_id = ?",
			team, user).Scan(&k.UserEmail); err == sql.ErrNoRows {
			return Target{}, notFound("user %s is not a member of team %s", user, team)
		} else if err != nil {
			return Target{}, err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO api_keys(id, team_id, user_id, name, prefix, key_hash, created_at) VALUES (?,?,?,?,?,?,?)",
			k.ID, team, user, name, k.Prefix, hashKey(raw), now)
		return Target{Type: "api_key", ID: k.ID, Detail: map[string]any{"name": name, "user_id": user}}, err
	})
	return k, raw, err
}

// ListAPIKeys returns a team's keys, newest first, revoked ones included.
func (s *Store) ListAPIKeys(ctx context.Context, team string, limit, offset int) ([]APIKey, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM api_keys WHERE team_id = ?", team).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT k.id, k.team_id, k.user_id, u.email, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at
		FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.team_id = ? ORDER BY k.created_at DESC, k.id DESC LIMIT ? OFFSET ?`, team, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var created int64
		var used, revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.TeamID, &k.UserID, &k.UserEmail, &k.Name, &k.Prefix, &created, &used, &revoked); err != nil {
			return nil, 0, err
		}
		k.CreatedAt, k.LastUsedAt, k.RevokedAt = Time(created), timePtr(used), timePtr(revoked)
		out = append(out, k)
	}
	return out, total, rows.Err()
}

// RevokeAPIKey makes a key unusable from the next request on. Revoking twice is a no-op.
func (s *Store) RevokeAPIKey(ctx context.Context, a Actor, team, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		res, err := tx.ExecContext(ctx, "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND team_id = ?", s.nowMs(), id, team)
		if err != nil {
			return Target{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Target{}, notFound("API key %s not found", id)
		}
		return Target{Type: "api_key", ID: id}, nil
	})
}

// keyTouchInterval bounds how often a key's last_used_at is written, so authentication
// stays a read on the hot path.
const keyTouchInterval = time.Minute

// Authenticate resolves a raw key to the principal it acts as. The role is the user's
// current role in the key's team, so demoting a user demotes their keys.
func (s *Store) Authenticate(ctx context.Context, raw string) (Principal, error) {
	if !strings.HasPrefix(raw, keyPrefix) {
		return Principal{}, notFound("unknown API key")
	}
	var p Principal
	var name sql.NullString
	var used sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT k.id, k.name, k.team_id, k.user_id, u.email, u.name, m.role, k.last_used_at
		FROM api_keys k JOIN users u ON u.id = k.user_id JOIN memberships m ON m.team_id = k.team_id AND m.user_id = k.user_id
		WHERE k.key_hash = ? AND k.revoked_at IS NULL`, hashKey(raw)).
		Scan(&p.APIKeyID, &p.APIKeyName, &p.TeamID, &p.UserID, &p.Email, &name, &p.Role, &used)
	if err == sql.ErrNoRows {
		return p, notFound("unknown or revoked API key")
	}
	if err != nil {
		return p, err
	}
	if name.Valid {
		p.Name = name.String
	}
	now := s.nowMs()
	if !used.Valid || now-used.Int64 > keyTouchInterval.Milliseconds() {
		if _, err := s.w.ExecContext(ctx, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, p.APIKeyID); err != nil {
			return p, err
		}
	}
	return p, nil
}

// APIKeyActive reports whether key id is unrevoked and its user still in its team, read
// only; open event streams re-check the key they were opened with.
func (s *Store) APIKeyActive(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM api_keys k JOIN memberships m ON m.team_id = k.team_id AND m.user_id = k.user_id
		WHERE k.id = ? AND k.revoked_at IS NULL`, id).Scan(&n)
	return n > 0, err
}
