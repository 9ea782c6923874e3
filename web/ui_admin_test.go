package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

// uiClient is a signed-in dashboard session spoken to over HTTP, without a browser: it
// sees redirects and statuses as they are.
type uiClient struct {
	s      *testkit.Server
	cookie *http.Cookie
}

// uiSession signs user in by creating a session the way the sign-in form does.
func uiSession(t testing.TB, s *testkit.Server, team, user string) *uiClient {
	t.Helper()
	token, err := s.Store.CreateSession(context.Background(), store.Actor{TeamID: team, UserID: user, Channel: "ui", Operation: "login"},
		store.SessionLimits{Idle: time.Hour, Max: time.Hour}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &uiClient{s: s, cookie: &http.Cookie{Name: "docket_session", Value: token}}
}

func (c *uiClient) do(t testing.TB, method, path string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(c.cookie)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// page GETs a page and fails unless it answers want.
func (c *uiClient) page(t testing.TB, path string, want int) string {
	t.Helper()
	status, _, body := c.do(t, "GET", path, nil)
	if status != want {
		t.Fatalf("GET %s: %d, want %d\n%.2000s", path, status, want, body)
	}
	return body
}

// flash is the notice an action left for the next page (its cookie), unescaped.
func flashOf(h http.Header) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "docket_flash" {
			v, _ := url.QueryUnescape(c.Value)
			return v
		}
	}
	return ""
}

// uiAdminWorld is a team with a queue of labelled cases, an Assignment with two Setups
// and a webhook, and sessions for an owner and a viewer.
type uiAdminWorld struct {
	s             *testkit.Server
	owner, viewer *uiClient
	viewerKey     string
	queue, agent  string
	live, draft   string
	cases         []string
}

