package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"docket/files"
	"docket/internal/testkit"
	"docket/store"
)

// intakeWorld is a world whose server runs the drop-folder watcher.
type intakeWorld struct {
	*world
}

func newIntakeWorld(t *testing.T, debounce time.Duration, opts ...func(*testkit.Options)) *intakeWorld {
	t.Helper()
	o := testkit.Options{Intake: func(c *files.IntakeConfig) { c.Debounce = debounce }}
	for _, f := range opts {
		f(&o)
	}
	return &intakeWorld{world: newWorld(t, o)}
}

// queue creates a queue with intake (nil: off) and returns its id and absolute intake dir.
func (w *intakeWorld) queue(t *testing.T, name string, intake map[string]any) (id, dir string) {
	t.Helper()
	body := map[string]any{"name": name}
	if intake != nil {
		body["intake"] = intake
	}
	r := w.s.Do(t, "POST", "/v2/teams/"+w.team+"/queues", w.member, body)
	if r.Status != 201 {
		t.Fatalf("createQueue: %d %s", r.Status, r.Body)
	}
	q := queueBody(t, r)
	if in, ok := q["intake"].(map[string]any); ok {
		dir = in["dir"].(string)
	}
	return q["id"].(string), dir
}

// total is how many cases the queue has, as getQueue reports.
func (w *intakeWorld) total(t *testing.T, queue string) int {
	t.Helper()
	r := w.s.Do(t, "GET", "/v2/queues/"+queue, w.member, nil)
	if r.Status != 200 {
		t.Fatalf("getQueue: %d %s", r.Status, r.Body)
	}
	return int(field(t, r.JSON(t), "queue", "case_counts", "total").(float64))
}

