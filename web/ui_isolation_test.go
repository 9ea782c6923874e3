package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// TestUIHidesOtherTeams: every dashboard page and action that names another team's
// Job, gate, case, queue, Assignment, Setup, file, API key or webhook answers 404 to an
// owner of this team (an action may instead return with the store's "not found" notice),
// and no action changes anything there.
func TestUIHidesOtherTeams(t *testing.T) {
	t.Parallel()
	j := newJobs(t, nil)
	s := j.s
	j.fake.On(testkit.LastUserContains("note")).CallTool("memory_write", map[string]any{"path": "a.md", "content": "x"})
	j.fake.Default().Reply("done")

	// The other team's things.
	cfg := setupConfig("x")
	cfg["data"].(map[string]any)["approval"] = map[string]any{"require": []string{"memory_write"}}
	r := s.Do(t, "POST", "/v2/teams/"+j.otherTeam+"/agents", j.otherKey, map[string]any{"name": "Gated", "build": map[string]any{"name": "v1", "config": cfg}})
	if r.Status != 201 {
		t.Fatalf("create their assignment: %d %s", r.Status, r.Body)
	}
	agent, build := field(t, r.JSON(t), "agent", "id").(string), field(t, r.JSON(t), "build", "id").(string)
	r = s.Do(t, "POST", "/v2/teams/"+j.otherTeam+"/runs", j.otherKey, map[string]any{"agent_id": agent, "message": "take a note"})
	if r.Status != 201 {
		t.Fatalf("start their run: %d %s", r.Status, r.Body)
	}
	run := field(t, r.JSON(t), "run", "id").(string)
	var gate string
	waitUntil(t, 10*time.Second, "their run to wait on a gate", func() bool {
		g := s.Do(t, "GET", "/v2/runs/"+run, j.otherKey, nil).JSON(t)["pending_human_request"]
		if m, ok := g.(map[string]any); ok {
			gate, _ = m["id"].(string)
		}
		return gate != ""
	})
	queue := apiCreateQueue(t, s, j.otherTeam, j.otherKey, "Theirs")
	r = s.Do(t, "POST", "/v2/queues/"+queue+"/cases", j.otherKey, map[string]any{"case": map[string]any{"title": "their case"}})
	if r.Status != 201 {
		t.Fatalf("create their case: %d %s", r.Status, r.Body)
	}
	caseID := r.JSON(t)["added_cases"].([]any)[0].(map[string]any)["id"].(string)
	upload(t, s, j.otherTeam, j.otherKey, "secret/plan.txt", "theirs")
	hook := createWebhook(t, s, j.otherTeam, j.otherKey, "https://theirs.example/")
	key := keyID(t, s, j.otherKey)

	email, _ := s.User(t, store.RoleOwner, "owner-password")
	b := newBrowserClient(s)
	b.signIn(t, email, "owner-password")

	for _, path := range []string{"/jobs/" + run, "/jobs/" + run + "/panel", "/jobs/" + run + "/events", "/inbox/" + gate,
		"/cases/" + caseID, "/cases?queue=" + queue, "/assignments/" + agent, "/assignments/" + agent + "/setups/" + build,
		"/assignments/" + agent + "/setups/new", "/files/download/secret/plan.txt"} {
		if p := b.get(t, path); p.status != http.StatusNotFound {
			t.Errorf("GET %s of another team: %d, want 404\n%.300s", path, p.status, p.body)
		}
	}
	posts := map[string]url.Values{
		"/jobs/" + run + "/stop":                                  {},
		"/jobs/" + run + "/messages":                              {"message": {"hi"}},
		"/inbox/" + gate + "/respond":                             {"decision": {"approve"}},
		"/cases/" + caseID + "/delete":                            {},
		"/queues/" + queue + "/cases/bulk-delete":                 {"case_id": {caseID}},
		"/queues/" + queue + "/cases/bulk-reprocess":              {"case_id": {caseID}},
		"/assignments/" + agent + "/setups":                       {"name": {"v2"}, "sop": {"x"}},
		"/assignments/" + agent + "/setups/" + build + "/promote": {},
		"/settings/api-keys/" + key + "/revoke":                   {},
		"/settings/webhooks/" + hook + "/delete":                  {},
		"/settings/webhooks/" + hook + "/test":                    {},
	}
	for path, form := range posts {
		p := b.post(t, path, form)
		if p.status == http.StatusNotFound {
			continue
		}
		// An action may also return to its page with the store's "not found" notice.
		if p.status == http.StatusSeeOther && strings.Contains(p.header.Get("Set-Cookie"), "not+found") {
			continue
		}
		t.Errorf("POST %s of another team: %d %s %s, want 404\n%.300s", path, p.status, p.header.Get("Location"), p.header.Get("Set-Cookie"), p.body)
	}

	// Nothing of theirs changed.
	if st := field(t, s.Do(t, "GET", "/v2/runs/"+run, j.otherKey, nil).JSON(t), "run", "status"); st != "waiting" {
		t.Errorf("their run is %v after our actions, want waiting", st)
	}
	if r := s.Do(t, "GET", "/v2/cases/"+caseID, j.otherKey, nil); r.Status != 200 {
		t.Errorf("their case after our actions: %d", r.Status)
	}
	if r := s.Do(t, "GET", "/v2/teams/"+j.otherTeam+"/webhooks", j.otherKey, nil); r.Status != 200 || !strings.Contains(string(r.Body), hook) {
		t.Errorf("their webhook after our actions: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/v2/teams/"+j.otherTeam+"/files/content/secret/plan.txt", j.otherKey, nil); r.Status != 200 {
		t.Errorf("their file (read with their key, so not revoked) after our actions: %d", r.Status)
	}
}
