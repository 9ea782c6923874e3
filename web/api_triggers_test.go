package web_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/store"
)

func upsertTrigger(t *testing.T, s *testkit.Server, key, agent string, body map[string]any) map[string]any {
	t.Helper()
	r := s.Do(t, "PUT", "/v2/triggers/"+agent, key, body)
	if r.Status != 200 {
		t.Fatalf("upsertAgentTrigger: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

func hexHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func standardSignature(secret, id string, ts int64, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestWebhookTriggerStartsRun: a delivery to the trigger's URL, with no API key, starts a
// run the fake model completes, with the JSON body pretty-printed as its first message;
// a replay with the same Idempotency-Key returns the first answer and starts nothing.
func TestWebhookTriggerStartsRun(t *testing.T) {
	j := newJobs(t, nil)
	agent := j.assignment(t, "Handle the event.", nil)
	tr := upsertTrigger(t, j.s, j.member, agent, map[string]any{"integration_slug": "webhook", "trigger_type": "start_run"})
	hook, _ := tr["hook_path"].(string)
	token, _ := tr["token"].(string)
	if !strings.HasPrefix(hook, "/v2/hooks/dkh_") || hook != "/v2/hooks/"+token || tr["token_prefix"] != token[:10] {
		t.Fatalf("trigger: %v", tr)
	}
	body := `{"event":"order.created","order":{"id":42}}`
	r := j.s.Do(t, "POST", hook, "", body, "Idempotency-Key", "delivery-1")
	if r.Status != 202 {
		t.Fatalf("hook: %d %s", r.Status, r.Body)
	}
	run, _ := r.JSON(t)["run_id"].(string)
	done := j.waitRun(t, run, "completed")
	if field(t, done, "run", "source") != "webhook" {
		t.Fatalf("source %v", field(t, done, "run", "source"))
	}
	if got := j.messages(t, run)[0]["text_content"]; got != "{\n  \"event\": \"order.created\",\n  \"order\": {\n    \"id\": 42\n  }\n}" {
		t.Fatalf("first message %q", got)
	}

	again := j.s.Do(t, "POST", hook, "", body, "Idempotency-Key", "delivery-1")
	if again.Status != 202 || string(again.Body) != string(r.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s %v", again.Status, again.Body, again.Header)
	}
	runs, total, err := j.s.Store.ListRuns(context.Background(), j.team, store.RunFilter{Source: "webhook", Limit: 10})
	if err != nil || total != 1 || runs[0].ID != run {
		t.Fatalf("webhook runs after a replay: %d (%v)", total, err)
	}

	text := j.s.Do(t, "POST", hook, "", "Disk almost full on db-1\nsee graphs")
	if text.Status != 202 {
		t.Fatalf("text delivery: %d %s", text.Status, text.Body)
	}
	run2 := text.JSON(t)["run_id"].(string)
	j.waitRun(t, run2, "completed")
	if got := j.messages(t, run2)[0]["text_content"]; got != "Disk almost full on db-1\nsee graphs" {
		t.Fatalf("text delivery message %q", got)
	}

	entries, _, err := j.s.Store.ListAudit(context.Background(), j.team, store.AuditFilter{Operation: "receiveHook", Limit: 10})
	if err != nil || len(entries) != 2 || entries[0].Channel != "webhook" {
		t.Fatalf("audit of deliveries: %+v (%v)", entries, err)
	}
}

func TestWebhookTriggerScenarios(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	agent, _ := createAgent(t, w.s, w.team, w.owner, "Intake", true)
	queue := apiCreateQueue(t, w.s, w.team, w.owner, "Inbound")
	tr := upsertTrigger(t, w.s, w.member, agent, map[string]any{"integration_slug": "webhook", "trigger_type": "create_case",
		"filter_config": map[string]any{"queue_id": queue, "require_signature": true}})
	hook, secret := tr["hook_path"].(string), tr["signing_secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || tr["filter_config"].(map[string]any)["require_signature"] != true {
		t.Fatalf("signed trigger: %v", tr)
	}
	payload := []byte(`{"title":"Invoice 7 from ACME","amount":1200}`)
	now := time.Now().Unix()
	var caseID string
	runScenarios(t, w.s, []scenario{
		{name: "unknown token", method: "POST", path: "/v2/hooks/dkh_" + strings.Repeat("x", 40), body: string(payload), wantStatus: 404, wantError: "not_found"},
		{name: "not a token at all", method: "POST", path: "/v2/hooks/hello", body: string(payload), wantStatus: 404, wantError: "not_found"},
		{name: "unsigned", method: "POST", path: hook, body: string(payload), wantStatus: 401, wantError: "unauthorized",
			wantContains: []string{"X-Docket-Signature", "sha256="}},
		{name: "wrong HMAC", method: "POST", path: hook, body: string(payload), headers: []string{"X-Docket-Signature", hexHMAC("not the secret", payload)},
			wantStatus: 401, wantError: "unauthorized"},
		{name: "HMAC of another body", method: "POST", path: hook, body: string(payload), headers: []string{"X-Docket-Signature", hexHMAC(secret, []byte("{}"))},
			wantStatus: 401, wantError: "unauthorized"},
		{name: "stale Standard Webhooks timestamp", method: "POST", path: hook, body: string(payload),
			headers:    []string{"webhook-id", "msg_1", "webhook-timestamp", strconv.FormatInt(now-3600, 10), "webhook-signature", standardSignature(secret, "msg_1", now-3600, payload)},
			wantStatus: 401, wantError: "unauthorized", wantContains: []string{"webhook-timestamp"}},
		{name: "signed with X-Docket-Signature", method: "POST", path: hook, body: string(payload), headers: []string{"X-Docket-Signature", hexHMAC(secret, payload)},
			wantStatus: 202, after: func(t *testing.T, r *testkit.Response) {
				caseID = r.JSON(t)["case_id"].(string)
				c := w.s.Do(t, "GET", "/v2/cases/"+caseID, w.viewer, nil).JSON(t)["case"].(map[string]any)
				if c["title"] != "Invoice 7 from ACME" || c["data"] != string(payload) || c["queue_id"] != queue {
					t.Fatalf("case from a delivery: %v", c)
				}
			}},
		{name: "signed per Standard Webhooks", method: "POST", path: hook, body: "Printer jammed\nfloor 3",
			headers:    []string{"webhook-id", "msg_2", "webhook-timestamp", strconv.FormatInt(now, 10), "webhook-signature", "v1,bogus " + standardSignature(secret, "msg_2", now, []byte("Printer jammed\nfloor 3"))},
			wantStatus: 202, after: func(t *testing.T, r *testkit.Response) {
				c := w.s.Do(t, "GET", "/v2/cases/"+r.JSON(t)["case_id"].(string), w.viewer, nil).JSON(t)["case"].(map[string]any)
				if c["title"] != "Printer jammed" {
					t.Fatalf("title of a text delivery: %v", c["title"])
				}
			}},
		{name: "body over the cap", method: "POST", path: hook, body: strings.Repeat("x", 1<<20+1), wantStatus: 413, wantError: "payload_too_large"},
		{name: "viewer cannot upsert", method: "PUT", path: "/v2/triggers/" + agent, key: w.viewer,
			body: map[string]any{"integration_slug": "webhook", "trigger_type": "start_run"}, wantStatus: 403, wantError: "forbidden"},
		{name: "unknown integration", method: "PUT", path: "/v2/triggers/" + agent, key: w.member,
			body: map[string]any{"integration_slug": "gmail", "trigger_type": "email_received"}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{"integration_slug", "webhook"}},
		{name: "create_case without a queue", method: "PUT", path: "/v2/triggers/" + agent, key: w.member,
			body: map[string]any{"integration_slug": "webhook", "trigger_type": "create_case"}, wantStatus: 400, wantError: "invalid_request",
			wantContains: []string{"filter_config.queue_id"}},
		{name: "another team's queue", method: "PUT", path: "/v2/triggers/" + agent, key: w.member,
			body:       map[string]any{"integration_slug": "webhook", "trigger_type": "create_case", "filter_config": map[string]any{"queue_id": randomID()}},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"filter_config.queue_id"}},
		{name: "other team's assignment: list", method: "GET", path: "/v2/triggers/" + w.otherAgent, key: w.owner, wantStatus: 404, wantError: "not_found"},
		{name: "other team's assignment: upsert", method: "PUT", path: "/v2/triggers/" + w.otherAgent, key: w.owner,
			body: map[string]any{"integration_slug": "webhook", "trigger_type": "start_run"}, wantStatus: 404, wantError: "not_found"},
		{name: "other team's assignment: types", method: "GET", path: "/v2/trigger-config/" + w.otherAgent, key: w.owner, wantStatus: 404, wantError: "not_found"},
		{name: "list hides token and secret", method: "GET", path: "/v2/triggers/" + agent, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if b := string(r.Body); strings.Contains(b, hook[len("/v2/hooks/"):]) || strings.Contains(b, secret) || !strings.Contains(b, `"token_prefix":"dkh_`) {
					t.Fatalf("list: %s", b)
				}
			}},
		{name: "disable", method: "PUT", path: "/v2/triggers/" + agent, key: w.member,
			body:       map[string]any{"integration_slug": "webhook", "trigger_type": "create_case", "enabled": false, "filter_config": map[string]any{"queue_id": queue}},
			wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["enabled"] != false || m["token"] != nil || m["signing_secret"] != nil || m["filter_config"].(map[string]any)["require_signature"] != true {
					t.Fatalf("disabled trigger: %v", m)
				}
			}},
		{name: "disabled trigger answers 409", method: "POST", path: hook, body: string(payload), headers: []string{"X-Docket-Signature", hexHMAC(secret, payload)},
			wantStatus: 409, wantError: "conflict", wantContains: []string{"disabled"}},
	})

	// Rotation: the old URL stops at once, the new one works; the secret stays.
	rot := upsertTrigger(t, w.s, w.member, agent, map[string]any{"integration_slug": "webhook", "trigger_type": "create_case", "rotate_token": true,
		"filter_config": map[string]any{"queue_id": queue}})
	if r := w.s.Do(t, "POST", hook, "", string(payload), "X-Docket-Signature", hexHMAC(secret, payload)); r.Status != 404 {
		t.Fatalf("old URL after rotation: %d %s", r.Status, r.Body)
	}
	r := w.s.Do(t, "POST", rot["hook_path"].(string), "", string(payload), "X-Docket-Signature", hexHMAC(secret, payload))
	if r.Status != 202 {
		t.Fatalf("new URL: %d %s", r.Status, r.Body)
	}
	// The sender's own secret and a GitHub-style header.
	own := "a shared secret chosen by the sender"
	upsertTrigger(t, w.s, w.member, agent, map[string]any{"integration_slug": "webhook", "trigger_type": "create_case",
		"filter_config": map[string]any{"queue_id": queue, "require_signature": true, "signing_secret": own, "signature_header": "X-Hub-Signature-256"}})
	if r := w.s.Do(t, "POST", rot["hook_path"].(string), "", string(payload), "X-Hub-Signature-256", hexHMAC(own, payload)); r.Status != 202 {
		t.Fatalf("GitHub-style signature: %d %s", r.Status, r.Body)
	}
	if n := countRows(t, w.s, "SELECT count(*) FROM cases WHERE queue_id = ?", queue); n != 4 {
		t.Fatalf("%d cases, want 4 (one per accepted delivery)", n)
	}
	var sealed []byte
	if err := seedDB(t, w.s).QueryRow("SELECT signing_secret FROM inbound_triggers WHERE agent_id = ?", agent).Scan(&sealed); err != nil ||
		strings.Contains(string(sealed), own) {
		t.Fatalf("the signing secret is stored in the clear (%v)", err)
	}
}

func TestTriggersResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	w := newWorld(t, testkit.Options{})
	agent, _ := createAgent(t, w.s, w.team, w.owner, "Shape", true)
	doc := fetchOpenAPI(t, w.s)
	coverReference(t, ref, doc, []responseCase{
		{"upsertAgentTrigger", "200", func(t *testing.T) *testkit.Response {
			return w.s.Do(t, "PUT", "/v2/triggers/"+agent, w.member, map[string]any{"integration_slug": "webhook", "trigger_type": "start_run"})
		}, 2},
		{"listAgentTriggers", "200", func(t *testing.T) *testkit.Response { return w.s.Do(t, "GET", "/v2/triggers/"+agent, w.viewer, nil) }, 3},
		{"listAgentTriggerTypes", "200", func(t *testing.T) *testkit.Response {
			return w.s.Do(t, "GET", "/v2/trigger-config/"+agent, w.viewer, nil)
		}, 2},
	})
}

// lockedBuffer is a log sink tests read while the server writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebhookTokenNotLogged: the hook URL's token is its credential, so the access log
// names the delivery by the token's prefix (what listAgentTriggers shows), never the token.
func TestWebhookTokenNotLogged(t *testing.T) {
	var logs lockedBuffer
	s := testkit.StartServer(t, testkit.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	agent, _ := createAgent(t, s, s.TeamID, s.OwnerKey, "Hooked", true)
	tr := upsertTrigger(t, s, s.OwnerKey, agent, map[string]any{"integration_slug": "webhook", "trigger_type": "start_run"})
	token := tr["token"].(string)
	if r := s.Do(t, "POST", "/v2/hooks/"+token, "", `{"event":"x"}`); r.Status != 202 {
		t.Fatalf("hook: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "path=/v2/hooks/"+token[:10]) {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the delivery:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatalf("the log carries the hook token:\n%s", logs.String())
	}
}
