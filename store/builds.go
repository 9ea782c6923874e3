package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Build is a Setup: one version of an agent's configuration. At most one build per agent
// is live; a build becomes immutable once a run has used it.
type Build struct {
	ID                  string
	AgentID             string
	Name                string
	RevisionNumber      int
	RevisionName        *string
	RevisionDescription *string
	// Status is draft, live or archived (was live, replaced by a later promotion).
	Status            string
	Config            json.RawMessage
	HandoverTargetIDs []string
	ParentBuildID     *string
	CreatedBy         *string
	CreatedByName     *string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	PromotedAt        *time.Time
	FirstRunAt        *time.Time
}

// NewBuild is what a new build is made from. Config is the validated, normalised setup
// config; SubAgentIDs are the agents it names in data.subAgents, checked against the team.
type NewBuild struct {
	Name              string
	Config            json.RawMessage
	SubAgentIDs       []string
	HandoverTargetIDs []string
	SourceBuildID     *string
}

// BuildPatch changes the fields that are set on an unused build.
type BuildPatch struct {
	Config              json.RawMessage
	SubAgentIDs         []string
	HandoverTargetIDs   []string
	SetHandover         bool
	RevisionName        *string
	RevisionDescription *string
}

const buildCols = `b.id, b.agent_id, b.name, b.revision_number, b.revision_name, b.revision_description, b.status, b.config,
	b.handover_target_ids, b.parent_build_id, b.created_by, coalesce(bu.name, bu.email), b.created_at, b.updated_at, b.promoted_at, b.first_run_at`

const buildFrom = " FROM builds b JOIN agents a ON a.id = b.agent_id LEFT JOIN users bu ON bu.id = b.created_by"

// buildScan receives a build's columns, all nullable because ListAgents left-joins them.
type buildScan struct {
	id, agent, name                 sql.NullString
	rev                             sql.NullInt64
	revName, revDesc, status        sql.NullString
	config, handover, parent        sql.NullString
	createdBy, createdByName        sql.NullString
	created, updated, promoted, run sql.NullInt64
}

func (s *buildScan) dest() []any {
	return []any{&s.id, &s.agent, &s.name, &s.rev, &s.revName, &s.revDesc, &s.status, &s.config, &s.handover, &s.parent,
		&s.createdBy, &s.createdByName, &s.created, &s.updated, &s.promoted, &s.run}
}

