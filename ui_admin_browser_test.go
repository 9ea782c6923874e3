package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ollama/ollama/api"

	"docket/internal/testkit"
)

// completeEveryCase scripts the model as a caseworker: it completes the case its Job was
// started on, then says so.
func completeEveryCase(model *testkit.FakeOllama) {
	model.SetRecording(false)
	model.Default().ReplyFunc(func(req *api.ChatRequest) api.Message {
		if req.Messages[len(req.Messages)-1].Role == "tool" {
			return api.Message{Role: "assistant", Content: "Done with the case."}
		}
		var id string
		for _, m := range req.Messages {
			if g := caseInMessage.FindStringSubmatch(m.Content); m.Role == "user" && g != nil {
				id = g[1]
				break
			}
		}
		return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{testkit.NewToolCall("complete_case", map[string]any{"case_id": id, "result": "handled"})}}
	})
}

// queueWithConsumer creates a queue consumed by agent and returns its id.
func (w *uiWorld) queueWithConsumer(t *testing.T, name, agent string) string {
	t.Helper()
	var q struct{ Queue struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/teams/"+w.key.TeamID+"/queues", w.key.Key, map[string]any{"name": name}, http.StatusCreated, &q)
	w.srv.apiJSON(t, "POST", "/v2/agents/"+agent+"/case-triggers", w.key.Key,
		map[string]any{"case_queue_id": q.Queue.ID, "enabled": true, "concurrency": 4}, http.StatusCreated, nil)
	return q.Queue.ID
}

// caseTotal is how many of the queue's cases the listCases query matches.
func (w *uiWorld) caseTotal(t *testing.T, queue, query string) int {
	t.Helper()
	var page struct{ Total int }
	w.srv.apiJSON(t, "GET", "/v2/queues/"+queue+"/cases?limit=1&"+query, w.key.Key, nil, http.StatusOK, &page)
	return page.Total
}

// caseRuns is how many Jobs have worked on a case.
func (w *uiWorld) caseRuns(t *testing.T, id string) int {
	t.Helper()
	var out struct{ Runs []struct{ Status string } }
	w.srv.apiJSON(t, "GET", "/v2/cases/"+id+"/runs", w.key.Key, nil, http.StatusOK, &out)
	return len(out.Runs)
}

var leadingCount = regexp.MustCompile(`(\d+) cases?`)

// TestCaseReviewReprocessAllMatching is the case review: 300 cases worked once; a person
// filters them by label and text, selects all matching and reprocesses them. The count
// the page shows is the API's for the same filter, the notice says that many were
// reprocessed, exactly those cases run again, and the list holds on a phone's width.
func TestCaseReviewReprocessAllMatching(t *testing.T) {
	t.Parallel()
	w := startUI(t, "DOCKET_RATE_LIMIT=-1")
	completeEveryCase(w.model)
	agent := w.assignment(t, "Caseworker", nil)
	queue := w.queueWithConsumer(t, "Orders", agent)
	regions := []string{"eu", "us", "apac"}
	var ids []string
	for start := 0; start < 300; start += 100 {
		var batch []map[string]any
		for i := start; i < start+100; i++ {
			data := fmt.Sprintf(`{"order":%d,"note":"customer wants an exchange"}`, i)
			if i%4 == 0 {
				data = fmt.Sprintf(`{"order":%d,"note":"customer wants a refund"}`, i)
			}
			batch = append(batch, map[string]any{"title": fmt.Sprintf("Order %d", i), "data": data,
				"labels": []any{map[string]any{"key": "region", "value": regions[i%3]}}})
		}
		var out struct {
			AddedCases []struct{ ID string } `json:"added_cases"`
		}
		w.srv.apiJSON(t, "POST", "/v2/queues/"+queue+"/cases", w.key.Key, map[string]any{"cases": batch}, http.StatusCreated, &out)
		for _, c := range out.AddedCases {
			ids = append(ids, c.ID)
		}
	}
	eventually(t, 60*time.Second, "all 300 cases to be completed once", func() (bool, string) {
		n := w.caseTotal(t, queue, "display_status=completed")
		return n == 300, fmt.Sprintf("%d completed", n)
	})

	// What the API finds for the same filter (searchCases: label region=eu, text refund).
	var api struct{ Total int }
	w.srv.apiJSON(t, "POST", "/v2/queues/"+queue+"/cases/search", w.key.Key, map[string]any{"search": "refund",
		"filters": map[string]any{"labels": map[string]any{"region": []string{"eu"}}}, "limit": 1}, http.StatusOK, &api)
	if api.Total != 25 {
		t.Fatalf("searchCases finds %d cases, want the 25 with i%%12 == 0", api.Total)
	}

	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "open the queue's cases and filter by label and text",
		chromedp.Navigate(w.srv.URL+"/queues"),
		testkit.WaitText("#queues-table", "Orders"),
		chromedp.Click(chromedp.CSS(`#queues-table tr[data-queue="`+queue+`"] a.row-title`)),
		testkit.WaitText("#matching-count", "300"),
		chromedp.SendKeys(chromedp.CSS(`#cases-filter input[name=label]`), "region:eu"),
		chromedp.SendKeys(chromedp.CSS(`#cases-filter input[name=q]`), "refund"),
		chromedp.Click(chromedp.CSS(`#apply-filter`)),
		testkit.WaitJS(`location.search.includes("label=region") && !!document.querySelector("#matching-count")`),
	)
	if shown := testkit.Text(t, tab, "#matching-count"); shown != strconv.Itoa(api.Total) {
		t.Fatalf("the page says %s cases match, the API %d", shown, api.Total)
	}
	if rows, _ := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#cases-table tbody tr").length`)); rows != api.Total {
		t.Errorf("the list shows %d rows, want %d", rows, api.Total)
	}
	if marks := testkit.Text(t, tab, "#cases-table .snippet mark"); marks != "refund" {
		t.Errorf("the search snippet marks %q, want refund", marks)
	}
	testkit.Screenshot(t, tab, screenshotDir(), "cases.png", 1280, 900)
	phoneShot(t, tab, "cases-phone.png")
	testkit.Do(t, tab, "the list fits a phone's width",
		chromedp.EmulateViewport(390, 844),
		testkit.WaitJS(`document.documentElement.scrollWidth <= window.innerWidth && document.querySelector("#cases-table").getBoundingClientRect().right <= window.innerWidth`),
		chromedp.EmulateViewport(1280, 900),
	)

	testkit.Do(t, tab, "select all matching and reprocess",
		chromedp.Click(chromedp.CSS(`#all-matching`)),
		testkit.WaitText("#selected-count", "every case the filter finds"),
		chromedp.Click(chromedp.CSS(`#bulk-reprocess`)),
		testkit.WaitText(".flash-ok", "Reprocessed"),
	)
	notice := testkit.Text(t, tab, ".flash-ok")
	m := leadingCount.FindStringSubmatch(notice)
	if m == nil || m[1] != strconv.Itoa(api.Total) {
		t.Fatalf("the notice says %q, want %d cases reprocessed", notice, api.Total)
	}

	matched := map[string]bool{}
	for i, id := range ids {
		if i%12 == 0 {
			matched[id] = true
		}
	}
	eventually(t, 60*time.Second, "the reprocessed cases to run and complete again", func() (bool, string) {
		done := w.caseTotal(t, queue, "display_status=completed")
		again := 0
		for id := range matched {
			if w.caseRuns(t, id) == 2 {
				again++
			}
		}
		return done == 300 && again == len(matched), fmt.Sprintf("%d completed, %d of %d ran twice", done, again, len(matched))
	})
	for _, i := range []int{1, 2, 3, 4, 6, 299} {
		if n := w.caseRuns(t, ids[i]); n != 1 {
			t.Errorf("case %d (not matched) has %d Jobs, want 1", i, n)
		}
	}
	testkit.Do(t, tab, "the case page shows both Jobs and the reprocess in its history",
		chromedp.Navigate(w.srv.URL+"/cases/"+ids[12]),
		testkit.WaitText("#case-events", "Reprocessed"),
		testkit.WaitJS(`document.querySelectorAll("#case-runs li").length === 2`),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "case.png", 1280, 900)
	phoneShot(t, tab, "case-phone.png")
	testkit.Do(t, tab, "the queues list", chromedp.Navigate(w.srv.URL+"/queues"), testkit.WaitText("#queues-table", "Orders"))
	testkit.Screenshot(t, tab, screenshotDir(), "queues.png", 1280, 900)
}

