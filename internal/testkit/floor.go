package testkit

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// RawFloor measures the physical limit of job throughput on this box: store's
// BenchmarkRawFloor reports it, and each pipeline benchmark measures it in the same run
// to report its rate as a share of it (DESIGN §13). It queues n
// minimal jobs in a temp database, then claims each with DESIGN §3's one-statement
// claim and completes it, each step its own commit on one writer connection opened with
// the store's pragmas (busy_timeout, WAL, synchronous=NORMAL, immediate transactions).
// It returns jobs per second; only the claims and completions are timed.
func RawFloor(tb testing.TB, n int) float64 {
	tb.Helper()
	ctx := context.Background()
	q := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"}, "_txlock": {"immediate"}}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tb.TempDir(), "floor.db")+"?"+q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	var syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		tb.Fatalf("raw floor database: journal_mode %q (%v), want wal as the store uses", mode, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 1 {
		tb.Fatalf("raw floor database: synchronous %d (%v), want 1 (NORMAL) as the store uses", syncMode, err)
	}
	for _, stmt := range []string{
		`CREATE TABLE floor_jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, priority INTEGER NOT NULL,
			run_after INTEGER NOT NULL, lease_until INTEGER, attempt INTEGER NOT NULL DEFAULT 0)`,
		"CREATE INDEX floor_jobs_ready ON floor_jobs(state, priority DESC, run_after, id)",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			tb.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO floor_jobs(state, priority, run_after) SELECT 'queued', i % 3, ? - i FROM n`, n, now); err != nil {
		tb.Fatal(err)
	}
	claim, err := db.PrepareContext(ctx, `UPDATE floor_jobs SET state = 'running', lease_until = ?, attempt = attempt + 1
		WHERE id = (SELECT id FROM floor_jobs WHERE state = 'queued' AND run_after <= ?
		            ORDER BY priority DESC, run_after, id LIMIT 1)
		RETURNING id, attempt`)
	if err != nil {
		tb.Fatal(err)
	}
	defer claim.Close()
	complete, err := db.PrepareContext(ctx, "UPDATE floor_jobs SET state = 'done', lease_until = NULL WHERE id = ? AND state = 'running'")
	if err != nil {
		tb.Fatal(err)
	}
	defer complete.Close()

	begin := time.Now()
	for range n {
		t := time.Now().UnixMilli()
		var id, attempt int64
		if err := claim.QueryRowContext(ctx, t+30_000, t).Scan(&id, &attempt); err != nil {
			tb.Fatalf("raw floor claim: %v", err)
		}
		if _, err := complete.ExecContext(ctx, id); err != nil {
			tb.Fatalf("raw floor complete: %v", err)
		}
	}
	rate := float64(n) / time.Since(begin).Seconds()
	var left int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM floor_jobs WHERE state <> 'done'").Scan(&left); err != nil || left != 0 {
		tb.Fatalf("raw floor: %d jobs not done after %d claims (%v)", left, n, err)
	}
	return rate
}
