package web_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
	"docket/web"
)

// browserClient is a cookie-keeping HTTP client that does not follow redirects, so a
// test sees each answer as a browser receives it.
type browserClient struct {
	s *testkit.Server
	c *http.Client
}

func newBrowserClient(s *testkit.Server) *browserClient {
	jar, _ := cookiejar.New(nil)
	return &browserClient{s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer with its body read.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browserClient) do(t *testing.T, method, path string, form url.Values, headers ...string) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browserClient) get(t *testing.T, path string) page { return b.do(t, "GET", path, nil) }

func (b *browserClient) post(t *testing.T, path string, form url.Values, headers ...string) page {
	t.Helper()
	return b.do(t, "POST", path, form, headers...)
}

// signIn signs in through the form and requires it to succeed.
func (b *browserClient) signIn(t *testing.T, email, password string) {
	t.Helper()
	p := b.post(t, "/login", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("sign in as %s: %d %s, want 303 to /\n%s", email, p.status, p.header.Get("Location"), p.body)
	}
}

func (b *browserClient) sessionCookie(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(b.s.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "docket_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestUISignInAndRedirects(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)

	if p := b.get(t, "/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("dashboard signed out: %d → %q, want 303 to /login", p.status, p.header.Get("Location"))
	}
	if p := b.get(t, "/jobs?status=failed"); p.header.Get("Location") != "/login?next=%2Fjobs%3Fstatus%3Dfailed" {
		t.Fatalf("a page signed out redirects to %q, want the sign-in page that returns to it", p.header.Get("Location"))
	}
	login := b.get(t, "/login")
	if login.status != http.StatusOK || !strings.Contains(login.body, `name="password"`) {
		t.Fatalf("sign-in page: %d\n%s", login.status, login.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if login.header.Get(h) == "" {
			t.Errorf("sign-in page lacks the %s header", h)
		}
	}
	// A crafted next cannot send a person to another site.
	// Browsers drop tabs and newlines from a Location, so "/\t/evil.example" is "//evil.example" to them.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\x00/evil.example"} {
		p := b.post(t, "/login", url.Values{"email": {email}, "password": {"member-password"}, "next": {next}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
			t.Fatalf("sign in with next=%q redirects to %q, want /", next, p.header.Get("Location"))
		}
	}
	p := b.post(t, "/login", url.Values{"email": {email}, "password": {"member-password"}, "next": {"/jobs?status=failed"}})
	if p.header.Get("Location") != "/jobs?status=failed" {
		t.Fatalf("sign in with a local next redirects to %q", p.header.Get("Location"))
	}
	for _, c := range b.c.Jar.Cookies(mustURL(t, s.URL)) {
		if c.Name == "docket_session" && len(c.Value) < 40 {
			t.Fatalf("session token %q is too short to be unguessable", c.Value)
		}
	}
	for path, want := range map[string]string{"/": "Dashboard", "/inbox": "Inbox", "/jobs": "Jobs"} {
		if p := b.get(t, path); p.status != http.StatusOK || !strings.Contains(p.body, "<h1>"+want+"</h1>") {
			t.Fatalf("GET %s signed in: %d, want the %s page", path, p.status, want)
		}
	}
	if p := b.get(t, "/login"); p.status != http.StatusSeeOther {
		t.Fatalf("the sign-in page for someone signed in: %d, want a redirect to the dashboard", p.status)
	}
	if p := b.get(t, "/no-such-page"); p.status != http.StatusNotFound || !strings.Contains(p.body, "Page not found") {
		t.Fatalf("unknown page: %d, want an HTML 404", p.status)
	}
	if r := s.Do(t, "GET", "/v2/nope", s.OwnerKey, nil); r.Status != 404 || !strings.Contains(string(r.Body), `"error":"not_found"`) {
		t.Fatalf("unknown API path: %d %s, want the JSON 404", r.Status, r.Body)
	}
	// The API still reads a form-typed body as JSON (curl -d), the dashboard as a form.
	r := s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, `{"name":"Curl"}`, "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != http.StatusCreated {
		t.Fatalf("createAgent with curl's form content type: %d %s", r.Status, r.Body)
	}
}

func TestUISignInIsRateLimited(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)
	for i := range 5 {
		p := b.post(t, "/login", url.Values{"email": {email}, "password": {"wrong"}})
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Wrong email or password") {
			t.Fatalf("wrong password %d: %d, want 401 saying so", i+1, p.status)
		}
	}
	p := b.post(t, "/login", url.Values{"email": {email}, "password": {"member-password"}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed sign-ins for "+email) {
		t.Fatalf("sixth attempt within a minute: %d Retry-After=%q, want 429 that says to wait\n%s", p.status, p.header.Get("Retry-After"), p.body)
	}
	// Another account from the same address is not locked out by this one.
	other, _ := s.User(t, store.RoleViewer, "viewer-password")
	newBrowserClient(s).signIn(t, other, "viewer-password")

	r := s.Do(t, "GET", "/v2/teams/"+s.TeamID+"/audit-log?operation=login&limit=100", s.OwnerKey, nil)
	var out struct {
		Entries []struct{ Outcome, Channel string }
	}
	r.Decode(t, &out)
	denied := 0
	for _, e := range out.Entries {
		if e.Outcome == "denied" && e.Channel == "ui" {
			denied++
		}
	}
	if denied != 5 {
		t.Fatalf("audit holds %d refused sign-ins, want the 5 wrong passwords", denied)
	}
}

