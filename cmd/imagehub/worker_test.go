package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// syncBuffer is a bytes.Buffer that the process's output goroutine and the
// test may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var workerURL = regexp.MustCompile(`^imagehub worker: serving model (\S+) version (\S+) on (http://\S+)$`)

// TestWorkerCommand runs `imagehub worker` on a free port as a script
// would: it reads the URL from the first line, segments a photo through the
// hub's own client, and stops the worker with SIGTERM.
func TestWorkerCommand(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "worker", "--addr", "127.0.0.1:0", "--capacity", "2", "--simulate-latency", "20ms")
	cmd.Env = environ(map[string]string{})
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var base string
	select {
	case line := <-first:
		m := workerURL.FindStringSubmatch(line)
		require.NotNil(t, m, "first line: %q", line)
		require.Equal(t, []string{"imagehub-segmenter", "1"}, m[1:3])
		base = m[3]
		require.NotEqual(t, "http://127.0.0.1:0", base, "the port actually chosen is printed")
	case <-exited:
		t.Fatalf("imagehub worker exited early: %v\n%s", waitErr, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("imagehub worker did not start in time\n%s", logs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := http.Get(base + "/v2/health/ready")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	c := inference.New(nil)
	sm, err := c.ServerMetadata(ctx, inference.Endpoint{Base: base})
	require.NoError(t, err)
	require.Contains(t, sm.Extensions, "binary_tensor_data")
	meta, err := c.ModelMetadata(ctx, inference.Endpoint{Base: base, Model: "imagehub-segmenter", Version: "1"})
	require.NoError(t, err)
	require.Empty(t, inference.CheckConvention(meta))
	require.True(t, inference.AcceptsLabelHints(meta))

	photo := segmenttest.NewPhoto(640, 480, 2, 90)
	for _, bin := range []bool{true, false} {
		ep := inference.Endpoint{Base: base, Model: "imagehub-segmenter", Version: "1", Binary: bin}
		ins, err := c.Segment(ctx, ep, photo.JPEG, []string{"toy"}, inference.Expect{Height: 480, Width: 640})
		require.NoError(t, err, "binary %v", bin)
		require.Len(t, ins, len(photo.Shapes), "binary %v", bin)
		for i, in := range ins {
			require.Equal(t, "toy", in.Label)
			require.True(t, in.Score > 0 && in.Score <= 1, "score %v", in.Score)
			if i > 0 {
				require.LessOrEqual(t, in.Score, ins[i-1].Score, "most salient first")
			}
		}
		for _, s := range photo.Shapes {
			best := 0.0
			for _, in := range ins {
				iou, err := mask.IoU(in.Mask, mask.Encode(s.Mask))
				require.NoError(t, err)
				best = max(best, iou)
			}
			require.Greater(t, best, 0.8, "binary %v: the %s is found", bin, s.Name)
		}
	}

	res, err = http.Get(base + "/v2/sim/stats")
	require.NoError(t, err)
	var st worker.Stats
	require.NoError(t, json.NewDecoder(res.Body).Decode(&st))
	res.Body.Close()
	require.Positive(t, st.BusyMS, "the two inferences took time")
	st.BusyMS = 0
	require.Equal(t, worker.Stats{Requests: 2, Succeeded: 2, PeakInFlight: 1, Images: 2, LargestBatch: 1}, st)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, "the worker exits cleanly on SIGTERM\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker did not stop on SIGTERM\n%s", logs)
	}
	require.Contains(t, logs.String(), "msg=stopped")
}

// TestWorkerCommandRefusesBadFlags checks that a wrong flag stops the
// worker before it listens, with exit status 2 and a message naming it.
func TestWorkerCommandRefusesBadFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--fail-rate", "1.5"}, "--fail-rate 1.5: must be between 0 and 1"},
		{[]string{"--timeout-rate", "-0.1"}, "--timeout-rate -0.1: must be between 0 and 1"},
		{[]string{"--malformed-rate", "NaN"}, "--malformed-rate NaN: must be between 0 and 1"},
		{[]string{"--capacity", "-1"}, "--capacity -1: must be 0 (unbounded) or more"},
		{[]string{"--instances", "-2"}, "--instances -2: must be 0 (every admitted inference) or more"},
		{[]string{"--onnx", "m.onnx", "--layout", "yolo-seg", "--instances", "1"}, "--instances is for the built-in segmenter"},
		{[]string{"--max-batch", "0"}, "--max-batch 0: must be at least 1"},
		{[]string{"--simulate-latency", "soon"}, "-simulate-latency"},
		{[]string{"--model", "a/b"}, `--model "a/b"`},
		{[]string{"--frobnicate"}, "-frobnicate"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		out, errOut, err := runCmd(t, map[string]string{}, append([]string{"worker", "--addr", "127.0.0.1:0"}, c.args...)...)
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %v", c.args, err)
		require.Equal(t, 2, exit.ExitCode(), "%v", c.args)
		require.Contains(t, errOut, c.msg, "%v", c.args)
		require.Empty(t, out, "%v: nothing served", c.args)
	}
}
