package store

import (
	"context"
	"database/sql"
	"time"
)

// MemoryFile is a note an assignment keeps across its runs.
type MemoryFile struct {
	AgentID      string
	Path         string
	Content      string
	Generation   int64
	SourceRunID  *string
	SourceUserID *string
	UpdatedAt    time.Time
}

// WriteMemory creates or replaces an agent's memory file. Writing the same content again
// changes nothing, so a replay after a crash is harmless.
func (s *Store) WriteMemory(ctx context.Context, agentID, path, content, runID string) (MemoryFile, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		_, err := tx.ExecContext(ctx, `INSERT INTO agent_memory_files(agent_id, path, content, generation, source_run_id, updated_at)
			VALUES (?, ?, ?, 1, ?, ?)
			ON CONFLICT (agent_id, path) DO UPDATE SET content = excluded.content, generation = generation + 1,
				source_run_id = excluded.source_run_id, source_user_id = NULL, updated_at = excluded.updated_at
			WHERE content != excluded.content`, agentID, path, content, optional(runID), now)
		return err
	})
	if err != nil {
		return MemoryFile{}, err
	}
	return s.ReadMemory(ctx, agentID, path)
}

const memoryCols = "agent_id, path, content, generation, source_run_id, source_user_id, updated_at"

func scanMemory(sc scanner) (MemoryFile, error) {
	var f MemoryFile
	var run, user sql.NullString
	var updated int64
	if err := sc.Scan(&f.AgentID, &f.Path, &f.Content, &f.Generation, &run, &user, &updated); err != nil {
		return MemoryFile{}, err
	}
	f.SourceRunID, f.SourceUserID, f.UpdatedAt = strPtr(run), strPtr(user), Time(updated)
	return f, nil
}

// ReadMemory returns one memory file of an agent.
func (s *Store) ReadMemory(ctx context.Context, agentID, path string) (MemoryFile, error) {
	f, err := scanMemory(s.r.QueryRowContext(ctx, "SELECT "+memoryCols+" FROM agent_memory_files WHERE agent_id = ? AND path = ?", agentID, path))
	if err == sql.ErrNoRows {
		return MemoryFile{}, notFound("memory file %q not found", path)
	}
	return f, err
}

// ListMemory returns an agent's memory files by path, without their content.
func (s *Store) ListMemory(ctx context.Context, agentID string) ([]MemoryFile, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT agent_id, path, '', generation, source_run_id, source_user_id, updated_at FROM agent_memory_files WHERE agent_id = ? ORDER BY path", agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []MemoryFile{}
	for rows.Next() {
		f, err := scanMemory(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
