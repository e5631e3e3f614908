//go:build cgo

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/oip"
)

// onnxTestdata holds the generated test models (testdata/onnx/generate.py).
var onnxTestdata = filepath.Join("..", "..", "testdata", "onnx")

// onnxEnv passes ONNXRUNTIME_LIB on when the test run has it; without it the
// program finds the checkout's .bin/onnxruntime/ from its working directory,
// this package's folder (`make onnxruntime` installs it there).
func onnxEnv() map[string]string {
	vars := map[string]string{}
	if lib := os.Getenv("ONNXRUNTIME_LIB"); lib != "" {
		vars["ONNXRUNTIME_LIB"] = lib
	}
	return vars
}

// onnxWorker is a running `imagehub worker --onnx`.
type onnxWorker struct {
	cmd     *exec.Cmd
	base    string
	logs    *syncBuffer
	exited  chan struct{}
	waitErr error
}

// startONNXWorker runs `imagehub worker` with args on a free port and waits
// for the line that says where it serves, checking the model's name.
func startONNXWorker(t *testing.T, model string, args ...string) *onnxWorker {
	t.Helper()
	w, line := startWorkerProcess(t, args...)
	m := workerURL.FindStringSubmatch(line)
	require.NotNil(t, m, "first line: %q", line)
	require.Equal(t, []string{model, "1"}, m[1:3])
	w.base = m[3]
	return w
}

// startWorkerProcess runs `imagehub worker` with args on a free port and
// returns it with the first line it writes, once written.
func startWorkerProcess(t *testing.T, args ...string) (*onnxWorker, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"worker", "--addr", "127.0.0.1:0", "--threads", "1"}, args...)...)
	cmd.Env = environ(onnxEnv())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	w := &onnxWorker{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = w.logs
	require.NoError(t, cmd.Start())
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		_, _ = io.Copy(w.logs, stdout)
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = cmd.Process.Kill()
			<-w.exited
		}
	})
	select {
	case line := <-first:
		return w, line
	case <-w.exited:
		t.Fatalf("imagehub worker exited early: %v\n%s", w.waitErr, w.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("imagehub worker did not start in time\n%s", w.logs)
	}
	panic("unreachable")
}

// stop sends SIGTERM and checks that the worker exits cleanly.
func (w *onnxWorker) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-w.exited:
		require.NoError(t, w.waitErr, "the worker exits cleanly on SIGTERM\n%s", w.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker did not stop on SIGTERM\n%s", w.logs)
	}
	require.Contains(t, w.logs.String(), "msg=stopped")
}

// TestWorkerCommandONNX runs `imagehub worker --onnx` on the generated
// YOLO-seg model as a user would, reads its metadata through the hub's
// client and runs a batch of two through it in binary form.
func TestWorkerCommandONNX(t *testing.T) {
	t.Parallel()
	w := startONNXWorker(t, "yolo-seg", "--onnx", filepath.Join(onnxTestdata, "yolo-seg.onnx"), "--layout", "yolo-seg")
	base := w.base

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := inference.New(nil).ModelMetadata(ctx, inference.Endpoint{Base: base, Model: "yolo-seg", Version: "1"})
	require.NoError(t, err)
	require.Equal(t, []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{-1, 3, 64, 64}}}, meta.Inputs)
	require.Equal(t, oip.Parameters{"layout": "yolo-seg", "labels": `["person","car","dog"]`}, meta.Parameters,
		"without --labels the names come from the file's Ultralytics metadata")

	img := make([]float32, 2*3*64*64)
	for i := range img {
		img[i] = float32(i%97) / 97
	}
	body, err := oip.EncodeRequest(&oip.InferRequest{
		ID: "b2", Parameters: oip.Parameters{oip.ParamBinaryDataOutput: true},
		Inputs: []oip.Tensor{oip.FP32Tensor("images", []int64{2, 3, 64, 64}, img)},
	}, true)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/models/yolo-seg/versions/1/infer", bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	body.SetHeaders(req.Header)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(data))
	n, err := oip.JSONLength(res.Header, len(data))
	require.NoError(t, err)
	ans, err := oip.DecodeResponse(data, n, oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, "b2", ans.ID)
	require.Equal(t, []int64{2, 39, 84}, ans.Output("output0").Shape)
	require.Equal(t, []int64{2, 32, 16, 16}, ans.Output("output1").Shape)

	w.stop(t)
}

