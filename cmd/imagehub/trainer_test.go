package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/trainer"
)

// TestTrainerCommand runs `imagehub trainer` against a hub with nothing to
// train: with --once it exits at once; without, it polls until SIGTERM and
// then exits cleanly.
func TestTrainerCommand(t *testing.T) {
	t.Parallel()
	var leases atomic.Int32
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/trainer/lease" || r.Header.Get("Authorization") != "Bearer secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		require.Equal(t, trainer.Agent, r.UserAgent())
		leases.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hub.Close)

	out, errOut, err := runCmd(t, map[string]string{}, "trainer", "--hub", hub.URL, "--token", "secret", "--once")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "imagehub trainer 1: leasing all runs from "+hub.URL)
	require.EqualValues(t, 1, leases.Load())

	_, errOut, err = runCmd(t, map[string]string{"TRAINER_HUB": hub.URL, "TRAINER_TOKEN": "wrong"}, "trainer", "--once")
	require.Error(t, err)
	require.Contains(t, errOut, "the hub refused the trainer token")

	cmd := exec.Command(binary, "trainer", "--hub", hub.URL, "--token", "secret", "--poll", "50ms")
	cmd.Env = environ(map[string]string{})
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	require.Eventually(t, func() bool { return leases.Load() >= 4 }, 20*time.Second, 20*time.Millisecond, "it keeps polling")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "SIGTERM ends it cleanly")
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the trainer did not stop on SIGTERM")
	}
}

func TestTrainerCommandRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--token", "t"}, `--hub "": the hub's URL`},
		{[]string{"--hub", "http://x"}, "--token is needed"},
		{[]string{"--hub", "http://x", "--token", "t", "--recipes", "resnet"}, `unknown recipe "resnet"`},
		{[]string{"--hub", "http://x", "--token", "t", "extra"}, `unexpected argument "extra"`},
	} {
		_, errOut, err := runCmd(t, map[string]string{}, append([]string{"trainer"}, c.args...)...)
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %v", c.args, err)
		require.Equal(t, 2, exit.ExitCode(), "%v", c.args)
		require.Contains(t, errOut, c.msg, "%v", c.args)
	}
}

// TestWorkerModelFileRefusesCorrupt checks that a damaged model file stops
// the worker before it listens, naming the problem.
func TestWorkerModelFileRefusesCorrupt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shapes.ihrm")
	require.NoError(t, os.WriteFile(path, []byte("IHRM\r\n\x1a\n but cut short"), 0o600))
	out, errOut, err := runCmd(t, map[string]string{}, "worker", "--addr", "127.0.0.1:0", "--model-file", path)
	require.Error(t, err)
	require.Contains(t, errOut, "not a valid imagehub region model")
	require.Empty(t, out)
	_, errOut, err = runCmd(t, map[string]string{}, "worker", "--addr", "127.0.0.1:0", "--model-file", path, "--onnx", "x.onnx")
	require.Error(t, err)
	require.Contains(t, errOut, "give one")
}