func newUIAdminWorld(t *testing.T) *uiAdminWorld {
	t.Helper()
	s := testkit.StartServer(t, testkit.Options{})
	w := &uiAdminWorld{s: s, owner: uiSession(t, s, s.TeamID, s.OwnerID)}
	var viewerID string
	w.viewerKey, viewerID = s.Member(t, store.RoleViewer)
	w.viewer = uiSession(t, s, s.TeamID, viewerID)
	q := s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/queues", s.OwnerKey, map[string]any{"name": "Refunds"})
	w.queue = q.JSON(t)["queue"].(map[string]any)["id"].(string)
	var batch []map[string]any
	for i := range 30 {
		batch = append(batch, map[string]any{"title": fmt.Sprintf("Order %d", i), "data": fmt.Sprintf(`{"order":%d,"note":"%s"}`, i, []string{"refund asked", "wrong size"}[i%2]),
			"labels": []any{map[string]any{"key": "region", "value": []string{"eu", "us", "apac"}[i%3]}}})
	}
	r := s.Do(t, "POST", "/v2/queues/"+w.queue+"/cases", s.OwnerKey, map[string]any{"cases": batch})
	for _, c := range r.JSON(t)["added_cases"].([]any) {
		w.cases = append(w.cases, c.(map[string]any)["id"].(string))
	}
	a := s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{"name": "Refunder", "build": map[string]any{"name": "v1",
		"config": map[string]any{"version": "v2", "data": map[string]any{"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}}, "input": "Refund politely.\nAsk when unsure."}}}})
	body := a.JSON(t)
	w.agent = body["agent"].(map[string]any)["id"].(string)
	w.live = body["build"].(map[string]any)["id"].(string)
	d := s.Do(t, "POST", "/v2/agents/"+w.agent+"/revisions", s.OwnerKey, map[string]any{"name": "v2",
		"config": map[string]any{"version": "v2", "data": map[string]any{"models": map[string]any{"agent": map[string]any{"model": "qwen3:8b"}}, "input": "Refund politely.\nNever refund twice."}}})
	w.draft = d.JSON(t)["build"].(map[string]any)["id"].(string)
	s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/webhooks", s.OwnerKey, map[string]any{"url": "https://example.com/hook"})
	return w
}

// TestUIAdminPagesRender opens every page of this slice as an owner and a viewer: each
// answers, shows its content, and shows a viewer no control that changes anything.
func TestUIAdminPagesRender(t *testing.T) {
	w := newUIAdminWorld(t)
	pages := map[string][]string{
		"/queues":                 {"Refunds", casesLink(w.queue)},
		"/cases?queue=" + w.queue: {"Order 29", "region", `id="bulk-form"`, `id="all-matching"`},
		"/cases?queue=" + w.queue + "&label=region:eu&q=refund": {"All <strong id=\"matching-count\">5</strong>", "<mark>refund</mark>"},
		"/cases/" + w.cases[0]:                           {"Order 0", "Created", `id="case-reprocess"`},
		"/assignments":                                   {"Refunder", "qwen3:4b"},
		"/assignments/" + w.agent:                        {"Refund politely.", "#2", `data-promote="` + w.draft + `"`},
		"/assignments/" + w.agent + "/setups/" + w.draft: {"Compared with the live Setup", "Never refund twice.", "Ask when unsure.", `id="promote"`},
		"/assignments/" + w.agent + "/setups/new":        {`name="model" value="qwen3:4b"`, "request_human_approval"},
		"/assignments/new":                               {`id="assignment-form"`},
		"/settings/members":                              {"admin@localhost", `id="invite-form"`},
		"/settings/api-keys":                             {`id="key-form"`},
		"/settings/webhooks":                             {"https://example.com/hook", `id="webhook-form"`},
		"/settings/deliveries":                           {"No deliveries"},
	}
	for path, wants := range pages {
		body := w.owner.page(t, path, 200)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s as owner lacks %q", path, want)
			}
		}
	}
	if status, h, _ := w.owner.do(t, "GET", "/cases", nil); status != http.StatusSeeOther || h.Get("Location") != casesLink(w.queue) {
		t.Errorf("GET /cases: %d to %q, want 303 to the first queue", status, h.Get("Location"))
	}

	viewerPages := map[string][]string{
		"/cases?queue=" + w.queue:                        {`id="bulk-form"`, `name="case_id"`, "bulk-reprocess"},
		"/cases/" + w.cases[0]:                           {`id="case-reprocess"`, `id="case-delete"`},
		"/assignments/" + w.agent:                        {"data-promote", `id="edit-setup"`},
		"/assignments/" + w.agent + "/setups/" + w.draft: {`id="promote"`, `id="edit-from"`},
		"/settings/members":                              {`id="invite-form"`},
	}
	for path, hidden := range viewerPages {
		body := w.viewer.page(t, path, 200)
		for _, h := range hidden {
			if strings.Contains(body, h) {
				t.Errorf("GET %s as viewer shows %q", path, h)
			}
		}
	}
	w.viewer.page(t, "/settings/api-keys", http.StatusForbidden)
	w.viewer.page(t, "/assignments/new", http.StatusForbidden)
}

func casesLink(queue string) string { return "/cases?queue=" + queue }

// TestUIViewerPostsAreRefused: a viewer's session cannot change anything by posting the
// forms it is not shown; each refusal is audited with channel ui, and nothing changed.
func TestUIViewerPostsAreRefused(t *testing.T) {
	w := newUIAdminWorld(t)
	posts := map[string]url.Values{
		"/queues/" + w.queue + "/cases/bulk-reprocess":                {"all_matching": {"1"}},
		"/queues/" + w.queue + "/cases/bulk-delete":                   {"case_id": {w.cases[0]}},
		"/queues/" + w.queue + "/cases/bulk-add-labels":               {"case_id": {w.cases[0]}, "add_label": {"x"}},
		"/cases/" + w.cases[0] + "/delete":                            {},
		"/assignments/" + w.agent + "/setups/" + w.draft + "/promote": {},
		"/assignments/" + w.agent + "/setups":                         {"name": {"x"}, "model": {"m"}, "sop": {"x"}},
		"/assignments":                                                {"agent_name": {"x"}, "model": {"m"}, "sop": {"x"}},
		"/settings/api-keys":                                          {"name": {"x"}},
		"/settings/members":                                           {"email": {"a@b.c"}, "role": {"viewer"}, "password": {"12345678"}},
	}
	for path, form := range posts {
		status, _, body := w.viewer.do(t, "POST", path, form)
		if status != http.StatusForbidden || !strings.Contains(body, "Your role (viewer) cannot do this") {
			t.Errorf("POST %s as viewer: %d, want 403 saying why\n%.500s", path, status, body)
		}
	}
	var denied int
	if err := openServerDB(t, w.s).QueryRow("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND channel = 'ui'").Scan(&denied); err != nil {
		t.Fatal(err)
	}
	if denied != len(posts) {
		t.Errorf("%d denied ui audit rows, want %d", denied, len(posts))
	}
	r := w.s.Do(t, "GET", "/v2/queues/"+w.queue+"/cases?limit=1", w.viewerKey, nil)
	if total := r.JSON(t)["total"].(float64); int(total) != len(w.cases) {
		t.Errorf("the queue has %v cases after refused posts, want %d", total, len(w.cases))
	}
	a := w.s.Do(t, "GET", "/v2/agents/"+w.agent, w.viewerKey, nil)
	if live := a.JSON(t)["agent"].(map[string]any)["live_build_id"]; live != w.live {
		t.Errorf("live Setup %v after a refused promote, want %s", live, w.live)
	}
}

// TestUISetupEditorSavesWhatItShows: the editor saves a new draft Setup with the tools
// and approval policy ticked and the rest of the config it started from; an untouched
// default tool set stays "the default"; a broken rule comes back next to its field with
// what was typed kept.
func TestUISetupEditorSavesWhatItShows(t *testing.T) {
	w := newUIAdminWorld(t)
	path := "/assignments/" + w.agent + "/setups"
	form := url.Values{"from": {w.live}, "name": {"Stricter"}, "model": {"qwen3:4b"}, "sop": {"Refund politely.\r\nAsk first."},
		"tools": {"complete_case", "request_human_approval"}, "require": {"complete_case"}, "distinct_approver": {"1"},
		"expires_after": {"24h"}, "on_expiry": {"fail"}}
	status, h, body := w.owner.do(t, "POST", path, form)
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), path+"/") {
		t.Fatalf("saving the Setup: %d to %q\n%.1000s", status, h.Get("Location"), body)
	}
	build := strings.TrimPrefix(h.Get("Location"), path+"/")
	r := w.s.Do(t, "GET", "/v2/agents/"+w.agent+"/revisions/"+build, w.s.OwnerKey, nil)
	var got struct {
		Build struct {
			ParentBuildID string `json:"parent_build_id"`
			Config        struct {
				Data struct {
					Input    string
					Tools    []string
					Approval map[string]any
				}
			}
		}
	}
	r.Decode(t, &got)
	d := got.Build.Config.Data
	if d.Input != "Refund politely.\nAsk first." || strings.Join(d.Tools, ",") != "complete_case,request_human_approval" {
		t.Errorf("saved input %q and tools %v", d.Input, d.Tools)
	}
	if d.Approval["distinct_approver"] != true || d.Approval["expires_after"] != "24h" || d.Approval["on_expiry"] != "fail" ||
		fmt.Sprint(d.Approval["require"]) != "[complete_case]" {
		t.Errorf("saved approval policy %v", d.Approval)
	}
	if got.Build.ParentBuildID != w.live {
		t.Errorf("the new Setup's parent is %q, want the one edited (%s)", got.Build.ParentBuildID, w.live)
	}

	// The editor opened on the live Setup ticks the default set; saved as is, it stays the default.
	page := w.owner.page(t, path+"/new", 200)
	var defaults []string
	for _, m := range regexp.MustCompile(`name="tools" value="([a-z_]+)" checked`).FindAllStringSubmatch(page, -1) {
		defaults = append(defaults, m[1])
	}
	if len(defaults) < 5 {
		t.Fatalf("the editor ticks %v by default", defaults)
	}
	status, h, _ = w.owner.do(t, "POST", path, url.Values{"from": {w.live}, "name": {"Same tools"}, "model": {"qwen3:4b"}, "sop": {"x"}, "tools": defaults})
	if status != http.StatusSeeOther {
		t.Fatalf("saving with the default tools: %d", status)
	}
	r = w.s.Do(t, "GET", "/v2/agents/"+w.agent+"/revisions/"+strings.TrimPrefix(h.Get("Location"), path+"/"), w.s.OwnerKey, nil)
	if strings.Contains(string(r.Body), `"tools"`) {
		t.Errorf("an untouched default tool set was saved as a list: %s", r.Body)
	}

	before := w.s.Do(t, "GET", "/v2/agents/"+w.agent+"/revisions?limit=1", w.s.OwnerKey, nil).JSON(t)["total"]
	for field, bad := range map[string]url.Values{
		"model":         {"model": {"qwen3 4b"}, "sop": {"x"}},
		"sop":           {"model": {"qwen3:4b"}, "sop": {" \r\n "}},
		"expires_after": {"model": {"qwen3:4b"}, "sop": {"Kept text"}, "expires_after": {"soon"}},
		"name":          {"model": {"qwen3:4b"}, "sop": {"x"}, "name": {" "}},
	} {
		if bad.Get("name") == "" && field != "name" {
			bad.Set("name", "Broken")
		}
		bad.Set("from", w.live)
		status, _, body := w.owner.do(t, "POST", path, bad)
		if status != http.StatusBadRequest || !strings.Contains(body, `id="err-`+field+`"`) {
			t.Errorf("a bad %s: %d, want 400 with the error next to the field\n%.600s", field, status, body)
		}
		if field == "expires_after" && !strings.Contains(body, "Kept text</textarea>") {
			t.Errorf("the refused form lost the SOP")
		}
	}
	if after := w.s.Do(t, "GET", "/v2/agents/"+w.agent+"/revisions?limit=1", w.s.OwnerKey, nil).JSON(t)["total"]; after != before {
		t.Errorf("refused forms created Setups: %v, then %v", before, after)
	}
}

