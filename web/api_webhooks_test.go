package web_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"docket/internal/testkit"
	"docket/runtime"
)

// createWebhook subscribes url over the API and returns the webhook's id.
func createWebhook(t *testing.T, s *testkit.Server, team, key, url string, events ...string) string {
	t.Helper()
	body := map[string]any{"url": url}
	if events != nil {
		body["events"] = events
	}
	r := s.Do(t, "POST", "/v2/teams/"+team+"/webhooks", key, body)
	if r.Status != 201 {
		t.Fatalf("create webhook: status %d: %s", r.Status, r.Body)
	}
	var out struct{ Webhook struct{ ID string } }
	r.Decode(t, &out)
	return out.Webhook.ID
}

var webhookKeys = []string{"id", "team_id", "url", "events", "enabled", "description", "created_by", "created_at", "updated_at"}

func TestCreateWebhook(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	base := "/v2/teams/" + w.team + "/webhooks"
	scenarios := []scenario{
		{name: "201 admin subscribes to chosen events", method: "POST", path: base, key: w.admin,
			body:       map[string]any{"url": "https://hooks.example.com/docket?token=t", "events": []string{"run_completed", "human_request_created"}, "description": "ops"},
			wantStatus: 201, after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createWebhook body", m, "webhook")
				h := m["webhook"].(map[string]any)
				wantKeys(t, "webhook", h, webhookKeys...)
				if h["url"] != "https://hooks.example.com/docket?token=t" || h["enabled"] != true || h["description"] != "ops" || h["team_id"] != w.team ||
					jsonString(t, h["events"]) != `["run_completed","human_request_created"]` || field(t, h, "created_by", "id") == "" {
					t.Fatalf("webhook = %v", h)
				}
				stored, err := s.Store.GetWebhook(ctx, w.team, h["id"].(string))
				if err != nil || stored.URL != h["url"] || !stored.Enabled {
					t.Fatalf("stored = %+v, %v", stored, err)
				}
				e := wantAudited(t, s, w.team, "createWebhook", stored.ID, keyID(t, s, w.admin), "success")
				if e.Target.Type != "webhook" {
					t.Fatalf("audit target = %+v", e.Target)
				}
			}},
		{name: "201 disabled, all events", method: "POST", path: base, key: w.owner, body: map[string]any{"url": "http://127.0.0.1:9/in", "enabled": false},
			wantStatus: 201, after: func(t *testing.T, r *testkit.Response) {
				h := r.JSON(t)["webhook"].(map[string]any)
				if h["enabled"] != false || jsonString(t, h["events"]) != "[]" {
					t.Fatalf("webhook = %v, want disabled with events [] (all)", h)
				}
			}},
		{name: "400 ftp url names the field and the fix", method: "POST", path: base, key: w.owner, body: map[string]any{"url": "ftp://files.example.com/in"},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"url", "ftp://", "http:// or https://"}},
		badRequest("400 url without scheme", "POST", base, w.owner, map[string]any{"url": "hooks.example.com/in"}, "url"),
		badRequest("400 url missing", "POST", base, w.owner, map[string]any{"events": []string{"run_failed"}}, "url"),
		badRequest("400 unknown event", "POST", base, w.owner, map[string]any{"url": "https://x.example", "events": []string{"run_failed", "run_exploded"}}, "events[1]"),
		badRequest("400 ping is not subscribable", "POST", base, w.owner, map[string]any{"url": "https://x.example", "events": []string{"ping"}}, "events[0]"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"url": "https://x.example", "secret": "mine"}, "secret"),
		badRequest("400 description too long", "POST", base, w.owner, map[string]any{"url": "https://x.example", "description": strings.Repeat("d", 501)}, "description"),
		forbidden("403 member", "POST", base, w.member, map[string]any{"url": "https://x.example"}, "createWebhook"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"url": "https://x.example"}, "createWebhook"),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/webhooks", w.owner, map[string]any{"url": "https://x.example"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"url": "https://x.example"})...)
	runScenarios(t, s, scenarios)
	t.Run("refused creates made nothing", func(t *testing.T) {
		if _, total, _ := s.Store.ListWebhooks(ctx, w.team, 100, 0); total != 2 {
			t.Fatalf("team has %d webhooks, want the 2 created", total)
		}
		wantAudited(t, s, w.team, "createWebhook", "createWebhook", keyID(t, s, w.member), "denied")
	})
}

