package app

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// BenchmarkReviewSegment is the server side of click-to-segment: a
// reviewer leases each of 5 one-megapixel photos and clicks at once (the
// first mask on an image just leased), then clicks 9 more times on its
// objects (object and background points), through the real hub and the
// project's worker: the hub's time (lease check, image cache, slot) and the
// worker's (graph cut, RLE) included, the browser's not. The photos are
// prepared as the pipeline does when they enter the review queue (the
// prepare_prompts job); first-ms is the first click's mean, p50-ms and
// p95-ms are over all 50 clicks. cold-first-ms is the first click on 5 more
// photos that skipped that job, clicked right after their lease, so racing
// the lease's warm-up.
func BenchmarkReviewSegment(b *testing.B) {
	tb := setup(b)
	admin, _ := tb.userWithRole(b, "admin@example.com", auth.RoleAdmin)
	rev, u := tb.userWithRole(b, "rev@example.com", auth.RoleReviewer)
	wk := worker.New(worker.Config{Capacity: 4})
	srv := httptest.NewServer(wk)
	b.Cleanup(srv.Close)
	res := admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": wk.InteractiveModel(), "task": "interactive",
		"endpoints": []string{srv.URL}, "capacity": 4})
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("%d %s", res.StatusCode, res.body)
	}
	const images, clicks = 5, 10
	var all, first, cold []time.Duration
	for n := 0; b.Loop(); n++ {
		for _, prepared := range []bool{true, false} {
			photos := map[string]*segmenttest.Photo{}
			before := wk.Stats().Prompts
			for i := range images {
				p := segmenttest.NewPhoto(1155, 866, uint64(100*n+10*len(photos)+i+1), 90)
				if !prepared {
					p = segmenttest.NewPhoto(1155, 866, uint64(100*n+50+i), 90)
				}
				id, _ := seedPhotoReview(b, tb, u.ID, p)
				photos[id.String()] = p
				if prepared {
					if _, err := tb.server.river.Insert(b.Context(), jobs.PrepareArgs{ImageID: id}, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			for prepared && wk.Stats().Prompts < before+images {
				time.Sleep(5 * time.Millisecond)
			}
			for range images {
				status, item := nextB(b, rev)
				if status != http.StatusOK {
					b.Fatalf("no item: %d", status)
				}
				p := photos[item["image"].(map[string]any)["id"].(string)]
				path := "/api/v1/review/" + item["item_id"].(string) + "/segment"
				for k := range clicks {
					s := p.Shapes[k%len(p.Shapes)].Mask
					x, y := pointIn(s)
					pts := [][]float64{{x, y, 1}}
					if k%2 == 1 {
						o := p.Shapes[(k+1)%len(p.Shapes)].Mask
						ox, oy := pointIn(o)
						pts = append(pts, []float64{ox, oy, 0})
					}
					start := time.Now()
					res := rev.json(http.MethodPost, path, map[string]any{"points": pts})
					d := time.Since(start)
					if res.StatusCode != http.StatusOK {
						b.Fatalf("%d %s", res.StatusCode, res.body)
					}
					switch {
					case !prepared:
					case k == 0:
						first = append(first, d)
						all = append(all, d)
					default:
						all = append(all, d)
					}
					if !prepared {
						cold = append(cold, d)
						break
					}
				}
				if res := rev.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string)+"/release", nil); res.StatusCode != http.StatusNoContent {
					b.Fatalf("release: %d", res.StatusCode)
				}
				if _, err := tb.pool.Exec(b.Context(), `UPDATE review_items SET done_at = now() WHERE id = $1`, item["item_id"]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var sum time.Duration
	for _, d := range first {
		sum += d
	}
	b.ReportMetric(ms(sum)/float64(len(first)), "first-ms")
	sum = 0
	for _, d := range cold {
		sum += d
	}
	b.ReportMetric(ms(sum)/float64(len(cold)), "cold-first-ms")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*95/100]), "p95-ms")
}

func nextB(b *testing.B, c *client) (int, map[string]any) {
	b.Helper()
	res := c.json(http.MethodPost, "/api/v1/review/next", map[string]any{})
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	return res.StatusCode, res.json(b)
}