// TestUICreateAssignment: a new Assignment from the form has its first Setup live; a
// missing name is shown next to the name field.
func TestUICreateAssignment(t *testing.T) {
	w := newUIAdminWorld(t)
	status, _, body := w.owner.do(t, "POST", "/assignments", url.Values{"agent_name": {""}, "model": {"qwen3:4b"}, "sop": {"Triage tickets."}})
	if status != http.StatusBadRequest || !strings.Contains(body, `id="err-agent_name"`) || !strings.Contains(body, "Triage tickets.</textarea>") {
		t.Fatalf("a nameless Assignment: %d\n%.600s", status, body)
	}
	status, h, _ := w.owner.do(t, "POST", "/assignments", url.Values{"agent_name": {"Triage"}, "description": {"Sorts tickets"}, "model": {"qwen3:4b"}, "sop": {"Triage tickets."}})
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/assignments/") {
		t.Fatalf("creating an Assignment: %d to %q", status, h.Get("Location"))
	}
	if f := flashOf(h); !strings.Contains(f, "Created Triage") {
		t.Errorf("notice %q", f)
	}
	id := strings.TrimPrefix(h.Get("Location"), "/assignments/")
	a := w.s.Do(t, "GET", "/v2/agents/"+id, w.s.OwnerKey, nil).JSON(t)["agent"].(map[string]any)
	if a["live_build_id"] == nil || a["description"] != "Sorts tickets" {
		t.Errorf("the new Assignment: %v", a)
	}
	var n int
	if err := openServerDB(t, w.s).QueryRow(`SELECT count(*) FROM audit_log WHERE operation = 'createAgent' AND target_id = ? AND channel = 'ui'
		AND user_id = ? AND outcome = 'success'`, id, w.s.OwnerID).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d ui audit rows for the new Assignment by its creator (%v), want 1", n, err)
	}
}

