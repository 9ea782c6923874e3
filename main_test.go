package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"
)

// openDB opens a docket database file the way any SQLite tool would, outside the server.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// adminPasswordMatches reports whether password is the owner's stored (bcrypt) password.
func adminPasswordMatches(t *testing.T, data, password string) bool {
	t.Helper()
	var hash string
	if err := openDB(t, filepath.Join(data, "docket.db")).QueryRow(
		"SELECT password_hash FROM users WHERE email = 'admin@localhost'").Scan(&hash); err != nil {
		t.Fatalf("owner admin@localhost not in the database: %v", err)
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

var printedPassword = regexp.MustCompile(`admin@localhost\s+password: (\S+)`)

func TestFirstStartPrintsLoginOnce(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	s := startServe(t, data, nil)
	out := s.stdout.String()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q: want a loopback http URL\n%s", s.URL, out)
	}
	if status, _ := s.call(t, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("the printed URL %s does not answer /healthz: %d", s.URL, status)
	}
	m := printedPassword.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("first start did not print the owner login admin@localhost with a password:\n%s", out)
	}
	password := m[1]
	if len(password) < 16 {
		t.Fatalf("generated password %q is too short to be safe", password)
	}
	if info, err := os.Stat(data); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v mode %v, want it created with 0700", err, info.Mode().Perm())
	}
	if info, err := os.Stat(filepath.Join(data, "master.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v, want it created with 0600", err)
	}
	s.stop(t)
	if !adminPasswordMatches(t, data, password) {
		t.Fatal("the printed password is not the owner's password")
	}

	again := startServe(t, data, nil)
	out = again.stdout.String()
	if strings.Contains(out, password) || printedPassword.MatchString(out) {
		t.Fatalf("second start printed a password again:\n%s", out)
	}
	if !strings.Contains(out, "admin@localhost") {
		t.Fatalf("second start does not say who the owner is:\n%s", out)
	}
	again.stop(t)
}

func TestAdminPasswordFromEnvironmentIsNotPrinted(t *testing.T) {
	t.Parallel()
	const secret = "correct-horse-battery-staple-42"
	data := t.TempDir()
	s := startServe(t, data, []string{"DOCKET_ADMIN_PASSWORD=" + secret})
	out := s.stdout.String() + s.stderr.String()
	if strings.Contains(out, secret) {
		t.Fatalf("DOCKET_ADMIN_PASSWORD was echoed:\n%s", out)
	}
	if !strings.Contains(out, "admin@localhost") {
		t.Fatalf("first start did not name the owner login:\n%s", out)
	}
	s.stop(t)
	if !adminPasswordMatches(t, data, secret) {
		t.Fatal("the owner's password is not the one given in DOCKET_ADMIN_PASSWORD")
	}
}

// TestFirstStartLoadsTriageExample: a fresh box has the example Assignment of
// examples/triage, live, owned by the owner, on DOCKET_MODEL when it is set.
func TestFirstStartLoadsTriageExample(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, []string{"DOCKET_MODEL=llama3.2:3b"})
	key := createKey(t, data)
	status, b := s.call(t, "GET", "/v2/teams/"+key.TeamID+"/agents", key.Key, nil)
	var got struct {
		Agents []struct {
			Name        string
			LiveBuildID *string                 `json:"live_build_id"`
			CreatedBy   *struct{ Email string } `json:"created_by"`
			LatestBuild struct {
				Config struct {
					Data struct {
						Models struct{ Agent struct{ Model string } }
						Input  string
					}
				}
			} `json:"latest_build"`
		}
	}
	if err := json.Unmarshal(b, &got); status != 200 || err != nil || len(got.Agents) != 1 {
		t.Fatalf("listAgents on a fresh box = %d %s (%v), want the Triage example", status, b, err)
	}
	a := got.Agents[0]
	if a.Name != "Triage" || a.LiveBuildID == nil || a.CreatedBy == nil || a.CreatedBy.Email != "admin@localhost" ||
		a.LatestBuild.Config.Data.Models.Agent.Model != "llama3.2:3b" || !strings.Contains(a.LatestBuild.Config.Data.Input, "request_human_approval") {
		t.Fatalf("first start's Assignment = %+v, want Triage, live, by admin@localhost, on DOCKET_MODEL", a)
	}
	s.stop(t)
}

