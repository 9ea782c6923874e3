package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"time"
)

// ErrNoPassword is returned for a user who has no password set (API-key-only accounts).
var ErrNoPassword = errors.New("no password set")

// Login is what a sign-in checks: the user, their bcrypt hash and their teams.
type Login struct {
	User         User
	PasswordHash string
	// Teams are the user's memberships, oldest first: the first is where a session starts.
	Teams []Membership
}

// Membership is one team a user belongs to, with their role there.
type Membership struct {
	Team Team
	Role Role
}

// LoginByEmail returns what signing in as email needs. An unknown email is ErrNotFound;
// a user without a password is ErrNoPassword.
func (s *Store) LoginByEmail(ctx context.Context, email string) (Login, error) {
	u, err := s.GetUserByEmail(ctx, email)
	if err != nil {
		return Login{}, err
	}
	var hash sql.NullString
	if err := s.r.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = ?", u.ID).Scan(&hash); err != nil {
		return Login{}, err
	}
	teams, err := s.UserTeams(ctx, u.ID)
	if err != nil {
		return Login{}, err
	}
	l := Login{User: u, PasswordHash: hash.String, Teams: teams}
	if !hash.Valid || hash.String == "" {
		return l, ErrNoPassword
	}
	return l, nil
}

// UserTeams lists the teams a user belongs to, oldest membership first.
func (s *Store) UserTeams(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.id, t.name, t.created_at, m.role FROM memberships m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ? ORDER BY m.created_at, t.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		var created int64
		if err := rows.Scan(&m.Team.ID, &m.Team.Name, &created, &m.Role); err != nil {
			return nil, err
		}
		m.Team.CreatedAt = Time(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetUserPassword replaces a user's bcrypt password hash and ends their sessions, so a
// changed password locks out whoever knew the old one.
func (s *Store) SetUserPassword(ctx context.Context, a Actor, userID, hash string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", optional(hash), userID)
		if err != nil {
			return Target{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Target{}, notFound("user %s not found", userID)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
			return Target{}, err
		}
		return Target{Type: "user", ID: userID, Detail: map[string]any{"change": "password"}}, nil
	})
}

// SessionLimits are how long a session lives: Idle without a request, Max in all.
type SessionLimits struct {
	Idle time.Duration
	Max  time.Duration
}

// CreateSession signs a.UserID in to a.TeamID and returns the session's secret token; only
// its SHA-256 is stored. Sessions past their expiry are swept in the same transaction.
// The sign-in is audited as a's operation.
func (s *Store) CreateSession(ctx context.Context, a Actor, lim SessionLimits, userAgent string) (string, error) {
	raw := rand.Text() + rand.Text() // 2 × 128 bits, base32
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?", now, now-lim.Idle.Milliseconds()); err != nil {
			return Target{}, err
		}
		if len(userAgent) > 300 {
			userAgent = userAgent[:300]
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions(token_hash, user_id, team_id, created_at, expires_at, last_seen_at, ip, user_agent)
			VALUES (?,?,?,?,?,?,?,?)`, hashKey(raw), a.UserID, a.TeamID, now, now+lim.Max.Milliseconds(), now, optional(a.IP), optional(userAgent))
		return Target{Type: "user", ID: a.UserID}, err
	})
	return raw, err
}

// SessionPrincipal resolves a session token to who it acts as: the user's current role in
// the session's team, so a demotion takes effect on the next request. A session idle
// longer than lim.Idle or older than its absolute expiry is deleted and not found.
func (s *Store) SessionPrincipal(ctx context.Context, raw string, lim SessionLimits) (Principal, error) {
	p, seen, ended, err := s.session(ctx, raw, lim)
	if err != nil {
		return p, err
	}
	h, now := hashKey(raw), s.nowMs()
	if ended {
		if _, err := s.w.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", h); err != nil {
			return p, err
		}
		return Principal{}, notFound("session expired")
	}
	// Touch at most every tenth of the idle window, so reading a page stays a read.
	if now-seen > lim.Idle.Milliseconds()/10 {
		if _, err := s.w.ExecContext(ctx, "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", now, h); err != nil {
			return p, err
		}
	}
	return p, nil
}

// SessionActive is who a session still acts as, read only: it neither counts as use nor
// cleans up. Open event streams re-check their session with it, so signing out (or being
// removed from the team) ends them while an idle open tab does not keep a session alive.
func (s *Store) SessionActive(ctx context.Context, raw string, lim SessionLimits) (Principal, error) {
	p, _, ended, err := s.session(ctx, raw, lim)
	if err == nil && ended {
		return Principal{}, notFound("session expired")
	}
	return p, err
}

// session reads a session by its token: who it acts as, when it was last used, and
// whether it has ended by time.
func (s *Store) session(ctx context.Context, raw string, lim SessionLimits) (p Principal, seen int64, ended bool, err error) {
	var name sql.NullString
	var expires int64
	err = s.r.QueryRowContext(ctx, `SELECT se.user_id, u.email, u.name, se.team_id, m.role, se.last_seen_at, se.expires_at
		FROM sessions se JOIN users u ON u.id = se.user_id JOIN memberships m ON m.team_id = se.team_id AND m.user_id = se.user_id
		WHERE se.token_hash = ?`, hashKey(raw)).Scan(&p.UserID, &p.Email, &name, &p.TeamID, &p.Role, &seen, &expires)
	if err == sql.ErrNoRows {
		return p, 0, false, notFound("unknown session")
	}
	if err != nil {
		return p, 0, false, err
	}
	p.Name = name.String
	now := s.nowMs()
	return p, seen, now >= expires || now-seen >= lim.Idle.Milliseconds(), nil
}

// DeleteSession signs a session out server-side: its token stops working at once. The
// sign-out is audited as a's operation; an unknown token is not an error.
func (s *Store) DeleteSession(ctx context.Context, a Actor, raw string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", hashKey(raw))
		return Target{Type: "user", ID: a.UserID}, err
	})
}

// SwitchSessionTeam moves a session to another team the user belongs to.
func (s *Store) SwitchSessionTeam(ctx context.Context, raw, userID, team string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM memberships WHERE team_id = ? AND user_id = ?", team, userID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("team %s not found", team)
		}
		_, err := tx.ExecContext(ctx, "UPDATE sessions SET team_id = ? WHERE token_hash = ? AND user_id = ?", team, hashKey(raw), userID)
		return err
	})
}
