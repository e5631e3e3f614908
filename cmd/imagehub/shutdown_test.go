package main

import (
	"errors"
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
// kept, unused), and fasthttp before 1.7x counted them active for the whole
// ReadTimeout, so serve failed its stop with "context deadline exceeded"
// while a request in flight still finished.
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
	for _, c := range []net.Conn{silent, stalled} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := c.Read(make([]byte, 1))
		require.Error(t, err, "the server closed the connection")
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not left open: %v", err)
	}
}
