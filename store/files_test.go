package store

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func sha(c string) string { return strings.Repeat(c, 64) }

func (f *hookFixture) refs(t *testing.T, h string) int {
	t.Helper()
	n, err := f.s.BlobRefs(f.ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// insertFileTx is what intake calls inside its own transaction; the blob's reference count
// must follow every create, replace, rename and delete, whoever makes it.
func TestFileBlobReferencesFollowEveryChange(t *testing.T) {
	f := newHookFixture(t)
	put := func(path, h string) File {
		t.Helper()
		var out File
		err := f.s.write(f.ctx, func(tx *sql.Tx) error {
			var err error
			out, err = f.s.insertFileTx(f.ctx, tx, NewFile{TeamID: f.team, Path: path, SHA256: h, Size: 3, ContentType: "text/plain", CaseID: "case-1"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := put("in/a.txt", sha("a"))
	put("in/b.txt", sha("a"))
	if got := f.refs(t, sha("a")); got != 2 {
		t.Fatalf("two files on one blob: refs = %d, want 2", got)
	}
	again := put("in/a.txt", sha("b"))
	if again.ID != a.ID || !again.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("replacing a path made a new file: %+v then %+v", a, again)
	}
	if ra, rb := f.refs(t, sha("a")), f.refs(t, sha("b")); ra != 1 || rb != 1 {
		t.Fatalf("after re-pointing a.txt: refs a=%d b=%d, want 1 and 1", ra, rb)
	}
	if _, err := f.s.RenameFile(f.ctx, f.actor, "in/a.txt", "in/b.txt"); !errors.Is(err, ErrConflict) {
		t.Fatalf("rename onto an existing file: %v, want a conflict", err)
	}
	if _, err := f.s.RenameFile(f.ctx, f.actor, "in/a.txt", "in/c.txt"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteFile(f.ctx, f.actor, "in/c.txt"); err != nil {
		t.Fatal(err)
	}
	if got := f.refs(t, sha("b")); got != 0 {
		t.Fatalf("deleted the only file on blob b: refs = %d, want 0", got)
	}
	un, _ := f.s.UnreferencedBlobs(f.ctx, 10)
	if len(un) != 1 || un[0] != sha("b") {
		t.Fatalf("unreferenced blobs = %v, want only b", un)
	}
	if ok, _ := f.s.ForgetBlob(f.ctx, sha("a")); ok {
		t.Fatal("ForgetBlob removed a blob a file still points at")
	}
	if ok, _ := f.s.ForgetBlob(f.ctx, sha("b")); !ok {
		t.Fatal("ForgetBlob kept an unreferenced blob")
	}
	list, total, err := f.s.ListFiles(f.ctx, f.team, "in/", 10, 0)
	if err != nil || total != 1 || len(list) != 1 || list[0].Path != "in/b.txt" || *list[0].CaseID != "case-1" {
		t.Fatalf("list in/: %+v total %d err %v", list, total, err)
	}
	if _, err := f.s.GetFile(f.ctx, "other-team", "in/b.txt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another team's file: %v, want not found", err)
	}
}

func TestExpiredSandboxReleasesItsBlobs(t *testing.T) {
	f := newHookFixture(t)
	sb, err := f.s.CreateSandbox(f.ctx, f.actor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.PutSandboxFile(f.ctx, f.actor, sb.ID, "/workspace/a.csv", sha("c"), 3, "text/csv"); err != nil {
		t.Fatal(err)
	}
	if got := f.refs(t, sha("c")); got != 1 {
		t.Fatalf("sandbox file: refs = %d, want 1", got)
	}
	if n, _ := f.s.DeleteExpiredSandboxes(f.ctx); n != 0 {
		t.Fatal("a live sandbox was deleted")
	}
	f.clock = f.clock.Add(2 * time.Hour)
	if _, err := f.s.PutSandboxFile(f.ctx, f.actor, sb.ID, "/workspace/b.csv", sha("c"), 3, "text/csv"); !errors.Is(err, ErrConflict) {
		t.Fatalf("upload into an expired sandbox: %v, want a conflict", err)
	}
	if n, _ := f.s.DeleteExpiredSandboxes(f.ctx); n != 1 {
		t.Fatalf("expired sandboxes deleted = %d, want 1", n)
	}
	if got := f.refs(t, sha("c")); got != 0 {
		t.Fatalf("after the sandbox went: refs = %d, want 0", got)
	}
}

// A replayed write_file (same run, path and content) changes nothing and audits nothing.
func TestWriteRunFileReplayIsANoOp(t *testing.T) {
	f := newHookFixture(t)
	run := Run{ID: "run-1", TeamID: f.team}
	first, err := f.s.WriteRunFile(f.ctx, run, "runs/run-1/a.md", sha("d"), 3, "text/markdown")
	if err != nil {
		t.Fatal(err)
	}
	f.clock = f.clock.Add(time.Minute)
	again, err := f.s.WriteRunFile(f.ctx, run, "runs/run-1/a.md", sha("d"), 3, "text/markdown")
	if err != nil || again.ID != first.ID || !again.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("replay: %+v %v, want %+v", again, err, first)
	}
	entries, total, err := f.s.ListAudit(f.ctx, f.team, AuditFilter{Operation: "write_file", Limit: 10})
	if err != nil || total != 1 || entries[0].Channel != "run" {
		t.Fatalf("write_file audit: %d entries %+v %v", total, entries, err)
	}
	if got := f.refs(t, sha("d")); got != 1 {
		t.Fatalf("refs = %d after a replay, want 1", got)
	}
	arts, _ := f.s.RunArtifacts(f.ctx, "run-1")
	if len(arts) != 1 || *arts[0].RunID != "run-1" {
		t.Fatalf("artifacts: %+v", arts)
	}
}