// TestUIBulkActions: each bulk action of the cases page changes the ticked cases, or all
// matching the filter the page showed, and says how many; what it cannot do is said too.
func TestUIBulkActions(t *testing.T) {
	w := newUIAdminWorld(t)
	base := "/queues/" + w.queue + "/cases/"
	back := "/cases?queue=" + w.queue + "&label=region:eu"
	count := func(query string) int {
		r := w.s.Do(t, "GET", "/v2/queues/"+w.queue+"/cases?limit=1&"+query, w.s.OwnerKey, nil)
		return int(r.JSON(t)["total"].(float64))
	}
	steps := []struct {
		verb   string
		form   url.Values
		notice string
		check  func() bool
	}{
		{"bulk-update-priority", url.Values{"all_matching": {"1"}, "label": {"region:eu"}, "priority_to": {"high"}},
			"Set the priority of 10 cases to high.", func() bool { return count("priority=high") == 10 }},
		{"bulk-add-labels", url.Values{"all_matching": {"1"}, "label": {"region:eu"}, "q": {"refund"}, "add_label": {"vip"}},
			"Labelled 5 cases vip.", func() bool { return count("label=vip") == 5 }},
		{"bulk-update-status", url.Values{"case_id": {w.cases[0], w.cases[1]}, "status_to": {"failed"}},
			"Set 2 cases to Failed.", func() bool { return count("display_status=failed") == 2 }},
		{"bulk-update-status", url.Values{"case_id": {w.cases[0]}, "status_to": {"failed"}},
			"Set 0 cases to Failed. 1 case was left as it was: already in that status", nil},
		{"bulk-delete", url.Values{"all_matching": {"1"}, "label": {"vip"}},
			"Deleted 5 cases.", func() bool { return count("label=vip") == 0 && count("") == 25 }},
		{"bulk-delete", url.Values{}, "Select the cases first", nil},
		{"bulk-add-labels", url.Values{"case_id": {w.cases[2]}}, "Labels: give at least one label", nil},
		{"bulk-reprocess", url.Values{"case_id": {w.cases[2]}}, "has no enabled case trigger", nil},
	}
	for _, st := range steps {
		st.form.Set("back", back)
		status, h, _ := w.owner.do(t, "POST", base+st.verb, st.form)
		if status != http.StatusSeeOther || h.Get("Location") != back {
			t.Fatalf("%s: %d to %q, want back to the list", st.verb, status, h.Get("Location"))
		}
		if f := flashOf(h); !strings.Contains(f, st.notice) {
			t.Errorf("%s %v: notice %q, want %q", st.verb, st.form, f, st.notice)
		}
		if st.check != nil && !st.check() {
			t.Errorf("%s %v did not change what it said", st.verb, st.form)
		}
	}
	ids := url.Values{"back": {"https://evil.example/"}}
	for range 101 {
		ids.Add("case_id", w.cases[3])
	}
	if _, h, _ := w.owner.do(t, "POST", base+"bulk-delete", ids); !strings.Contains(flashOf(h), "At most 100") || h.Get("Location") != casesLink(w.queue) {
		t.Errorf("101 ticked cases: notice %q to %q", flashOf(h), h.Get("Location"))
	}
}