// cases lists up to 100 of the queue's cases, oldest first.
func (w *intakeWorld) cases(t *testing.T, queue string) []map[string]any {
	t.Helper()
	r := w.s.Do(t, "GET", "/v2/queues/"+queue+"/cases?limit=100&sort_by=created_at&sort_order=asc", w.member, nil)
	if r.Status != 200 {
		t.Fatalf("listCases: %d %s", r.Status, r.Body)
	}
	var page struct {
		Cases []map[string]any `json:"cases"`
	}
	r.Decode(t, &page)
	return page.Cases
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drop writes a file as well-behaved writers do: under a temporary name, then renamed.
func drop(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, name+".part")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func today() string { return time.Now().Format(time.DateOnly) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// names lists a folder's entries that are files (not folders).
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestIntakeQueueConfig(t *testing.T) {
	w := newIntakeWorld(t, 50*time.Millisecond)
	s := w.s
	data := s.Dir
	blocker := filepath.Join(data, "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var inbox string
	runScenarios(t, s, []scenario{
		{name: "201 intake with defaults: <data>/intake/<slug>/, file, move", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Scanned Invoices 2026", "intake": map[string]any{}}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				q := queueBody(t, r)
				inbox = q["id"].(string)
				in := q["intake"].(map[string]any)
				wantKeys(t, "intake", in, "dir", "mode", "after")
				if in["dir"] != filepath.Join(data, "intake", "scanned-invoices-2026") || in["mode"] != "file" || in["after"] != "move" {
					t.Fatalf("intake = %v", in)
				}
				if fi, err := os.Stat(in["dir"].(string)); err != nil || !fi.IsDir() {
					t.Fatalf("intake dir not created: %v", err)
				}
			}},
		{name: "201 without intake: null", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Plain"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				if q := queueBody(t, r); q["intake"] != nil {
					t.Fatalf("intake = %v, want null", q["intake"])
				}
			}},
		{name: "201 a second queue of the same slug gets its own folder", method: "POST", path: "/v2/teams/" + w.otherTeam + "/queues", key: w.otherKey,
			body: map[string]any{"name": "scanned invoices 2026", "intake": map[string]any{"mode": "records", "after": "delete"}}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				in := queueBody(t, r)["intake"].(map[string]any)
				if in["dir"] != filepath.Join(data, "intake", "scanned-invoices-2026-2") || in["mode"] != "records" || in["after"] != "delete" {
					t.Fatalf("intake = %v", in)
				}
			}},
		{name: "201 absolute dir inside the data dir", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Abs", "intake": map[string]any{"dir": filepath.Join(data, "drops", "abs")}}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				if d := field(t, queueBody(t, r), "intake", "dir"); d != filepath.Join(data, "drops", "abs") {
					t.Fatalf("dir = %v", d)
				}
			}},
		{name: "400 bad mode names intake.mode", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Bad mode", "intake": map[string]any{"mode": "lines"}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{`intake.mode "lines"`, "file", "records"}},
		{name: "400 bad after names intake.after", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Bad after", "intake": map[string]any{"after": "archive"}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{`intake.after "archive"`, "move", "delete", "keep"}},
		{name: "400 dir outside the data dir", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Outside", "intake": map[string]any{"dir": os.TempDir()}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{"intake.dir", "inside the data dir"}},
		{name: "400 dir escaping with ..", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Escape", "intake": map[string]any{"dir": "../elsewhere"}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{`intake.dir "../elsewhere"`, "inside the data dir"}},
		{name: "400 the data dir itself", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Root", "intake": map[string]any{"dir": data}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{"intake.dir", "not the data dir itself"}},
		{name: "400 docket's blob folder", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Blobs", "intake": map[string]any{"dir": "blobs/x"}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{"intake.dir", "docket's own files"}},
		{name: "400 a folder that cannot be created", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Blocked", "intake": map[string]any{"dir": "a-file/sub"}}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{`intake.dir "a-file/sub" cannot be used`, "not a directory"},
			after: func(t *testing.T, r *testkit.Response) {
				if r := s.Do(t, "GET", "/v2/teams/"+w.team+"/queues", w.member, nil); strings.Contains(string(r.Body), `"Blocked"`) {
					t.Fatal("the queue was created although its intake folder cannot be")
				}
			}},
		{name: "409 a folder inside another queue's", method: "POST", path: "/v2/teams/" + w.team + "/queues", key: w.member,
			body: map[string]any{"name": "Nested", "intake": map[string]any{"dir": "intake/scanned-invoices-2026/sub"}}, wantStatus: 409, wantError: "conflict",
			wantContains: []string{`intake.dir "intake/scanned-invoices-2026/sub" overlaps`}},
	})
	runScenarios(t, s, []scenario{
		{name: "200 update changes the mode, keeps the folder", method: "PATCH", path: "/v2/queues/" + inbox, key: w.member,
			body: map[string]any{"intake": map[string]any{"mode": "records"}}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				in := queueBody(t, r)["intake"].(map[string]any)
				if in["dir"] != filepath.Join(data, "intake", "scanned-invoices-2026") || in["mode"] != "records" || in["after"] != "move" {
					t.Fatalf("intake = %v", in)
				}
			}},
		{name: "200 a rename keeps the folder", method: "PATCH", path: "/v2/queues/" + inbox, key: w.member,
			body: map[string]any{"name": "Renamed"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if d := field(t, queueBody(t, r), "intake", "dir"); d != filepath.Join(data, "intake", "scanned-invoices-2026") {
					t.Fatalf("dir = %v", d)
				}
			}},
		{name: "400 update with a bad mode", method: "PATCH", path: "/v2/queues/" + inbox, key: w.member,
			body: map[string]any{"intake": map[string]any{"mode": "x"}}, wantStatus: 400, wantError: "invalid_request", wantContains: []string{`intake.mode "x"`}},
		{name: "200 null turns intake off", method: "PATCH", path: "/v2/queues/" + inbox, key: w.member,
			body: map[string]any{"intake": nil}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if q := queueBody(t, r); q["intake"] != nil {
					t.Fatalf("intake = %v, want null", q["intake"])
				}
				if !exists(filepath.Join(data, "intake", "scanned-invoices-2026")) {
					t.Fatal("turning intake off removed the folder")
				}
			}},
		{name: "403 a viewer cannot turn intake on", method: "PATCH", path: "/v2/queues/" + inbox, key: w.viewer,
			body: map[string]any{"intake": map[string]any{}}, wantStatus: 403, wantError: "forbidden"},
	})
}

// TestIntakeFollowsQueueChangesLive: turning intake on, changing it and turning it off
// take effect at once, without a restart.
func TestIntakeFollowsQueueChangesLive(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, _ := w.queue(t, "Later", nil)
	r := w.s.Do(t, "PATCH", "/v2/queues/"+queue, w.member, map[string]any{"intake": map[string]any{"dir": "drops/later"}})
	if r.Status != 200 {
		t.Fatalf("updateQueue: %d %s", r.Status, r.Body)
	}
	dir := field(t, queueBody(t, r), "intake", "dir").(string)
	drop(t, dir, "one.txt", "one")
	waitUntil(t, 10*time.Second, "the file dropped after intake was turned on to make a case", func() bool { return w.total(t, queue) == 1 })

	// Switched to records mode: the next file is read as records.
	if r := w.s.Do(t, "PATCH", "/v2/queues/"+queue, w.member, map[string]any{"intake": map[string]any{"mode": "records"}}); r.Status != 200 {
		t.Fatalf("updateQueue: %d %s", r.Status, r.Body)
	}
	waitUntil(t, 10*time.Second, "the mode change to reach the watcher", func() bool {
		// A file dropped before the watcher re-read the queue is ingested in file mode;
		// keep dropping until one is read as records.
		drop(t, dir, fmt.Sprintf("r-%d.jsonl", time.Now().UnixNano()), fmt.Sprintf("{\"title\":\"a\",\"n\":%d}\n{\"title\":\"b\"}\n", time.Now().UnixNano()))
		time.Sleep(100 * time.Millisecond)
		for _, c := range w.cases(t, queue) {
			if c["title"] == "b" {
				return true
			}
		}
		return false
	})

	// Turned off: a new file stays where it is. A file dropped into another queue's
	// folder afterwards is ingested, so the watcher has had its look.
	if r := w.s.Do(t, "PATCH", "/v2/queues/"+queue, w.member, map[string]any{"intake": nil}); r.Status != 200 {
		t.Fatalf("updateQueue: %d %s", r.Status, r.Body)
	}
	other, otherDir := w.queue(t, "Other", map[string]any{})
	before := w.total(t, queue)
	drop(t, dir, "ignored.txt", "not for anyone")
	drop(t, otherDir, "taken.txt", "taken")
	waitUntil(t, 10*time.Second, "the other queue's file", func() bool { return w.total(t, other) == 1 })
	time.Sleep(150 * time.Millisecond) // several debounces: time for a wrong ingest to show
	if got := w.total(t, queue); got != before {
		t.Fatalf("queue with intake off has %d cases, want still %d", got, before)
	}
	if !exists(filepath.Join(dir, "ignored.txt")) {
		t.Fatal("a file dropped into a folder whose intake is off was moved")
	}
}

// TestIntakeFileModeCaseAndLineage: one case per file, titled by the file name, data
// naming the stored file, the original moved to processed/<date>/, the team file linked
// to the case and back.
func TestIntakeFileModeCaseAndLineage(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Docs", map[string]any{})
	text := "Dear team,\nplease refund order 42.\n"
	drop(t, dir, "refund request.txt", text)
	pdf := "%PDF-1.4\n" + strings.Repeat("\x00\x01binary", 10)
	drop(t, dir, "scan.pdf", pdf)
	big := strings.Repeat("é", 40<<10) // 80 KiB of two-byte characters
	drop(t, dir, "big.txt", big)
	waitUntil(t, 10*time.Second, "three cases", func() bool { return w.total(t, queue) == 3 })

	byTitle := map[string]map[string]any{}
	for _, c := range w.cases(t, queue) {
		byTitle[c["title"].(string)] = c
	}
	for _, tc := range []struct {
		name, content, contentType string
		text                       *string
	}{
		{"refund request.txt", text, "text/plain; charset=utf-8", &text},
		{"scan.pdf", pdf, "application/pdf", nil},
		{"big.txt", big, "text/plain; charset=utf-8", new(big[:64<<10])},
	} {
		c := byTitle[tc.name]
		if c == nil {
			t.Fatalf("no case titled %q among %v", tc.name, keysOf(anyMap(byTitle)))
		}
		path := "intake/docs/" + today() + "/" + tc.name
		if c["source_file"] != path {
			t.Errorf("%s: source_file = %v, want %s", tc.name, c["source_file"], path)
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(c["data"].(string)), &data); err != nil {
			t.Fatalf("%s: data is not JSON: %v", tc.name, err)
		}
		if data["path"] != path || data["size"] != float64(len(tc.content)) || data["content_type"] != tc.contentType || len(data["sha256"].(string)) != 64 {
			t.Errorf("%s: data = %v", tc.name, data)
		}
		switch {
		case tc.text == nil && data["text"] != nil:
			t.Errorf("%s: binary file has text %q", tc.name, data["text"])
		case tc.text != nil && data["text"] != *tc.text:
			t.Errorf("%s: text has %d bytes, want %d", tc.name, len(str(data["text"])), len(*tc.text))
		}
		if tc.name == "big.txt" && data["text_truncated"] != true {
			t.Errorf("big.txt: text_truncated = %v", data["text_truncated"])
		}
		f, err := w.s.Store.GetFile(context.Background(), w.team, path)
		if err != nil {
			t.Fatalf("%s: team file: %v", tc.name, err)
		}
		if f.CaseID == nil || *f.CaseID != c["id"] || f.Size != int64(len(tc.content)) {
			t.Errorf("%s: team file %+v does not link back to case %v", tc.name, f, c["id"])
		}
		got, err := os.ReadFile(filepath.Join(dir, "processed", today(), tc.name))
		if err != nil || string(got) != tc.content {
			t.Errorf("%s: not moved to processed/%s intact: %v", tc.name, today(), err)
		}
	}
	if left := names(t, dir); len(left) != 0 {
		t.Fatalf("files left in the intake folder: %v", left)
	}
}

func anyMap[V any](m map[string]V) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestIntakeSameContentTwiceMakesOneCase: the second drop of the same bytes (under any
// name) is set aside in processed/ without a case.
func TestIntakeSameContentTwiceMakesOneCase(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Dedup", map[string]any{})
	drop(t, dir, "a.txt", "same bytes")
	waitUntil(t, 10*time.Second, "the first case, and a.txt moved on", func() bool {
		return w.total(t, queue) == 1 && !exists(filepath.Join(dir, "a.txt"))
	})
	drop(t, dir, "b.txt", "same bytes")
	drop(t, dir, "a.txt", "same bytes") // the same name again, too
	processed := filepath.Join(dir, "processed", today())
	waitUntil(t, 10*time.Second, "both duplicates in processed/", func() bool {
		return exists(filepath.Join(processed, "b.txt")) && exists(filepath.Join(processed, "a-2.txt"))
	})
	if n := w.total(t, queue); n != 1 {
		t.Fatalf("%d cases, want 1", n)
	}
	fs, err := w.s.Store.IntakeFiles(context.Background(), queue, 10)
	if err != nil || len(fs) != 1 || fs[0].Duplicates != 2 || fs[0].Status != "ingested" {
		t.Fatalf("intake_files = %+v, %v; want one ingested row with 2 duplicates", fs, err)
	}
	// Another queue takes the same bytes as new.
	other, otherDir := w.queue(t, "Other", map[string]any{})
	drop(t, otherDir, "a.txt", "same bytes")
	waitUntil(t, 10*time.Second, "the other queue's case", func() bool { return w.total(t, other) == 1 })
}

// TestIntakeNameCollisions: a file never overwrites one in processed/ or failed/, nor a
// team file.
func TestIntakeNameCollisions(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Same names", map[string]any{})
	for i := 1; i <= 3; i++ {
		drop(t, dir, "report.txt", fmt.Sprintf("version %d", i))
		// Until it has moved on: a drop over a file being ingested replaces it (its bytes
		// are kept as the team file, but processed/ gets the newer one).
		waitUntil(t, 10*time.Second, fmt.Sprintf("case %d", i), func() bool {
			return w.total(t, queue) == i && !exists(filepath.Join(dir, "report.txt"))
		})
	}
	processed := filepath.Join(dir, "processed", today())
	for i, name := range []string{"report.txt", "report-2.txt", "report-3.txt"} {
		if b, err := os.ReadFile(filepath.Join(processed, name)); err != nil || string(b) != fmt.Sprintf("version %d", i+1) {
			t.Errorf("processed/%s = %q, %v", name, b, err)
		}
		if _, err := w.s.Store.GetFile(context.Background(), w.team, "intake/same-names/"+today()+"/"+name); err != nil {
			t.Errorf("team file %s: %v", name, err)
		}
	}

	records, rdir := w.queue(t, "Records", map[string]any{"mode": "records"})
	failed := filepath.Join(rdir, "failed")
	for i, name := range []string{"bad.csv", "bad-2.csv"} {
		drop(t, rdir, "bad.csv", fmt.Sprintf("a,b\n%d\n", i+1))
		waitUntil(t, 10*time.Second, name+" in failed/", func() bool {
			return exists(filepath.Join(failed, name)) && exists(filepath.Join(failed, name+".error.txt"))
		})
	}
	for i, name := range []string{"bad.csv", "bad-2.csv"} {
		if b, _ := os.ReadFile(filepath.Join(failed, name)); string(b) != fmt.Sprintf("a,b\n%d\n", i+1) {
			t.Errorf("failed/%s = %q", name, b)
		}
	}
	if n := w.total(t, records); n != 0 {
		t.Fatalf("%d cases from bad files", n)
	}
}

// TestIntakeIgnoresTemporaryAndHiddenFiles: names that say "still being written" or
// "hidden" are left alone.
func TestIntakeIgnoresTemporaryAndHiddenFiles(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Ignores", map[string]any{})
	ignored := []string{".hidden", "upload.part", "UPLOAD.PART", "x.tmp", "notes.txt~"}
	for _, n := range ignored {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	drop(t, dir, "real.txt", "real")
	waitUntil(t, 10*time.Second, "the real file's case", func() bool { return w.total(t, queue) == 1 })
	// Turning intake off and on forces a full scan, which must skip them too.
	w.s.Intake.Reconcile()
	drop(t, dir, "real2.txt", "real 2")
	waitUntil(t, 10*time.Second, "the second real file's case", func() bool { return w.total(t, queue) == 2 })
	for _, n := range ignored {
		if !exists(filepath.Join(dir, n)) {
			t.Errorf("%s was touched", n)
		}
	}
}

// TestIntakeWaitsForAGrowingFile: a file still being written (slowly, in place) is not
// read until its size and mtime stay unchanged for the debounce.
func TestIntakeWaitsForAGrowingFile(t *testing.T) {
	const debounce = 300 * time.Millisecond
	w := newIntakeWorld(t, debounce)
	queue, dir := w.queue(t, "Slow", map[string]any{})
	f, err := os.Create(filepath.Join(dir, "slow.log"))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 12 { // 1.2 s of writing, four debounces
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if n := w.total(t, queue); n != 0 {
			t.Fatalf("ingested after %d writes, while the file still grows", i+1)
		}
		time.Sleep(debounce / 3)
	}
	f.Close()
	waitUntil(t, 10*time.Second, "the finished file's case", func() bool { return w.total(t, queue) == 1 })
	c := w.cases(t, queue)[0]
	var data map[string]any
	json.Unmarshal([]byte(c["data"].(string)), &data)
	if data["text"] != want.String() {
		t.Fatalf("case text = %q, want the whole file %q", data["text"], want.String())
	}
}

// TestIntakeRecords: records mode makes one case per JSONL line or CSV row, all or
// nothing; a malformed file goes to failed/ with a reason naming the line, and makes no
// case at all.
func TestIntakeRecords(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Orders", map[string]any{"mode": "records"})

	var jsonl strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&jsonl, "{\"title\":\"Order %d\",\"amount\":%d,\"priority\":\"%s\"}\n", i, i, []string{"none", "medium", "high"}[i%3])
	}
	drop(t, dir, "orders.jsonl", jsonl.String())
	waitUntil(t, 30*time.Second, "5,000 cases", func() bool { return w.total(t, queue) == 5000 })
	waitUntil(t, 10*time.Second, "orders.jsonl in processed/", func() bool { return exists(filepath.Join(dir, "processed", today(), "orders.jsonl")) })
	r := w.s.Do(t, "GET", "/v2/queues/"+queue+"/cases?limit=1&search=%22Order+4999%22", w.member, nil)
	var page struct {
		Cases []map[string]any `json:"cases"`
	}
	r.Decode(t, &page)
	if len(page.Cases) != 1 || page.Cases[0]["title"] != "Order 4999" || page.Cases[0]["data"] != `{"amount":4999}` ||
		page.Cases[0]["priority"] != "medium" || page.Cases[0]["source_file"] != "intake/orders/"+today()+"/orders.jsonl" {
		t.Fatalf("case for line 5000 = %v", page.Cases)
	}

	drop(t, dir, "people.csv", "Title,city,labels\nAda,London,team:math;vip\nGrace,\"New York, NY\",\n")
	waitUntil(t, 10*time.Second, "2 more cases", func() bool { return w.total(t, queue) == 5002 })

	for _, tc := range []struct{ name, content, reason string }{
		{"broken.csv", "title,amount\na,1\nb,2\nc,3,extra\nd,4\n", "line 4: 3 fields, but the header has 2 columns"},
		{"broken.jsonl", "{\"title\":\"a\"}\n{\"title\":\"b\"}\n{\"title\":\"c\",}\n", "line 3, column 14: invalid JSON"},
		{"priority.csv", "title,priority\na,high\nb,urgent\n", `line 3, column 3, field "priority": priority "urgent"`},
		{"notes.txt", "records mode cannot read this", `records mode reads .jsonl, .ndjson and .csv files, not ".txt"`},
	} {
		drop(t, dir, tc.name, tc.content)
		errFile := filepath.Join(dir, "failed", tc.name+".error.txt")
		waitUntil(t, 10*time.Second, tc.name+" in failed/", func() bool { return exists(errFile) && exists(filepath.Join(dir, "failed", tc.name)) })
		b, _ := os.ReadFile(errFile)
		if !strings.Contains(string(b), tc.reason) {
			t.Errorf("%s.error.txt = %q, want it to say %q", tc.name, b, tc.reason)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "failed", tc.name)); string(got) != tc.content {
			t.Errorf("failed/%s changed: %q", tc.name, got)
		}
	}
	if n := w.total(t, queue); n != 5002 {
		t.Fatalf("%d cases, want 5002: a malformed file made some", n)
	}
	fs, err := w.s.Store.IntakeFiles(context.Background(), queue, 10)
	if err != nil {
		t.Fatal(err)
	}
	var failedRows int
	for _, f := range fs {
		if f.Status == "failed" && f.Error != nil && strings.Contains(*f.Error, "line") {
			failedRows++
		}
	}
	if failedRows != 3 {
		t.Fatalf("intake_files has %d failed rows with a line-naming reason, want 3: %+v", failedRows, fs)
	}
}

