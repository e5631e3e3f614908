package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// imageMagick is Debian's ImageMagick (make bench installs it). The
// convert found first on PATH may be something else.
const imageMagick = "/usr/bin/convert"

// BenchmarkIngestPipeline measures the whole path for 1024×768 JPEG photos:
// upload over HTTP (two at a time, as the upload page sends them), blob
// store, transaction, and the ingest job done, in images per second. Beside
// it, ImageMagick's `convert -auto-orient -thumbnail 320x320` on the same
// files with the same parallelism, and the ratio of the two.
func BenchmarkIngestPipeline(b *testing.B) {
	if _, err := os.Stat(imageMagick); err != nil {
		b.Fatalf("%s not found: run make bench (it installs Debian's imagemagick)", imageMagick)
	}
	const perRound = 120
	par := runtime.GOMAXPROCS(0)
	tb := setup(b)
	c := tb.client(b)
	c.signup("bench@example.com", "Bench")

	var hubTime, magickTime time.Duration
	total := 0
	for i := 0; b.Loop(); i++ {
		files := photos(perRound, uint64(10000+i*perRound))
		dir := b.TempDir()
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
				b.Fatal(err)
			}
		}

		start := time.Now()
		uploadAndIngest(b, tb, c, files, par)
		total += perRound
		hubTime += time.Since(start)

		start = time.Now()
		names := make(chan string)
		var mwg sync.WaitGroup
		for range par {
			mwg.Add(1)
			go func() {
				defer mwg.Done()
				for n := range names {
					out, err := exec.Command(imageMagick, "-auto-orient", "-thumbnail", "320x320",
						filepath.Join(dir, n), filepath.Join(dir, "thumb-"+n)).CombinedOutput()
					if err != nil {
						b.Errorf("convert: %v %s", err, out)
					}
				}
			}()
		}
		for _, f := range files {
			names <- f.name
		}
		close(names)
		mwg.Wait()
		magickTime += time.Since(start)
	}
	var done int
	_ = tb.pool.QueryRow(context.Background(), "SELECT count(*) FROM images WHERE status = 'awaiting_inference'").Scan(&done)
	if done != total {
		b.Fatalf("%d of %d images ingested", done, total)
	}
	hub := float64(total) / hubTime.Seconds()
	magick := float64(total) / magickTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(hub, "hub_img/s")
	b.ReportMetric(magick, "imagemagick_img/s")
	b.ReportMetric(hub/magick, "ratio")
	fmt.Fprintf(os.Stderr, "ingest: %d images, %d at a time: hub %.1f img/s, ImageMagick %.1f img/s, ratio %.2f\n", total, par, hub, magick, hub/magick)
}

// uploadAndIngest uploads files par at a time, one a request, and waits
// until the hub has ingested them all.
func uploadAndIngest(b *testing.B, tb *testBundle, c *client, files []file, par int) {
	b.Helper()
	work := make(chan file)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for f := range work {
				if res := c.upload([]file{f}, nil); res.StatusCode != 201 {
					b.Errorf("upload: %d %s", res.StatusCode, res.body)
				}
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	for {
		var pending int
		if err := tb.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM images WHERE status IN ('uploaded', 'processing')").Scan(&pending); err != nil {
			b.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
