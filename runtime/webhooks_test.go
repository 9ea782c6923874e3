package runtime

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"docket/store"
)

// hookEnv is a real store on a temp file with a team, a master key and an actor.
type hookEnv struct {
	path   string
	st     *store.Store
	team   string
	actor  store.Actor
	master []byte
	logs   *syncBuffer
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	ctx := context.Background()
	e := &hookEnv{path: filepath.Join(t.TempDir(), store.DBFile), master: make([]byte, 32), logs: &syncBuffer{}}
	rand.Read(e.master)
	var err error
	if e.st, err = store.Open(ctx, e.path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	team, _, err := e.st.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := e.st.TeamOwner(ctx, team.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.team = team.ID
	e.actor = store.Actor{TeamID: team.ID, UserID: owner.ID, Channel: "api", Operation: "testWebhook"}
	return e
}

// start runs a deliverer on st until the test ends (or the returned stop is called).
func (e *hookEnv) start(t *testing.T, st *store.Store, opts WebhookOptions) (*WebhookDeliverer, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := NewWebhookDeliverer(st, e.master, log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15 s of its context being cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

func (e *hookEnv) subscribe(t *testing.T, url string) store.Webhook {
	t.Helper()
	w, err := e.st.CreateWebhook(context.Background(), e.actor, store.NewWebhook{URL: url, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (e *hookEnv) ping(t *testing.T, w store.Webhook) store.WebhookDelivery {
	t.Helper()
	d, err := e.st.EnqueueWebhookPing(context.Background(), e.actor, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *hookEnv) delivery(t *testing.T, id string) store.WebhookDelivery {
	t.Helper()
	ds, _, err := e.st.ListWebhookDeliveries(context.Background(), e.team, store.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("delivery %s not stored", id)
	return store.WebhookDelivery{}
}

// waitStatus polls the store until the delivery has status, failing after 10 s.
func (e *hookEnv) waitStatus(t *testing.T, id, status string) store.WebhookDelivery {
	t.Helper()
	var d store.WebhookDelivery
	waitFor(t, "delivery "+id+" to become "+status, func() bool {
		d = e.delivery(t, id)
		return d.Status == status
	})
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifySignature checks a request the way a Standard Webhooks receiver does, written
// from the spec rather than from the sender's code.
func verifySignature(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q is not whsec_<base64>", secret)
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("a webhook-id, webhook-timestamp or webhook-signature header is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds within 5 minutes of now", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(sigs) {
		if v, ok := strings.CutPrefix(sig, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches", sigs)
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
	err    error // signature check
}

// receiver is a webhook endpoint that verifies every request with secret and answers
// with whatever respond says for the n-th request (0-based) it got for that webhook-id.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
	byID map[string]int
}

func newReceiver(t *testing.T, secret string, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	rc := &receiver{byID: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{at: time.Now(), header: r.Header.Clone(), body: body, err: verifySignature(secret, r.Header, body)})
		n := rc.byID[id]
		rc.byID[id]++
		rc.mu.Unlock()
		respond(w, r, n)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func counterValue(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "docket_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestWebhookDeliveredWithValidSignature(t *testing.T) {
	e := newHookEnv(t)
	secret := SigningSecret(e.master, e.team)
	rc := newReceiver(t, secret, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusNoContent) })
	hook := e.subscribe(t, rc.URL+"/hooks/docket?token=url-token-must-not-be-logged")
	reg := prometheus.NewRegistry()
	d, _ := e.start(t, e.st, WebhookOptions{Registerer: reg})

	ping := e.ping(t, hook)
	d.Wake()
	for range 3 {
		d.Wake() // never blocks, however often it is called
	}
	got := e.waitStatus(t, ping.ID, store.DeliveryDelivered)
	if got.Attempts != 1 || got.LastStatusCode == nil || *got.LastStatusCode != 204 || got.DeliveredAt == nil || got.LastError != nil {
		t.Fatalf("delivered row = %+v", got)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.err != nil {
		t.Fatalf("signature does not verify with the team's secret: %v", r.err)
	}
	if r.header.Get("webhook-id") != ping.ID {
		t.Fatalf("webhook-id = %q, want the delivery id %s", r.header.Get("webhook-id"), ping.ID)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if !bytes.Equal(r.body, ping.Payload) || !strings.HasPrefix(string(r.body), `{"event":"ping",`) {
		t.Fatalf("body = %s, want the stored payload %s", r.body, ping.Payload)
	}
	// Secrets are per team: another team's secret must not verify this request.
	if err := verifySignature(SigningSecret(e.master, store.NewID()), r.header, r.body); err == nil {
		t.Fatal("another team's secret verified the signature")
	}
	if v := counterValue(t, reg, "delivered"); v != 1 {
		t.Fatalf("docket_webhook_deliveries_total{outcome=delivered} = %v, want 1", v)
	}
	logs := e.logs.String()
	for _, secretText := range []string{"url-token-must-not-be-logged", secret, strings.TrimPrefix(secret, "whsec_")} {
		if strings.Contains(logs, secretText) {
			t.Fatalf("the log contains %q:\n%s", secretText, logs)
		}
	}
}

func TestSigningSecretIsStablePerTeamAndMasterKey(t *testing.T) {
	master := bytes.Repeat([]byte{7}, 32)
	a := SigningSecret(master, "team-a")
	if a != SigningSecret(master, "team-a") {
		t.Fatal("the secret changes between calls; receivers could never verify")
	}
	if a == SigningSecret(master, "team-b") || a == SigningSecret(bytes.Repeat([]byte{8}, 32), "team-a") {
		t.Fatal("different teams or master keys share a secret")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q is not whsec_ + base64 of 32 bytes", a)
	}
}

func TestWebhookRetriedUntilReceiverRecovers(t *testing.T) {
	e := newHookEnv(t)
	const down = 3
	backoff := 50 * time.Millisecond
	rc := newReceiver(t, SigningSecret(e.master, e.team), func(w http.ResponseWriter, r *http.Request, n int) {
		if n < down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hook := e.subscribe(t, rc.URL)
	reg := prometheus.NewRegistry()
	d, _ := e.start(t, e.st, WebhookOptions{Registerer: reg, Backoff: func(int) time.Duration { return backoff }})

	ping := e.ping(t, hook)
	d.Wake()
	var firstFailure store.WebhookDelivery
	waitFor(t, "the first failed attempt to be recorded", func() bool {
		firstFailure = e.delivery(t, ping.ID)
		return firstFailure.LastError != nil || firstFailure.Status == store.DeliveryDelivered
	})
	if firstFailure.LastError == nil || !strings.Contains(*firstFailure.LastError, "503") || !strings.Contains(*firstFailure.LastError, "maintenance") {
		t.Fatalf("after a 503 the log says %+v, want last_error naming HTTP 503 and the body", firstFailure)
	}
	got := e.waitStatus(t, ping.ID, store.DeliveryDelivered)
	if got.Attempts != down+1 || *got.LastStatusCode != 200 || got.LastError != nil {
		t.Fatalf("delivered row = %+v, want %d attempts ending in 200", got, down+1)
	}
	reqs := rc.requests()
	if len(reqs) != down+1 {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), down+1)
	}
	for i, r := range reqs {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if id := r.header.Get("webhook-id"); id != ping.ID {
			t.Fatalf("request %d has webhook-id %s, want the same id %s on every retry", i, id, ping.ID)
		}
		// Retries wait for their backoff (to the store's millisecond) rather than coming early.
		if i > 0 && r.at.Sub(reqs[i-1].at) < backoff-2*time.Millisecond {
			t.Fatalf("request %d came %v after the previous one, before the %v backoff", i, r.at.Sub(reqs[i-1].at), backoff)
		}
	}
	if v := counterValue(t, reg, "retried"); v != down {
		t.Fatalf("retried counter = %v, want %d", v, down)
	}
}

func TestWebhookFailsAfterRetryWindow(t *testing.T) {
	e := newHookEnv(t)
	rc := newReceiver(t, SigningSecret(e.master, e.team), func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	hook := e.subscribe(t, rc.URL)
	reg := prometheus.NewRegistry()
	d, _ := e.start(t, e.st, WebhookOptions{Registerer: reg, Backoff: func(int) time.Duration { return 20 * time.Millisecond }, RetryWindow: 150 * time.Millisecond})
	ping := e.ping(t, hook)
	d.Wake()
	got := e.waitStatus(t, ping.ID, store.DeliveryFailed)
	if got.Attempts < 2 || got.LastError == nil || !strings.Contains(*got.LastError, "HTTP 500") || !strings.Contains(*got.LastError, "boom") || *got.LastStatusCode != 500 {
		t.Fatalf("failed row = %+v, want several attempts and the last 500 with its body", got)
	}
	if n := len(rc.requests()); n != got.Attempts {
		t.Fatalf("receiver got %d requests for %d recorded attempts", n, got.Attempts)
	}
	if v := counterValue(t, reg, "failed"); v != 1 {
		t.Fatalf("failed counter = %v, want 1", v)
	}
}

func TestWebhookToNonHTTPURLFailsWithReason(t *testing.T) {
	e := newHookEnv(t)
	// The API refuses such URLs; the store does not, so the worker must refuse them too.
	hook := e.subscribe(t, "ftp://files.example/inbox")
	d, _ := e.start(t, e.st, WebhookOptions{})
	ping := e.ping(t, hook)
	d.Wake()
	got := e.waitStatus(t, ping.ID, store.DeliveryFailed)
	if got.Attempts != 1 || got.LastError == nil || !strings.Contains(*got.LastError, "ftp://") || !strings.Contains(*got.LastError, "http:// or https://") {
		t.Fatalf("failed row = %+v, want one attempt refused with a reason naming the scheme and the fix", got)
	}
}

func TestWebhookNotFollowingRedirects(t *testing.T) {
	e := newHookEnv(t)
	rc := newReceiver(t, SigningSecret(e.master, e.team), func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	hook := e.subscribe(t, rc.URL)
	d, _ := e.start(t, e.st, WebhookOptions{Backoff: func(int) time.Duration { return time.Hour }})
	ping := e.ping(t, hook)
	d.Wake()
	var got store.WebhookDelivery
	waitFor(t, "the redirect to be recorded", func() bool {
		got = e.delivery(t, ping.ID)
		return got.LastError != nil
	})
	if got.Status != store.DeliveryPending || *got.LastStatusCode != 302 || !strings.Contains(*got.LastError, "redirects are not followed") {
		t.Fatalf("row = %+v, want a retry scheduled after a 302 that names the fix", got)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("receiver got %d requests; the redirect must not be followed", n)
	}
}

// TestWebhookRestartDeliversEachOnce stops a worker mid-delivery and leaves another
// delivery claimed by a "killed" process, then starts a new worker on a freshly opened
// store: the interrupted and the orphaned deliveries arrive with their original
// webhook-id, and nothing already acknowledged is sent again.
func TestWebhookRestartDeliversEachOnce(t *testing.T) {
	e := newHookEnv(t)
	var hang struct {
		sync.Mutex
		id      string
		arrived chan struct{}
	}
	hang.arrived = make(chan struct{})
	rc := newReceiver(t, SigningSecret(e.master, e.team), func(w http.ResponseWriter, r *http.Request, n int) {
		hang.Lock()
		stuck := r.Header.Get("webhook-id") == hang.id && n == 0
		hang.Unlock()
		if stuck {
			close(hang.arrived)
			<-r.Context().Done() // answers nothing: the sender gives up first
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hook := e.subscribe(t, rc.URL)
	p1, p2, p3 := e.ping(t, hook), e.ping(t, hook), e.ping(t, hook)
	hang.Lock()
	hang.id = p2.ID
	hang.Unlock()

	first, stopFirst := e.start(t, e.st, WebhookOptions{})
	first.Wake()
	e.waitStatus(t, p1.ID, store.DeliveryDelivered)
	e.waitStatus(t, p3.ID, store.DeliveryDelivered)
	select {
	case <-hang.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging delivery never reached the receiver")
	}
	stopFirst()
	if got := e.delivery(t, p2.ID); got.Status != store.DeliveryPending || got.Attempts != 1 {
		t.Fatalf("after shutdown mid-request p2 = %+v, want pending again (released for the next start)", got)
	}

	// A process that claimed p4 and was killed before reporting: only its lease remains.
	p4 := e.ping(t, hook)
	if claimed, err := e.st.ClaimWebhookDeliveries(context.Background(), 300*time.Millisecond, 10); err != nil || len(claimed) != 2 {
		t.Fatalf("claim as the killed process = %d rows, %v; want p2 and p4", len(claimed), err)
	}

	// Restart: a new store handle on the same file and a new worker.
	st2, err := store.Open(context.Background(), e.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	second, _ := e.start(t, st2, WebhookOptions{})
	second.Wake()
	// p2: cut off, claimed by the killed process, then delivered; p4: orphaned, then delivered.
	for id, attempts := range map[string]int{p2.ID: 3, p4.ID: 2} {
		if got := e.waitStatus(t, id, store.DeliveryDelivered); got.Attempts != attempts {
			t.Fatalf("%s delivered after %d attempts, want %d", id, got.Attempts, attempts)
		}
	}

	acked := map[string]int{}
	all := map[string]int{}
	for _, r := range rc.requests() {
		if r.err != nil {
			t.Fatal(r.err)
		}
		id := r.header.Get("webhook-id")
		all[id]++
		if id != p2.ID || all[id] > 1 {
			acked[id]++
		}
	}
	for _, p := range []store.WebhookDelivery{p1, p2, p3, p4} {
		if acked[p.ID] != 1 {
			t.Fatalf("delivery %s was acknowledged %d times, want exactly once (requests per id: %v)", p.ID, acked[p.ID], all)
		}
	}
	if all[p2.ID] != 2 {
		t.Fatalf("p2 reached the receiver %d times, want 2 (cut off, then resent with the same webhook-id)", all[p2.ID])
	}
}

func TestValidateWebhookURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want string // substring of the error; empty: valid
	}{
		{"https://hooks.example.com/docket?token=abc", ""},
		{"http://127.0.0.1:9000/in", ""},
		{"", "required"},
		{"ftp://files.example/in", "ftp://"},
		{"hooks.example.com/in", "no scheme"},
		{"https:///path-only", "no host"},
		{"http://[::1", "not a valid URL"},
		{"https://x.example/" + strings.Repeat("a", 2100), "2048"},
	} {
		err := ValidateWebhookURL(c.url)
		if c.want == "" {
			if err != nil {
				t.Errorf("ValidateWebhookURL(%q) = %v, want ok", c.url, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateWebhookURL(%q) = %v, want an error containing %q", c.url, err, c.want)
		}
		if err != nil && c.url != "" && strings.Contains(err.Error(), c.url) {
			t.Errorf("the error repeats the URL (which may carry a token): %v", err)
		}
	}
}

func TestDefaultBackoffSpansADay(t *testing.T) {
	var total time.Duration
	attempts := 1
	for prev := time.Duration(0); ; attempts++ {
		wait := defaultBackoff(attempts)
		if wait < prev {
			t.Fatalf("backoff shrinks at attempt %d: %v after %v", attempts, wait, prev)
		}
		if total+wait > 24*time.Hour {
			break
		}
		total, prev = total+wait, wait
	}
	if total < 20*time.Hour || attempts < 8 || attempts > 12 {
		t.Fatalf("with the default backoff the last of %d attempts comes %v after the event, want about a day in 8 to 12 attempts", attempts, total)
	}
}
