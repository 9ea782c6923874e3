package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

// scenario is one request and what it must answer, PocketBase ApiScenario style: a real
// request over HTTP to a real server, then the status, the body and (in after) the effect
// on the database.
type scenario struct {
	name    string
	method  string
	path    string
	key     string // bearer key; empty sends none
	body    any    // nil, a string sent as is, or a value sent as JSON
	headers []string
	// wantStatus is the HTTP status the response must have.
	wantStatus int
	// wantError, when set, is the error code; the body must then be exactly
	// {"error": wantError, "message": "<non-empty sentence>"}.
	wantError string
	// wantContains are substrings the body must hold (for errors: the message, so a
	// 400 can be required to name its field).
	wantContains []string
	// after asserts response fields and the effect on the database.
	after func(t *testing.T, r *testkit.Response)
}

func (sc scenario) run(t *testing.T, s *testkit.Server) *testkit.Response {
	t.Helper()
	r := s.Do(t, sc.method, sc.path, sc.key, sc.body, sc.headers...)
	if r.Status != sc.wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body: %s", sc.method, sc.path, r.Status, sc.wantStatus, r.Body)
	}
	text := string(r.Body)
	if sc.wantError != "" {
		e := errorBody(t, r)
		if e.Code != sc.wantError {
			t.Fatalf("%s %s: error code %q, want %q; body: %s", sc.method, sc.path, e.Code, sc.wantError, r.Body)
		}
		text = e.Message
	} else if r.Status >= 400 {
		errorBody(t, r)
	}
	for _, want := range sc.wantContains {
		if !strings.Contains(text, want) {
			t.Errorf("%s %s: %q does not contain %q", sc.method, sc.path, text, want)
		}
	}
	if sc.after != nil && !t.Failed() {
		sc.after(t, r)
	}
	return r
}

// runScenarios runs each scenario as a subtest, in order: later scenarios may rely on
// what earlier ones changed.
func runScenarios(t *testing.T, s *testkit.Server, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}
}

type apiError struct {
	Code    string
	Message string
}

// errorBody checks that r is an error in the API's one shape, exactly
// {"error": code, "message": sentence} with a JSON content type, and returns it.
func errorBody(t *testing.T, r *testkit.Response) apiError {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error response has Content-Type %q, want application/json; body: %s", ct, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("error body is not a JSON object (status %d): %s", r.Status, r.Body)
	}
	if len(m) != 2 {
		t.Fatalf("error body has keys %v, want exactly error and message: %s", keysOf(m), r.Body)
	}
	code, ok1 := m["error"].(string)
	msg, ok2 := m["message"].(string)
	if !ok1 || !ok2 || code == "" || msg == "" {
		t.Fatalf("error body needs a non-empty string error and message: %s", r.Body)
	}
	return apiError{Code: code, Message: msg}
}

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// wantKeys fails unless m has exactly the given keys.
func wantKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	got := keysOf(m)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s has keys %v, want exactly %v", what, got, want)
	}
}

// unauthenticated are the two 401s every operation answers: no key, and a key the
// server does not know.
func unauthenticated(method, path string, body any) []scenario {
	return []scenario{
		{name: "401 without a key", method: method, path: path, body: body, wantStatus: 401, wantError: "unauthorized", wantContains: []string{"API key"}},
		{name: "401 with an unknown key", method: method, path: path, key: "dk_0000000000000000000000000000000000000000000", body: body,
			wantStatus: 401, wantError: "unauthorized", wantContains: []string{"invalid API key"}},
		{name: "401 with a non-bearer scheme", method: method, path: path, body: body, headers: []string{"Authorization", "Basic YWRtaW46YWRtaW4="},
			wantStatus: 401, wantError: "unauthorized"},
	}
}

// forbidden is a 403 for key's role on op.
func forbidden(name, method, path, key string, body any, op string) scenario {
	return scenario{name: name, method: method, path: path, key: key, body: body, wantStatus: 403, wantError: "forbidden", wantContains: []string{op}}
}

// notFound is a 404 for a resource key cannot see.
func notFound(name, method, path, key string, body any) scenario {
	return scenario{name: name, method: method, path: path, key: key, body: body, wantStatus: 404, wantError: "not_found"}
}

// badRequest is a 400 whose message names field.
func badRequest(name, method, path, key string, body any, field string) scenario {
	return scenario{name: name, method: method, path: path, key: key, body: body, wantStatus: 400, wantError: "invalid_request", wantContains: []string{field}}
}

// world is the cast most scenarios need: the default team with a key per role, and a
// second team with resources of its own that the first must never reach.
type world struct {
	s                            *testkit.Server
	team                         string
	owner, admin, member, viewer string
	ownerKeyID                   string
	otherTeam, otherKey          string
	otherAgent, otherBuild       string
	otherFolder                  string
}

func newWorld(t *testing.T, opts testkit.Options) *world {
	t.Helper()
	s := testkit.StartServer(t, opts)
	w := &world{s: s, team: s.TeamID, owner: s.OwnerKey}
	w.admin, _ = s.Member(t, store.RoleAdmin)
	w.member, _ = s.Member(t, store.RoleMember)
	w.viewer, _ = s.Member(t, store.RoleViewer)
	w.ownerKeyID = keyID(t, s, s.OwnerKey)
	w.otherTeam, w.otherKey = s.NewTeam(t, "Other")
	w.otherAgent, w.otherBuild = createAgent(t, s, w.otherTeam, w.otherKey, "Theirs", true)
	w.otherFolder = createFolder(t, s, w.otherTeam, w.otherKey, "Their folder", nil)
	return w
}

