package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// inboxOf returns the Inbox queue first start creates: its id and intake folder.
func inboxOf(t *testing.T, s *server, key apiKey) (id, dir string) {
	t.Helper()
	status, b := s.call(t, "GET", "/v2/teams/"+key.TeamID+"/queues", key.Key, nil)
	if status != 200 {
		t.Fatalf("listQueues = %d %s", status, b)
	}
	var out struct {
		Queues []struct {
			ID     string
			Name   string
			Intake *struct{ Dir, Mode, After string }
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, q := range out.Queues {
		if q.Name == "Inbox" && q.Intake != nil {
			return q.ID, q.Intake.Dir
		}
	}
	t.Fatalf("no Inbox queue with intake on after first start: %s", b)
	return "", ""
}

// caseTitles lists the titles of a queue's cases (up to 100) and how many there are.
func caseTitles(t *testing.T, s *server, key apiKey, queue string) ([]string, int) {
	t.Helper()
	status, b := s.call(t, "GET", "/v2/queues/"+queue+"/cases?limit=100", key.Key, nil)
	if status != 200 {
		t.Fatalf("listCases = %d %s", status, b)
	}
	var out struct {
		Cases []struct{ Title string }
		Total int
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, c := range out.Cases {
		titles = append(titles, c.Title)
	}
	return titles, out.Total
}

func waitCases(t *testing.T, s *server, key apiKey, queue string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, total := caseTitles(t, s, key, queue)
		if total == n {
			return
		}
		if total > n || time.Now().After(deadline) {
			t.Fatalf("Inbox has %d cases, want %d\nstderr:\n%s", total, n, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInboxIngestsFilesDroppedWhileDown: first start creates the Inbox with its folder
// <data>/intake/inbox/; files dropped there while the server is stopped become cases at
// the next start, and land in processed/<date>/.
func TestInboxIngestsFilesDroppedWhileDown(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, nil, "--intake-debounce", "100ms")
	key := createKey(t, data)
	queue, dir := inboxOf(t, s, key)
	if want := filepath.Join(data, "intake", "inbox"); dir != want {
		t.Fatalf("Inbox folder %s, want %s", dir, want)
	}
	s.stop(t)

	for _, n := range []string{"a.txt", "b.txt", "c.pdf"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "half.part"), []byte("still uploading"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = startServe(t, data, nil, "--intake-debounce", "100ms")
	waitCases(t, s, key, queue, 3, 15*time.Second)
	day := time.Now().Format(time.DateOnly)
	for _, n := range []string{"a.txt", "b.txt", "c.pdf"} {
		deadline := time.Now().Add(5 * time.Second)
		for !exists(filepath.Join(dir, "processed", day, n)) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is not in processed/%s/", n, day)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !exists(filepath.Join(dir, "half.part")) {
		t.Fatal("a .part file was taken")
	}
	// And while running, of course.
	if err := os.WriteFile(filepath.Join(dir, "live.txt"), []byte("live"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitCases(t, s, key, queue, 4, 15*time.Second)
	s.stop(t)
}

// TestIntakeSurvivesKill: the server is killed (-9) while ingesting a burst; after the
// restart every file has made exactly one case, and none is left in the folder.
func TestIntakeSurvivesKill(t *testing.T) {
	t.Parallel()
	const n = 300
	data := t.TempDir()
	s := startServe(t, data, nil, "--intake-debounce", "20ms")
	key := createKey(t, data)
	queue, dir := inboxOf(t, s, key)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("k%03d.txt", i))
		if err := os.WriteFile(p+".part", []byte(fmt.Sprintf("kill %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".part", p); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	before := 0
	for before == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no case within 15 s\nstderr:\n%s", s.stderr)
		}
		_, before = caseTitles(t, s, key, queue)
	}
	s.kill()
	t.Logf("%d of %d files had made cases when the server was killed", before, n)

	s = startServe(t, data, nil, "--intake-debounce", "20ms")
	waitCases(t, s, key, queue, n, 60*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, e := range es {
			if !e.IsDir() {
				left = append(left, e.Name())
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files left in the Inbox folder after the restart: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A file killed between its commit and its move is moved at the restart (as a
	// duplicate, possibly under a -2 name): in processed/, never lost.
	processed, _ := os.ReadDir(filepath.Join(dir, "processed", time.Now().Format(time.DateOnly)))
	if len(processed) < n {
		t.Fatalf("%d files in processed/, want at least %d", len(processed), n)
	}
	_, total := caseTitles(t, s, key, queue)
	if total != n {
		t.Fatalf("%d cases after the restart, want exactly %d", total, n)
	}
	s.stop(t)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
