package app

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestUploadPageInBrowser signs in through the form, chooses three files on
// the upload page (two photos and an SVG) and checks each file's outcome
// appears in place without a reload, then watches the uploads page update by
// itself until ingest is done.
func TestUploadPageInBrowser(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.client(t).signup("ada@example.com", "Ada")
	ctx := browsertest.New(t)

	dir := t.TempDir()
	names := []string{"beach.jpg", "park.jpg", "drawing.svg"}
	require.NoError(t, os.WriteFile(filepath.Join(dir, names[0]), imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, names[1]), imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(800, 600, 2)), 6), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, names[2]), []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), 0o644))
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(tb.base+"/login"),
		chromedp.SendKeys(`#email`, "ada@example.com"),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`a[href="/uploads"]`),
		chromedp.Navigate(tb.base+"/upload"),
		chromedp.WaitVisible(`#files`),
		chromedp.SetUploadFiles(`#files`, paths),
		chromedp.SendKeys(`#labels`, "dog, person"),
		chromedp.Click(`#upload-form button[type=submit]`),
	))

	rows := `Array.from(document.querySelectorAll('#upload-results li')).map(li => li.className + ': ' + li.textContent).join(' | ')`
	browsertest.WaitFor(t, ctx,
		`document.querySelectorAll('#upload-results li').length === 3 && !document.querySelector('#upload-results li.uploading')`,
		rows, 30*time.Second)
	created, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#upload-results li.created').length`))
	require.NoError(t, err)
	require.Equal(t, 2, created)
	refused, err := chromedp.Run(ctx, chromedp.Text(`#upload-results li.refused .reason`))
	require.NoError(t, err)
	require.Contains(t, refused, "drawing.svg")
	require.Contains(t, refused, "SVG files are not accepted")
	// Each stored photo's row follows it until ingest has decided.
	browsertest.WaitFor(t, ctx,
		`Array.from(document.querySelectorAll('#upload-results li.created')).every(li => li.dataset.state === 'awaiting_inference')`,
		rows, 30*time.Second)
	reason, err := chromedp.Run(ctx, chromedp.Text(`#upload-results li.created .reason`))
	require.NoError(t, err)
	require.Equal(t, "Checked: waiting for the model to propose masks.", reason)
	browsertest.Screenshot(t, ctx, "upload")
	require.Equal(t, 2, tb.count(t, "SELECT count(*) FROM images"))
	require.Equal(t, 2, tb.count(t, "SELECT count(*) FROM image_labels il JOIN labels l ON l.id = il.label_id WHERE l.name = 'dog'"))

	// The uploads page refreshes each card until ingest is done.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(tb.base+"/uploads")))
	badges := `Array.from(document.querySelectorAll('.image-card .badge')).map(e => e.textContent).join('|')`
	browsertest.WaitFor(t, ctx, badges+` === 'waiting for the model|waiting for the model'`, badges, 30*time.Second)
	browsertest.WaitFor(t, ctx,
		`Array.from(document.querySelectorAll('.image-card img')).filter(i => i.complete && i.naturalWidth > 0).length === 2`,
		`document.querySelector('.grid').innerHTML`, 10*time.Second)
	browsertest.Screenshot(t, ctx, "uploads")
}
