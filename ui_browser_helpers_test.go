package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// sessionCookie reads the dashboard's session cookie out of the browser.
func sessionCookie(t *testing.T, tab context.Context) string {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "docket_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
				t.Errorf("session cookie: HttpOnly=%v SameSite=%q, want HttpOnly and Lax", c.HTTPOnly, c.SameSite)
			}
			return c.Value
		}
	}
	t.Fatal("the browser holds no docket_session cookie after signing in")
	return ""
}

// setSessionCookie puts a session cookie into a browser, as if it had kept it.
func setSessionCookie(t *testing.T, tab context.Context, base, value string) {
	t.Helper()
	u, _ := url.Parse(base)
	if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: "docket_session", Value: value, Domain: u.Hostname(), Path: "/", HTTPOnly: new(true)}); err != nil {
		t.Fatal(err)
	}
}

// getWithCookie requests url with the session cookie and returns where it redirects
// ("" when it answers 200).
func getWithCookie(t *testing.T, url, cookie string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.AddCookie(&http.Cookie{Name: "docket_session", Value: cookie})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s with a session cookie: %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// downloadWithCookie follows a dashboard download link (a redirect to a signed URL) and
// returns the file's content.
func downloadWithCookie(t *testing.T, link, cookie string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", link, nil)
	req.AddCookie(&http.Cookie{Name: "docket_session", Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %d %s", link, resp.StatusCode, b)
	}
	return string(b)
}
