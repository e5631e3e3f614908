package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/browsertest"
)

// TestTrainingPageInBrowser opens a training's page in Chromium as its
// owner and watches it follow the trainer by itself (htmx polling): the
// progress bar moves and the loss curve grows as the test's trainer
// reports, and once the run succeeds the page reloads with the per-class
// figures, all without a CSP violation.
func TestTrainingPageInBrowser(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	w.registerToday(t)
	id := w.start(t, w.premium, map[string]any{"labels": []string{"cat"}, "model_name": "trained"})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)

	ctx := browsertest.New(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(w.base+"/login?next=/trainings/"+id),
		chromedp.SendKeys(`#email`, "premium@example.com"),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
	))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#training-status')`, `location.href`, 20*time.Second)
	browsertest.WaitFor(t, ctx, `document.querySelector('#training-status progress').value === 0`, `document.body.innerText`, 5*time.Second)

	require.Equal(t, http.StatusOK, w.progress(w.trainer, run, 3, 2.0).StatusCode)
	require.Equal(t, http.StatusOK, w.progress(w.trainer, run, 5, 1.0).StatusCode)
	browsertest.WaitFor(t, ctx, `document.querySelector('#training-status progress').value === 50`,
		`document.querySelector('#training-status').outerHTML`, 10*time.Second)
	browsertest.WaitFor(t, ctx, `(document.querySelector('svg.loss-curve polyline')?.getAttribute('points') || '').split(' ').length === 2`,
		`document.querySelector('#training-status').outerHTML`, 10*time.Second)

	require.Equal(t, http.StatusOK, w.upload(w.trainer, run, []byte(testModelMagic+"cat")).StatusCode)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#training-classes tr[data-label="cat"]')`,
		`document.body.innerText`, 60*time.Second)
	require.Empty(t, browsertest.TakeCSPViolations(ctx))
}
