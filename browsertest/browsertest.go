// Package browsertest drives a real headless Chromium (Debian's chromium
// package) for end-to-end tests of pages with client-side code.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Path finds the Chromium binary: $CHROMIUM, or chromium on PATH.
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// New starts a browser for one test and returns a context to drive it with.
// The test fails (it does not skip) when no browser is installed: `make test`
// installs Debian's chromium. It also fails, at its end, when a page reported
// a Content-Security-Policy violation (see TakeCSPViolations).
func New(tb testing.TB) context.Context {
	tb.Helper()
	path, err := Path()
	if err != nil {
		tb.Fatal("browsertest: no Chromium found; run `make test` (it installs Debian's chromium) or set CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(tb.TempDir(), "profile")),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("browsertest: error starting %s: %v", path, err)
	}
	return watchCSP(tb, ctx)
}

// cspBinding is the function the page calls with each violation; a DevTools
// binding, so it reports across navigations and bypasses the page's CSP.
const cspBinding = "__browsertestCSPViolation"

// cspListener runs in every document before its own scripts and reports
// each Content-Security-Policy violation through the binding.
const cspListener = `document.addEventListener('securitypolicyviolation', function (e) {
	window.` + cspBinding + `(JSON.stringify({
		page: e.documentURI, directive: e.effectiveDirective || e.violatedDirective,
		blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample,
	}));
}, true);`

type cspKey struct{}

// cspViolations is what the pages of one test reported.
type cspViolations struct {
	mu   sync.Mutex
	list []string
}

// watchCSP collects every CSP violation of the test's pages and fails the
// test at its end when there was any: the pages run under a strict policy,
// and a violation means a script, style or image was blocked.
func watchCSP(tb testing.TB, ctx context.Context) context.Context {
	tb.Helper()
	v := &cspViolations{}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventBindingCalled); ok && e.Name == cspBinding {
			v.mu.Lock()
			v.list = append(v.list, e.Payload)
			v.mu.Unlock()
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{Name: cspBinding})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspListener})
	}
	if err != nil {
		tb.Fatalf("browsertest: error watching for CSP violations: %v", err)
	}
	ctx = context.WithValue(ctx, cspKey{}, v)
	tb.Cleanup(func() {
		if got := TakeCSPViolations(ctx); len(got) > 0 {
			tb.Errorf("browsertest: %d Content-Security-Policy violations:\n%s", len(got), strings.Join(got, "\n"))
		}
	})
	return ctx
}

// TakeCSPViolations returns the Content-Security-Policy violations the
// pages of the browser of ctx (from New) have reported since the last call,
// one JSON object each, and forgets them. New fails the test at its end
// when there are any left.
func TakeCSPViolations(ctx context.Context) []string {
	v, ok := ctx.Value(cspKey{}).(*cspViolations)
	if !ok {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	got := v.list
	v.list = nil
	return got
}

// Screenshot saves a full-page PNG under $SCREENSHOT_DIR, when it is set, so
// a person can look at what the test saw.
func Screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Errorf("browsertest: screenshot: %v", err)
		return
	}
	_ = os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.Errorf("browsertest: screenshot: %v", err)
	}
}

// WaitFor evaluates a JavaScript expression until it is true, failing the
// test after timeout with the last value of describe (another expression).
func WaitFor(tb testing.TB, ctx context.Context, expr, describe string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](describe))
			tb.Fatalf("browsertest: waited %s for %s (err %v); state: %s", timeout, expr, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ExposeHooks asks the pages of the browser of ctx (from New) for their
// test hooks: it sets window.imagehubTestHooks in every document before
// the document's own scripts run, and the review screen then exposes
// window.imagehubReview (static/review/hook.js). Pages opened by other
// visitors never load the hook.
func ExposeHooks(tb testing.TB, ctx context.Context) {
	tb.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.imagehubTestHooks = true;`,
	}); err != nil {
		tb.Fatalf("browsertest: error asking for the test hooks: %v", err)
	}
}