// TestIntakeRefusesLinks: a symbolic link, to a file outside the folder or inside it, is
// never followed: it goes to failed/ (as the link) with the reason, and makes no case.
func TestIntakeRefusesLinks(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	queue, dir := w.queue(t, "Links", map[string]any{})
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("do not read"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "outside.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../etc/hostname", filepath.Join(dir, "relative.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"outside.txt", "relative.txt", "dirlink"} {
		errFile := filepath.Join(dir, "failed", n+".error.txt")
		// The reason is written before the link moves: wait for the move, the last step.
		waitUntil(t, 10*time.Second, n+" refused", func() bool { return exists(filepath.Join(dir, "failed", n)) })
		b, _ := os.ReadFile(errFile)
		if !strings.Contains(string(b), "symbolic link") {
			t.Errorf("%s: reason %q", n, b)
		}
		fi, err := os.Lstat(filepath.Join(dir, "failed", n))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: failed/ should hold the link itself: %v", n, err)
		}
	}
	if n := w.total(t, queue); n != 0 {
		t.Fatalf("%d cases from links", n)
	}
	if b, _ := os.ReadFile(secret); string(b) != "do not read" {
		t.Fatal("the link's target changed")
	}
	if !exists(filepath.Join(dir, "sub")) {
		t.Fatal("a folder inside the intake folder was moved")
	}
}