func TestUISessionEndsAtItsAbsoluteLimit(t *testing.T) {
	t.Parallel()
	const max = 1500 * time.Millisecond
	s := testkit.StartServer(t, testkit.Options{Web: func(c *web.Config) { c.SessionMax = max }})
	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)
	start := time.Now()
	b.signIn(t, email, "member-password")
	// Keep using it: activity does not extend a session past its absolute limit.
	for {
		p := b.get(t, "/inbox")
		if p.status == http.StatusSeeOther {
			if took := time.Since(start); took < max {
				t.Fatalf("session ended after %s, before its %s limit", took, max)
			}
			if !strings.HasPrefix(p.header.Get("Location"), "/login") {
				t.Fatalf("expired session redirects to %q", p.header.Get("Location"))
			}
			break
		}
		if time.Since(start) > max+2*time.Second {
			t.Fatalf("session still works %s after sign-in, limit %s", time.Since(start), max)
		}
		time.Sleep(50 * time.Millisecond) // pacing the requests; the deadline decides
	}
	login := b.get(t, "/login")
	if !strings.Contains(login.body, "Your session ended") {
		t.Fatalf("the sign-in page after expiry does not say why:\n%s", login.body)
	}
}

func TestUILogoutDeletesTheSession(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)
	b.signIn(t, email, "member-password")
	token := b.sessionCookie(t)
	if p := b.post(t, "/logout", url.Values{}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("sign out: %d → %q", p.status, p.header.Get("Location"))
	}
	if _, err := s.Store.SessionPrincipal(context.Background(), token, store.SessionLimits{Idle: time.Hour, Max: time.Hour}); err == nil {
		t.Fatal("the session is still in the database after sign-out")
	}
	kept := newBrowserClient(s)
	kept.c.Jar.SetCookies(mustURL(t, s.URL), []*http.Cookie{{Name: "docket_session", Value: token}})
	if p := kept.get(t, "/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Fatalf("the old cookie after sign-out: %d → %q, want the sign-in page", p.status, p.header.Get("Location"))
	}
}

func TestUIRefusesCrossOriginChanges(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)
	b.signIn(t, email, "member-password")
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "http://evil.example"}} {
		p := b.post(t, "/logout", url.Values{}, h...)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Request refused") {
			t.Fatalf("POST /logout with %s: %s: %d, want 403", h[0], h[1], p.status)
		}
		p = b.post(t, "/login", url.Values{"email": {email}, "password": {"member-password"}}, h...)
		if p.status != http.StatusForbidden {
			t.Fatalf("POST /login with %s: %s: %d, want 403 (login CSRF)", h[0], h[1], p.status)
		}
	}
	if p := b.get(t, "/inbox"); p.status != http.StatusOK {
		t.Fatalf("the refused sign-out still ended the session: %d", p.status)
	}
	// The same origin is allowed, as the browser marks it.
	if p := b.post(t, "/logout", url.Values{}, "Sec-Fetch-Site", "same-origin", "Origin", s.URL); p.status != http.StatusSeeOther {
		t.Fatalf("same-origin sign out: %d", p.status)
	}
}