func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, nil)
	key := createKey(t, data) // while the server runs, as the README says
	id := s.createAgent(t, key, "Survivor")
	s.stop(t)

	s = startServe(t, data, nil)
	status, b := s.call(t, "GET", "/v2/agents/"+id, key.Key, nil)
	if status != 200 {
		t.Fatalf("after restart getAgent = %d: %s (the key or the Assignment was lost)", status, b)
	}
	var got struct {
		Agent struct {
			Name        string
			LiveBuildID *string `json:"live_build_id"`
		}
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Agent.Name != "Survivor" {
		t.Fatalf("after restart the Assignment reads %s (%v), want name Survivor", b, err)
	}
	status, b = s.call(t, "GET", "/v2/teams/"+key.TeamID+"/agents", key.Key, nil)
	// Two: the example Triage Assignment of first start, and Survivor.
	if status != 200 || !strings.Contains(string(b), `"total":2`) || !strings.Contains(string(b), "You are Survivor.") {
		t.Fatalf("after restart listAgents = %d %s, want Survivor with its Setup beside Triage", status, b)
	}
	s.stop(t)
}

func TestSecondServeOnSameDataDirRefuses(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	first := startServe(t, data, nil)

	r := docket(t, "serve", "--addr", "127.0.0.1:0", "--data", data)
	if r.code == 0 {
		t.Fatalf("a second serve on the same data dir exited 0\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if r.took > 5*time.Second {
		t.Fatalf("the second serve took %s to give up, want it to refuse at once", r.took)
	}
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if !strings.Contains(r.stderr, "already using") || !strings.Contains(r.stderr, "pid "+pid) {
		t.Fatalf("second serve said %q, want it to name the running server (pid %s) that is already using the data dir", r.stderr, pid)
	}
	if strings.Contains(r.stdout, "docket is running") {
		t.Fatalf("the refused serve claimed to be running:\n%s", r.stdout)
	}
	if status, _ := first.call(t, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("the first server stopped answering /healthz (%d) after the second was refused", status)
	}
	first.stop(t)
	if v := docket(t, "audit", "verify", "--data", data); v.code != 0 {
		t.Fatalf("audit verify after the refused start: exit %d: %s", v.code, v.stderr)
	}
}

func TestAuditVerifyReportsTampering(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, nil)
	key := createKey(t, data)
	for _, name := range []string{"One", "Two", "Three"} {
		s.createAgent(t, key, name)
	}
	s.stop(t)

	r := docket(t, "audit", "verify", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, "intact") {
		t.Fatalf("audit verify on an untouched log: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	db := openDB(t, filepath.Join(data, "docket.db"))
	row := func(seq int) (id, op string) {
		t.Helper()
		if err := db.QueryRow("SELECT id, operation FROM audit_log WHERE seq = ?", seq).Scan(&id, &op); err != nil {
			t.Fatalf("audit row %d: %v", seq, err)
		}
		return id, op
	}
	broken := func(seq int, id string) {
		t.Helper()
		r := docket(t, "audit", "verify", "--data", data)
		out := r.stdout + r.stderr
		if r.code != 1 {
			t.Fatalf("audit verify exit %d, want 1 when row seq=%d no longer follows the chain\n%s", r.code, seq, out)
		}
		if !strings.Contains(out, "seq="+strconv.Itoa(seq)) || !strings.Contains(out, id) {
			t.Fatalf("audit verify said %q, want it to name the broken row seq=%d id=%s", out, seq, id)
		}
	}

	id3, op3 := row(3)
	if _, err := db.Exec("UPDATE audit_log SET operation = 'deleteAgent' WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	broken(3, id3)

	if _, err := db.Exec("UPDATE audit_log SET operation = ? WHERE seq = 3", op3); err != nil {
		t.Fatal(err)
	}
	if r := docket(t, "audit", "verify", "--data", data); r.code != 0 {
		t.Fatalf("audit verify after undoing the edit: exit %d: %s", r.code, r.stderr)
	}

	id4, _ := row(4)
	if _, err := db.Exec("DELETE FROM audit_log WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	broken(4, id4) // the row after the gap no longer links to its predecessor
}

func TestBackupWhileServing(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, nil)
	key := createKey(t, data)
	id := s.createAgent(t, key, "Backed up")

	file := filepath.Join(t.TempDir(), "docket-backup.db")
	r := docket(t, "backup", file, "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, file) {
		t.Fatalf("backup while serving: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if status, _ := s.call(t, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("server stopped answering during the backup: %d", status)
	}

	db := openDB(t, file)
	var check, name string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("backup integrity_check = %q, %v", check, err)
	}
	if err := db.QueryRow("SELECT name FROM agents WHERE id = ?", id).Scan(&name); err != nil || name != "Backed up" {
		t.Fatalf("backup lacks the Assignment created before it: name %q, %v", name, err)
	}

	if again := docket(t, "backup", file, "--data", data); again.code == 0 || !strings.Contains(again.stderr, "already exists") {
		t.Fatalf("a second backup onto the same file: exit %d %q, want a refusal (backup never overwrites)", again.code, again.stderr)
	}
	s.stop(t)
}

func TestOperationalEndpointsAndJSONLogs(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir(), nil, "--log-format", "json")

	for _, path := range []string{"/healthz", "/readyz"} {
		if status, b := s.call(t, "GET", path, "", nil); status != 200 {
			t.Fatalf("%s = %d: %s", path, status, b)
		}
	}

	resp, err := http.Get(s.URL + "/v2/docs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/v2/docs = %d %q, want an HTML page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	status, b := s.call(t, "GET", "/v2/docs", "", nil)
	if status != 200 || !strings.Contains(strings.ToLower(string(b)), "<html") {
		t.Fatalf("/v2/docs body is not an HTML document: %.200s", b)
	}

	status, b = s.call(t, "GET", "/v2/openapi.json", "", nil)
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if status != 200 || json.Unmarshal(b, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/v2/agents/{agent_id}"] == nil {
		t.Fatalf("/v2/openapi.json = %d, openapi %q, %d paths; want an OpenAPI 3.1 document with the agent paths", status, doc.OpenAPI, len(doc.Paths))
	}

	status, b = s.call(t, "GET", "/metrics", "", nil)
	if status != 200 || !strings.Contains(string(b), "docket_http_requests_total{") {
		t.Fatalf("/metrics = %d, want docket_http_requests_total counted for the requests above:\n%.500s", status, b)
	}

	s.stop(t)
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("--log-format json wrote a line that is not JSON: %q", sc.Text())
		}
		if entry["msg"] == nil || entry["level"] == nil || entry["time"] == nil {
			t.Fatalf("log line lacks time/level/msg: %q", sc.Text())
		}
		lines++
	}
	if lines < 3 || !strings.Contains(s.stderr.String(), `"docket started"`) || !strings.Contains(s.stderr.String(), `"docket stopped"`) {
		t.Fatalf("want JSON log lines for start, requests and stop; got %d:\n%s", lines, s.stderr)
	}
}

func TestKilledServerRestartsWithEverything(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, nil)
	key := createKey(t, data)
	id := s.createAgent(t, key, "Crash survivor")
	s.kill() // kill -9: no shutdown, the lock file keeps the dead pid

	s = startServe(t, data, nil)
	if status, b := s.call(t, "GET", "/v2/agents/"+id, key.Key, nil); status != 200 {
		t.Fatalf("after kill -9 and restart getAgent = %d: %s", status, b)
	}
	s.stop(t)
	if r := docket(t, "audit", "verify", "--data", data); r.code != 0 {
		t.Fatalf("audit verify after kill -9: exit %d: %s", r.code, r.stderr)
	}
}

func TestBusyAddressFailsClearlyAndKeepsFirstStartLogin(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	r := docket(t, "serve", "--addr", busy.Addr().String(), "--data", data)
	if r.code == 0 || !strings.Contains(r.stderr, busy.Addr().String()) || !strings.Contains(r.stderr, "--addr") {
		t.Fatalf("serve on a busy address: exit %d, stderr %q; want a failure naming the address and --addr", r.code, r.stderr)
	}

	// The failed first start must not have used up the one chance to show the password.
	s := startServe(t, data, nil)
	m := printedPassword.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("the first start that actually served printed no owner password:\n%s", s.stdout)
	}
	s.stop(t)
	if !adminPasswordMatches(t, data, m[1]) {
		t.Fatal("the printed password is not the owner's password")
	}
}