// TestIntakeAfterDeleteAndKeep: after=delete removes the ingested file; after=keep leaves
// it, and it makes no second case until its content changes.
func TestIntakeAfterDeleteAndKeep(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	del, ddir := w.queue(t, "Delete", map[string]any{"after": "delete"})
	keep, kdir := w.queue(t, "Keep", map[string]any{"after": "keep"})
	drop(t, ddir, "gone.txt", "gone")
	drop(t, kdir, "stays.txt", "v1")
	waitUntil(t, 10*time.Second, "both cases", func() bool { return w.total(t, del) == 1 && w.total(t, keep) == 1 })
	waitUntil(t, 10*time.Second, "gone.txt deleted", func() bool { return !exists(filepath.Join(ddir, "gone.txt")) })
	if exists(filepath.Join(ddir, "processed")) {
		t.Fatal("after=delete made a processed/ folder")
	}
	w.s.Intake.Reconcile() // a full scan sees stays.txt again
	if err := os.WriteFile(filepath.Join(kdir, "stays.txt"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "a case for the changed content", func() bool { return w.total(t, keep) == 2 })
	if b, _ := os.ReadFile(filepath.Join(kdir, "stays.txt")); string(b) != "v2" {
		t.Fatalf("kept file = %q", b)
	}
}

// TestIntakeStartsTheCasesRun: ingesting wakes the dispatcher, so an Assignment consuming
// the queue starts on the new case at once, not at its next idle pass (30 s).
func TestIntakeStartsTheCasesRun(t *testing.T) {
	w := newCaseWorld(t, 1, nil, func(o *testkit.Options) {
		o.Intake = func(c *files.IntakeConfig) { c.Debounce = 30 * time.Millisecond }
	})
	w.enable(t, true)
	r := w.s.Do(t, "PATCH", "/v2/queues/"+w.queue, w.member, map[string]any{"intake": map[string]any{}})
	if r.Status != 200 {
		t.Fatalf("updateQueue: %d %s", r.Status, r.Body)
	}
	drop(t, field(t, queueBody(t, r), "intake", "dir").(string), "ticket.txt", "printer on fire")
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := w.s.Store.ListCases(context.Background(), w.team, w.queue, store.CaseQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Cases) == 1 && cs.Cases[0].Status == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dropped file's case was not worked within 10 s: %+v", cs.Cases)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIntakeBurstOf10000Files: 10,000 files written at once (each via .part + rename)
// make exactly 10,000 cases; none is lost, none doubled.
func TestIntakeBurstOf10000Files(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 files")
	}
	n := 10000
	if raceEnabled {
		n = 1000 // the race detector slows ingest ten times over; the plain run keeps the full burst
	}
	overflows := &countingHandler{match: "too many file events"}
	w := newIntakeWorld(t, 50*time.Millisecond, func(o *testkit.Options) { o.Logger = slog.New(overflows) })
	queue, dir := w.queue(t, "Burst", map[string]any{})
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				drop(t, dir, fmt.Sprintf("f%05d.txt", i), fmt.Sprintf("file %d\n", i))
			}
		})
	}
	wg.Wait()
	written := time.Since(start)
	waitUntil(t, 120*time.Second, "10,000 cases", func() bool { return w.total(t, queue) >= n })
	took := time.Since(start)
	processed := filepath.Join(dir, "processed", today())
	waitUntil(t, 10*time.Second, "every file in processed/", func() bool { return len(names(t, processed)) == n })
	if got := w.total(t, queue); got != n {
		t.Fatalf("%d cases, want exactly %d", got, n)
	}
	if left := names(t, dir); len(left) != 0 {
		t.Fatalf("%d files left in the intake folder, e.g. %v", len(left), left[:min(5, len(left))])
	}
	t.Logf("%d files written in %s, all ingested after %s (%.0f files/s); the event queue overflowed %d times", n, written.Round(time.Millisecond),
		took.Round(time.Millisecond), float64(n)/took.Seconds(), overflows.n.Load())
}

