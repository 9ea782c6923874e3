package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Folder groups a team's agents; folders nest.
type Folder struct {
	ID             string
	TeamID         string
	ParentFolderID *string
	Name           string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	AgentCount     int
	SubfolderCount int
}

const folderCols = "f.id, f.team_id, f.parent_folder_id, f.name, f.created_at, f.updated_at"

func scanFolder(sc scanner, extra ...any) (Folder, error) {
	var f Folder
	var parent sql.NullString
	var created, updated int64
	if err := sc.Scan(append([]any{&f.ID, &f.TeamID, &parent, &f.Name, &created, &updated}, extra...)...); err != nil {
		return f, err
	}
	f.ParentFolderID, f.CreatedAt, f.UpdatedAt = strPtr(parent), Time(created), Time(updated)
	return f, nil
}

func folderByID(ctx context.Context, tx *sql.Tx, team, id string) (Folder, error) {
	f, err := scanFolder(tx.QueryRowContext(ctx, "SELECT "+folderCols+" FROM agent_folders f WHERE f.id = ? AND f.team_id = ?", id, team))
	if err == sql.ErrNoRows {
		return f, notFound("folder %s not found", id)
	}
	return f, err
}

// ListFolders returns all of a team's folders with how many agents and subfolders each holds.
func (s *Store) ListFolders(ctx context.Context, team string) ([]Folder, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+folderCols+`,
		(SELECT count(*) FROM agents a WHERE a.folder_id = f.id AND a.deleted_at IS NULL),
		(SELECT count(*) FROM agent_folders c WHERE c.parent_folder_id = f.id)
		FROM agent_folders f WHERE f.team_id = ? ORDER BY lower(f.name), f.id`, team)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Folder
	for rows.Next() {
		var f Folder
		var agents, subs int
		if f, err = scanFolder(rows, &agents, &subs); err != nil {
			return nil, err
		}
		f.AgentCount, f.SubfolderCount = agents, subs
		out = append(out, f)
	}
	return out, rows.Err()
}

func folderName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", invalid("name must be 1 to 100 characters")
	}
	return name, nil
}

func nameTaken(ctx context.Context, tx *sql.Tx, team string, parent *string, name, except string) error {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM agent_folders WHERE team_id = ? AND coalesce(parent_folder_id, '') = ? AND name = ? AND id != ?",
		team, nullStr(parent).String, name, except).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return conflict("a folder named %q already exists there: pick another name", name)
	}
	return nil
}

// CreateFolder creates a folder at the team root or inside parent.
func (s *Store) CreateFolder(ctx context.Context, a Actor, name string, parent *string) (Folder, error) {
	name, err := folderName(name)
	if err != nil {
		return Folder{}, err
	}
	now := s.nowMs()
	f := Folder{ID: NewID(), TeamID: a.TeamID, ParentFolderID: parent, Name: name, CreatedAt: Time(now), UpdatedAt: Time(now)}
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if parent != nil {
			if _, err := folderByID(ctx, tx, a.TeamID, *parent); err != nil {
				return Target{}, invalid("parent_folder_id: %s", err.Error())
			}
		}
		if err := nameTaken(ctx, tx, a.TeamID, parent, name, ""); err != nil {
			return Target{}, err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO agent_folders(id, team_id, parent_folder_id, name, created_at, updated_at) VALUES (?,?,?,?,?,?)",
			f.ID, a.TeamID, nullStr(parent), name, now, now)
		return Target{Type: "agent_folder", ID: f.ID, Detail: map[string]any{"name": name}}, err
	})
	return f, err
}

// FolderPatch renames and/or re-parents a folder. SetParent with a nil Parent moves it to the root.
type FolderPatch struct {
	Name      *string
	SetParent bool
	Parent    *string
}

