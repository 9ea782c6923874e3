package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Team is a tenant: every resource belongs to exactly one.
type Team struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// User is a person who can log in or own API keys.
type User struct {
	ID        string
	Email     string
	Name      *string
	CreatedAt time.Time
}

// Member is a user seen through one team's membership.
type Member struct {
	User
	Role Role
}

// AdminEmail is the owner account created on first start.
const AdminEmail = "admin@localhost"

// IsEmpty reports whether the database has no team yet (first start).
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM teams").Scan(&n)
	return n == 0, err
}

// Bootstrap creates the "Default" team and its owner admin@localhost with the given
// bcrypt hash, unless a team already exists. It reports whether it created them.
func (s *Store) Bootstrap(ctx context.Context, passwordHash string) (team Team, created bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM teams").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		now := s.nowMs()
		team = Team{ID: NewID(), Name: "Default", CreatedAt: Time(now)}
		userID := NewID()
		if _, err := tx.ExecContext(ctx, "INSERT INTO teams(id, name, created_at) VALUES (?,?,?)", team.ID, team.Name, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO users(id, email, name, password_hash, created_at) VALUES (?,?,?,?,?)",
			userID, AdminEmail, "Administrator", passwordHash, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO memberships(team_id, user_id, role, created_at) VALUES (?,?,?,?)",
			team.ID, userID, RoleOwner, now); err != nil {
			return err
		}
		created = true
		return s.appendAudit(ctx, tx, Actor{Channel: "system", Operation: "bootstrap", UserID: userID}, team.ID,
			Target{Type: "team", ID: team.ID, Detail: map[string]any{"owner": AdminEmail}}, "success")
	})
	return team, created, err
}

// CreateTeam creates a team with ownerID as its owner.
func (s *Store) CreateTeam(ctx context.Context, a Actor, name, ownerID string) (Team, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Team{}, invalid("team name must not be empty")
	}
	now := s.nowMs()
	t := Team{ID: NewID(), Name: name, CreatedAt: Time(now)}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO teams(id, name, created_at) VALUES (?,?,?)", t.ID, name, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO memberships(team_id, user_id, role, created_at) VALUES (?,?,?,?)",
			t.ID, ownerID, RoleOwner, now); err != nil {
			return fmt.Errorf("add owner %s: %w", ownerID, err)
		}
		return s.appendAudit(ctx, tx, a, t.ID, Target{Type: "team", ID: t.ID, Detail: map[string]any{"name": name}}, "success")
	})
	return t, err
}

// CreateUser adds a user and makes them a member of team with role.
func (s *Store) CreateUser(ctx context.Context, a Actor, team, email, name, passwordHash string, role Role) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") {
		return User{}, invalid("email %q is not an email address", email)
	}
	now := s.nowMs()
	u := User{ID: NewID(), Email: email, CreatedAt: Time(now)}
	if name != "" {
		u.Name = &name
	}
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE email = ?", email).Scan(&n); err != nil {
			return Target{}, err
		}
		if n > 0 {
			return Target{}, conflict("a user with email %s already exists", email)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO users(id, email, name, password_hash, created_at) VALUES (?,?,?,?,?)",
			u.ID, email, nullStr(u.Name), optional(passwordHash), now); err != nil {
			return Target{}, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO memberships(team_id, user_id, role, created_at) VALUES (?,?,?,?)",
			team, u.ID, role, now); err != nil {
			return Target{}, err
		}
		return Target{Type: "user", ID: u.ID, Detail: map[string]any{"email": email, "role": role}}, nil
	})
	return u, err
}

// GetTeam returns a team by id.
func (s *Store) GetTeam(ctx context.Context, id string) (Team, error) {
	var t Team
	var created int64
	err := s.r.QueryRowContext(ctx, "SELECT id, name, created_at FROM teams WHERE id = ?", id).Scan(&t.ID, &t.Name, &created)
	if err == sql.ErrNoRows {
		return t, notFound("team %s not found", id)
	}
	t.CreatedAt = Time(created)
	return t, err
}

// FirstTeam returns the oldest team (the one bootstrap created), for offline commands
// that default to it.
func (s *Store) FirstTeam(ctx context.Context) (Team, error) {
	var id string
	err := s.r.QueryRowContext(ctx, "SELECT id FROM teams ORDER BY created_at, id LIMIT 1").Scan(&id)
	if err == sql.ErrNoRows {
		return Team{}, notFound("the database has no team yet: start `docket serve` once to create it")
	}
	if err != nil {
		return Team{}, err
	}
	return s.GetTeam(ctx, id)
}

// TeamOwner returns the oldest owner of a team.
func (s *Store) TeamOwner(ctx context.Context, team string) (User, error) {
	var id string
	err := s.r.QueryRowContext(ctx, "SELECT user_id FROM memberships WHERE team_id = ? AND role = 'owner' ORDER BY created_at LIMIT 1", team).Scan(&id)
	if err == sql.ErrNoRows {
		return User{}, notFound("team %s has no owner", team)
	}
	if err != nil {
		return User{}, err
	}
	return s.GetUser(ctx, id)
}

// GetUser returns a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	return s.userWhere(ctx, "id = ?", id)
}

// GetUserByEmail returns a user by email (case-insensitive).
func (s *Store) GetUserByEmail(ctx context.Context, email string) (User, error) {
	return s.userWhere(ctx, "email = ?", strings.ToLower(strings.TrimSpace(email)))
}

func (s *Store) userWhere(ctx context.Context, cond string, arg any) (User, error) {
	var u User
	var name sql.NullString
	var created int64
	err := s.r.QueryRowContext(ctx, "SELECT id, email, name, created_at FROM users WHERE "+cond, arg).Scan(&u.ID, &u.Email, &name, &created)
	if err == sql.ErrNoRows {
		return u, notFound("user %v not found", arg)
	}
	u.Name, u.CreatedAt = strPtr(name), Time(created)
	return u, err
}

// MemberRole returns the user's role in team, or ErrNotFound when they are not a member.
func (s *Store) MemberRole(ctx context.Context, team, user string) (Role, error) {
	var r Role
	err := s.r.QueryRowContext(ctx, "SELECT role FROM memberships WHERE team_id = ? AND user_id = ?", team, user).Scan(&r)
	if err == sql.ErrNoRows {
		return "", notFound("team %s not found", team)
	}
	return r, err
}

// ListMembers returns a team's members ordered by email, optionally filtered by a
// substring of name or email.
func (s *Store) ListMembers(ctx context.Context, team, search string, limit, offset int) ([]Member, int, error) {
	where, args := "m.team_id = ?", []any{team}
	if search != "" {
		where += " AND (instr(lower(u.email), lower(?)) > 0 OR instr(lower(coalesce(u.name, '')), lower(?)) > 0)"
		args = append(args, search, search)
	}
	from := " FROM memberships m JOIN users u ON u.id = m.user_id WHERE " + where
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*)"+from, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT u.id, u.email, u.name, u.created_at, m.role"+from+" ORDER BY u.email LIMIT ? OFFSET ?",
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var name sql.NullString
		var created int64
		if err := rows.Scan(&m.ID, &m.Email, &name, &created, &m.Role); err != nil {
			return nil, 0, err
		}
		m.Name, m.CreatedAt = strPtr(name), Time(created)
		out = append(out, m)
	}
	return out, total, rows.Err()
}