func TestUIViewerCannotDecide(t *testing.T) {
	t.Parallel()
	j := newJobs(t, nil)
	j.fake.On(testkit.LastUserContains("pay")).CallTool("request_human_approval", map[string]any{"title": "Pay 900 EUR", "description": "Invoice 4711 is due."})
	run := j.start(t, j.member, j.assignment(t, "x", nil), "pay the invoice")
	gate := field(t, j.waitRun(t, run, "waiting"), "pending_human_request", "id").(string)

	email, _ := j.s.User(t, store.RoleViewer, "viewer-password")
	b := newBrowserClient(j.s)
	b.signIn(t, email, "viewer-password")
	inbox := b.get(t, "/inbox")
	if !strings.Contains(inbox.body, "Pay 900 EUR") || strings.Contains(inbox.body, `value="approve"`) {
		t.Fatalf("a viewer's inbox: want the gate without an approve button\n%s", inbox.body)
	}
	p := b.post(t, "/inbox/"+gate+"/respond", url.Values{"decision": {"approve"}})
	if p.status != http.StatusForbidden {
		t.Fatalf("a viewer's forged approval: %d, want 403", p.status)
	}
	if st := field(t, j.waitRun(t, run, "waiting"), "pending_human_request", "id"); st != gate {
		t.Fatalf("the gate changed after a refused approval")
	}
	if p := b.get(t, "/audit"); p.status != http.StatusForbidden {
		t.Fatalf("a viewer opening the audit log: %d, want 403", p.status)
	}

	memberEmail, _ := j.s.User(t, store.RoleMember, "member-password")
	m := newBrowserClient(j.s)
	m.signIn(t, memberEmail, "member-password")
	p = m.post(t, "/inbox/"+gate+"/respond", url.Values{"decision": {"approve"}, "reason": {"ok by me"}, "next": {"/inbox"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/inbox" {
		t.Fatalf("a member's approval: %d → %q", p.status, p.header.Get("Location"))
	}
	j.waitRun(t, run, "completed")
	again := m.post(t, "/inbox/"+gate+"/respond", url.Values{"decision": {"deny"}, "next": {"/inbox"}})
	if again.status != http.StatusSeeOther {
		t.Fatalf("a second decision: %d", again.status)
	}
	if follow := m.get(t, "/inbox"); !strings.Contains(follow.body, "already decided: approved by "+memberEmail) {
		t.Fatalf("a second decision is not explained with the first:\n%s", follow.body)
	}
}

func TestUIAuditExportCSV(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, _ := s.User(t, store.RoleAdmin, "admin-password")
	b := newBrowserClient(s)
	b.signIn(t, email, "admin-password")
	p := b.get(t, "/audit.csv?operation=login")
	if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") || !strings.Contains(p.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV export: %d %q %q", p.status, p.header.Get("Content-Type"), p.header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0][0] != "time" || rows[1][2] != email || rows[1][6] != "ui" || rows[1][7] != "login" {
		t.Fatalf("CSV of the login entries: %v, want a header and the one sign-in by %s", rows, email)
	}
	page := b.get(t, "/audit?channel=ui")
	if !strings.Contains(page.body, email) || !strings.Contains(page.body, "/audit.csv?channel=ui") {
		t.Fatalf("audit page filtered by channel:\n%s", page.body)
	}
}

// TestRunEventsIncludeADecisionsToolResult: the tool result a gate's decision writes is
// committed without an event of its own; the stream must still deliver it, in order.
func TestRunEventsIncludeADecisionsToolResult(t *testing.T) {
	t.Parallel()
	j := newJobs(t, nil)
	agent := j.assignment(t, "x", map[string]any{"approval": map[string]any{"require": []string{"memory_write"}}})
	j.fake.On(testkit.LastUserContains("note")).CallTool("memory_write", map[string]any{"path": "a.md", "content": "x"})
	j.fake.On(testkit.LastToolResult("memory_write")).Reply("ok, not saved")
	run := j.start(t, j.member, agent, "take a note")
	gate := field(t, j.waitRun(t, run, "waiting"), "pending_human_request", "id").(string)

	req, _ := http.NewRequestWithContext(t.Context(), "GET", j.s.URL+"/v2/runs/"+run+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+j.viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	for next() != "event: status" { // the backlog, then the current status
	}
	if r := j.respond(t, j.member, run, gate, map[string]any{"approved": false, "reason": "no"}); r.Status != 200 {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	var seen []string
	for {
		l := next()
		if strings.HasPrefix(l, "data: ") {
			seen = append(seen, l)
			if strings.Contains(l, `"status":"completed"`) {
				break
			}
		}
	}
	all := strings.Join(seen, "\n")
	denial, final := strings.Index(all, `"error":"denied by `), strings.Index(all, "ok, not saved")
	if denial < 0 || final < 0 || denial > final {
		t.Fatalf("the stream after the denial, want the denied tool result before the final answer:\n%s", all)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUITeamSwitch(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{})
	email, userID := s.User(t, store.RoleMember, "member-password")
	other, err := s.Store.CreateTeam(context.Background(), store.Actor{UserID: userID, Channel: "system", Operation: "test"}, "Night shift", userID)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowserClient(s)
	b.signIn(t, email, "member-password")
	if p := b.get(t, "/"); !strings.Contains(p.body, `<select id="team-select" name="team_id">`) || !strings.Contains(p.body, "Night shift") {
		t.Fatalf("a member of two teams sees no team switcher:\n%s", p.body)
	}
	if p := b.post(t, "/team", url.Values{"team_id": {other.ID}}); p.status != http.StatusSeeOther {
		t.Fatalf("switch team: %d", p.status)
	}
	if p := b.get(t, "/"); !strings.Contains(p.body, `<option value="`+other.ID+`" selected>`) {
		t.Fatalf("after switching, the dashboard is not the other team's:\n%s", p.body)
	}
	if p := b.post(t, "/team", url.Values{"team_id": {store.NewID()}}); p.status != http.StatusNotFound {
		t.Fatalf("switching to a team the user is not in: %d, want 404", p.status)
	}
}

// TestUIJobStreamKeepsCarriageReturnsInsideData: an event stream line also ends at a lone
// CR, so a message's CR must not reach the Job page's stream as one, or text from a
// webhook or the model could start its own event (another name, another id).
func TestUIJobStreamKeepsCarriageReturnsInsideData(t *testing.T) {
	t.Parallel()
	j := newJobs(t, nil)
	j.fake.Default().Reply("done")
	agent := j.assignment(t, "x", nil)
	run := j.start(t, j.member, agent, "hello\revent: status\rid: 999999\rdata: not yours")
	j.waitRun(t, run, "completed")
	email, _ := j.s.User(t, store.RoleViewer, "viewer-password")
	b := newBrowserClient(j.s)
	b.signIn(t, email, "viewer-password")

	req, _ := http.NewRequestWithContext(t.Context(), "GET", j.s.URL+"/jobs/"+run+"/events", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	var stream strings.Builder
	for lines.Scan() && lines.Text() != "event: status" {
		stream.WriteString(lines.Text() + "\n")
	}
	if !strings.Contains(stream.String(), "not yours") {
		t.Fatalf("the backlog lacks the first message:\n%q", stream.String())
	}
	if strings.Contains(stream.String(), "\r") {
		t.Fatalf("the stream carries a bare CR, which ends an event stream line:\n%q", stream.String())
	}
}

// TestStreamsEndWhenTheirCredentialEnds: an event stream re-checks the credential it was
// opened with on every keep-alive, so signing out ends a dashboard stream and revoking a
// key ends an API stream, instead of letting an open tab or client go on receiving.
func TestStreamsEndWhenTheirCredentialEnds(t *testing.T) {
	t.Parallel()
	s := testkit.StartServer(t, testkit.Options{Web: func(c *web.Config) { c.KeepAlive = 20 * time.Millisecond }})
	// stream opens path as c (with h as headers) and returns a channel that is closed
	// when the stream ends, after it has seen three keep-alives while still authorized.
	stream := func(c *http.Client, path string, h ...string) <-chan struct{} {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Accept", "text/event-stream")
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("open %s: %v %v", path, resp, err)
		}
		sc := bufio.NewScanner(resp.Body)
		for beats := 0; beats < 3 && sc.Scan(); {
			if sc.Text() == ": keep-alive" {
				beats++
			}
		}
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body)
		}()
		return ended
	}
	wait := func(what string, ended <-chan struct{}) {
		t.Helper()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the stream is still open", what)
		}
	}

	email, _ := s.User(t, store.RoleMember, "member-password")
	b := newBrowserClient(s)
	b.signIn(t, email, "member-password")
	ended := stream(b.c, "/events")
	b.post(t, "/logout", url.Values{})
	wait("after sign-out", ended)

	key, _ := s.Member(t, store.RoleMember)
	r := s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/agents", s.OwnerKey, map[string]any{"name": "Streamed", "build": map[string]any{"name": "v1", "config": testkit.SetupConfig("x")}})
	agent := r.JSON(t)["agent"].(map[string]any)["id"].(string)
	r = s.Do(t, "POST", "/v2/teams/"+s.TeamID+"/runs", key, map[string]any{"agent_id": agent, "message": "hi"})
	run := r.JSON(t)["run"].(map[string]any)["id"].(string)
	ended = stream(http.DefaultClient, "/v2/runs/"+run+"/events", "Authorization", "Bearer "+key)
	p, err := s.Store.Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RevokeAPIKey(context.Background(), store.Actor{TeamID: s.TeamID, Channel: "system", Operation: "test"}, s.TeamID, p.APIKeyID); err != nil {
		t.Fatal(err)
	}
	wait("after the key was revoked", ended)
}
