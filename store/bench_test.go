package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRawFloor is the physical limit of job throughput on this box: claim and
// complete a minimal job row on the store's single writer, with the one-statement claim
// of DESIGN §3, each as its own commit (as a worker would: claim, work, complete). Every
// real pipeline (cases, runs) does more per job, so it is measured against this number.
// The table is created here, in a temp database; it is not part of the schema.
func BenchmarkRawFloor(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), DBFile), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE bench_jobs (
		id          INTEGER PRIMARY KEY,
		state       TEXT NOT NULL,
		priority    INTEGER NOT NULL,
		run_after   INTEGER NOT NULL,
		lease_until INTEGER,
		attempt     INTEGER NOT NULL DEFAULT 0)`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, "CREATE INDEX bench_jobs_ready ON bench_jobs(state, priority DESC, run_after, id)"); err != nil {
		b.Fatal(err)
	}
	// Queue exactly b.N jobs up front so every claim finds one; the fill is not timed.
	now := time.Now().UnixMilli()
	if _, err := s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO bench_jobs(state, priority, run_after) SELECT 'queued', i % 3, ? - i FROM n`, b.N, now); err != nil {
		b.Fatal(err)
	}

	claim, err := s.w.PrepareContext(ctx, `UPDATE bench_jobs SET state = 'running', lease_until = ?, attempt = attempt + 1
		WHERE id = (SELECT id FROM bench_jobs WHERE state = 'queued' AND run_after <= ?
		            ORDER BY priority DESC, run_after, id LIMIT 1)
		RETURNING id, attempt`)
	if err != nil {
		b.Fatal(err)
	}
	defer claim.Close()
	complete, err := s.w.PrepareContext(ctx, "UPDATE bench_jobs SET state = 'done', lease_until = NULL WHERE id = ? AND state = 'running'")
	if err != nil {
		b.Fatal(err)
	}
	defer complete.Close()

	b.ResetTimer()
	for range b.N {
		t := time.Now().UnixMilli()
		var id, attempt int64
		if err := claim.QueryRowContext(ctx, t+30_000, t).Scan(&id, &attempt); err != nil {
			b.Fatalf("claim: %v", err)
		}
		if _, err := complete.ExecContext(ctx, id); err != nil {
			b.Fatalf("complete: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")

	var left int
	s.r.QueryRowContext(ctx, "SELECT count(*) FROM bench_jobs WHERE state <> 'done'").Scan(&left)
	if left != 0 {
		b.Fatalf("%d jobs not done after %d claims: a claim skipped or doubled a job", left, b.N)
	}
}