func TestListWebhooks(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	first := createWebhook(t, s, w.team, w.owner, "https://one.example/")
	createWebhook(t, s, w.team, w.owner, "https://two.example/", "run_failed")
	createWebhook(t, s, w.otherTeam, w.otherKey, "https://theirs.example/")
	base := "/v2/teams/" + w.team + "/webhooks"
	scenarios := []scenario{
		{name: "200 member lists the team's webhooks, envelope key for key", method: "GET", path: base, key: w.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listWebhooks body", m, "webhooks", "total", "limit", "offset")
				hs := m["webhooks"].([]any)
				if m["total"] != float64(2) || len(hs) != 2 || strings.Contains(string(r.Body), "theirs.example") {
					t.Fatalf("list = %s", r.Body)
				}
				h := hs[0].(map[string]any)
				wantKeys(t, "webhook", h, webhookKeys...)
				if h["id"] != first {
					t.Fatalf("first listed = %v, want the oldest %s", h["id"], first)
				}
			}},
		{name: "200 paged", method: "GET", path: base + "?limit=1&offset=1", key: w.admin, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["total"] != float64(2) || len(m["webhooks"].([]any)) != 1 || field(t, m["webhooks"].([]any)[0].(map[string]any), "url") != "https://two.example/" {
					t.Fatalf("page = %s", r.Body)
				}
			}},
		badRequest("400 limit=0", "GET", base+"?limit=0", w.owner, nil, "limit"),
		forbidden("403 viewer", "GET", base, w.viewer, nil, "listWebhooks"),
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/webhooks", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestUpdateWebhook(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	id := createWebhook(t, s, w.team, w.owner, "https://old.example/")
	theirs := createWebhook(t, s, w.otherTeam, w.otherKey, "https://theirs.example/")
	path := "/v2/teams/" + w.team + "/webhooks/" + id
	scenarios := []scenario{
		{name: "200 admin changes url, events and enabled", method: "PATCH", path: path, key: w.admin,
			body: map[string]any{"url": "https://new.example/in", "events": []string{"run_failed"}, "enabled": false}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "updateWebhook body", m, "webhook")
				h := m["webhook"].(map[string]any)
				if h["url"] != "https://new.example/in" || h["enabled"] != false || jsonString(t, h["events"]) != `["run_failed"]` || h["description"] != "" {
					t.Fatalf("webhook = %v", h)
				}
				stored, _ := s.Store.GetWebhook(ctx, w.team, id)
				if stored.URL != "https://new.example/in" || stored.Enabled {
					t.Fatalf("stored = %+v", stored)
				}
				wantAudited(t, s, w.team, "updateWebhook", id, keyID(t, s, w.admin), "success")
			}},
		{name: "200 empty events means all again", method: "PATCH", path: path, key: w.owner, body: map[string]any{"events": []string{}, "enabled": true}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				h := r.JSON(t)["webhook"].(map[string]any)
				if jsonString(t, h["events"]) != "[]" || h["enabled"] != true || h["url"] != "https://new.example/in" {
					t.Fatalf("webhook = %v; fields not sent must stay", h)
				}
			}},
		badRequest("400 ftp url", "PATCH", path, w.owner, map[string]any{"url": "ftp://x.example/"}, "url"),
		badRequest("400 unknown event", "PATCH", path, w.owner, map[string]any{"events": []string{"nope"}}, "events[0]"),
		badRequest("400 malformed webhook id", "PATCH", "/v2/teams/"+w.team+"/webhooks/not-a-uuid", w.owner, map[string]any{"enabled": true}, "webhook_id"),
		forbidden("403 member", "PATCH", path, w.member, map[string]any{"enabled": false}, "updateWebhook"),
		forbidden("403 viewer", "PATCH", path, w.viewer, map[string]any{"enabled": false}, "updateWebhook"),
		notFound("404 another team's webhook", "PATCH", "/v2/teams/"+w.team+"/webhooks/"+theirs, w.owner, map[string]any{"enabled": false}),
		notFound("404 another team", "PATCH", "/v2/teams/"+w.otherTeam+"/webhooks/"+theirs, w.owner, map[string]any{"enabled": false}),
		notFound("404 random id", "PATCH", "/v2/teams/"+w.team+"/webhooks/"+randomID(), w.owner, map[string]any{"enabled": false}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path, map[string]any{"enabled": false})...)
	runScenarios(t, s, scenarios)
	t.Run("the other team's webhook is untouched", func(t *testing.T) {
		h, err := s.Store.GetWebhook(ctx, w.otherTeam, theirs)
		if err != nil || !h.Enabled || h.URL != "https://theirs.example/" {
			t.Fatalf("theirs = %+v, %v", h, err)
		}
	})
}

