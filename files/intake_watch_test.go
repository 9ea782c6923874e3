package files

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"docket/store"
)

// testWatcher is a watcher over one folder, driven by hand: no OS events, no workers.
func testWatcher(t *testing.T, debounce time.Duration) (*watcher, string) {
	t.Helper()
	dir := t.TempDir()
	in := NewIntake(IntakeConfig{Debounce: debounce, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w := newWatcher(in, nil)
	w.folders[dir] = folder{IntakeQueue: store.IntakeQueue{Name: "q"}, abs: dir}
	return w, dir
}

func readyNames(w *watcher) []string {
	var out []string
	for _, j := range w.ready {
		out = append(out, filepath.Base(j.c.path))
	}
	return out
}

// TestOverflowScansTheFolders: when the OS dropped events, a file whose event was lost is
// found by the scan that follows; other watcher errors do not scan.
func TestOverflowScansTheFolders(t *testing.T) {
	w, dir := testWatcher(t, time.Millisecond)
	old := time.Now().Add(-time.Minute)
	for _, n := range []string{"lost.txt", ".hidden", "x.part"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	if err := os.Mkdir(filepath.Join(dir, "processed"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.watchError(errors.New("some other trouble"))
	if len(w.pending) != 0 {
		t.Fatalf("a non-overflow error scanned: %v", w.pending)
	}
	w.watchError(fsnotify.ErrEventOverflow)
	if len(w.pending) != 1 || w.pending[filepath.Join(dir, "lost.txt")] == nil {
		t.Fatalf("after an overflow pending = %v, want just lost.txt", w.pending)
	}
	// A file last changed long ago is due at once and ready after one look.
	w.check(time.Now())
	if got := readyNames(w); len(got) != 1 || got[0] != "lost.txt" {
		t.Fatalf("ready = %v", got)
	}
	// A second overflow while it is being ingested does not queue it twice.
	w.watchError(fsnotify.ErrEventOverflow)
	if len(w.pending) != 0 {
		t.Fatalf("a file in flight was queued again: %v", w.pending)
	}
}

// TestDebounceWaitsForQuiet: a file is handed on only when its size and mtime are the
// same as at the last look and it has not been modified within the debounce. The clock
// is driven by hand (check's now), the file's mtime set to match.
func TestDebounceWaitsForQuiet(t *testing.T) {
	const debounce = 500 * time.Millisecond
	w, dir := testWatcher(t, debounce)
	p := filepath.Join(dir, "growing.log")
	if err := os.WriteFile(p, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w.event(fsnotify.Event{Name: p, Op: fsnotify.Create})
	if c := w.pending[p]; c == nil || !c.seen || c.size != 1 {
		t.Fatalf("the event did not look at the file: %+v", c)
	}
	if w.check(now); len(w.ready) != 0 || w.pending[p] == nil {
		t.Fatal("handed on before the debounce passed")
	}

	// It grew by the time of the due look: it waits a debounce from its new mtime.
	t1 := now.Add(10 * time.Second)
	appendTo(t, p, "b", t1)
	w.check(t1)
	if c := w.pending[p]; len(w.ready) != 0 || c == nil || c.size != 2 || !c.due.Equal(t1.Add(debounce)) {
		t.Fatalf("a file that grew was handed on, or waits wrongly: ready %v, candidate %+v", readyNames(w), c)
	}
	// Touched (same size) just before the next look: it waits again.
	t2 := t1.Add(debounce - time.Millisecond)
	os.Chtimes(p, t2, t2)
	w.check(t1.Add(debounce))
	if c := w.pending[p]; len(w.ready) != 0 || c == nil || !c.due.Equal(t2.Add(debounce)) {
		t.Fatalf("a file modified within the debounce was handed on, or waits wrongly: ready %v, candidate %+v", readyNames(w), c)
	}
	// Unchanged and quiet for the debounce: handed on.
	w.check(t2.Add(debounce))
	if got := readyNames(w); len(got) != 1 || got[0] != "growing.log" {
		t.Fatalf("ready = %v, want growing.log once quiet", got)
	}

	// A write event for it while in flight is remembered and looked at once it is done.
	w.event(fsnotify.Event{Name: p, Op: fsnotify.Write})
	if !w.dirty[p] || w.pending[p] != nil {
		t.Fatal("an event for a file in flight was not held back")
	}
	w.done(result{c: w.ready[0].c})
	if w.pending[p] == nil {
		t.Fatal("a file changed while in flight was not looked at again")
	}
}

func appendTo(t *testing.T, p, s string, mtime time.Time) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestMovesActOnTheFileThatWasRead: a file replaced (renamed over) after intake read it is
// never moved, deleted or set aside in its place: it stays, to be read in turn.
func TestMovesActOnTheFileThatWasRead(t *testing.T) {
	for name, move := range map[string]func(src, dir string, want os.FileInfo) error{
		"move to processed": func(src, dir string, want os.FileInfo) error {
			_, err := moveNoReplace(src, filepath.Join(dir, "processed"), filepath.Base(src), want)
			return err
		},
		"delete": func(src, dir string, want os.FileInfo) error { return removeFile(src, want) },
		"set aside in failed": func(src, dir string, want os.FileInfo) error {
			_, err := setAside(dir, "q", filepath.Base(src), "bad", time.Now(), want)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "report.txt")
			os.WriteFile(p, []byte("read"), 0o644)
			read, _ := os.Lstat(p)
			os.WriteFile(p+".part", []byte("new"), 0o644)
			os.Rename(p+".part", p)
			if err := move(p, dir, read); !errors.Is(err, errReplaced) {
				t.Fatalf("err = %v, want errReplaced", err)
			}
			if b, _ := os.ReadFile(p); string(b) != "new" {
				t.Fatalf("the new file reads %q", b)
			}
			var left []string
			filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && path != p {
					left = append(left, path)
				}
				return nil
			})
			if len(left) != 0 {
				t.Fatalf("files besides the new one: %v", left)
			}

			// Not replaced: it goes.
			now, _ := os.Lstat(p)
			if err := move(p, dir, now); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the file is still there: %v", err)
			}
		})
	}
}