func (s *buildScan) build() *Build {
	if !s.id.Valid {
		return nil
	}
	b := &Build{ID: s.id.String, AgentID: s.agent.String, Name: s.name.String, RevisionNumber: int(s.rev.Int64),
		RevisionName: strPtr(s.revName), RevisionDescription: strPtr(s.revDesc), Status: s.status.String,
		Config: json.RawMessage(s.config.String), ParentBuildID: strPtr(s.parent), CreatedBy: strPtr(s.createdBy),
		CreatedByName: strPtr(s.createdByName), CreatedAt: Time(s.created.Int64), UpdatedAt: Time(s.updated.Int64),
		PromotedAt: timePtr(s.promoted), FirstRunAt: timePtr(s.run)}
	json.Unmarshal([]byte(s.handover.String), &b.HandoverTargetIDs)
	if b.HandoverTargetIDs == nil {
		b.HandoverTargetIDs = []string{}
	}
	return b
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getBuild(ctx context.Context, q querier, team, id string) (Build, error) {
	var bs buildScan
	err := q.QueryRowContext(ctx, "SELECT "+buildCols+buildFrom+" WHERE b.id = ? AND a.team_id = ? AND a.deleted_at IS NULL", id, team).Scan(bs.dest()...)
	if err == sql.ErrNoRows {
		return Build{}, notFound("setup %s not found", id)
	}
	if err != nil {
		return Build{}, err
	}
	return *bs.build(), nil
}

func (s *Store) buildInTeam(ctx context.Context, tx *sql.Tx, team, id string) (Build, error) {
	return getBuild(ctx, tx, team, id)
}

// GetBuild returns a build of a team's agent. agentID may be empty when the path names
// only the build.
func (s *Store) GetBuild(ctx context.Context, team, agentID, id string) (Build, error) {
	b, err := getBuild(ctx, s.r, team, id)
	if err == nil && agentID != "" && b.AgentID != agentID {
		return Build{}, notFound("setup %s not found for assignment %s", id, agentID)
	}
	return b, err
}

// ListBuilds returns an agent's builds, newest revision first.
func (s *Store) ListBuilds(ctx context.Context, team, agentID string, limit, offset int) ([]Build, int, error) {
	var total, exists int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM agents WHERE id = ? AND team_id = ? AND deleted_at IS NULL),
		(SELECT count(*) FROM builds WHERE agent_id = ?)`, agentID, team, agentID).Scan(&exists, &total); err != nil {
		return nil, 0, err
	}
	if exists == 0 {
		return nil, 0, notFound("assignment %s not found", agentID)
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+buildCols+buildFrom+" WHERE b.agent_id = ? ORDER BY b.revision_number DESC LIMIT ? OFFSET ?", agentID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Build
	for rows.Next() {
		var bs buildScan
		if err := rows.Scan(bs.dest()...); err != nil {
			return nil, 0, err
		}
		out = append(out, *bs.build())
	}
	return out, total, rows.Err()
}

// checkRefs verifies that every agent a build names is another live agent of the team.
func checkRefs(ctx context.Context, tx *sql.Tx, team, self, field string, ids []string) error {
	for i, id := range ids {
		if id == self {
			return invalid("%s[%d]: an assignment cannot name itself", field, i)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM agents WHERE id = ? AND team_id = ? AND deleted_at IS NULL", id, team).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return invalid("%s[%d]: assignment %s not found in this team", field, i, id)
		}
	}
	return nil
}

func (s *Store) insertBuild(ctx context.Context, tx *sql.Tx, a Actor, agentID string, nb NewBuild, status string) (Build, error) {
	name := strings.TrimSpace(nb.Name)
	if name == "" {
		return Build{}, invalid("name must not be empty")
	}
	if err := checkRefs(ctx, tx, a.TeamID, agentID, "config.data.subAgents", nb.SubAgentIDs); err != nil {
		return Build{}, err
	}
	if err := checkRefs(ctx, tx, a.TeamID, agentID, "handover_target_ids", nb.HandoverTargetIDs); err != nil {
		return Build{}, err
	}
	handover := nb.HandoverTargetIDs
	if handover == nil {
		handover = []string{}
	}
	hj, _ := json.Marshal(handover)
	var rev int
	var live sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT max(revision_number) FROM builds WHERE agent_id = ?), 0) + 1, (SELECT live_build_id FROM agents WHERE id = ?)",
		agentID, agentID).Scan(&rev, &live); err != nil {
		return Build{}, err
	}
	parent := nb.SourceBuildID
	if parent == nil {
		parent = strPtr(live)
	}
	now := s.nowMs()
	b := Build{ID: NewID(), AgentID: agentID, Name: name, RevisionNumber: rev, Status: status, Config: nb.Config,
		HandoverTargetIDs: handover, ParentBuildID: parent, CreatedAt: Time(now), UpdatedAt: Time(now)}
	var promoted sql.NullInt64
	if status == "live" {
		promoted = sql.NullInt64{Int64: now, Valid: true}
		b.PromotedAt = timePtr(promoted)
	}
	if a.UserID != "" {
		b.CreatedBy = &a.UserID
		var n sql.NullString
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(name, email) FROM users WHERE id = ?", a.UserID).Scan(&n); err != nil {
			return Build{}, err
		}
		b.CreatedByName = strPtr(n)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO builds(id, agent_id, name, revision_number, status, config, handover_target_ids, parent_build_id,
		created_by, created_at, updated_at, promoted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		b.ID, agentID, name, rev, status, string(nb.Config), string(hj), nullStr(parent), optional(a.UserID), now, now, promoted)
	if err != nil {
		return Build{}, fmt.Errorf("insert build: %w", err)
	}
	return b, nil
}

// CreateBuild adds a draft build to an agent. Without a config it copies the source
// build's, or the live build's.
func (s *Store) CreateBuild(ctx context.Context, a Actor, agentID string, nb NewBuild) (Build, error) {
	var b Build
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := agentExists(ctx, tx, a.TeamID, agentID); err != nil {
			return Target{}, err
		}
		if nb.SourceBuildID != nil {
			src, err := s.buildInTeam(ctx, tx, a.TeamID, *nb.SourceBuildID)
			if err != nil {
				return Target{}, invalid("source_build_id: %s", err.Error())
			}
			if len(nb.Config) == 0 {
				nb.Config = src.Config
			}
			if nb.HandoverTargetIDs == nil {
				nb.HandoverTargetIDs = src.HandoverTargetIDs
			}
		}
		if len(nb.Config) == 0 {
			var live sql.NullString
			if err := tx.QueryRowContext(ctx, "SELECT live_build_id FROM agents WHERE id = ?", agentID).Scan(&live); err != nil {
				return Target{}, err
			}
			if !live.Valid {
				return Target{}, invalid("config is required: this assignment has no live setup to copy it from")
			}
			src, err := s.buildInTeam(ctx, tx, a.TeamID, live.String)
			if err != nil {
				return Target{}, err
			}
			nb.Config = src.Config
			if nb.HandoverTargetIDs == nil {
				nb.HandoverTargetIDs = src.HandoverTargetIDs
			}
		}
		var err error
		b, err = s.insertBuild(ctx, tx, a, agentID, nb, "draft")
		return Target{Type: "build", ID: b.ID, Detail: map[string]any{"agent_id": agentID, "revision_number": b.RevisionNumber}}, err
	})
	return b, err
}

// UpdateBuild changes an unused build. Once a run used it, it answers ErrConflict.
func (s *Store) UpdateBuild(ctx context.Context, a Actor, id string, p BuildPatch) (Build, error) {
	var b Build
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var err error
		if b, err = s.buildInTeam(ctx, tx, a.TeamID, id); err != nil {
			return Target{}, err
		}
		if b.FirstRunAt != nil {
			return Target{}, conflict("setup %s was used by a run on %s and can no longer change: create a new setup (POST /v2/agents/%s/revisions) instead",
				id, b.FirstRunAt.Format(time.RFC3339), b.AgentID)
		}
		changed := []string{}
		if len(p.Config) > 0 {
			if err := checkRefs(ctx, tx, a.TeamID, b.AgentID, "config.data.subAgents", p.SubAgentIDs); err != nil {
				return Target{}, err
			}
			b.Config = p.Config
			changed = append(changed, "config")
		}
		if p.SetHandover {
			if err := checkRefs(ctx, tx, a.TeamID, b.AgentID, "handover_target_ids", p.HandoverTargetIDs); err != nil {
				return Target{}, err
			}
			b.HandoverTargetIDs = p.HandoverTargetIDs
			if b.HandoverTargetIDs == nil {
				b.HandoverTargetIDs = []string{}
			}
			changed = append(changed, "handover_target_ids")
		}
		if p.RevisionName != nil {
			b.RevisionName = p.RevisionName
			changed = append(changed, "revision_name")
		}
		if p.RevisionDescription != nil {
			b.RevisionDescription = p.RevisionDescription
			changed = append(changed, "revision_description")
		}
		hj, _ := json.Marshal(b.HandoverTargetIDs)
		now := s.nowMs()
		b.UpdatedAt = Time(now)
		_, err = tx.ExecContext(ctx, "UPDATE builds SET config = ?, handover_target_ids = ?, revision_name = ?, revision_description = ?, updated_at = ? WHERE id = ?",
			string(b.Config), string(hj), nullStr(b.RevisionName), nullStr(b.RevisionDescription), now, id)
		return Target{Type: "build", ID: id, Detail: map[string]any{"changed": changed}}, err
	})
	return b, err
}

// PromoteBuild makes a build its agent's live one; the build it replaces is archived.
// New runs use the live build; running ones keep the build they pinned.
func (s *Store) PromoteBuild(ctx context.Context, a Actor, id string, revName, revDesc *string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		b, err := s.buildInTeam(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, "UPDATE builds SET status = 'archived', updated_at = ? WHERE agent_id = ? AND status = 'live' AND id != ?", now, b.AgentID, id); err != nil {
			return Target{}, err
		}
		if revName == nil {
			revName = b.RevisionName
		}
		if revDesc == nil {
			revDesc = b.RevisionDescription
		}
		if _, err := tx.ExecContext(ctx, "UPDATE builds SET status = 'live', promoted_at = ?, updated_at = ?, revision_name = ?, revision_description = ? WHERE id = ?",
			now, now, nullStr(revName), nullStr(revDesc), id); err != nil {
			return Target{}, err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE agents SET live_build_id = ?, updated_at = ?, updated_by = ? WHERE id = ?", id, now, optional(a.UserID), b.AgentID); err != nil {
			return Target{}, err
		}
		return Target{Type: "build", ID: id, Detail: map[string]any{"agent_id": b.AgentID, "previous_live": b.Status != "live"}}, nil
	})
}