// keyID is the id of the API key raw.
func keyID(t *testing.T, s *testkit.Server, raw string) string {
	t.Helper()
	p, err := s.Store.Authenticate(context.Background(), raw)
	if err != nil {
		t.Fatalf("authenticate test key: %v", err)
	}
	return p.APIKeyID
}

// randomID is a well-formed id that names nothing.
func randomID() string { return store.NewID() }

func setupConfig(sop string) map[string]any { return testkit.SetupConfig(sop) }

// createAgent creates an agent over the API, with a first (live) setup when withBuild.
func createAgent(t *testing.T, s *testkit.Server, team, key, name string, withBuild bool) (agentID, buildID string) {
	t.Helper()
	body := map[string]any{"name": name}
	if withBuild {
		body["build"] = map[string]any{"name": name + " v1", "config": setupConfig("You are " + name + ".")}
	}
	r := s.Do(t, "POST", "/v2/teams/"+team+"/agents", key, body)
	if r.Status != 201 {
		t.Fatalf("create agent %q: status %d: %s", name, r.Status, r.Body)
	}
	var out struct {
		Agent struct{ ID string }
		Build *struct{ ID string }
	}
	r.Decode(t, &out)
	if out.Build != nil {
		buildID = out.Build.ID
	}
	return out.Agent.ID, buildID
}

// createFolder creates a folder over the API.
func createFolder(t *testing.T, s *testkit.Server, team, key, name string, parent *string) string {
	t.Helper()
	r := s.Do(t, "POST", "/v2/teams/"+team+"/agent-folders", key, map[string]any{"name": name, "parent_folder_id": parent})
	if r.Status != 201 {
		t.Fatalf("create folder %q: status %d: %s", name, r.Status, r.Body)
	}
	var out struct{ Folder struct{ ID string } }
	r.Decode(t, &out)
	return out.Folder.ID
}

// createRevision adds a draft setup to an agent over the API.
func createRevision(t *testing.T, s *testkit.Server, key, agent, name string, config any) string {
	t.Helper()
	body := map[string]any{"name": name}
	if config != nil {
		body["config"] = config
	}
	r := s.Do(t, "POST", "/v2/agents/"+agent+"/revisions", key, body)
	if r.Status != 201 {
		t.Fatalf("create revision %q: status %d: %s", name, r.Status, r.Body)
	}
	var out struct{ Build struct{ ID string } }
	r.Decode(t, &out)
	return out.Build.ID
}

type auditEntry struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	TeamID    string `json:"team_id"`
	Actor     struct {
		UserID   *string `json:"user_id"`
		Email    *string `json:"email"`
		APIKeyID *string `json:"api_key_id"`
	} `json:"actor"`
	Channel   string `json:"channel"`
	Operation string `json:"operation"`
	Target    struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	Outcome string `json:"outcome"`
}

type auditPage struct {
	Entries []auditEntry `json:"entries"`
	Total   int          `json:"total"`
}

// audit reads team's audit log through the API with the given query filters.
func audit(t *testing.T, s *testkit.Server, team, key string, filters url.Values) auditPage {
	t.Helper()
	if filters.Get("limit") == "" {
		filters.Set("limit", "100")
	}
	r := s.Do(t, "GET", "/v2/teams/"+team+"/audit-log?"+filters.Encode(), key, nil)
	if r.Status != 200 {
		t.Fatalf("list audit log: status %d: %s", r.Status, r.Body)
	}
	var p auditPage
	r.Decode(t, &p)
	return p
}

// wantAudited fails unless the team's log holds a row for op on target, written through
// the API by the key keyID with outcome.
func wantAudited(t *testing.T, s *testkit.Server, team, op, target, keyID, outcome string) auditEntry {
	t.Helper()
	p := audit(t, s, team, s.OwnerKey, url.Values{"operation": {op}})
	for _, e := range p.Entries {
		if e.Operation != op {
			t.Fatalf("operation filter %q returned an entry for %q", op, e.Operation)
		}
		if (target == "" || e.Target.ID == target) && e.Outcome == outcome && e.Actor.APIKeyID != nil && *e.Actor.APIKeyID == keyID {
			if e.Channel != "api" {
				t.Fatalf("audit entry for %s has channel %q, want api", op, e.Channel)
			}
			return e
		}
	}
	t.Fatalf("no %s audit entry for %s on %q by key %s; entries: %+v", outcome, op, target, keyID, p.Entries)
	return auditEntry{}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func field(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v is not an object", strings.Join(path, "."), cur)
		}
		if cur, ok = obj[p]; !ok {
			t.Fatalf("%s: key %q missing in %v", strings.Join(path, "."), p, keysOf(obj))
		}
	}
	return cur
}

func str(v any) string {
	if v == nil {
		return "<null>"
	}
	return fmt.Sprint(v)
}
