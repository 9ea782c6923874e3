package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"docket/internal/testkit"
)

// uiPassword is the owner's password in the dashboard tests (DOCKET_ADMIN_PASSWORD).
const uiPassword = "correct-horse-battery-staple"

// uiWorld is the real binary with a fake model, a browser, and an API key to set up work
// the way a client would.
type uiWorld struct {
	srv     *server
	key     apiKey
	model   *testkit.FakeOllama
	browser *testkit.Browser
}

// startUI starts `docket serve` against a fake model (OLLAMA_HOST) and a headless
// Chromium. env adds environment variables for the server.
func startUI(t *testing.T, env ...string) *uiWorld {
	t.Helper()
	b := testkit.NewBrowser(t) // first: skips the test at once when there is no browser
	model := testkit.NewFakeOllama(t)
	data := t.TempDir()
	srv := startServe(t, data, append([]string{"OLLAMA_HOST=" + model.URL, "DOCKET_ADMIN_PASSWORD=" + uiPassword}, env...))
	return &uiWorld{srv: srv, key: createKey(t, data), model: model, browser: b}
}

// addUser adds a dashboard user with the CLI, as an operator would.
func (w *uiWorld) addUser(t *testing.T, email, role, password string) {
	t.Helper()
	cmd := exec.Command(docketBin, "user", "add", "--data", w.srv.Data, "--email", email, "--role", role)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docket user add %s: %v\n%s", email, err, out)
	}
}

// signIn opens a fresh browser session and signs in through the form.
func (w *uiWorld) signIn(t *testing.T, email, password string) context.Context {
	t.Helper()
	tab := w.browser.Session(t)
	testkit.Do(t, tab, "sign in as "+email,
		chromedp.Navigate(w.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=email]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		testkit.WaitText(`[data-testid=user-email]`, email),
	)
	return tab
}

// assignment creates an Assignment whose Setup adds data (e.g. an approval policy) to
// the minimal config, and returns its id.
func (w *uiWorld) assignment(t *testing.T, name string, data map[string]any) string {
	t.Helper()
	cfg := map[string]any{"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}}, "input": "You are " + name + "."}
	for k, v := range data {
		cfg[k] = v
	}
	var out struct{ Agent struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/teams/"+w.key.TeamID+"/agents", w.key.Key, map[string]any{
		"name": name, "build": map[string]any{"name": "v1", "config": map[string]any{"version": "v2", "data": cfg}},
	}, http.StatusCreated, &out)
	return out.Agent.ID
}

// startJob starts a Job over the API and returns its id.
func (w *uiWorld) startJob(t *testing.T, agentID, message string) string {
	t.Helper()
	var out struct{ Run struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/teams/"+w.key.TeamID+"/runs", w.key.Key, map[string]any{"agent_id": agentID, "message": message}, http.StatusCreated, &out)
	return out.Run.ID
}

// waitStatus polls getRun until the Job reaches status.
func (w *uiWorld) waitStatus(t *testing.T, runID, status string) runView {
	t.Helper()
	var v runView
	eventually(t, 20*time.Second, "job "+runID+" to be "+status, func() (bool, string) {
		v = w.srv.getRun(t, w.key.Key, runID)
		return v.Run.Status == status, v.Run.Status
	})
	return v
}

// screenshotDir is where the tests save the README's screenshots, when set.
func screenshotDir() string { return os.Getenv("DOCKET_SCREENSHOTS") }

func TestDashboardSignInShowsFreshInstallHelp(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	tab := w.browser.Session(t)
	testkit.Do(t, tab, "open the dashboard signed out",
		chromedp.Navigate(w.srv.URL+"/jobs"),
		testkit.WaitText("h1", "Sign in"),
	)
	testkit.Do(t, tab, "sign in with a wrong password",
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "admin@localhost"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "not-the-password"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		testkit.WaitText("#login-error", "Wrong email or password"),
	)
	testkit.Do(t, tab, "sign in and land where the visitor was going",
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), uiPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		testkit.WaitText("h1", "Jobs"),
		testkit.WaitText(`[data-testid=user-email]`, "admin@localhost"),
	)
	testkit.Do(t, tab, "a fresh dashboard teaches how to start a Job",
		chromedp.Navigate(w.srv.URL+"/"),
		testkit.WaitText("#start-here", "Start your first Job"),
	)
	help := testkit.Text(t, tab, "#start-here")
	for _, want := range []string{"curl -X POST " + w.srv.URL + "/v2/teams/" + w.key.TeamID + "/runs", "Assignment Triage", `"frequency": "workday"`, "intake/inbox/", "docket apikey create"} {
		if !strings.Contains(help, want) {
			t.Errorf("the empty dashboard's help lacks %q:\n%s", want, help)
		}
	}
	var body bytes.Buffer
	body.WriteString(testkit.Text(t, tab, "body"))
	if !strings.Contains(body.String(), "Nothing waits for you") {
		t.Errorf("the dashboard's empty gate list does not say so:\n%s", body.String())
	}
}

