package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// UserRef is the short form of a user shown on the things they created or changed.
type UserRef struct {
	ID    string
	Email string
	Name  *string
}

// Agent is an Assignment: a named job description whose live Setup (build) runs.
type Agent struct {
	ID                    string
	TeamID                string
	FolderID              *string
	Name                  string
	Description           string
	ThreadID              *string
	AutomationID          *string
	SlackEnabled          bool
	MicrosoftTeamsEnabled bool
	AgenticMemoryEnabled  bool
	LiveBuildID           *string
	CreatedBy             *UserRef
	UpdatedBy             *UserRef
	CreatedAt             time.Time
	UpdatedAt             time.Time
	LastRunAt             *time.Time
	// PinnedAt is the requesting user's pin, if any.
	PinnedAt *time.Time
	// LatestBuild is the live build, or the newest one when none is live yet. Filled by ListAgents.
	LatestBuild *Build
}

// NewAgent is what CreateAgent needs.
type NewAgent struct {
	Name          string
	Description   string
	ThreadID      *string
	AutomationID  *string
	SourceBuildID *string
	// Build, when set, becomes the agent's first build and goes live at once.
	Build *NewBuild
}

// AgentPatch changes the fields that are set.
type AgentPatch struct {
	Name                  *string
	Description           *string
	SlackEnabled          *bool
	MicrosoftTeamsEnabled *bool
	AgenticMemoryEnabled  *bool
	ThreadID              **string
	Pinned                *bool
}

const agentSelect = `SELECT a.id, a.team_id, a.folder_id, a.name, a.description, a.thread_id, a.automation_id, a.slack_enabled,
	a.microsoft_teams_enabled, a.agentic_memory_enabled, a.live_build_id, a.created_at, a.updated_at, a.last_run_at,
	cu.id, cu.email, cu.name, uu.id, uu.email, uu.name, p.pinned_at`

const agentFrom = ` FROM agents a LEFT JOIN users cu ON cu.id = a.created_by LEFT JOIN users uu ON uu.id = a.updated_by
	LEFT JOIN agent_pins p ON p.agent_id = a.id AND p.user_id = ?`

type scanner interface{ Scan(...any) error }

func scanUserRef(id, email, name sql.NullString) *UserRef {
	if !id.Valid {
		return nil
	}
	return &UserRef{ID: id.String, Email: email.String, Name: strPtr(name)}
}

func scanAgent(sc scanner, extra ...any) (Agent, error) {
	var a Agent
	var folder, thread, automation, live sql.NullString
	var cID, cEmail, cName, uID, uEmail, uName sql.NullString
	var created, updated int64
	var lastRun, pinned sql.NullInt64
	dest := []any{&a.ID, &a.TeamID, &folder, &a.Name, &a.Description, &thread, &automation, &a.SlackEnabled,
		&a.MicrosoftTeamsEnabled, &a.AgenticMemoryEnabled, &live, &created, &updated, &lastRun,
		&cID, &cEmail, &cName, &uID, &uEmail, &uName, &pinned}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return a, err
	}
	a.FolderID, a.ThreadID, a.AutomationID, a.LiveBuildID = strPtr(folder), strPtr(thread), strPtr(automation), strPtr(live)
	a.CreatedAt, a.UpdatedAt, a.LastRunAt, a.PinnedAt = Time(created), Time(updated), timePtr(lastRun), timePtr(pinned)
	a.CreatedBy, a.UpdatedBy = scanUserRef(cID, cEmail, cName), scanUserRef(uID, uEmail, uName)
	return a, nil
}

// GetAgent returns a team's agent as seen by viewer (for the pin). Another team's agent
// is reported as not found.
func (s *Store) GetAgent(ctx context.Context, team, id, viewer string) (Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, agentSelect+agentFrom+" WHERE a.id = ? AND a.team_id = ? AND a.deleted_at IS NULL", viewer, id, team))
	if err == sql.ErrNoRows {
		return a, notFound("assignment %s not found", id)
	}
	return a, err
}

// AgentFilter narrows ListAgents.
type AgentFilter struct {
	AutomationID string
	Limit        int
	Offset       int
}

