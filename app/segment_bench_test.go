package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// BenchmarkReviewSegment is the server side of click-to-segment, from the
// upload on: photos are uploaded, ingested, proposed for by a segmentation
// model and prepared for prompts by the prepare_prompts job, all run by
// River as in production (the drawn photos look alike, so a moderator
// approves those the near-duplicate check flags); then a reviewer leases each with review/next and
// clicks at once (the first click on an image just leased), then clicks 9
// more times on its objects (object and background points), through the
// real hub and the project's worker (the hub's time — lease check, image
// cache, slot — and the worker's — graph cut, RLE — included, the
// browser's not).
//
// The queue (12 photos of one megapixel) is longer than the worker's cache
// of prepared images (4 here, standing for a queue longer than its
// default 64), so by the time a photo is leased the worker has long
// dropped what prepare_prompts gave it: what keeps the first click fast is
// the hub prefetching the head of the reviewer's queue when the review
// screen is served, and the next ones of it at each lease. The reviewer
// opens the screen 300 ms before the first lease (its page and scripts
// load meanwhile) and pauses 300 ms between photos (a real one spends
// seconds). first-p50/p99-ms are over the first clicks, later-p50/
// p99-ms over the other nine of each photo.
func BenchmarkReviewSegment(b *testing.B) {
	tb := setup(b)
	admin, _ := tb.userWithRole(b, "admin@example.com", auth.RoleAdmin)
	rev, _ := tb.userWithRole(b, "rev@example.com", auth.RoleReviewer)
	wk := worker.New(worker.Config{Capacity: 4, Synthetic: true, PreparedImages: 4})
	srv := httptest.NewServer(wk)
	b.Cleanup(srv.Close)
	for _, body := range []map[string]any{
		{"name": "imagehub-segmenter", "endpoints": []string{srv.URL}, "capacity": 4},
		{"name": wk.InteractiveModel(), "task": "interactive", "endpoints": []string{srv.URL}, "capacity": 4},
	} {
		if res := admin.json(http.MethodPost, "/api/v1/models", body); res.StatusCode != http.StatusCreated {
			b.Fatalf("%d %s", res.StatusCode, res.body)
		}
	}
	const images, clicks = 12, 10
	var first, later []time.Duration
	for n := 0; b.Loop(); n++ {
		photos := map[string]*segmenttest.Photo{}
		for i := range images {
			p := segmenttest.NewPhoto(1155, 866, uint64(1000*n+i+1), 90)
			res := admin.upload([]file{{fmt.Sprintf("shapes-%d-%d.jpg", n, i), p.JPEG}}, nil)
			if res.StatusCode != http.StatusCreated {
				b.Fatalf("upload: %d %s", res.StatusCode, res.body)
			}
			id := res.json(b)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
			photos[id] = p
		}
		// The drawn photos look alike to the near-duplicate check: a
		// moderator approves those it flags, which sends them on to
		// inference as any accepted photo.
		for id := range photos {
			if admin.waitStatus(id)["status"] == "flagged" {
				if res := admin.json(http.MethodPost, "/api/v1/moderation/"+id, map[string]any{"decision": "approve"}); res.StatusCode != http.StatusOK {
					b.Fatalf("approve: %d %s", res.StatusCode, res.body)
				}
			}
		}
		// Every photo in the review queue and prepared by its job.
		deadline := time.Now().Add(40 * time.Second)
		for waitCount(b, tb, `SELECT count(*) FROM river_job WHERE kind = 'prepare_prompts' AND state = 'completed'`) < (n+1)*images {
			if time.Now().After(deadline) {
				rows, _ := tb.pool.Query(b.Context(), `SELECT status::text, coalesce(reason, '') FROM images`)
				for rows.Next() {
					var st, r string
					_ = rows.Scan(&st, &r)
					b.Log(st, r)
				}
				rows.Close()
				b.Fatalf("photos not prepared: %d of %d", waitCount(b, tb, `SELECT count(*) FROM river_job WHERE kind = 'prepare_prompts' AND state = 'completed'`), (n+1)*images)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The reviewer opens the review screen, whose page and scripts
		// load before its first lease.
		if res := rev.get("/review"); res.StatusCode != http.StatusOK {
			b.Fatalf("review page: %d", res.StatusCode)
		}
		time.Sleep(300 * time.Millisecond)
		for range images {
			status, item := nextB(b, rev)
			if status != http.StatusOK {
				b.Fatalf("no item: %d", status)
			}
			p := photos[item["image"].(map[string]any)["id"].(string)]
			if p == nil {
				b.Fatalf("leased an image not uploaded here: %v", item["image"])
			}
			id := item["item_id"].(string)
			path := "/api/v1/review/" + id + "/segment"
			for k := range clicks {
				x, y := pointIn(p.Shapes[k%len(p.Shapes)].Mask)
				pts := [][]float64{{x, y, 1}}
				if k%2 == 1 {
					ox, oy := pointIn(p.Shapes[(k+1)%len(p.Shapes)].Mask)
					pts = append(pts, []float64{ox, oy, 0})
				}
				start := time.Now()
				res := rev.json(http.MethodPost, path, map[string]any{"points": pts})
				d := time.Since(start)
				if res.StatusCode != http.StatusOK {
					b.Fatalf("%d %s", res.StatusCode, res.body)
				}
				if k == 0 {
					first = append(first, d)
				} else {
					later = append(later, d)
				}
			}
			if _, err := tb.pool.Exec(b.Context(), `UPDATE review_items SET done_at = now(), leased_by = NULL WHERE id = $1`, id); err != nil {
				b.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(ds []time.Duration, p int) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return ms(s[min(len(s)-1, len(s)*p/100)])
	}
	b.ReportMetric(pct(first, 50), "first-p50-ms")
	b.ReportMetric(pct(first, 99), "first-p99-ms")
	b.ReportMetric(pct(later, 50), "later-p50-ms")
	b.ReportMetric(pct(later, 99), "later-p99-ms")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average %s", strings.Join(strings.Fields(string(load))[:3], " "))
	}
}

func waitCount(b *testing.B, tb *testBundle, sql string) int {
	b.Helper()
	var n int
	if err := tb.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func nextB(b *testing.B, c *client) (int, map[string]any) {
	b.Helper()
	res := c.json(http.MethodPost, "/api/v1/review/next", map[string]any{})
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	return res.StatusCode, res.json(b)
}
