package worker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

type testBundle struct {
	worker *worker.Server
	srv    *httptest.Server
}

func setup(t *testing.T, cfg worker.Config) *testBundle {
	t.Helper()
	w := worker.New(cfg)
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return &testBundle{worker: w, srv: srv}
}

var (
	photoOnce sync.Once
	photo     *segmenttest.Photo
)

func testPhoto() *segmenttest.Photo {
	photoOnce.Do(func() { photo = segmenttest.NewPhoto(320, 240, 4, 90) })
	return photo
}

// get fetches path and decodes its JSON body into v.
func (b *testBundle) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := b.srv.Client().Get(b.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	return resp.StatusCode
}

// infer posts a request and returns the status and the decoded answer, or
// the error message.
func (b *testBundle) infer(t *testing.T, path string, req *oip.InferRequest, binary bool) (int, *oip.InferResponse, string) {
	t.Helper()
	body, err := oip.EncodeRequest(req, binary)
	require.NoError(t, err)
	return b.post(t, path, body)
}

func (b *testBundle) post(t *testing.T, path string, body oip.Body) (int, *oip.InferResponse, string) {
	t.Helper()
	hreq, err := http.NewRequest(http.MethodPost, b.srv.URL+path, bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	body.SetHeaders(hreq.Header)
	resp, err := b.srv.Client().Do(hreq)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		var e oip.ErrorBody
		require.NoError(t, json.Unmarshal(data, &e), string(data))
		require.NotEmpty(t, e.Error)
		return resp.StatusCode, nil, e.Error
	}
	n, err := oip.JSONLength(resp.Header, len(data))
	require.NoError(t, err)
	ans, err := oip.DecodeResponse(data, n, oip.Limits{})
	require.NoError(t, err)
	return resp.StatusCode, ans, ""
}

const inferPath = "/v2/models/imagehub-segmenter/infer"

func imageRequest(id string, images ...[]byte) *oip.InferRequest {
	return &oip.InferRequest{ID: id, Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", images...)}}
}

func TestMetadataRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	var ok map[string]bool
	require.Equal(t, 200, b.get(t, "/v2/health/live", &ok))
	require.True(t, ok["live"])
	require.Equal(t, 200, b.get(t, "/v2/health/ready", &ok))
	require.Equal(t, 200, b.get(t, "/v2/models/imagehub-segmenter/ready", &ok))
	require.Equal(t, 200, b.get(t, "/v2/models/imagehub-segmenter/versions/1/ready", &ok))

	var sm oip.ServerMetadata
	require.Equal(t, 200, b.get(t, "/v2", &sm))
	require.Equal(t, []string{"binary_tensor_data"}, sm.Extensions)

	var mm oip.ModelMetadata
	require.Equal(t, 200, b.get(t, "/v2/models/imagehub-segmenter/versions/1", &mm))
	require.Equal(t, b.worker.Metadata(), mm)
	require.Equal(t, []string{"1"}, mm.Versions)

	var e oip.ErrorBody
	require.Equal(t, 404, b.get(t, "/v2/models/other", &e))
	require.Contains(t, e.Error, "unknown model other")
	require.Equal(t, 404, b.get(t, "/v2/models/imagehub-segmenter/versions/7", &e))
	require.Contains(t, e.Error, "unknown version 7")
	require.Equal(t, 404, b.get(t, "/nope", &e))
	require.Equal(t, 404, b.get(t, "/v2/models/other/ready", &e))
}

func TestInferJSONAndBinary(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	p := testPhoto()
	for _, bin := range []bool{false, true} {
		req := imageRequest("abc-"+fmt.Sprint(bin), p.JPEG)
		req.Inputs = append(req.Inputs, oip.BytesTensor("LABEL_HINTS", []byte("ball")))
		if bin {
			req.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
		}
		status, ans, msg := b.infer(t, "/v2/models/imagehub-segmenter/versions/1/infer", req, bin)
		require.Equal(t, 200, status, msg)
		require.Equal(t, req.ID, ans.ID)
		require.Equal(t, "imagehub-segmenter", ans.ModelName)
		require.Equal(t, "1", ans.ModelVersion)
		names := []string{}
		for _, o := range ans.Outputs {
			names = append(names, o.Name)
			_, isBinary := o.Parameters[oip.ParamBinaryDataSize]
			require.Equal(t, bin, isBinary, o.Name)
		}
		require.Equal(t, []string{"MASKS", "SCORES", "LABELS"}, names)
		masks := ans.Output("MASKS")
		require.Len(t, masks.Elems, 3)
		for _, e := range masks.Elems {
			var rle mask.RLE
			require.NoError(t, json.Unmarshal(e, &rle))
			require.Equal(t, [2]int{240, 320}, rle.Size)
			require.NoError(t, rle.Validate())
		}
		require.Equal(t, [][]byte{[]byte("ball"), []byte("ball"), []byte("ball")}, ans.Output("LABELS").Elems)
	}
}