// ListAgents returns a team's agents with their latest build: the viewer's pins first,
// then by name.
func (s *Store) ListAgents(ctx context.Context, team, viewer string, f AgentFilter) ([]Agent, int, error) {
	where, args := " WHERE a.team_id = ? AND a.deleted_at IS NULL", []any{team}
	if f.AutomationID != "" {
		where += " AND a.automation_id = ?"
		args = append(args, f.AutomationID)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM agents a"+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q := agentSelect + ", " + buildCols + agentFrom + `
		LEFT JOIN builds b ON b.id = coalesce(a.live_build_id,
			(SELECT id FROM builds WHERE agent_id = a.id ORDER BY revision_number DESC LIMIT 1))
		LEFT JOIN users bu ON bu.id = b.created_by` + where +
		" ORDER BY p.pinned_at IS NULL, lower(a.name), a.id LIMIT ? OFFSET ?"
	rows, err := s.r.QueryContext(ctx, q, append(append([]any{viewer}, args...), f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		var bs buildScan
		a, err := scanAgent(rows, bs.dest()...)
		if err != nil {
			return nil, 0, err
		}
		a.LatestBuild = bs.build()
		out = append(out, a)
	}
	return out, total, rows.Err()
}

// CreateAgent creates an agent, and with nb.Build (or a source build to copy) its first
// build, live at once.
func (s *Store) CreateAgent(ctx context.Context, a Actor, na NewAgent) (Agent, *Build, error) {
	name := strings.TrimSpace(na.Name)
	if name == "" {
		return Agent{}, nil, invalid("name must not be empty")
	}
	now := s.nowMs()
	id := NewID()
	var build *Build
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents(id, team_id, name, description, thread_id, automation_id, created_by, updated_by, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?,?)`, id, a.TeamID, name, na.Description, nullStr(na.ThreadID), nullStr(na.AutomationID),
			optional(a.UserID), optional(a.UserID), now, now); err != nil {
			return Target{}, err
		}
		nb := na.Build
		if nb == nil && na.SourceBuildID != nil {
			src, err := s.buildInTeam(ctx, tx, a.TeamID, *na.SourceBuildID)
			if err != nil {
				return Target{}, invalid("source_build_id: %s", err.Error())
			}
			nb = &NewBuild{Name: src.Name, Config: src.Config, HandoverTargetIDs: src.HandoverTargetIDs, SourceBuildID: &src.ID}
		}
		if nb != nil {
			b, err := s.insertBuild(ctx, tx, a, id, *nb, "live")
			if err != nil {
				return Target{}, err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE agents SET live_build_id = ? WHERE id = ?", b.ID, id); err != nil {
				return Target{}, err
			}
			build = &b
		}
		d := map[string]any{"name": name}
		if build != nil {
			d["build_id"] = build.ID
		}
		return Target{Type: "agent", ID: id, Detail: d}, nil
	})
	if err != nil {
		return Agent{}, nil, err
	}
	ag, err := s.agentAfterWrite(ctx, a.TeamID, id, a.UserID)
	return ag, build, err
}

// agentAfterWrite reads an agent back through the writer, so a caller sees its own write.
func (s *Store) agentAfterWrite(ctx context.Context, team, id, viewer string) (Agent, error) {
	a, err := scanAgent(s.w.QueryRowContext(ctx, agentSelect+agentFrom+" WHERE a.id = ? AND a.team_id = ?", viewer, id, team))
	if err == sql.ErrNoRows {
		return a, notFound("assignment %s not found", id)
	}
	return a, err
}

func agentExists(ctx context.Context, q querier, team, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM agents WHERE id = ? AND team_id = ? AND deleted_at IS NULL", id, team).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("assignment %s not found", id)
	}
	return nil
}

