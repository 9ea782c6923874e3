package runtime

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"docket/store"
)

// SigningSecret is a team's webhook signing secret in the Standard Webhooks form
// ("whsec_" + base64 key). It is derived from the server's master key, so nothing extra is
// stored and every team's secret differs.
func SigningSecret(master []byte, teamID string) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(signingKey(master, teamID))
}

func signingKey(master []byte, teamID string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("docket/webhook-signing/v1/" + teamID))
	return m.Sum(nil)
}

// signature is the webhook-signature header value: the Standard Webhooks v1 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>".
func signature(key []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidateWebhookURL accepts absolute http and https URLs: webhooks are HTTP POSTs. The
// message names what is wrong without repeating the URL, which may carry a token.
func ValidateWebhookURL(raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return errors.New("a webhook URL is required, e.g. https://example.com/hooks/docket")
	}
	if len(raw) > 2048 {
		return fmt.Errorf("the URL is %d characters long; at most 2048 are allowed", len(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL (%v): use an address like https://example.com/hooks/docket", err)
	}
	if u.Scheme == "" {
		return errors.New("the URL has no scheme: webhooks are sent as HTTP POST requests, so start it with http:// or https://")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %s:// is not allowed: webhooks are sent as HTTP POST requests, so use an http:// or https:// URL", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host: use a full address like https://example.com/hooks/docket")
	}
	return nil
}

// WebhookOptions tune the delivery worker; zero values take the defaults.
type WebhookOptions struct {
	// Client sends the requests; redirects are never followed (a receiver answers itself).
	Client *http.Client
	// Timeout bounds one attempt; default 10 s.
	Timeout time.Duration
	// Backoff is the wait after the attempt-th failed attempt (1, 2, …); default 5 s, 30 s,
	// 2 m, 10 m, 1 h, 2 h, 4 h, then 8 h.
	Backoff func(attempt int) time.Duration
	// RetryWindow is how long after the event retries go on; an attempt that would start
	// later is not made and the delivery fails. Default 24 h.
	RetryWindow time.Duration
	// Lease is how long a claimed delivery stays reserved to this worker; a process that
	// dies mid-delivery leaves it to be claimed again after that. Default 60 s, and never
	// less than twice Timeout, so an attempt still running is not claimed twice.
	Lease time.Duration
	// Concurrency is how many deliveries are in flight at once; default 4.
	Concurrency int
	// Registerer, when set, gets docket_webhook_deliveries_total{outcome}.
	Registerer prometheus.Registerer
}

// defaultBackoff sums to about 23 h over 9 retries, so with the 24 h window the last
// attempt comes about a day after the event.
func defaultBackoff(attempt int) time.Duration {
	steps := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}
	if attempt >= 1 && attempt <= len(steps) {
		return steps[attempt-1]
	}
	return 8 * time.Hour
}

// idleCheck bounds the worker's sleep when nothing is queued, so a delivery enqueued by
// another process (or without a Wake) is still found.
const idleCheck = time.Minute

// WebhookDeliverer sends queued webhook deliveries: it claims due outbox rows with a lease,
// POSTs them signed, records each outcome and sleeps until the next one is due. The
// database is the queue; Wake only ends a sleep early.
type WebhookDeliverer struct {
	st       *store.Store
	master   []byte
	log      *slog.Logger
	opts     WebhookOptions
	client   *http.Client
	wake     chan struct{}
	outcomes *prometheus.CounterVec
}

// NewWebhookDeliverer prepares a worker; Run starts it. master is the server's master key,
// from which each team's signing secret is derived.
func NewWebhookDeliverer(st *store.Store, master []byte, log *slog.Logger, opts WebhookOptions) *WebhookDeliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = defaultBackoff
	}
	if opts.RetryWindow <= 0 {
		opts.RetryWindow = 24 * time.Hour
	}
	if opts.Lease <= 0 {
		opts.Lease = 60 * time.Second
	}
	opts.Lease = max(opts.Lease, 2*opts.Timeout)
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if log == nil {
		log = slog.Default()
	}
	client := &http.Client{}
	if opts.Client != nil {
		c := *opts.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d := &WebhookDeliverer{st: st, master: master, log: log.With("component", "webhooks"), opts: opts, client: client,
		wake: make(chan struct{}, 1)}
	d.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docket_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome: delivered, retried (failed, will be tried again) or failed (given up).",
	}, []string{"outcome"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(d.outcomes); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				d.log.Warn("webhook metrics not registered", "err", err)
			} else if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				d.outcomes = c
			}
		}
	}
	return d
}