func TestDeleteWebhook(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	id := createWebhook(t, s, w.team, w.owner, "https://gone.example/")
	theirs := createWebhook(t, s, w.otherTeam, w.otherKey, "https://theirs.example/")
	path := "/v2/teams/" + w.team + "/webhooks/" + id
	scenarios := []scenario{
		forbidden("403 member", "DELETE", path, w.member, nil, "deleteWebhook"),
		forbidden("403 viewer", "DELETE", path, w.viewer, nil, "deleteWebhook"),
		notFound("404 another team's webhook", "DELETE", "/v2/teams/"+w.team+"/webhooks/"+theirs, w.owner, nil),
		{name: "200 admin deletes", method: "DELETE", path: path, key: w.admin, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				wantKeys(t, "deleteWebhook body", r.JSON(t), "success")
				if _, err := s.Store.GetWebhook(ctx, w.team, id); err == nil {
					t.Fatal("the webhook is still stored")
				}
				wantAudited(t, s, w.team, "deleteWebhook", id, keyID(t, s, w.admin), "success")
			}},
		notFound("404 already deleted", "DELETE", path, w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", path, nil)...)
	runScenarios(t, s, scenarios)
	if _, err := s.Store.GetWebhook(ctx, w.otherTeam, theirs); err != nil {
		t.Fatalf("the other team's webhook was deleted: %v", err)
	}
}

func TestWebhookSigningSecret(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	path := "/v2/teams/" + w.team + "/webhooks/signing-secret"
	var secret string
	scenarios := []scenario{
		{name: "200 admin reads the team's secret", method: "GET", path: path, key: w.admin, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "getWebhookSigningSecret body", m, "secret")
				secret = m["secret"].(string)
				key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
				if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) != 32 {
					t.Fatalf("secret %q is not whsec_ + base64 of a 32-byte key", secret)
				}
				wantAudited(t, s, w.team, "getWebhookSigningSecret", w.team, keyID(t, s, w.admin), "success")
			}},
		{name: "200 stable across reads, different per team", method: "GET", path: path, key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if r.JSON(t)["secret"] != secret {
					t.Fatal("the secret changed between reads")
				}
				o := s.Do(t, "GET", "/v2/teams/"+w.otherTeam+"/webhooks/signing-secret", w.otherKey, nil)
				if o.Status != 200 || o.JSON(t)["secret"] == secret {
					t.Fatalf("other team's secret: %d %s; want its own", o.Status, o.Body)
				}
			}},
		forbidden("403 member", "GET", path, w.member, nil, "getWebhookSigningSecret"),
		forbidden("403 viewer", "GET", path, w.viewer, nil, "getWebhookSigningSecret"),
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/webhooks/signing-secret", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
}

// hookReceiver records what a webhook endpoint receives and checks each signature with
// the secret the API handed out, the way a Standard Webhooks receiver would.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	ids    []string
	bodies []string
	errs   []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ids = append(h.ids, id)
		h.bodies = append(h.bodies, string(body))
		if !hmac.Equal([]byte(r.Header.Get("webhook-signature")), []byte(want)) || r.Header.Get("Content-Type") != "application/json" {
			h.errs = append(h.errs, "request "+id+" has a bad signature or content type")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) got() (ids, bodies, errs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...), append([]string(nil), h.bodies...), append([]string(nil), h.errs...)
}

