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
	for _, want := range []string{"curl -X POST " + w.srv.URL + "/v2/teams/" + w.key.TeamID + "/runs", "docket runs start", "intake/inbox/", "docket apikey create"} {
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