// UpdateAgent applies p to a team's agent.
func (s *Store) UpdateAgent(ctx context.Context, a Actor, id string, p AgentPatch) (Agent, error) {
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if n == "" {
			return Agent{}, invalid("name must not be empty")
		}
		p.Name = &n
	}
	now := s.nowMs()
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, id); err != nil {
			return Target{}, err
		}
		sets, args := []string{"updated_at = ?", "updated_by = ?"}, []any{now, optional(a.UserID)}
		changed := []string{}
		add := func(col string, v any) {
			sets = append(sets, col+" = ?")
			args = append(args, v)
			changed = append(changed, col)
		}
		if p.Name != nil {
			add("name", *p.Name)
		}
		if p.Description != nil {
			add("description", *p.Description)
		}
		if p.SlackEnabled != nil {
			add("slack_enabled", *p.SlackEnabled)
		}
		if p.MicrosoftTeamsEnabled != nil {
			add("microsoft_teams_enabled", *p.MicrosoftTeamsEnabled)
		}
		if p.AgenticMemoryEnabled != nil {
			add("agentic_memory_enabled", *p.AgenticMemoryEnabled)
		}
		if p.ThreadID != nil {
			add("thread_id", nullStr(*p.ThreadID))
		}
		if _, err := tx.ExecContext(ctx, "UPDATE agents SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, id)...); err != nil {
			return Target{}, err
		}
		if p.Pinned != nil {
			changed = append(changed, "pinned")
			var err error
			if *p.Pinned {
				_, err = tx.ExecContext(ctx, "INSERT INTO agent_pins(agent_id, user_id, pinned_at) VALUES (?,?,?) ON CONFLICT DO NOTHING", id, a.UserID, now)
			} else {
				_, err = tx.ExecContext(ctx, "DELETE FROM agent_pins WHERE agent_id = ? AND user_id = ?", id, a.UserID)
			}
			if err != nil {
				return Target{}, err
			}
		}
		return Target{Type: "agent", ID: id, Detail: map[string]any{"changed": changed}}, nil
	})
	if err != nil {
		return Agent{}, err
	}
	return s.agentAfterWrite(ctx, a.TeamID, id, a.UserID)
}

// DeleteAgent removes an agent from its team. The row stays (soft delete) so the runs and
// audit entries that name it keep their meaning.
func (s *Store) DeleteAgent(ctx context.Context, a Actor, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, id); err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, "UPDATE agents SET deleted_at = ?, updated_at = ?, updated_by = ?, folder_id = NULL WHERE id = ?",
			now, now, optional(a.UserID), id); err != nil {
			return Target{}, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM agent_pins WHERE agent_id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "agent", ID: id}, nil
	})
}

// AgentMove reports what moving an agent to another team does (or would do, on a dry run).
type AgentMove struct {
	SourceTeamID   string
	TargetTeamID   string
	AgentID        string
	AgentName      string
	DroppedFolders []Folder
	Applied        bool
}

// MoveAgentToTeam moves an agent with all its builds to target. The agent leaves its
// folder (folders are per team). Both teams' audit logs record the move.
func (s *Store) MoveAgentToTeam(ctx context.Context, a Actor, id, target string, dryRun bool) (AgentMove, error) {
	m := AgentMove{SourceTeamID: a.TeamID, TargetTeamID: target, AgentID: id, Applied: !dryRun}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var folder sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT name, folder_id FROM agents WHERE id = ? AND team_id = ? AND deleted_at IS NULL", id, a.TeamID).Scan(&m.AgentName, &folder)
		if err == sql.ErrNoRows {
			return notFound("assignment %s not found", id)
		}
		if err != nil {
			return err
		}
		if folder.Valid {
			f, err := folderByID(ctx, tx, a.TeamID, folder.String)
			if err != nil {
				return err
			}
			m.DroppedFolders = []Folder{f}
		}
		if target == a.TeamID {
			return conflict("assignment %s is already in team %s", id, target)
		}
		if dryRun {
			return nil
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, "UPDATE agents SET team_id = ?, folder_id = NULL, updated_at = ?, updated_by = ? WHERE id = ?",
			target, now, optional(a.UserID), id); err != nil {
			return err
		}
		t := Target{Type: "agent", ID: id, Detail: map[string]any{"from_team": a.TeamID, "to_team": target}}
		if err := s.appendAudit(ctx, tx, a, a.TeamID, t, "success"); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, a, target, t, "success")
	})
	return m, err
}