// gateOf returns the Job's open gate id, waiting until it is open.
func (w *uiWorld) gateOf(t *testing.T, runID string) string {
	t.Helper()
	v := w.waitStatus(t, runID, "waiting")
	if v.PendingHumanRequest == nil {
		t.Fatalf("job %s waits without a pending_human_request", runID)
	}
	return v.PendingHumanRequest.ID
}

// humanRequest reads a gate as the API lists it.
type humanRequest struct {
	ID, Status, Channel string
	DecidedBy           *string `json:"decided_by"`
	Reason              *string
	Answers             map[string]string
}

func (w *uiWorld) humanRequests(t *testing.T, runID string) []humanRequest {
	t.Helper()
	var out struct {
		HumanRequests []humanRequest `json:"human_requests"`
	}
	w.srv.apiJSON(t, "GET", "/v2/teams/"+w.key.TeamID+"/human-requests?run_id="+runID, w.key.Key, nil, http.StatusOK, &out)
	return out.HumanRequests
}

// auditEntries reads the audit log over the API for one operation.
type auditEntry struct {
	Channel, Operation, Outcome string
	Actor                       struct{ Email *string }
	Target                      struct{ Type, ID string }
}

func (w *uiWorld) audit(t *testing.T, operation string) []auditEntry {
	t.Helper()
	var out struct{ Entries []auditEntry }
	w.srv.apiJSON(t, "GET", "/v2/teams/"+w.key.TeamID+"/audit-log?limit=100&operation="+operation, w.key.Key, nil, http.StatusOK, &out)
	return out.Entries
}