// TestTestWebhookDeliversSignedPing drives the whole path through the API: read the
// secret, subscribe a receiver, send a ping, and follow it in the delivery log until the
// receiver, checking the signature, has acknowledged it.
func TestTestWebhookDeliversSignedPing(t *testing.T) {
	w := newWorld(t, testkit.Options{Webhooks: &runtime.WebhookOptions{Backoff: func(int) time.Duration { return 10 * time.Millisecond }}})
	s := w.s
	r := s.Do(t, "GET", "/v2/teams/"+w.team+"/webhooks/signing-secret", w.owner, nil)
	if r.Status != 200 {
		t.Fatalf("signing secret: %d %s", r.Status, r.Body)
	}
	rc := newHookReceiver(t, r.JSON(t)["secret"].(string))
	hook := createWebhook(t, s, w.team, w.admin, rc.URL+"/in")
	theirs := createWebhook(t, s, w.otherTeam, w.otherKey, "https://theirs.example/")
	testPath := "/v2/teams/" + w.team + "/webhooks/" + hook + "/test"
	deliveries := "/v2/teams/" + w.team + "/webhook-deliveries"
	var deliveryID string
	scenarios := []scenario{
		{name: "200 admin queues a ping", method: "POST", path: testPath, key: w.admin, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "testWebhook body", m, "delivery")
				d := m["delivery"].(map[string]any)
				wantKeys(t, "delivery", d, "id", "team_id", "webhook_id", "run_id", "url", "event", "payload", "status", "attempts",
					"next_attempt_at", "last_status_code", "last_error", "created_at", "delivered_at")
				deliveryID = d["id"].(string)
				if d["event"] != "ping" || d["webhook_id"] != hook || d["run_id"] != nil || d["url"] != rc.URL+"/in" || field(t, d, "payload", "event") != "ping" {
					t.Fatalf("delivery = %v", d)
				}
				wantAudited(t, s, w.team, "testWebhook", hook, keyID(t, s, w.admin), "success")
			}},
		forbidden("403 member", "POST", testPath, w.member, nil, "testWebhook"),
		notFound("404 another team's webhook", "POST", "/v2/teams/"+w.team+"/webhooks/"+theirs+"/test", w.owner, nil),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/webhooks/"+theirs+"/test", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("POST", testPath, nil)...)
	runScenarios(t, s, scenarios)

	t.Run("the receiver gets it signed and the log says delivered", func(t *testing.T) {
		var d map[string]any
		var r *testkit.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			r = s.Do(t, "GET", deliveries+"?webhook_id="+hook, w.member, nil)
			if r.Status != 200 {
				t.Fatalf("list deliveries: %d %s", r.Status, r.Body)
			}
			ds := r.JSON(t)["deliveries"].([]any)
			if len(ds) != 1 {
				t.Fatalf("deliveries = %s, want the one ping", r.Body)
			}
			if d = ds[0].(map[string]any); d["status"] == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not delivered within 10 s: %v", d)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if d["id"] != deliveryID || d["attempts"] != float64(1) || d["last_status_code"] != float64(200) || d["delivered_at"] == nil || d["next_attempt_at"] != nil {
			t.Fatalf("delivered = %v", d)
		}
		ids, bodies, errs := rc.got()
		if len(errs) > 0 || len(ids) != 1 || ids[0] != deliveryID {
			t.Fatalf("receiver got ids %v, errors %v; want one correctly signed request with webhook-id %s", ids, errs, deliveryID)
		}
		var raw struct {
			Deliveries []struct {
				Payload json.RawMessage `json:"payload"`
			} `json:"deliveries"`
		}
		r.Decode(t, &raw)
		if string(raw.Deliveries[0].Payload) != bodies[0] {
			t.Fatalf("logged payload %s differs from the body sent %s", raw.Deliveries[0].Payload, bodies[0])
		}
		m := s.Do(t, "GET", "/metrics", "", nil)
		if !strings.Contains(string(m.Body), `docket_webhook_deliveries_total{outcome="delivered"} 1`) {
			t.Fatal("/metrics does not count the delivery")
		}
	})

	runScenarios(t, s, append([]scenario{
		{name: "200 filter by status", method: "GET", path: deliveries + "?status=delivered", key: w.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listWebhookDeliveries body", m, "deliveries", "total", "limit", "offset")
				if m["total"] != float64(1) {
					t.Fatalf("delivered = %s", r.Body)
				}
			}},
		{name: "200 filters that match nothing", method: "GET", path: deliveries + "?status=failed", key: w.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if m := r.JSON(t); m["total"] != float64(0) || len(m["deliveries"].([]any)) != 0 {
					t.Fatalf("failed = %s", r.Body)
				}
			}},
		{name: "200 run filter", method: "GET", path: deliveries + "?run_id=" + randomID(), key: w.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if r.JSON(t)["total"] != float64(0) {
					t.Fatalf("run filter = %s", r.Body)
				}
			}},
		{name: "200 another team sees none of it", method: "GET", path: "/v2/teams/" + w.otherTeam + "/webhook-deliveries", key: w.otherKey, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if r.JSON(t)["total"] != float64(0) {
					t.Fatalf("other team's log = %s", r.Body)
				}
			}},
		badRequest("400 unknown status", "GET", deliveries+"?status=lost", w.member, nil, "status"),
		badRequest("400 malformed webhook_id", "GET", deliveries+"?webhook_id=nope", w.member, nil, "webhook_id"),
		forbidden("403 viewer", "GET", deliveries, w.viewer, nil, "listWebhookDeliveries"),
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/webhook-deliveries", w.owner, nil),
	}, unauthenticated("GET", deliveries, nil)...))
}
