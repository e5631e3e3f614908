// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// checkout is a copy of the scripts folder standing for a checkout of the
// project, with its own .data.
type checkout struct {
	root string
	data string // the cluster's real folder, once started
	pid  int    // its postmaster, once started
}

func newCheckout(t *testing.T, parent, name string) *checkout {
	t.Helper()
	root := filepath.Join(parent, name)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "scripts"), 0o755))
	src, err := os.ReadFile("localpg.sh")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "scripts", "localpg.sh"), src, 0o755))
	return &checkout{root: root}
}

// run runs localpg.sh with a clean environment: no LOCALPG_PORT or
// LOCALPG_DIR, so the checkout's own .data and recorded port are used.
func (c *checkout) run(t *testing.T, arg string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(c.root, "scripts", "localpg.sh"), arg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return "", &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: errb.Bytes()}
	}
	return strings.TrimSpace(out.String()), nil
}

// start starts the checkout's cluster and returns its URL and port.
func (c *checkout) start(t *testing.T) (string, int) {
	t.Helper()
	url, err := c.run(t, "start")
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("localpg.sh start in %s: %v\n%s", c.root, err, ee.Stderr)
	}
	c.find()
	require.NotZero(t, c.pid, "no postmaster.pid in %s", c.data)
	recorded, err := os.ReadFile(filepath.Join(c.root, ".data", "pg.port"))
	require.NoError(t, err)
	port, err := strconv.Atoi(strings.TrimSpace(string(recorded)))
	require.NoError(t, err)
	require.Equal(t, "postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/imagehub?sslmode=disable", url)
	require.NotEqual(t, 54329, port, "the shared cluster's port")
	return url, port
}

// alive reports whether a process runs: exists and is not a zombie (a
// container's init may never reap the postmasters it inherits).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …; comm may hold spaces and parentheses.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// find notes where the checkout's cluster lives and its postmaster's pid.
func (c *checkout) find() {
	if d, err := filepath.EvalSymlinks(filepath.Join(c.root, ".data", "pg")); err == nil {
		c.data = d
	}
	if pidFile, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid")); err == nil {
		c.pid, _ = strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	}
}

// stop ends the cluster whatever became of the checkout (or of the test),
// and removes its folder when it lives outside the checkout (under
// /var/tmp).
func (c *checkout) stop() {
	if c.data == "" {
		c.find() // a start that failed half-way
	}
	if c.pid > 0 && alive(c.pid) {
		_ = syscall.Kill(c.pid, syscall.SIGINT) // fast shutdown
		for i := 0; i < 100 && alive(c.pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if strings.HasPrefix(c.data, "/var/tmp/imagehub-pg-") {
		_ = os.RemoveAll(c.data)
		_ = os.Remove(c.data + ".log")
	}
}

func ping(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

// TestLocalPGCheckoutsAtOnce: two checkouts started at once get clusters on
// ports of their own, recorded and reused; a recorded port that another
// cluster holds does not block a start; a cluster left running by a deleted
// checkout is stopped by the checkout whose recorded port it holds.
func TestLocalPGCheckoutsAtOnce(t *testing.T) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if _, err := exec.LookPath("initdb"); err != nil && len(bins) == 0 && os.Getuid() != 0 {
		// As root, localpg.sh installs PostgreSQL itself.
		t.Skip("PostgreSQL's server binaries are not installed (make test without TEST_DATABASE_URL needs them)")
	}
	parent := t.TempDir()
	a, b, c := newCheckout(t, parent, "a"), newCheckout(t, parent, "b"), newCheckout(t, parent, "c")
	t.Cleanup(func() {
		for _, co := range []*checkout{a, b, c} {
			co.stop()
		}
	})

	// Two at once.
	var urlA, urlB string
	var portA, portB int
	var wg sync.WaitGroup
	wg.Go(func() { urlA, portA = a.start(t) })
	wg.Go(func() { urlB, portB = b.start(t) })
	wg.Wait()
	if t.Failed() {
		return
	}
	require.NotEqual(t, portA, portB)
	ping(t, urlA)
	ping(t, urlB)
	got, err := a.run(t, "url")
	require.NoError(t, err)
	require.Equal(t, urlA, got, "url prints the recorded port")

	// Stopped and started again: the same port.
	_, err = a.run(t, "stop")
	require.NoError(t, err)
	require.False(t, alive(a.pid))
	again, port := a.start(t)
	require.Equal(t, portA, port)
	ping(t, again)

	// The recorded port is held by another checkout's cluster: a takes
	// another and records it, and b's cluster is untouched.
	_, err = a.run(t, "stop")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.root, ".data", "pg.port"), []byte(strconv.Itoa(portB)+"\n"), 0o644))
	urlA, portA = a.start(t)
	require.NotEqual(t, portB, portA)
	ping(t, urlA)
	ping(t, urlB)

	// a's checkout is deleted with its cluster still running; c, whose
	// recorded port a's cluster holds, stops it and starts on that port.
	require.NoError(t, os.RemoveAll(a.root))
	require.True(t, alive(a.pid))
	require.NoError(t, os.MkdirAll(filepath.Join(c.root, ".data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.root, ".data", "pg.port"), []byte(strconv.Itoa(portA)+"\n"), 0o644))
	urlC, portC := c.start(t)
	require.False(t, alive(a.pid), "the orphaned cluster is stopped")
	require.Equal(t, portA, portC)
	ping(t, urlC)
	ping(t, urlB)

	for _, co := range []*checkout{b, c} {
		_, err := co.run(t, "stop")
		require.NoError(t, err)
		require.False(t, alive(co.pid))
	}
}
