package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxHTTPResponse bounds what http_request hands the model: enough for an API answer,
// not a download.
const maxHTTPResponse = 64 << 10

func safeMethod(args map[string]any) bool {
	switch strings.ToUpper(argString(args, "method")) {
	case "", "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// httpTool calls allowlisted hosts. Calls other than GET/HEAD/OPTIONS wait for approval
// by default and are not repeated after a crash (their outcome is asked instead).
func httpTool(client *http.Client) *Tool {
	return &Tool{
		Name:        "http_request",
		Description: "Make an HTTP request to a host this assignment is allowed to call. Returns the status, content type and body (at most 64 KiB).",
		Schema: `{"type":"object","required":["url"],"properties":{
			"method":{"type":"string","enum":["GET","HEAD","OPTIONS","POST","PUT","PATCH","DELETE"],"description":"Default GET"},
			"url":{"type":"string"},
			"headers":{"type":"object","additionalProperties":{"type":"string"}},
			"body":{"type":"string"}}}`,
		Idempotent:  safeMethod,
		Gated:       func(args map[string]any) bool { return !safeMethod(args) },
		NeedsConfig: func(d SetupData) bool { return len(d.HTTPAllowlist) > 0 },
		Run: func(ctx context.Context, c *Call) (string, error) {
			return doHTTP(ctx, client, c)
		},
	}
}

func doHTTP(ctx context.Context, client *http.Client, c *Call) (string, error) {
	raw, err := requireString(c.Args, "url")
	if err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url %q: must be an absolute http:// or https:// URL", raw)
	}
	if !hostAllowed(c.Setup.HTTPAllowlist, u) {
		return "", fmt.Errorf("host %s is not in this setup's http_allowlist (%s): ask the owner to add it", u.Host, strings.Join(c.Setup.HTTPAllowlist, ", "))
	}
	method := strings.ToUpper(argString(c.Args, "method"))
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if b := argString(c.Args, "body"); b != "" {
		body = strings.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	if hs, ok := c.Args["headers"].(map[string]any); ok {
		for k, v := range hs {
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("header %q must be a string", k)
			}
			req.Header.Set(k, s)
		}
	}
	// The same key on every attempt lets the receiver drop a repeat (DESIGN §5.5).
	req.Header.Set("Idempotency-Key", c.IdempotencyKey)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "docket")
	}
	cl := *client
	cl.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if !hostAllowed(c.Setup.HTTPAllowlist, r.URL) {
			return fmt.Errorf("redirect to %s refused: the host is not in http_allowlist", r.URL.Host)
		}
		return nil
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPResponse+1))
	if err != nil {
		return "", fmt.Errorf("reading the response: %w", err)
	}
	out := map[string]any{"status": resp.StatusCode, "content_type": resp.Header.Get("Content-Type"), "body": string(b)}
	if len(b) > maxHTTPResponse {
		out["body"], out["truncated"] = string(b[:maxHTTPResponse]), true
	}
	j, err := json.Marshal(out)
	return string(j), err
}

// hostAllowed matches u's host against the allowlist: "example.com" (any port),
// "*.example.com" (subdomains only), "example.com:8443" (that port only).
func hostAllowed(allow []string, u *url.URL) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, rule := range allow {
		rh, rp, err := net.SplitHostPort(rule)
		if err != nil {
			rh, rp = rule, ""
		}
		if rp != "" && rp != port {
			continue
		}
		if sub, ok := strings.CutPrefix(rh, "*."); ok {
			if strings.HasSuffix(host, "."+sub) {
				return true
			}
		} else if host == rh {
			return true
		}
	}
	return false
}
