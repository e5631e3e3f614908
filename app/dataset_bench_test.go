package app

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/dbtest"
)

// procStatusKB reads a line of /proc/self/status, in kB.
func procStatusKB(b *testing.B, field string) int64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatalf("this benchmark reads /proc/self/status (Linux): %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkDatasetDownload downloads, over HTTP from the running server, the
// COCO zip of a version of 100,000 images (2 GB, 20 kB each) with 200,000
// annotations, and reports the process's peak RSS growth during the
// download (server and client share the process, so it counts both), the
// time to the first byte, and the throughput.
func BenchmarkDatasetDownload(b *testing.B) {
	const n, size = 100_000, 20_000
	pool := dbtest.NewPool(b)
	dir := b.TempDir()
	blobs, err := blob.Open(context.Background(), "file://"+dir)
	if err != nil {
		b.Fatal(err)
	}
	tb := startBundle(b, testConfig(b), pool, blobs)
	admin, adminUser := tb.userWithRole(b, "admin@example.com", auth.RoleAdmin)
	premium, _ := tb.userWithRole(b, "premium@example.com", auth.RolePremium)
	start := time.Now()
	total := datasettest.BulkFiles(b, pool, adminUser.ID, dir, n, size)
	d, err := dataset.Create(context.Background(), pool, dataset.Spec{Name: "bench"}, adminUser.ID)
	if err != nil {
		b.Fatal(err)
	}
	res := admin.json(http.MethodPost, "/api/v1/datasets/"+d.ID.String()+"/versions", map[string]any{})
	if res.StatusCode != http.StatusAccepted {
		b.Fatalf("publish: %d %s", res.StatusCode, res.body)
	}
	waitPublishedB(b, premium, d.ID.String())
	b.Logf("wrote %d MB of images and published them in %s", total/1e6, time.Since(start).Round(time.Second))

	token := premium.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "bench"}).json(b)["token"].(string)
	url := tb.base + "/api/v1/datasets/" + d.ID.String() + "/versions/1/download"
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+);
	// a sampler covers kernels that refuse it.
	resetHWM := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	before := procStatusKB(b, "VmRSS")
	var peak atomic.Int64
	peak.Store(before)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if rss := procStatusKB(b, "VmRSS"); rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	}()

	var firstByte, elapsed time.Duration
	var got int64
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("download: %d", resp.StatusCode)
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, one); err != nil {
			b.Fatal(err)
		}
		firstByte = max(firstByte, time.Since(t0))
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(t0)
		got += m + 1
	}
	close(stop)
	wg.Wait()
	if got < total {
		b.Fatalf("downloaded %d bytes, fewer than the images' %d", got, total)
	}
	high := peak.Load()
	if resetHWM {
		high = max(high, procStatusKB(b, "VmHWM"))
	}
	b.ReportMetric(float64(high-before)/1024, "MB-peak-RSS-growth")
	b.ReportMetric(float64(firstByte.Microseconds())/1000, "ms-first-byte")
	b.ReportMetric(float64(got)/elapsed.Seconds()/1e6, "MB/s")
}

// waitPublishedB waits for version 1 of a dataset to be published.
func waitPublishedB(b *testing.B, c *client, id string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		res := c.get("/api/v1/datasets/" + id + "/versions/1")
		switch res.json(b)["state"] {
		case "published":
			return
		case "failed":
			b.Fatalf("publishing failed: %s", res.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatal("version 1 was not published in time")
}
