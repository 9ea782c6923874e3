package store

import (
	"context"
	"path/filepath"
	"testing"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), DBFile), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenAppliesPragmas(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var mode string
	var fk, busy, sync int
	s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	s.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	s.w.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
	s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
	if mode != "wal" || fk != 1 || busy != 10000 || sync != 1 {
		t.Fatalf("writer pragmas: journal_mode=%s foreign_keys=%d busy_timeout=%d synchronous=%d; want wal 1 10000 1(NORMAL)", mode, fk, busy, sync)
	}
	if _, err := s.r.ExecContext(ctx, "INSERT INTO teams(id, name, created_at) VALUES ('x','x',0)"); err == nil {
		t.Fatal("the reader pool accepted a write; it must be query-only so every write goes through the writer")
	}
}

func TestDurabilityFull(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), DBFile), Options{Durability: "full"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sync int
	s.w.QueryRow("PRAGMA synchronous").Scan(&sync)
	if sync != 2 {
		t.Fatalf("synchronous = %d with durability full, want 2 (FULL)", sync)
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), DBFile), Options{Durability: "sometimes"}); err == nil {
		t.Fatal("an unknown durability was accepted")
	}
}

func TestReopenKeepsDataAndSkipsAppliedMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFile)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	team, created, err := s.Bootstrap(ctx, "hash")
	if err != nil || !created {
		t.Fatalf("bootstrap: created=%v err=%v", created, err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, created, _ := s.Bootstrap(ctx, "hash"); created {
		t.Fatal("bootstrap ran twice: a second Default team was created on restart")
	}
	if _, err := s.GetTeam(ctx, team.ID); err != nil {
		t.Fatalf("team lost across reopen: %v", err)
	}
	var n int
	s.r.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n)
	if n == 0 {
		t.Fatal("no migrations recorded")
	}
}

func TestAuditChainDetectsEditsAndRemovals(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	team, _, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := s.TeamOwner(ctx, team.ID)
	a := Actor{TeamID: team.ID, UserID: owner.ID, Channel: "api", Operation: "createAgent"}
	for i := 0; i < 5; i++ {
		if _, _, err := s.CreateAgent(ctx, a, NewAgent{Name: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if brk, n, err := s.VerifyAudit(ctx); err != nil || brk != nil || n != 6 {
		t.Fatalf("intact chain: break=%+v n=%d err=%v; want none, 6 rows", brk, n, err)
	}
	s.w.Exec("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
	if brk, _, _ := s.VerifyAudit(ctx); brk == nil || brk.Seq != 3 {
		t.Fatalf("edited row 3: break=%+v, want seq 3", brk)
	}
	s.w.Exec("UPDATE audit_log SET outcome = 'success' WHERE seq = 3")
	s.w.Exec("DELETE FROM audit_log WHERE seq = 4")
	if brk, _, _ := s.VerifyAudit(ctx); brk == nil || brk.Seq != 5 {
		t.Fatalf("removed row 4: break=%+v, want the break reported at seq 5", brk)
	}
}

func TestFailedChangeLeavesNoAuditRow(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	team, _, _ := s.Bootstrap(ctx, "")
	owner, _ := s.TeamOwner(ctx, team.ID)
	a := Actor{TeamID: team.ID, UserID: owner.ID, Channel: "api", Operation: "createAgentFolder"}
	if _, err := s.CreateFolder(ctx, a, "Ops", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFolder(ctx, a, "Ops", nil); err == nil {
		t.Fatal("a duplicate folder name was accepted")
	}
	_, total, _ := s.ListAudit(ctx, team.ID, AuditFilter{Operation: "createAgentFolder", Limit: 10})
	if total != 1 {
		t.Fatalf("audit rows for createAgentFolder = %d, want 1: a refused change must not be audited as done", total)
	}
}
