package main

import (
	"io"
	"net"
	"net/http"
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

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-srv.done:
		require.NoError(t, err, "serve exits cleanly\n%s", srv.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop\n%s", srv.logs)
	}
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the metrics listener is closed")
}