func TestDashboardApproveGateLiveAcrossTabs(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	agent := w.assignment(t, "Refunds", nil)
	w.model.On(testkit.LastUserContains("refund ACME")).CallTool("request_human_approval", map[string]any{
		"title": "Refund €120 to ACME", "description": "Invoice 1042 was charged twice.", "details": "amount: 120 EUR, invoice 1042",
	})
	w.model.On(testkit.LastToolResult("request_human_approval"), testkit.LastContains("approved by admin@localhost: Checked invoice 1042")).
		CallTool("write_file", map[string]any{"path": "refund-note.md", "content": "Refunded 120 EUR to ACME (invoice 1042)."})
	w.model.On(testkit.LastToolResult("write_file")).Reply("Refund of €120 sent to ACME.")

	tab := w.signIn(t, "admin@localhost", uiPassword)
	other := w.browser.Tab(t, tab)
	for _, tb := range []context.Context{tab, other} {
		testkit.Do(t, tb, "open the empty inbox", chromedp.Navigate(w.srv.URL+"/inbox"), testkit.WaitText("#gate-list", "all caught up"))
	}
	dash := w.browser.Tab(t, tab)
	testkit.Do(t, dash, "open the dashboard", chromedp.Navigate(w.srv.URL+"/"), testkit.WaitText("[data-testid=stat-gates]", "0"))

	run := w.startJob(t, agent, "Please refund ACME for the double charge.")
	gate := w.gateOf(t, run)
	card := "#gate-" + gate
	for i, tb := range []context.Context{tab, other} {
		testkit.Do(t, tb, "see the new gate without reloading (tab "+string(rune('1'+i))+")",
			testkit.WaitText(card, "Refund €120 to ACME"),
			testkit.WaitText(card, "Refunds"), // the Assignment
			testkit.WaitText(card+" [data-testid=guarded-call]", "request_human_approval"),
			testkit.WaitText(card, "Invoice 1042 was charged twice."),
			testkit.WaitText(card, "amount: 120 EUR, invoice 1042"),
			testkit.WaitText("#gate-count", "1"),
			testkit.WaitGone("#inbox-empty"),
		)
	}
	testkit.Do(t, dash, "the dashboard counts the gate without reloading",
		testkit.WaitText("[data-testid=stat-gates]", "1"),
		testkit.WaitText("#dash-live", "Refund €120 to ACME"),
	)
	testkit.Do(t, tab, "approve with a reason",
		chromedp.SendKeys(chromedp.CSS(card+` textarea[name=reason]`), "Checked invoice 1042"),
		chromedp.Click(chromedp.CSS(card+` button[value=approve]`)),
		testkit.WaitText(".flash-ok", "Approved “Refund €120 to ACME”"),
	)
	testkit.Do(t, other, "the other tab shows the decision without reloading",
		testkit.WaitText(card, "Approved"),
		testkit.WaitText(card, "admin@localhost"),
		testkit.WaitText(card, "Checked invoice 1042"),
		testkit.WaitGone(card+` button[value=approve]`),
	)
	testkit.Do(t, dash, "the dashboard follows the decision", testkit.WaitText("[data-testid=stat-gates]", "0"))

	testkit.Do(t, tab, "the Job page shows it completed with the final text",
		chromedp.Navigate(w.srv.URL+"/jobs/"+run),
		testkit.WaitText("[data-testid=job-status]", "Completed"),
		testkit.WaitText("[data-testid=job-result]", "Refund of €120 sent to ACME."),
		testkit.WaitText("#messages", "approved by admin@localhost: Checked invoice 1042"),
		testkit.WaitText("[data-testid=artifacts]", "refund-note.md"),
	)
	href, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("[data-testid=artifacts] a.row-title").href`))
	if err != nil {
		t.Fatal(err)
	}
	if got := downloadWithCookie(t, href, sessionCookie(t, tab)); got != "Refunded 120 EUR to ACME (invoice 1042)." {
		t.Fatalf("downloading the artifact from the Job page gave %q", got)
	}
	testkit.Do(t, tab, "the audit log lists the decision with the user",
		chromedp.Navigate(w.srv.URL+"/audit?operation=respondToHumanRequest"),
		testkit.WaitText("table", "respondToHumanRequest"),
		testkit.WaitText("table", "admin@localhost"),
		testkit.WaitText("table", "ui"),
	)

	hrs := w.humanRequests(t, run)
	if len(hrs) != 1 || hrs[0].Status != "approved" || hrs[0].Channel != "ui" || hrs[0].DecidedBy == nil || *hrs[0].DecidedBy != "admin@localhost" ||
		hrs[0].Reason == nil || *hrs[0].Reason != "Checked invoice 1042" {
		t.Fatalf("the gate as the API sees it: %+v, want approved by admin@localhost via ui with the reason", hrs)
	}
	entries := w.audit(t, "respondToHumanRequest")
	if len(entries) != 1 || entries[0].Channel != "ui" || entries[0].Outcome != "success" || entries[0].Actor.Email == nil ||
		*entries[0].Actor.Email != "admin@localhost" || entries[0].Target.ID != gate {
		t.Fatalf("audit of the decision: %+v, want one ui success entry by admin@localhost on gate %s", entries, gate)
	}
}

func TestDashboardDenyPolicyGateWhileJobPageIsOpen(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	agent := w.assignment(t, "Notes", map[string]any{"approval": map[string]any{"require": []string{"memory_write"}}})
	w.model.On(testkit.LastUserContains("remember")).CallTool("memory_write", map[string]any{"path": "customers/acme.md", "content": "Prefers phone calls."})
	w.model.On(testkit.LastToolResult("memory_write"), testkit.LastContains("Not something we keep")).Reply("Understood: I did not save the note.")

	run := w.startJob(t, agent, "Please remember that ACME prefers phone calls.")
	gate := w.gateOf(t, run)
	tab := w.signIn(t, "admin@localhost", uiPassword)
	watcher := w.browser.Tab(t, tab)
	testkit.Do(t, watcher, "watch the waiting Job",
		chromedp.Navigate(w.srv.URL+"/jobs/"+run),
		testkit.WaitText("[data-testid=job-status]", "Waiting for you"),
	)
	card := "#gate-" + gate
	testkit.Do(t, tab, "the inbox shows the exact call the gate guards",
		chromedp.Navigate(w.srv.URL+"/inbox"),
		testkit.WaitText(card, "Approve memory_write"),
		testkit.WaitText(card+" [data-testid=guarded-call]", "Guards the call memory_write"),
		testkit.WaitText(card+" [data-testid=guarded-call]", `"path": "customers/acme.md"`),
		testkit.WaitText(card, "Conversation so far"),
	)
	testkit.Do(t, tab, "deny with a reason",
		chromedp.SendKeys(chromedp.CSS(card+` textarea[name=reason]`), "Not something we keep"),
		chromedp.Click(chromedp.CSS(card+` button[value=deny]`)),
		testkit.WaitText(".flash-ok", "Denied “Approve memory_write”"),
		testkit.WaitText("#gate-list", "all caught up"),
	)
	testkit.Do(t, watcher, "the open Job page follows without reloading",
		testkit.WaitText("[data-testid=job-status]", "Completed"),
		testkit.WaitText("#messages", "denied by admin@localhost: Not something we keep"),
		testkit.WaitText("#messages", "Understood: I did not save the note."),
		testkit.WaitText("[data-testid=job-result]", "Understood: I did not save the note."),
	)
	if hrs := w.humanRequests(t, run); len(hrs) != 1 || hrs[0].Status != "denied" || hrs[0].Channel != "ui" {
		t.Fatalf("gate after the denial: %+v, want denied via ui", hrs)
	}
	var mem struct{ Files []any }
	w.srv.apiJSON(t, "GET", "/v2/agents/"+agent+"/memory/files", w.key.Key, nil, http.StatusOK, &mem)
	if len(mem.Files) != 0 {
		t.Fatalf("the denied memory_write ran anyway: memory holds %v", mem.Files)
	}
}

func TestDashboardAnswerQuestionGate(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	agent := w.assignment(t, "Shipping", nil)
	w.model.On(testkit.LastUserContains("ship order 77")).CallTool("ask_human", map[string]any{"questions": []any{map[string]any{
		"question": "Which carrier should ship order 77?", "header": "Carrier",
		"options": []any{map[string]any{"label": "DHL", "description": "2 days, cheaper"}, map[string]any{"label": "UPS", "description": "next day"}},
	}}})
	w.model.On(testkit.LastToolResult("ask_human"), testkit.LastContains("UPS")).Reply("Booked UPS for order 77.")

	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "open the inbox", chromedp.Navigate(w.srv.URL+"/inbox"), testkit.WaitText("#gate-list", "all caught up"))
	run := w.startJob(t, agent, "Please ship order 77.")
	gate := w.gateOf(t, run)
	card := "#gate-" + gate
	testkit.Do(t, tab, "answer the question that appeared",
		testkit.WaitText(card, "Which carrier should ship order 77?"),
		testkit.WaitText(card, "next day"),
		chromedp.Click(chromedp.CSS(card+` input[value=UPS]`)),
		chromedp.Click(chromedp.CSS(card+` button[value=answer]`)),
		testkit.WaitText(".flash-ok", "Answered"),
	)
	testkit.Do(t, tab, "the Job finishes with the answer",
		chromedp.Navigate(w.srv.URL+"/jobs/"+run),
		testkit.WaitText("[data-testid=job-result]", "Booked UPS for order 77."),
	)
	hrs := w.humanRequests(t, run)
	if len(hrs) != 1 || hrs[0].Status != "answered" || hrs[0].Answers["Which carrier should ship order 77?"] != "UPS" {
		t.Fatalf("question gate after answering: %+v, want answered with UPS", hrs)
	}
}

// approvalJob starts a Job whose model asks for approval and returns it with its gate.
func (w *uiWorld) approvalJob(t *testing.T, title string) (run, gate string) {
	t.Helper()
	agent := w.assignment(t, "Payments", nil)
	w.model.On(testkit.LastUserContains(title)).CallTool("request_human_approval", map[string]any{"title": title, "description": "The invoice is due."})
	run = w.startJob(t, agent, title)
	return run, w.gateOf(t, run)
}

func TestDashboardViewerCannotApprove(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	w.addUser(t, "viewer@example.com", "viewer", "viewer-password-1")
	run, gate := w.approvalJob(t, "Pay supplier 88")

	tab := w.signIn(t, "viewer@example.com", "viewer-password-1")
	card := "#gate-" + gate
	testkit.Do(t, tab, "a viewer sees the gate but no decision buttons",
		chromedp.Navigate(w.srv.URL+"/inbox"),
		testkit.WaitText(card, "Pay supplier 88"),
		testkit.WaitText(card, "deciding it needs the member role"),
		testkit.WaitGone(card+` button[value=approve]`),
		testkit.WaitGone(card+` button[value=deny]`),
		testkit.WaitGone(`a[href="/audit"]`),
	)
	// A forged request from the viewer's own signed-in page: same origin, so only the
	// role check stands in the way.
	status, err := chromedp.Run(tab, chromedp.Evaluate[int](`fetch("/inbox/`+gate+`/respond", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "decision=approve&reason=forged"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("a viewer's forged approval answered %d (%v), want 403", status, err)
	}
	if hrs := w.humanRequests(t, run); len(hrs) != 1 || hrs[0].Status != "open" {
		t.Fatalf("after the forged approval the gate is %+v, want still open", hrs)
	}
	denied := false
	for _, e := range w.audit(t, "respondToHumanRequest") {
		if e.Outcome == "denied" && e.Channel == "ui" && e.Actor.Email != nil && *e.Actor.Email == "viewer@example.com" {
			denied = true
		}
	}
	if !denied {
		t.Fatalf("the refused approval is not in the audit log: %+v", w.audit(t, "respondToHumanRequest"))
	}
	testkit.Do(t, tab, "the audit page itself is refused",
		chromedp.Navigate(w.srv.URL+"/audit"),
		testkit.WaitText("h1", "Not allowed"),
	)
}