// TestWorkerCommandONNXLabels serves the Mask R-CNN test model with
// --labels and --model: the labels reach the metadata's parameters.
func TestWorkerCommandONNXLabels(t *testing.T) {
	t.Parallel()
	w := startONNXWorker(t, "mrcnn", "--onnx", filepath.Join(onnxTestdata, "maskrcnn.onnx"), "--layout", "maskrcnn",
		"--labels", filepath.Join(onnxTestdata, "maskrcnn-labels.txt"), "--model", "mrcnn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := inference.New(nil).ModelMetadata(ctx, inference.Endpoint{Base: w.base, Model: "mrcnn", Version: "1"})
	require.NoError(t, err)
	require.Equal(t, oip.Parameters{"layout": "maskrcnn", "labels": `["person","car","dog"]`}, meta.Parameters)
	require.Equal(t, []oip.TensorMetadata{{Name: "image", Datatype: oip.FP32, Shape: []int64{3, -1, -1}}}, meta.Inputs)
	w.stop(t)
}

// TestWorkerCommandONNXRefuses checks that flags that do not fit together
// stop the worker with status 2, and a model or labels it cannot use with
// status 1, each with a message saying why, before it listens.
func TestWorkerCommandONNXRefuses(t *testing.T) {
	t.Parallel()
	yolo := filepath.Join(onnxTestdata, "yolo-seg.onnx")
	enc, dec := filepath.Join(onnxTestdata, "sam-encoder.onnx"), filepath.Join(onnxTestdata, "sam-decoder.onnx")
	labels := filepath.Join(t.TempDir(), "labels.txt")
	require.NoError(t, os.WriteFile(labels, []byte("person\ncar\n"), 0o600))
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--layout", "yolo-seg"}, 2, "--layout needs --onnx"},
		{[]string{"--threads", "2"}, 2, "--threads needs --onnx"},
		{[]string{"--onnx", yolo}, 2, `--layout "": --onnx needs the model's layout, yolo-seg or maskrcnn or sam`},
		{[]string{"--onnx", yolo, "--layout", "ssd"}, 2, `--layout "ssd"`},
		{[]string{"--onnx", yolo, "--layout", "yolo-seg", "--dense-masks"}, 2, "--dense-masks is for the built-in segmenter"},
		{[]string{"--onnx", yolo, "--layout", "yolo-seg", "--threads", "-1"}, 2, "--threads -1"},
		{[]string{"--onnx", "../../testdata/onnx/generate.py", "--layout", "yolo-seg", "--model", "x"}, 1, "error loading ../../testdata/onnx/generate.py"},
		{[]string{"--onnx", "absent.onnx", "--layout", "maskrcnn"}, 1, "error loading absent.onnx"},
		{[]string{"--onnx", yolo, "--layout", "yolo-seg", "--labels", labels}, 1, "has 3 classes (4 box rows, 3 class rows, 32 mask coefficients) but 2 labels were given"},
		{[]string{"--onnx", enc, "--layout", "sam"}, 2, "--layout sam needs --onnx-decoder"},
		{[]string{"--onnx", yolo, "--layout", "yolo-seg", "--onnx-decoder", dec}, 2, "--onnx-decoder is for --layout sam"},
		{[]string{"--onnx-decoder", dec}, 2, "--onnx-decoder needs --onnx"},
		{[]string{"--onnx", enc, "--onnx-decoder", dec, "--layout", "sam", "--labels", labels}, 2, "a SAM model has no classes"},
		{[]string{"--onnx", enc, "--onnx-decoder", enc, "--layout", "sam", "--interactive-model", "d"}, 1, "segment-anything's export takes image_embeddings"},
		{[]string{"--onnx", dec, "--onnx-decoder", dec, "--layout", "sam", "--model", "e"}, 1, "a SAM encoder for this worker takes one input"},
		{[]string{"--onnx", enc, "--onnx-decoder", dec, "--layout", "sam", "--model", "x", "--interactive-model", "x"}, 1, "they are two models"},
	}
	for _, c := range cases {
		out, errOut, err := runCmd(t, onnxEnv(), append([]string{"worker", "--addr", "127.0.0.1:0"}, c.args...)...)
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %v", c.args, err)
		require.Equal(t, c.code, exit.ExitCode(), "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.msg, "%v", c.args)
		require.Empty(t, out, "%v: nothing served", c.args)
	}
}