// TestDropFolderExample: the sample files in examples/drop-folder do what its README says.
func TestDropFolderExample(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond)
	inbox, idir := w.queue(t, "Inbox", map[string]any{})
	orders, odir := w.queue(t, "Orders", map[string]any{"mode": "records"})
	copyExample := func(dir, name string) {
		b, err := os.ReadFile(filepath.Join("..", "examples", "drop-folder", name))
		if err != nil {
			t.Fatal(err)
		}
		drop(t, dir, name, string(b))
	}
	copyExample(idir, "refund-request.txt")
	for _, n := range []string{"orders.jsonl", "contacts.csv", "broken.csv"} {
		copyExample(odir, n)
	}
	waitUntil(t, 10*time.Second, "the Inbox case", func() bool { return w.total(t, inbox) == 1 })
	waitUntil(t, 10*time.Second, "7 order cases and broken.csv refused", func() bool {
		return w.total(t, orders) == 7 && exists(filepath.Join(odir, "failed", "broken.csv")) // moved after its reason is written
	})
	if c := w.cases(t, inbox)[0]; c["title"] != "refund-request.txt" || !strings.Contains(c["data"].(string), "Charged twice for order #99182") {
		t.Errorf("Inbox case = %v", c)
	}
	titles := map[string]map[string]any{}
	for _, c := range w.cases(t, orders) {
		titles[c["title"].(string)] = c
	}
	for _, want := range []string{"Order #1001: late delivery", "Order #1002: wrong size", "Order #1003: invoice copy", "no-title@example.com",
		"Call back about renewal", "Send the quote, again", "Update billing address"} {
		if titles[want] == nil {
			t.Errorf("no case titled %q among %v", want, keysOf(anyMap(titles)))
		}
	}
	if c := titles["Order #1001: late delivery"]; c != nil && (c["priority"] != "high" || len(c["labels"].([]any)) != 2) {
		t.Errorf("order 1001 = %v", c)
	}
	if c := titles["Send the quote, again"]; c != nil && c["data"] != `{"email":"jo@example.org","company":"Acme, Inc."}` {
		t.Errorf("contact data = %v", c["data"])
	}
	b, _ := os.ReadFile(filepath.Join(odir, "failed", "broken.csv.error.txt"))
	if !strings.Contains(string(b), "line 3: 4 fields, but the header has 3 columns") {
		t.Errorf("broken.csv.error.txt = %s", b)
	}
}