func TestInferBatchAndChosenOutputs(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{DenseMasks: true})
	p := testPhoto()
	plain := segmenttest.NewPhoto(320, 240, 9, 90)

	req := imageRequest("batch", p.JPEG, plain.JPEG)
	req.Inputs = append(req.Inputs, oip.BytesTensor("LABEL_HINTS", []byte("a"), []byte("b")))
	status, ans, msg := b.infer(t, inferPath, req, true)
	require.Equal(t, 200, status, msg)
	idx, err := ans.Output("BATCH_INDEX").Int32s()
	require.NoError(t, err)
	require.Equal(t, []int32{0, 0, 0, 1, 1, 1}, idx)
	require.Equal(t, []int64{6, 240, 320}, ans.Output("MASKS").Shape)
	labels := ans.Output("LABELS").Elems
	require.Equal(t, "a b a a b a", string(bytes.Join(labels, []byte(" "))))

	// Only SCORES, and binary only where asked.
	req = imageRequest("one", p.JPEG)
	req.Outputs = []oip.RequestedOutput{{Name: "SCORES", Parameters: oip.Parameters{oip.ParamBinaryData: true}}, {Name: "LABELS"}}
	status, ans, msg = b.infer(t, inferPath, req, false)
	require.Equal(t, 200, status, msg)
	require.Len(t, ans.Outputs, 2)
	require.Contains(t, ans.Output("SCORES").Parameters, oip.ParamBinaryDataSize)
	require.NotContains(t, ans.Output("LABELS").Parameters, oip.ParamBinaryDataSize)
}

func TestInferRefusesBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{MaxBodyBytes: 200_000})
	p := testPhoto()
	cases := []struct {
		name   string
		req    *oip.InferRequest
		status int
		msg    string
	}{
		{"no image", &oip.InferRequest{Inputs: []oip.Tensor{oip.BytesTensor("LABEL_HINTS", []byte("x"))}}, 400, "input IMAGE is missing"},
		{"unknown input", &oip.InferRequest{Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", p.JPEG), oip.FP32Tensor("x", []int64{1}, []float32{1})}}, 400, `unexpected input "x"`},
		{"pixels", &oip.InferRequest{Inputs: []oip.Tensor{oip.Uint8Tensor("IMAGE", []int64{1, 2}, []byte{1, 2})}}, 400, "input IMAGE must be BYTES of shape [B]"},
		{"not an image", imageRequest("", []byte("GIF89a nope")), 400, "IMAGE element 0 is not a JPEG, PNG or WebP image"},
		{"empty batch", imageRequest(""), 400, "holds 0 images"},
		{"bad hint", &oip.InferRequest{Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", p.JPEG), oip.BytesTensor("LABEL_HINTS", []byte{})}}, 400, "LABEL_HINTS element 0"},
		{"unknown output", &oip.InferRequest{Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", p.JPEG)}, Outputs: []oip.RequestedOutput{{Name: "BOXES"}}}, 400, `unknown output "BOXES"`},
		{"too large", imageRequest("", bytes.Repeat([]byte("x"), 300_000)), 413, "larger than 200000 bytes"},
	}
	for _, c := range cases {
		status, _, msg := b.infer(t, inferPath, c.req, false)
		require.Equal(t, c.status, status, c.name)
		require.Contains(t, msg, c.msg, c.name)
	}
	status, _, msg := b.post(t, inferPath, oip.Body{Bytes: []byte(`{"inputs": [`)})
	require.Equal(t, 400, status)
	require.Contains(t, msg, "not valid JSON")
	status, _, msg = b.post(t, inferPath, oip.Body{Bytes: []byte(`{}`), JSONLength: 99, Binary: true})
	require.Equal(t, 400, status)
	require.Contains(t, msg, "Inference-Header-Content-Length")
	status, _, msg = b.post(t, "/v2/models/x/infer", oip.Body{Bytes: []byte(`{}`)})
	require.Equal(t, 404, status)
	require.Contains(t, msg, "unknown model x")
	require.Equal(t, int64(len(cases)+2), b.worker.Stats().BadRequests)
}

// TestSimulationIsReproducible sends the same sequence to two workers with
// one seed and gets the same outcomes; the stats route agrees with Stats.
func TestSimulationIsReproducible(t *testing.T) {
	t.Parallel()
	small := segmenttest.NewPhoto(64, 48, 1, 80).JPEG
	run := func() (string, *testBundle) {
		b := setup(t, worker.Config{Seed: 42, FailRate: 0.3, MalformedRate: 0.3, Malformations: []worker.Malformation{worker.WrongID, worker.MissingOutput}})
		var out strings.Builder
		for i := range 20 {
			req := imageRequest(fmt.Sprint(i), small)
			status, ans, _ := b.infer(t, inferPath, req, i%2 == 0)
			switch {
			case status != 200:
				out.WriteString("F")
			case ans.ID != req.ID || len(ans.Outputs) != 3:
				out.WriteString("M")
			default:
				out.WriteString(".")
			}
		}
		return out.String(), b
	}
	a, b1 := run()
	b, _ := run()
	require.Equal(t, a, b)
	require.Contains(t, a, "F")
	require.Contains(t, a, ".")

	var st worker.Stats
	require.Equal(t, 200, b1.get(t, "/v2/sim/stats", &st))
	require.Equal(t, b1.worker.Stats(), st)
	require.Equal(t, int64(20), st.Requests)
	require.Equal(t, int64(strings.Count(a, "F")), st.Failed)
	require.Equal(t, st.Requests, st.Failed+st.Malformed+st.Succeeded)
	require.Equal(t, int64(1), st.PeakInFlight)
}

// slowReturn passes every write on to the client at once and then holds the
// handler back, as a loaded machine may between a handler's last write and
// its return.
type slowReturn struct {
	http.ResponseWriter
	d time.Duration
}

func (w slowReturn) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.ResponseWriter.(http.Flusher).Flush()
	time.Sleep(w.d)
	return n, err
}

// TestSlotFreedBeforeAnswer checks that an inference gives its slot back
// before the first byte of its answer: a client with one slot that sends
// its requests strictly one after another, each as soon as it has read the
// previous answer, is never told the worker is full and never counted as
// two in flight. Each request goes on a new connection, as a client's pool
// may do; on one connection the server reads the next request only after
// the handler returned, which would hide the race.
func TestSlotFreedBeforeAnswer(t *testing.T) {
	t.Parallel()
	small := segmenttest.NewPhoto(64, 48, 1, 80).JPEG
	for _, capacity := range []int{1, 0} {
		t.Run(fmt.Sprintf("capacity %d", capacity), func(t *testing.T) {
			t.Parallel()
			w := worker.New(worker.Config{Capacity: capacity})
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				w.ServeHTTP(slowReturn{rw, 20 * time.Millisecond}, r)
			}))
			t.Cleanup(srv.Close)
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			t.Cleanup(client.CloseIdleConnections)
			for i := range 8 {
				req := imageRequest(fmt.Sprint(i), small)
				want := http.StatusOK
				if i%3 == 2 { // refused after admission: a 400 must free the slot too
					req.Inputs = append(req.Inputs, oip.FP32Tensor("x", []int64{1}, []float32{1}))
					want = http.StatusBadRequest
				}
				body, err := oip.EncodeRequest(req, i%2 == 0)
				require.NoError(t, err)
				hreq, err := http.NewRequest(http.MethodPost, srv.URL+inferPath, bytes.NewReader(body.Bytes))
				require.NoError(t, err)
				body.SetHeaders(hreq.Header)
				resp, err := client.Do(hreq)
				require.NoError(t, err)
				data, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, want, resp.StatusCode, "request %d: %s", i, data)
			}
			st := w.Stats()
			require.Zero(t, st.Busy)
			require.Equal(t, int64(1), st.PeakInFlight)
			require.Zero(t, st.InFlight, "the last answer is read, so its slot is free")
		})
	}
}

