package store

// TEMPORARY — DELETE AT MERGE. The queuesapi branch's store/labels.go defines LabelKV
// and labelIDsTx with these exact signatures; this minimal stand-in exists only so the
// casesapi branch builds and tests on its own.

import (
	"context"
	"database/sql"
	"time"
)

// LabelKV names a queue label by its key and value.
type LabelKV struct{ Key, Value string }

// labelIDsTx returns the ids of the queue's labels kv, in order, creating the missing
// ones when create is set.
func labelIDsTx(ctx context.Context, tx *sql.Tx, queueID string, kv []LabelKV, create bool) ([]string, error) {
	ids := make([]string, 0, len(kv))
	for _, l := range kv {
		var id string
		err := tx.QueryRowContext(ctx, "SELECT id FROM queue_labels WHERE queue_id = ? AND key = ? AND value = ?", queueID, l.Key, l.Value).Scan(&id)
		switch {
		case err == sql.ErrNoRows && create:
			id = NewID()
			if _, err := tx.ExecContext(ctx, "INSERT INTO queue_labels(id, queue_id, key, value, created_at) VALUES (?, ?, ?, ?, ?)",
				id, queueID, l.Key, l.Value, time.Now().UnixMilli()); err != nil {
				return nil, err
			}
		case err == sql.ErrNoRows:
			return nil, invalid("label %s=%s does not exist on queue %s", l.Key, l.Value, queueID)
		case err != nil:
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
