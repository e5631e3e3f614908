package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
)

// TestMetricsOnTheirOwnListener: with METRICS_ADDR, /metrics is served
// there and no longer on the main port, and both listeners close on a
// graceful stop.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	srv := startServer(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t), "METRICS_ADDR": addr, "BUILTIN_WORKER": "false"})

	status, _, _ := call(t, "GET", srv.base+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, status)
	status, _, _ = call(t, "GET", srv.base+"/metrics", "", nil)
	require.Equal(t, http.StatusNotFound, status, "not on the main listener")
	res, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `imagehub_http_requests_total{method="GET",route="/healthz",status="200"} 1`)

	// Longer than the hub's own bound (SHUTDOWN_TIMEOUT, then 10 s of
	// cancelled jobs): this test is about the listeners. (The 30 s waits
	// once seen here were the HTTP server's, held by a connection that
	// never sent a request: TestShutdownNotHeldBySilentConnections.)
	srv.stop(t, syscall.SIGTERM, 45*time.Second)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the metrics listener is closed")
}

// TestIngestedCounterAddsUpAcrossReplicas: two hubs share the ingest work;
// the sum of their imagehub_ingested_images_total is the number of images,
// each counted once by the replica that committed it.
func TestIngestedCounterAddsUpAcrossReplicas(t *testing.T) {
	t.Parallel()
	h := newHub(t, nil)
	a := startServer(t, h.env())
	b := startServer(t, h.env())
	const n = 12
	h.importPhotos(t, n, 9100)
	deadline := time.Now().Add(90 * time.Second)
	for count(t, h.pool, "SELECT count(*) FROM river_job WHERE kind = 'ingest' AND finalized_at IS NULL") > 0 ||
		count(t, h.pool, "SELECT count(*) FROM images WHERE status IN ('uploaded', 'processing')") > 0 {
		require.True(t, time.Now().Before(deadline), "ingest never finished\n%s\n%s", a.logs, b.logs)
		time.Sleep(50 * time.Millisecond)
	}
	total := 0.0
	for _, srv := range []*server{a, b} {
		res, err := http.Get(srv.base + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "imagehub_ingested_images_total{") {
				continue
			}
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			require.NoError(t, err, line)
			total += v
		}
	}
	require.Equal(t, float64(n), total)
}