// countingHandler counts log records whose message contains match.
type countingHandler struct {
	match string
	n     atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestIntakeRefusesUnusableFiles: what cannot become a case is set aside in failed/ with
// the reason, never dropped silently or left to block the folder.
func TestIntakeRefusesUnusableFiles(t *testing.T) {
	w := newIntakeWorld(t, 30*time.Millisecond, func(o *testkit.Options) {
		o.Intake = func(c *files.IntakeConfig) { c.Debounce, c.MaxFileSize = 30*time.Millisecond, 1000 }
	})
	queue, dir := w.queue(t, "Unusable", map[string]any{})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	drop(t, dir, "big.bin", strings.Repeat("x", 1001))
	drop(t, dir, "line\nbreak.txt", "a name with a line break")
	drop(t, dir, "ok.txt", strings.Repeat("x", 1000))
	for name, reason := range map[string]string{
		"pipe":            "it is not a regular file",
		"big.bin":         "it is 1001 bytes, larger than the limit of 1000 bytes",
		"line\nbreak.txt": "its name cannot be a team file name",
	} {
		errFile := filepath.Join(dir, "failed", name+".error.txt")
		waitUntil(t, 10*time.Second, name+" refused", func() bool { return exists(errFile) && exists(filepath.Join(dir, "failed", name)) })
		if b, _ := os.ReadFile(errFile); !strings.Contains(string(b), reason) {
			t.Errorf("%q: reason %q, want %q", name, b, reason)
		}
	}
	waitUntil(t, 10*time.Second, "the file at the limit", func() bool { return w.total(t, queue) == 1 })
}