// UpdateFolder applies p, refusing to put a folder inside itself or its own subfolders.
func (s *Store) UpdateFolder(ctx context.Context, a Actor, id string, p FolderPatch) (Folder, error) {
	var f Folder
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var err error
		if f, err = folderByID(ctx, tx, a.TeamID, id); err != nil {
			return Target{}, err
		}
		if p.Name != nil {
			if f.Name, err = folderName(*p.Name); err != nil {
				return Target{}, err
			}
		}
		if p.SetParent {
			if p.Parent != nil {
				if _, err := folderByID(ctx, tx, a.TeamID, *p.Parent); err != nil {
					return Target{}, invalid("parent_folder_id: %s", err.Error())
				}
				// Walk up from the new parent: meeting id means the move would make a cycle.
				for cur := p.Parent; cur != nil; {
					if *cur == id {
						return Target{}, conflict("folder %s cannot be moved inside itself or one of its subfolders", id)
					}
					var next sql.NullString
					if err := tx.QueryRowContext(ctx, "SELECT parent_folder_id FROM agent_folders WHERE id = ?", *cur).Scan(&next); err != nil {
						return Target{}, err
					}
					cur = strPtr(next)
				}
			}
			f.ParentFolderID = p.Parent
		}
		if err := nameTaken(ctx, tx, a.TeamID, f.ParentFolderID, f.Name, id); err != nil {
			return Target{}, err
		}
		now := s.nowMs()
		f.UpdatedAt = Time(now)
		_, err = tx.ExecContext(ctx, "UPDATE agent_folders SET name = ?, parent_folder_id = ?, updated_at = ? WHERE id = ?",
			f.Name, nullStr(f.ParentFolderID), now, id)
		return Target{Type: "agent_folder", ID: id, Detail: map[string]any{"name": f.Name}}, err
	})
	return f, err
}

// DeleteFolder deletes an empty folder. With force, its agents and subfolders move up to
// the folder's parent first.
func (s *Store) DeleteFolder(ctx context.Context, a Actor, id string, force bool) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		f, err := folderByID(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		var agents, subs int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM agents WHERE folder_id = ? AND deleted_at IS NULL),
			(SELECT count(*) FROM agent_folders WHERE parent_folder_id = ?)`, id, id).Scan(&agents, &subs); err != nil {
			return Target{}, err
		}
		if (agents > 0 || subs > 0) && !force {
			return Target{}, conflict("folder %q holds %d assignment(s) and %d subfolder(s): move them out first or pass force=true to move them to the parent folder", f.Name, agents, subs)
		}
		parent := nullStr(f.ParentFolderID)
		if _, err := tx.ExecContext(ctx, "UPDATE agents SET folder_id = ? WHERE folder_id = ?", parent, id); err != nil {
			return Target{}, err
		}
		rows, err := tx.QueryContext(ctx, "SELECT id, name FROM agent_folders WHERE parent_folder_id = ?", id)
		if err != nil {
			return Target{}, err
		}
		var children [][2]string
		for rows.Next() {
			var c [2]string
			if err := rows.Scan(&c[0], &c[1]); err != nil {
				rows.Close()
				return Target{}, err
			}
			children = append(children, c)
		}
		rows.Close()
		for _, c := range children {
			if err := nameTaken(ctx, tx, a.TeamID, f.ParentFolderID, c[1], c[0]); err != nil {
				return Target{}, err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE agent_folders SET parent_folder_id = ? WHERE id = ?", parent, c[0]); err != nil {
				return Target{}, err
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM agent_folders WHERE id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "agent_folder", ID: id, Detail: map[string]any{"name": f.Name, "force": force}}, nil
	})
}

// MoveAgentsToFolder puts the given agents into folder (nil: the root) and returns how
// many moved. Every id must name an agent of the team.
func (s *Store) MoveAgentsToFolder(ctx context.Context, a Actor, ids []string, folder *string) (int, error) {
	moved := 0
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if folder != nil {
			if _, err := folderByID(ctx, tx, a.TeamID, *folder); err != nil {
				return Target{}, err
			}
		}
		for i, id := range ids {
			res, err := tx.ExecContext(ctx, "UPDATE agents SET folder_id = ?, updated_at = ? WHERE id = ? AND team_id = ? AND deleted_at IS NULL",
				nullStr(folder), s.nowMs(), id, a.TeamID)
			if err != nil {
				return Target{}, err
			}
			n, _ := res.RowsAffected()
			if n == 0 {
				return Target{}, notFound("agent_ids[%d]: assignment %s not found", i, id)
			}
			moved++
		}
		return Target{Type: "agent_folder", ID: nullStr(folder).String, Detail: map[string]any{"agent_ids": ids}}, nil
	})
	return moved, err
}