// TestSetupEditShowsErrorsAndPromote: the Setup editor shows a bad model name and an
// empty SOP next to their fields; a valid edit saved as a new Setup is compared side by
// side with the live one and promoted; then new Jobs run on it while a Job started
// before keeps its Setup.
func TestSetupEditShowsErrorsAndPromote(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	w.model.On(testkit.LastUserContains("old job")).CallTool("request_human_approval", map[string]any{"title": "Send it?", "description": "Ready to send."}).Once()
	w.model.On(testkit.SystemContains("You are Writer v1.")).Reply("finished on v1")
	w.model.On(testkit.SystemContains("You are Writer v2.")).Reply("finished on v2")
	agent := w.assignment(t, "Writer", map[string]any{"input": "You are Writer v1.\nKeep replies short."})
	old := w.startJob(t, agent, "old job")
	oldRun := w.waitStatus(t, old, "waiting")
	var before struct {
		Run struct {
			BuildID string `json:"build_id"`
		}
	}
	w.srv.apiJSON(t, "GET", "/v2/runs/"+old, w.key.Key, nil, http.StatusOK, &before)

	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "open the editor from the Assignment",
		chromedp.Navigate(w.srv.URL+"/assignments"),
		testkit.WaitText("body", "Writer"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "assignments.png", 1280, 900)
	testkit.Do(t, tab, "open the editor from the Assignment",
		chromedp.Navigate(w.srv.URL+"/assignments/"+agent),
		chromedp.Click(chromedp.CSS(`#edit-setup`)),
		testkit.WaitJS(`!!document.querySelector("#setup-form") && document.querySelector("#f-sop").value.includes("Writer v1")`),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "setup-editor.png", 1280, 900)
	testkit.Do(t, tab, "an invalid model name is refused next to the model field",
		chromedp.SetValue(chromedp.CSS(`#f-model`), "not a model!"),
		chromedp.Click(chromedp.CSS(`#save-setup`)),
		testkit.WaitText("#field-model .field-error", "is not a model name"),
	)
	if v, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#f-sop").value`)); !strings.Contains(v, "Keep replies short.") {
		t.Errorf("the refused form lost the SOP: %q", v)
	}
	testkit.Do(t, tab, "an empty SOP is refused next to the SOP field",
		chromedp.SetValue(chromedp.CSS(`#f-model`), "qwen3:4b"),
		chromedp.SetValue(chromedp.CSS(`#f-sop`), "   "),
		chromedp.Click(chromedp.CSS(`#save-setup`)),
		testkit.WaitText("#field-sop .field-error", "The SOP is empty"),
		testkit.WaitGone("#field-model .field-error"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "setup-editor-error.png", 1280, 900)
	phoneShot(t, tab, "setup-editor-phone.png")
	testkit.Do(t, tab, "a valid edit is saved as a new Setup and compared with the live one",
		chromedp.SetValue(chromedp.CSS(`#f-sop`), "You are Writer v2.\nKeep replies short."),
		chromedp.Click(chromedp.CSS(`#save-setup`)),
		testkit.WaitText(".flash-ok", "as a draft"),
		testkit.WaitText("#setup-diff .diff-change .diff-l", "You are Writer v1."),
		testkit.WaitText("#setup-diff .diff-change .diff-r", "You are Writer v2."),
		testkit.WaitText("#diff-summary", "1 line differs"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "setup-diff.png", 1280, 900)
	newBuild := strings.TrimPrefix(mustLocation(t, tab), w.srv.URL+"/assignments/"+agent+"/setups/")
	testkit.Do(t, tab, "promote it",
		chromedp.Click(chromedp.CSS(`#promote`)),
		testkit.WaitText(".flash-ok", "is live"),
	)

	fresh := w.startJob(t, agent, "new job")
	w.waitStatus(t, fresh, "completed")
	var after struct {
		Run struct {
			BuildID string `json:"build_id"`
		}
	}
	w.srv.apiJSON(t, "GET", "/v2/runs/"+fresh, w.key.Key, nil, http.StatusOK, &after)
	if after.Run.BuildID != newBuild {
		t.Errorf("a Job started after the promotion runs on %s, want the new Setup %s", after.Run.BuildID, newBuild)
	}
	w.srv.apiJSON(t, "POST", "/v2/runs/"+old+"/human-requests/"+oldRun.PendingHumanRequest.ID+"/respond", w.key.Key,
		map[string]any{"approved": true}, http.StatusOK, nil)
	w.waitStatus(t, old, "completed")
	w.srv.apiJSON(t, "GET", "/v2/runs/"+old, w.key.Key, nil, http.StatusOK, &after)
	if after.Run.BuildID != before.Run.BuildID {
		t.Errorf("the Job started before the promotion moved to Setup %s, want it kept on %s", after.Run.BuildID, before.Run.BuildID)
	}
	testkit.Do(t, tab, "the Assignment lists both Setups, the new one live",
		chromedp.Navigate(w.srv.URL+"/assignments/"+agent),
		testkit.WaitText("#setups-table", "Live"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "assignment.png", 1280, 900)
	testkit.Do(t, tab, "each Job's result shows the Setup it ran on",
		chromedp.Navigate(w.srv.URL+"/jobs/"+old),
		testkit.WaitText("[data-testid=job-result]", "finished on v1"),
		chromedp.Navigate(w.srv.URL+"/jobs/"+fresh),
		testkit.WaitText("[data-testid=job-result]", "finished on v2"),
	)
}

// phoneShot saves what a phone's screen shows of the page (the first screenful, not the
// whole page) when screenshots are asked for.
func phoneShot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := screenshotDir()
	if dir == "" {
		return
	}
	testkit.Do(t, tab, "phone viewport for "+name, chromedp.EmulateViewport(390, 844))
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Do(t, tab, "desktop viewport after "+name, chromedp.EmulateViewport(1280, 900))
}

func mustLocation(t *testing.T, tab context.Context) string {
	t.Helper()
	u, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// acceptConfirms makes the page's confirm() dialogs answer yes, as a person clicking OK.
func acceptConfirms(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	_, err := chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)(ctx, t)
	return chromedp.Void{}, err
}

// TestAPIKeyShownOnceThenRevoked: a key created on the settings page is shown once,
// works against the API, is not shown again, and stops working when revoked there.
func TestAPIKeyShownOnceThenRevoked(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "create a key",
		chromedp.Navigate(w.srv.URL+"/settings"),
		testkit.WaitText("nav.tabs", "API keys"),
		chromedp.Navigate(w.srv.URL+"/settings/api-keys"),
		chromedp.SendKeys(chromedp.CSS(`#f-key_name`), "ci-box"),
		chromedp.Click(chromedp.CSS(`#create-key`)),
		testkit.WaitText("#new-key-card", "shown once"),
	)
	key := testkit.Text(t, tab, "#new-key")
	if !strings.HasPrefix(key, "dk_") {
		t.Fatalf("the page shows %q as the new key", key)
	}
	testkit.Screenshot(t, tab, screenshotDir(), "api-keys.png", 1280, 900)
	if status, body := w.srv.call(t, "GET", "/v2/profile", key, nil); status != http.StatusOK {
		t.Fatalf("the new key is refused by the API: %d %s", status, body)
	}
	testkit.Do(t, tab, "the key is not shown again",
		chromedp.Navigate(w.srv.URL+"/settings/api-keys"),
		testkit.WaitText("#keys-table", "ci-box"),
	)
	if html, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, key) {
		t.Fatal("the key's secret is on the page after reloading it")
	}
	testkit.Do(t, tab, "revoke it",
		acceptConfirms,
		chromedp.Click(chromedp.CSS(`#keys-table tr:has(.row-title) button[data-revoke]`)),
		testkit.WaitText(".flash-ok", "Key revoked"),
	)
	if status, _ := w.srv.call(t, "GET", "/v2/profile", key, nil); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key answers %d, want 401", status)
	}
}