// TestInstancesQueue: with one instance and room for three requests, three
// sent at once are all admitted and executed one after another (a server's
// queue, not 503s), a fourth is refused, and the busy time counts the
// executions only, not the waits.
func TestInstancesQueue(t *testing.T) {
	t.Parallel()
	const latency = 100 * time.Millisecond
	b := setup(t, worker.Config{Synthetic: true, SimulateLatency: latency, Capacity: 3, Instances: 1})
	img := segmenttest.NewPhoto(64, 48, 1, 80).JPEG
	var mu sync.Mutex
	var done []time.Time
	var statuses []int
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 4 {
		if i == 3 {
			// The fourth once the first three are in.
			require.Eventually(t, func() bool { return b.worker.Stats().InFlight == 3 }, 5*time.Second, time.Millisecond)
		}
		wg.Go(func() {
			status, _, _ := b.infer(t, inferPath, imageRequest(fmt.Sprint(i), img), true)
			mu.Lock()
			defer mu.Unlock()
			statuses = append(statuses, status)
			if status == http.StatusOK {
				done = append(done, time.Now())
			}
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []int{200, 200, 200, http.StatusServiceUnavailable}, statuses)
	require.Len(t, done, 3)
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	require.GreaterOrEqual(t, done[2].Sub(start), 3*latency, "one instance: the three run one after another")
	require.GreaterOrEqual(t, done[2].Sub(done[0]), 2*latency-10*time.Millisecond)
	st := b.worker.Stats()
	require.Equal(t, int64(3), st.Succeeded)
	require.Equal(t, int64(1), st.Busy)
	require.GreaterOrEqual(t, st.BusyMS, 3*float64(latency.Milliseconds()))
	require.Less(t, st.BusyMS, 4.5*float64(latency.Milliseconds()), "waiting for the instance is not busy time (with it: about 6 latencies)")
}