func TestDashboardRefusesCrossOriginPost(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	run, gate := w.approvalJob(t, "Wire 5000 EUR")
	tab := w.signIn(t, "admin@localhost", uiPassword)

	// Another site on this machine (another port: same site, other origin) whose page
	// submits a form to docket as soon as it loads; the browser sends the session cookie.
	evil := newEvilSite(t, w.srv.URL+"/inbox/"+gate+"/respond")
	testkit.Do(t, tab, "visit the other site",
		chromedp.Navigate(evil),
		testkit.WaitText("h1", "Request refused"),
	)
	if hrs := w.humanRequests(t, run); len(hrs) != 1 || hrs[0].Status != "open" {
		t.Fatalf("after the cross-origin post the gate is %+v, want still open", hrs)
	}
}

// newEvilSite serves a page that auto-submits an approval to target.
func newEvilSite(t *testing.T, target string) string {
	t.Helper()
	page := `<!doctype html><title>win a prize</title><form id="f" method="post" action="` + target + `">
<input type="hidden" name="decision" value="approve"><input type="hidden" name="reason" value="csrf"></form>
<script>document.getElementById("f").submit()</script>`
	srv := httptestServer(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		rw.Write([]byte(page))
	}))
	return srv
}

func TestDashboardSessionExpiresWhenIdle(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	w := startUI(t, "DOCKET_SESSION_IDLE="+idle.String())
	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "use the dashboard", chromedp.Navigate(w.srv.URL+"/jobs"), testkit.WaitText("h1", "Jobs"))
	// Let the idle window pass without a request: the session's expiry is the event.
	time.Sleep(idle + 500*time.Millisecond)
	testkit.Do(t, tab, "the next page asks to sign in again",
		chromedp.Navigate(w.srv.URL+"/inbox"),
		testkit.WaitText("h1", "Sign in"),
		testkit.WaitText(".flash-info", "Your session ended"),
	)
	testkit.Do(t, tab, "signing in again returns to the page",
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "admin@localhost"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), uiPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		testkit.WaitText("h1", "Inbox"),
	)
}