// Wake makes a sleeping worker look for due deliveries now. It never blocks; call it after
// committing a transaction that enqueued webhooks.
func (d *WebhookDeliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is cancelled, then waits for the attempts in flight. An attempt
// cut short by the cancellation goes back to the queue, to be sent again at the next start.
func (d *WebhookDeliverer) Run(ctx context.Context) error {
	slots := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		sleep := time.Duration(-1) // wait for a Wake only: every slot is busy
		if free := cap(slots) - len(slots); free > 0 {
			batch, err := d.st.ClaimWebhookDeliveries(ctx, d.opts.Lease, free)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.log.Error("claiming webhook deliveries failed", "err", err)
			}
			for _, dl := range batch {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						d.Wake() // a slot is free
					}()
					d.deliver(ctx, dl)
				})
			}
			if len(batch) == free {
				continue // more may be due
			}
			sleep = d.untilNextDue(ctx, err != nil)
		}
		var tick <-chan time.Time
		if sleep >= 0 {
			timer.Reset(sleep)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// untilNextDue is how long the worker may sleep: until the next delivery is due, at most
// idleCheck, and a few seconds after a database error.
func (d *WebhookDeliverer) untilNextDue(ctx context.Context, failed bool) time.Duration {
	if failed {
		return 5 * time.Second
	}
	next, ok, err := d.st.NextWebhookDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading the next webhook due time failed", "err", err)
		}
		return 5 * time.Second
	}
	if !ok {
		return idleCheck
	}
	return min(max(time.Until(next), 0), idleCheck)
}

// deliver makes one attempt and records its outcome.
func (d *WebhookDeliverer) deliver(ctx context.Context, dl store.WebhookDelivery) {
	log := d.log.With("delivery_id", dl.ID, "event", dl.Event, "attempt", dl.Attempts, "host", hostOf(dl.URL))
	var code int
	var reason string
	refused := ValidateWebhookURL(dl.URL)
	if refused == nil {
		code, reason = d.post(ctx, dl)
	}
	// Outcomes are recorded even when ctx was just cancelled: a receiver's 2xx must not be
	// lost, or the delivery would be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case refused != nil:
		d.fail(rctx, log, dl, store.WebhookFailure{Reason: "refused: " + refused.Error(), Final: true})
	case code >= 200 && code < 300:
		if err := d.st.MarkWebhookDelivered(rctx, dl.ID, dl.Attempts, code); err != nil {
			log.Error("recording a webhook delivery failed; it will be sent again", "err", err)
			return
		}
		d.outcomes.WithLabelValues("delivered").Inc()
		log.Debug("webhook delivered", "status", code)
	case ctx.Err() != nil:
		// Shutting down mid-request: give the delivery back without waiting for its lease.
		if err := d.st.MarkWebhookFailed(rctx, dl.ID, dl.Attempts, store.WebhookFailure{StatusCode: code,
			Reason: "interrupted by server shutdown; sent again after restart"}); err != nil {
			log.Warn("releasing an interrupted webhook delivery failed; it is retried when its lease ends", "err", err)
		}
	default:
		wait := d.opts.Backoff(dl.Attempts)
		final := time.Since(dl.CreatedAt)+wait > d.opts.RetryWindow
		d.fail(rctx, log, dl, store.WebhookFailure{StatusCode: code, Reason: reason, RetryIn: wait, Final: final})
	}
}

func (d *WebhookDeliverer) fail(ctx context.Context, log *slog.Logger, dl store.WebhookDelivery, f store.WebhookFailure) {
	if err := d.st.MarkWebhookFailed(ctx, dl.ID, dl.Attempts, f); err != nil {
		log.Error("recording a failed webhook attempt failed", "err", err)
		return
	}
	if f.Final {
		d.outcomes.WithLabelValues("failed").Inc()
		log.Error("webhook delivery failed for good", "status", f.StatusCode, "reason", f.Reason)
		return
	}
	d.outcomes.WithLabelValues("retried").Inc()
	log.Warn("webhook attempt failed; will retry", "status", f.StatusCode, "reason", f.Reason, "retry_in", f.RetryIn.String())
}

// post sends the signed request and returns the status code (0 without a response) and,
// for anything but a 2xx, a reason for the delivery log that does not repeat the URL.
func (d *WebhookDeliverer) post(ctx context.Context, dl store.WebhookDelivery) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(dl.Payload))
	if err != nil {
		return 0, "building the request failed: " + innerURLError(err).Error()
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "docket-webhooks/1")
	req.Header.Set("webhook-id", dl.ID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", signature(signingKey(d.master, dl.TeamID), dl.ID, ts, dl.Payload))
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Sprintf("no response within %s", d.opts.Timeout)
		}
		return 0, innerURLError(err).Error()
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	reason := "HTTP " + resp.Status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		reason += ": redirects are not followed; point the webhook at the final URL"
	} else if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")); s != "" {
		reason += ": " + s
	}
	return resp.StatusCode, reason
}

// innerURLError drops the *url.Error wrapper, whose message repeats the full URL.
func innerURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// hostOf is the part of a webhook URL that is safe to log: paths and queries often hold tokens.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Host
}
