package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dbtest"
)

// dbOutage cuts the test's own database off on the shared server: every
// session of it is ended and no new one is let in, which is what the hub
// sees while PostgreSQL restarts. restore lets connections in again.
func dbOutage(t *testing.T, tb *testBundle) (cut, restore func()) {
	t.Helper()
	ctx := context.Background()
	name := tb.pool.Config().ConnConfig.Database
	admin, err := pgx.Connect(ctx, dbtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close(context.Background()) })
	db := pgx.Identifier{name}.Sanitize()
	restore = func() {
		_, err := admin.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true")
		require.NoError(t, err)
	}
	cut = func() {
		_, err := admin.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false")
		require.NoError(t, err)
		_, err = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
		require.NoError(t, err)
	}
	// Runs before dbtest drops the database (cleanups run last first).
	t.Cleanup(restore)
	return cut, restore
}

// TestDatabaseOutage: while the database is unreachable, uploads, pages and
// the API answer 503 with Retry-After and a message to try again, never
// 500, also under a steady stream of uploads; /readyz names the database;
// once it is back the hub serves again by itself.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c, _ := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	r := uploadOne(t, c, photos(1, 700)[0])
	id := r["image"].(map[string]any)["id"].(string)
	c.waitStatus(id)
	cut, restore := dbOutage(t, tb)

	// Uploaders keep sending the whole time.
	var stop atomic.Bool
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when the test fails early
	for u := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				res := c.upload(smallPhotos(1, uint64(10_000+u*1000+i)), nil)
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
				if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After: %s", res.body)
				} else if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("upload: %d %s", res.StatusCode, res.body)
				}
				// A pause, so that four uploaders do not take the
				// cores the tests beside this one need.
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)

	cut()
	for range 5 { // the first requests find connections the server ended
		for _, path := range []string{"/api/v1/images/" + id, "/images/" + id, "/uploads", "/api/v1/me"} {
			res := c.get(path)
			require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s: %s", path, res.body)
			require.Equal(t, fmt.Sprint(retryAfterSeconds), res.Header.Get("Retry-After"), path)
		}
	}
	res := c.get("/api/v1/images/" + id)
	code, _ := res.apiError(t)
	require.Equal(t, "unavailable", code)
	require.Contains(t, res.json(t)["error"].(map[string]any)["message"], "try again")
	page := c.get("/images/" + id)
	require.Contains(t, page.Header.Get("Content-Type"), "text/html")
	require.Contains(t, page.doc(t).Find("main").Text(), "try again")
	res = c.upload(photos(1, 701), nil)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s", res.body)
	require.NotEmpty(t, res.Header.Get("Retry-After"))

	probe := tb.client(t) // a load balancer's probe: no session
	ready := probe.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode)
	body := ready.json(t)
	require.Equal(t, "unavailable", body["status"])
	require.Equal(t, map[string]any{"database": "down", "blobs": "ok"}, body["checks"])
	require.NotContains(t, string(ready.body), "SQLSTATE")
	require.NotContains(t, string(ready.body), "connect")
	time.Sleep(time.Second)

	restore()
	require.Eventually(t, func() bool { return probe.get("/readyz").StatusCode == http.StatusOK }, 15*time.Second, 100*time.Millisecond)
	// Give the uploaders a moment on the healthy database, then stop them.
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	t.Logf("uploads during the test by status: %v", codes)
	require.Positive(t, codes[http.StatusServiceUnavailable], "some uploads met the outage")
	require.Positive(t, codes[http.StatusCreated])
	for s := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, s, "%v", codes)
	}
	mu.Unlock()

	res = c.upload(photos(1, 702), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, http.StatusOK, c.get("/images/"+id).StatusCode)
	require.Equal(t, "ok", probe.get("/readyz").json(t)["status"])
}