func TestDashboardLogoutEndsTheSessionOnTheServer(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	tab := w.signIn(t, "admin@localhost", uiPassword)
	cookie := sessionCookie(t, tab)
	if got := getWithCookie(t, w.srv.URL+"/inbox", cookie); got != "" {
		t.Fatalf("before sign-out the session cookie is redirected to %q, want the page", got)
	}
	testkit.Do(t, tab, "sign out",
		chromedp.Click(chromedp.CSS(`#sign-out`)),
		testkit.WaitText(".flash-ok", "You are signed out."),
	)
	if got := getWithCookie(t, w.srv.URL+"/inbox", cookie); !strings.HasPrefix(got, "/login") {
		t.Fatalf("the old session cookie after sign-out leads to %q, want the sign-in page", got)
	}
	// The same in a browser that kept the cookie.
	kept := w.browser.Session(t)
	setSessionCookie(t, kept, w.srv.URL, cookie)
	testkit.Do(t, kept, "reuse the old cookie",
		chromedp.Navigate(w.srv.URL+"/"),
		testkit.WaitText("h1", "Sign in"),
	)
	var entries = w.audit(t, "logout")
	if len(entries) != 1 || entries[0].Channel != "ui" || entries[0].Actor.Email == nil || *entries[0].Actor.Email != "admin@localhost" {
		t.Fatalf("audit of the sign-out: %+v", entries)
	}
}