// TestViewerCannotActOnCasesOrSetups: a viewer sees cases and Setups without any bulk
// action or promote button, and the same requests forged from their session are
// refused with 403 and change nothing.
func TestViewerCannotActOnCasesOrSetups(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	w.addUser(t, "viewer@example.com", "viewer", "viewer-password-1")
	agent := w.assignment(t, "Writer", nil)
	var q struct{ Queue struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/teams/"+w.key.TeamID+"/queues", w.key.Key, map[string]any{"name": "Orders"}, http.StatusCreated, &q)
	w.srv.apiJSON(t, "POST", "/v2/queues/"+q.Queue.ID+"/cases", w.key.Key, map[string]any{"cases": []any{map[string]any{"title": "Order 1"}, map[string]any{"title": "Order 2"}}}, http.StatusCreated, nil)
	var draft struct{ Build struct{ ID string } }
	w.srv.apiJSON(t, "POST", "/v2/agents/"+agent+"/revisions", w.key.Key, map[string]any{"name": "v2"}, http.StatusCreated, &draft)

	tab := w.signIn(t, "viewer@example.com", "viewer-password-1")
	testkit.Do(t, tab, "the cases page shows cases but no way to act on them",
		chromedp.Navigate(w.srv.URL+"/cases?queue="+q.Queue.ID),
		testkit.WaitText("#cases-table", "Order 2"),
		testkit.WaitJS(`!document.querySelector("#bulk-form, #bulk-reprocess, #all-matching, input[name=case_id]")`),
		chromedp.Navigate(w.srv.URL+"/assignments/"+agent+"/setups/"+draft.Build.ID),
		testkit.WaitText("#setup-diff", "Model"),
		testkit.WaitJS(`!document.querySelector("#promote, [data-promote], #edit-from")`),
	)
	forge := func(path, body string) int {
		js := fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q, redirect: "manual"}).then(r => r.status)`, path, body)
		status, err := chromedp.Run(tab, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("forged POST %s: %v", path, err)
		}
		return status
	}
	if s := forge("/queues/"+q.Queue.ID+"/cases/bulk-delete", "all_matching=1"); s != http.StatusForbidden {
		t.Errorf("a viewer's forged bulk delete answers %d, want 403", s)
	}
	if s := forge("/assignments/"+agent+"/setups/"+draft.Build.ID+"/promote", ""); s != http.StatusForbidden {
		t.Errorf("a viewer's forged promote answers %d, want 403", s)
	}
	if n := w.caseTotal(t, q.Queue.ID, ""); n != 2 {
		t.Errorf("%d cases left after the forged delete, want 2", n)
	}
	var a struct {
		Agent struct {
			LiveBuildID string `json:"live_build_id"`
		}
	}
	w.srv.apiJSON(t, "GET", "/v2/agents/"+agent, w.key.Key, nil, http.StatusOK, &a)
	if a.Agent.LiveBuildID == draft.Build.ID {
		t.Error("a viewer's forged promote made the draft live")
	}
}

// TestSettingsMembersAndWebhooks: an admin adds a member with a password, who can then
// sign in with the role given; a webhook is added, sent a test that shows in the
// delivery log, and deleted.
func TestSettingsMembersAndWebhooks(t *testing.T) {
	t.Parallel()
	w := startUI(t)
	tab := w.signIn(t, "admin@localhost", uiPassword)
	testkit.Do(t, tab, "a too short password is refused next to the field",
		chromedp.Navigate(w.srv.URL+"/settings/members"),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ana@example.com"),
		chromedp.SetValue(chromedp.CSS(`#f-role`), "member"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "short"),
		chromedp.Click(chromedp.CSS(`#invite`)),
		testkit.WaitText("#field-password .field-error", "at least 8 characters"),
	)
	testkit.Do(t, tab, "add the member",
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "ana-password-1"),
		chromedp.Click(chromedp.CSS(`#invite`)),
		testkit.WaitText(".flash-ok", "Added ana@example.com as member"),
		testkit.WaitText("#members-table", "ana@example.com"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "members.png", 1280, 900)
	ana := w.signIn(t, "ana@example.com", "ana-password-1")
	testkit.Do(t, ana, "the new member is signed in with their role",
		testkit.WaitJS(`document.querySelector(".who-role").textContent === "member"`),
	)

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	testkit.Do(t, tab, "a URL the webhook rules refuse is refused",
		chromedp.Navigate(w.srv.URL+"/settings/webhooks"),
		chromedp.SendKeys(chromedp.CSS(`#f-url`), "ftp://example.com/x"),
		chromedp.Click(chromedp.CSS(`#create-webhook`)),
		testkit.WaitText("#form-problem", "URL"),
	)
	testkit.Do(t, tab, "add a webhook and send it a test",
		chromedp.SetValue(chromedp.CSS(`#f-url`), hook.URL+"/hook"),
		chromedp.Click(chromedp.CSS(`#create-webhook`)),
		testkit.WaitText(".flash-ok", "Subscribed"),
		testkit.WaitText("#webhooks", hook.URL+"/hook"),
		chromedp.Click(chromedp.CSS(`button[data-test-hook]`)),
		testkit.WaitText(".flash-ok", "Test ping queued"),
		testkit.WaitText("#deliveries-table", "ping"),
	)
	testkit.Screenshot(t, tab, screenshotDir(), "deliveries.png", 1280, 900)
	testkit.Do(t, tab, "back to the webhooks", chromedp.Navigate(w.srv.URL+"/settings/webhooks"), testkit.WaitText("#webhooks", "/hook"))
	testkit.Screenshot(t, tab, screenshotDir(), "webhooks.png", 1280, 900)
	testkit.Do(t, tab, "delete it",
		acceptConfirms,
		chromedp.Click(chromedp.CSS(`button[data-delete-hook]`)),
		testkit.WaitText(".flash-ok", "Webhook deleted"),
		testkit.WaitGone("#webhooks"),
	)
}
