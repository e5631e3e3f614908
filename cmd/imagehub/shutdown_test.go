package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
)

// TestShutdownNotHeldBySilentConnections: a connection that never sends a
// request, or stalls in its first request's headers, does not hold a
// graceful stop until SHUTDOWN_TIMEOUT. Go's HTTP client leaves such
// connections behind (a dial that lost the race to an idle connection is
// kept, unused). fasthttp 1.51 counted them active for the whole
// ReadTimeout (60 s), so serve failed its stop with "context deadline
// exceeded"; 1.79 closes them after a 5 s grace. serve exits 0 only when
// the HTTP server's shutdown ended before SHUTDOWN_TIMEOUT.
func TestShutdownNotHeldBySilentConnections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t), "BUILTIN_WORKER": "false", "BUILTIN_TRAINER": "false", "SHUTDOWN_TIMEOUT": "25s"})
	status, _, _ := call(t, "GET", srv.base+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, status)
	addr := strings.TrimPrefix(srv.base, "http://")
	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	stalled, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer stalled.Close()
	_, err = io.WriteString(stalled, "GET /healthz HTTP/1.1\r\nHost: ")
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // both accepted before the stop

	srv.stop(t, syscall.SIGTERM, 60*time.Second) // SHUTDOWN_TIMEOUT is 25 s
}
