package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BrowserTimeout bounds each tab's whole life, so a page that never shows what a test
// waits for fails the test instead of hanging it.
const BrowserTimeout = 90 * time.Second

// ChromiumPath finds a Chromium to drive: $DOCKET_CHROMIUM, else Debian's chromium, else
// one on PATH. It returns "" when there is none.
func ChromiumPath() string {
	if p := os.Getenv("DOCKET_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one headless Chromium process for a test. Sessions in it are isolated from
// each other (cookies, storage) like separate browser profiles.
type Browser struct {
	ctx context.Context
}

// NewBrowser starts headless Chromium, stopped when the test ends. Without a Chromium the
// test is skipped, unless DOCKET_REQUIRE_BROWSER=1 (CI) makes that a failure.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		if os.Getenv("DOCKET_REQUIRE_BROWSER") == "1" {
			t.Fatal("no Chromium found and DOCKET_REQUIRE_BROWSER=1: install it (apt-get install -y chromium) or set DOCKET_CHROMIUM")
		}
		t.Skip("no Chromium found (apt-get install -y chromium); DOCKET_REQUIRE_BROWSER=1 turns this skip into a failure")
	}
	profile, err := os.MkdirTemp("", "docket-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	// The first run starts the process; sessions then open their own browser contexts.
	if err := chromedp.Do(ctx); err != nil {
		if os.Getenv("DOCKET_REQUIRE_BROWSER") != "1" && strings.Contains(err.Error(), "exec") {
			t.Skipf("Chromium at %s does not start: %v", path, err)
		}
		t.Fatalf("start Chromium at %s: %v", path, err)
	}
	return &Browser{ctx: ctx}
}

// Session opens a tab in a fresh, isolated browser context: a person at their own browser.
func (b *Browser) Session(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	return b.tab(t, ctx, cancel)
}

// Tab opens another tab in the same session as tab: it shares its cookies, as a second
// tab of the same browser would.
func (b *Browser) Tab(t testing.TB, tab context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tab)
	return b.tab(t, ctx, cancel)
}

func (b *Browser) tab(t testing.TB, ctx context.Context, cancel context.CancelFunc) context.Context {
	ctx, cancelTimeout := context.WithTimeout(ctx, BrowserTimeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// Do runs browser steps on tab and fails the test, naming what was attempted and what
// the page showed, if one fails (a wait that times out included).
func Do(t testing.TB, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("browser: %s: %v\n%s", what, err, PageSummary(tab))
	}
}

// PageSummary is the tab's URL and visible text, for failure messages.
func PageSummary(tab context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tab), 5*time.Second)
	defer cancel()
	url, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	return "page " + url + " shows:\n" + text
}

// Text returns the visible text of the first element matching a CSS selector.
func Text(t testing.TB, tab context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("browser: read %s: %v\n%s", css, err, PageSummary(tab))
	}
	return s
}

// WaitText waits until the first element matching a CSS selector contains text, checking
// the DOM every 50 ms for up to 30 s.
func WaitText(css, text string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q); })()`, css, text)
	return waitJS(js)
}

// WaitGone waits until no element matches a CSS selector.
func WaitGone(css string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`document.querySelector(%q) === null`, css))
}

// WaitJS waits until a JavaScript expression is truthy.
func WaitJS(expression string) chromedp.Action[chromedp.Void] { return waitJS(expression) }

// waitJS evaluates js every 50 ms until it is true, for up to 30 s. Errors while a page
// is being replaced (a form submitted, a redirect) only mean "not yet".
func waitJS(js string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(30 * time.Second)
		var last error
		for {
			ok, err := chromedp.Evaluate[bool](js)(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			last = err
			if ctx.Err() != nil || time.Now().After(deadline) {
				if last == nil {
					last = fmt.Errorf("still false after 30 s: %s", js)
				}
				return chromedp.Void{}, last
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// Screenshot saves the whole page as PNG to dir/name when dir is not "" (tests pass
// $DOCKET_SCREENSHOTS). width and height set the viewport first.
func Screenshot(t testing.TB, tab context.Context, dir, name string, width, height int64) {
	t.Helper()
	if dir == "" {
		return
	}
	Do(t, tab, "set the viewport for "+name, chromedp.EmulateViewport(width, height))
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
