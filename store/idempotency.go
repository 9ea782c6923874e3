package store

import (
	"context"
	"database/sql"
	"time"
)

// IdempotencyTTL is how long a stored response is replayed for its key.
const IdempotencyTTL = 24 * time.Hour

// idempotencyPending bounds how long an unfinished first request blocks its key: past it,
// a crash mid-request no longer locks the key forever.
const idempotencyPending = time.Minute

// IdemResult is what BeginIdempotent found for a key.
type IdemResult struct {
	// Fresh means the caller owns the key now and must call FinishIdempotent.
	Fresh bool
	// InFlight means another request with the key has not finished yet.
	InFlight bool
	// Mismatch means the key was first used with a different request.
	Mismatch bool
	Status   int
	Body     []byte
}

// BeginIdempotent claims (scope, key) for a request whose content hashes to reqHash, or
// returns the stored response of the request that claimed it first.
func (s *Store) BeginIdempotent(ctx context.Context, scope, key, reqHash string) (IdemResult, error) {
	var res IdemResult
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		var hash string
		var status sql.NullInt64
		var body []byte
		var created int64
		err := tx.QueryRowContext(ctx, "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE scope = ? AND key = ?", scope, key).
			Scan(&hash, &status, &body, &created)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		case now-created > IdempotencyTTL.Milliseconds(),
			!status.Valid && now-created > idempotencyPending.Milliseconds():
			// Expired, or abandoned mid-flight: the key is free again.
		case hash != reqHash:
			res.Mismatch = true
			return nil
		case !status.Valid:
			res.InFlight = true
			return nil
		default:
			res.Status, res.Body = int(status.Int64), body
			return nil
		}
		res.Fresh = true
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency_keys(scope, key, request_hash, created_at) VALUES (?,?,?,?)
			ON CONFLICT(scope, key) DO UPDATE SET request_hash = excluded.request_hash, status = NULL, body = NULL, created_at = excluded.created_at`,
			scope, key, reqHash, now)
		return err
	})
	return res, err
}

// FinishIdempotent stores a successful response to replay. An error response releases
// the key instead: it changed nothing, so the client's corrected retry runs again.
func (s *Store) FinishIdempotent(ctx context.Context, scope, key string, status int, body []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if status >= 400 {
			_, err := tx.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", scope, key)
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE idempotency_keys SET status = ?, body = ? WHERE scope = ? AND key = ?", status, body, scope, key)
		return err
	})
}

// PruneIdempotency deletes keys older than the replay window.
func (s *Store) PruneIdempotency(ctx context.Context) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE created_at < ?", s.nowMs()-IdempotencyTTL.Milliseconds())
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	return n, err
}