// TestDashboardScreenshots fills a team with the work a day brings (gates of each kind,
// queued cases, finished and failed Jobs) and, with DOCKET_SCREENSHOTS=dir, saves the
// README's pictures of the dashboard and the inbox.
func TestDashboardScreenshots(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	refunds := w.assignment(t, "Refunds", map[string]any{
		"http_allowlist": []string{"payments.example.com"}, "approval": map[string]any{"require": []string{"http_request"}},
	})
	w.model.On(testkit.LastUserContains("INV-1042")).Reply("The invoice was charged twice; refunding the second charge.").CallTool("http_request", map[string]any{
		"method": "POST", "url": "https://payments.example.com/v1/refunds",
		"body": `{"invoice":"INV-1042","amount":120.00,"currency":"EUR","reason":"duplicate charge"}`,
	})
	triage := w.assignment(t, "Support triage", nil)
	w.model.On(testkit.LastUserContains("Northwind")).CallTool("ask_human", map[string]any{"questions": []any{map[string]any{
		"question": "Northwind asks to move from Team to Business mid-term. Prorate the difference?", "header": "Plan change",
		"options": []any{
			map[string]any{"label": "Prorate", "description": "charge the difference for the remaining 7 months"},
			map[string]any{"label": "From renewal", "description": "keep Team until the renewal on 1 March"},
		},
	}}})
	vendors := w.assignment(t, "Vendor onboarding", nil)
	w.model.On(testkit.LastUserContains("Globex")).CallTool("request_human_approval", map[string]any{
		"title": "Add Globex GmbH as a supplier", "description": "Tax id and IBAN check out against the registry; the contract is signed.",
		"details": "Payment terms: net 30. First order: 2,400 EUR of packaging.",
	})
	w.model.On(testkit.LastUserContains("weekly report")).Reply("Sent the weekly report to finance@example.com: 42 tickets closed, 3 escalated.")
	broken := w.assignment(t, "Contract review", map[string]any{"models": map[string]any{"agent": map[string]any{"model": "llama3.3:70b"}}})

	w.waitStatus(t, w.startJob(t, triage, "Send the weekly report"), "completed")
	w.waitStatus(t, w.startJob(t, broken, "Review the Acme master agreement"), "failed")
	for _, j := range []struct{ agent, msg string }{{refunds, "Customer says INV-1042 was charged twice."}, {triage, "Northwind wants to upgrade."}, {vendors, "Onboard Globex GmbH."}} {
		w.gateOf(t, w.startJob(t, j.agent, j.msg))
	}
	var q struct{ Queue struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/teams/"+w.key.TeamID+"/queues", w.key.Key, map[string]any{"name": "Support inbox"}, http.StatusCreated, &q)
	var cases []map[string]any
	for _, title := range []string{"Refund request #8812", "Password reset loop", "Invoice address change", "Duplicate account", "API rate limits", "Export to CSV fails", "Cancel subscription"} {
		cases = append(cases, map[string]any{"title": title})
	}
	w.srv.apiJSON(t, "POST", "/v2/queues/"+q.Queue.ID+"/cases", w.key.Key, map[string]any{"cases": cases}, http.StatusCreated, nil)
	w.model.Block() // one Job keeps running while the pictures are taken
	w.startJob(t, triage, "Summarise yesterday's escalations")
	eventually(t, 10*time.Second, "a Job to be running", func() (bool, string) { return w.model.Held() > 0, "" })

	tab := w.signIn(t, "admin@localhost", uiPassword)
	dir := screenshotDir()
	testkit.Do(t, tab, "the dashboard shows the day's work",
		chromedp.Navigate(w.srv.URL+"/"),
		testkit.WaitText("[data-testid=stat-gates]", "3"),
		testkit.WaitText("body", "Add Globex GmbH as a supplier"),
		testkit.WaitText("body", "Support inbox"),
		testkit.WaitText("body", `model "llama3.3:70b" not found`),
		testkit.WaitText("body", "Summarise yesterday"),
	)
	testkit.Screenshot(t, tab, dir, "dashboard.png", 1280, 900)
	testkit.Do(t, tab, "the inbox shows each gate with its context",
		chromedp.Navigate(w.srv.URL+"/inbox"),
		testkit.WaitText("#gate-list", "Approve http_request"),
		testkit.WaitText("#gate-list", "payments.example.com/v1/refunds"),
		testkit.WaitText("#gate-list", `"invoice": "INV-1042"`),
		testkit.WaitText("#gate-list", "Prorate the difference?"),
	)
	testkit.Screenshot(t, tab, dir, "inbox.png", 1280, 900)
	testkit.Screenshot(t, tab, dir, "inbox-phone.png", 390, 844)
	w.model.Release()
}
