package inference_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// testBundle is a real worker behind a loopback HTTP server and a client.
type testBundle struct {
	worker *worker.Server
	srv    *httptest.Server
	client *inference.Client
	ep     inference.Endpoint
}

func setup(t testing.TB, cfg worker.Config) *testBundle {
	t.Helper()
	w := worker.New(cfg)
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return &testBundle{
		worker: w,
		srv:    srv,
		client: inference.New(srv.Client()),
		ep:     inference.Endpoint{Base: srv.URL, Model: w.Model()},
	}
}

var (
	photoOnce sync.Once
	photo     *segmenttest.Photo
)

// testPhoto is a 480×360 photo with three shapes, made once.
func testPhoto() *segmenttest.Photo {
	photoOnce.Do(func() { photo = segmenttest.NewPhoto(480, 360, 11, 90) })
	return photo
}

func expect() inference.Expect {
	return inference.Expect{Height: 360, Width: 480}
}

var (
	smallOnce  sync.Once
	smallImage *segmenttest.Photo
)

func smallExpect() inference.Expect { return inference.Expect{Height: 150, Width: 200} }

// smallPhoto is a 200×150 photo with three shapes, for the tests that
// check failures rather than masks.
func smallPhoto() *segmenttest.Photo {
	smallOnce.Do(func() { smallImage = segmenttest.NewPhoto(200, 150, 11, 85) })
	return smallImage
}

func TestSegmentRoundTrip(t *testing.T) {
	t.Parallel()
	for _, dense := range []bool{false, true} {
		for _, bin := range []bool{false, true} {
			t.Run(fmt.Sprintf("dense=%v/binary=%v", dense, bin), func(t *testing.T) {
				t.Parallel()
				b := setup(t, worker.Config{DenseMasks: dense})
				b.ep.Binary = bin
				p := testPhoto()
				ins, err := b.client.Segment(context.Background(), b.ep, p.JPEG, nil, expect())
				require.NoError(t, err)
				require.NotEmpty(t, ins)
				matched := map[string]bool{}
				for _, in := range ins {
					require.Equal(t, "object", in.Label)
					require.True(t, in.Score >= 0 && in.Score <= 1)
					require.Equal(t, [2]int{360, 480}, in.Mask.Size)
					bm, err := in.Mask.Decode()
					require.NoError(t, err)
					require.Equal(t, bm.Area(), in.Area)
					require.Equal(t, bm.BBox(), in.BBox)
					for _, s := range p.Shapes {
						if segmenttest.IoU(bm, s.Mask) > 0.5 {
							matched[s.Name] = true
						}
					}
				}
				require.NotEmpty(t, matched, "no instance overlaps a drawn shape with IoU > 0.5")
				require.Len(t, matched, 3, "each shape is found")
				require.Equal(t, int64(1), b.worker.Stats().Succeeded)
			})
		}
	}
}

func TestSegmentLabelsFromHints(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	aliases := map[string]string{"Cat": "cat", "dog": "dog"}
	want := expect()
	want.KnownLabel = func(s string) (string, bool) { v, ok := aliases[s]; return v, ok }
	ins, err := b.client.Segment(context.Background(), b.ep, testPhoto().JPEG, []string{"Cat", "dog"}, want)
	require.NoError(t, err)
	require.Len(t, ins, 3)
	require.Equal(t, []string{"cat", "dog", "cat"}, []string{ins[0].Label, ins[1].Label, ins[2].Label})

	// Without hints the worker says "object", which this hub does not know.
	_, err = b.client.Segment(context.Background(), b.ep, testPhoto().JPEG, nil, want)
	var c *inference.Contract
	require.ErrorAs(t, err, &c)
	require.Contains(t, c.Message, `LABELS element 0 is "object", a label the hub does not know`)

	// A model without LABEL_HINTS is not sent any.
	b.ep.SkipHints = true
	ins, err = b.client.Segment(context.Background(), b.ep, testPhoto().JPEG, []string{"dog"}, expect())
	require.NoError(t, err)
	require.Equal(t, "object", ins[0].Label)
}

func TestMalformedAnswersAreContractErrors(t *testing.T) {
	t.Parallel()
	want := map[worker.Malformation]string{
		worker.WrongMaskSize:   "MASKS element 0 has size [151, 200] but the image is [150, 200]",
		worker.NaNScore:        "SCORES element 0 is NaN",
		worker.ScoreOutOfRange: "SCORES element 0 is 1.5",
		worker.UnknownLabel:    `LABELS element 0 is "unheard-of-label-7f3a"`,
		worker.MissingOutput:   "output SCORES is missing",
		worker.CountMismatch:   "output LABELS is BYTES [2]; it must be BYTES [3]",
		worker.WrongID:         "the answer's id is \"not-",
		worker.BadRLE:          "MASKS element 0 is not a valid mask",
		worker.WrongShape:      "output MASKS is BYTES [1, 3]",
		worker.WrongDatatype:   "output SCORES is FP64 [3]",
		worker.NotJSON:         "the answer is not a valid inference response",
	}
	denseWant := map[worker.Malformation]string{
		worker.WrongMaskSize: "output MASKS is [3, 151, 200] but the image is 150×200",
		worker.BadRLE:        "MASKS element 0 holds the value 7",
		worker.WrongShape:    "output MASKS is UINT8 [1, 3, 150, 200]",
	}
	require.Len(t, want, len(worker.AllMalformations))
	known := func(s string) (string, bool) { return s, s == "object" }
	for _, kind := range worker.AllMalformations {
		for _, dense := range []bool{false, true} {
			for _, bin := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/dense=%v/binary=%v", kind, dense, bin), func(t *testing.T) {
					t.Parallel()
					b := setup(t, worker.Config{MalformedRate: 1, Malformations: []worker.Malformation{kind}, DenseMasks: dense})
					b.ep.Binary = bin
					e := inference.Expect{Height: 150, Width: 200, KnownLabel: known}
					ins, err := b.client.Segment(context.Background(), b.ep, smallPhoto().JPEG, nil, e)
					require.Nil(t, ins)
					var c *inference.Contract
					require.ErrorAs(t, err, &c)
					require.Equal(t, inference.KindContract, inference.Kind(err))
					msg := want[kind]
					if d, ok := denseWant[kind]; ok && dense {
						msg = d
					}
					require.Contains(t, c.Message, msg)
					require.Equal(t, int64(1), b.worker.Stats().Malformed)
				})
			}
		}
	}
}

func TestContractChecksOnGoodAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	ctx := context.Background()

	e := expect()
	e.Height++
	_, err := b.client.Segment(ctx, b.ep, testPhoto().JPEG, nil, e)
	var c *inference.Contract
	require.ErrorAs(t, err, &c)
	require.Contains(t, c.Message, "has size [360, 480] but the image is [361, 480]")

	e = expect()
	e.MaxInstances = 2
	_, err = b.client.Segment(ctx, b.ep, testPhoto().JPEG, nil, e)
	require.ErrorAs(t, err, &c)
	require.Contains(t, c.Message, "the answer has 3 instances, more than the 2 allowed")

	// The server refuses what is not an image: a 400 is a contract error.
	_, err = b.client.Segment(ctx, b.ep, []byte("not an image"), nil, expect())
	require.ErrorAs(t, err, &c)
	require.Equal(t, http.StatusBadRequest, c.Status)
	require.Contains(t, c.Message, "IMAGE element 0 is not a JPEG, PNG or WebP image")

	ep := b.ep
	ep.Model = "nope"
	_, err = b.client.Segment(ctx, ep, testPhoto().JPEG, nil, expect())
	require.ErrorAs(t, err, &c)
	require.Equal(t, http.StatusNotFound, c.Status)

	// The client refuses an answer larger than its cap.
	small := *b.client
	small.MaxResponseBytes = 100
	_, err = small.Segment(ctx, b.ep, testPhoto().JPEG, nil, expect())
	require.ErrorAs(t, err, &c)
	require.Contains(t, c.Message, "larger than 100 bytes")

	_, err = b.client.Segment(ctx, b.ep, nil, nil, expect())
	require.Equal(t, inference.KindOther, inference.Kind(err))
	_, err = b.client.Segment(ctx, inference.Endpoint{Base: "ftp://x", Model: "m"}, []byte("x"), nil, expect())
	require.Equal(t, inference.KindOther, inference.Kind(err))
}

func TestFailuresAreClassified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("500 is retryable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{FailRate: 1})
		_, err := b.client.Segment(ctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		var r *inference.Retryable
		require.ErrorAs(t, err, &r)
		require.Equal(t, http.StatusInternalServerError, r.Status)
		require.ErrorContains(t, err, "simulated failure")
		require.Equal(t, inference.KindRetryable, inference.Kind(err))
	})

	t.Run("timeout is retryable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{TimeoutRate: 1})
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.client.Segment(tctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		require.Less(t, time.Since(start), 5*time.Second)
		var r *inference.Retryable
		require.ErrorAs(t, err, &r)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, inference.KindRetryable, inference.Kind(err))

		// The http.Client's own timeout is a timeout too.
		hc := b.srv.Client()
		hc.Timeout = 200 * time.Millisecond
		_, err = inference.New(hc).Segment(ctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		require.ErrorAs(t, err, &r)
		require.Positive(t, b.worker.Stats().TimedOut)
	})

	t.Run("cancel is canceled", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{TimeoutRate: 1})
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := b.client.Segment(cctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, inference.KindCanceled, inference.Kind(err))
	})

	t.Run("connection refused is retryable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{})
		b.srv.Close()
		_, err := b.client.Segment(ctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		var r *inference.Retryable
		require.ErrorAs(t, err, &r)
		require.Equal(t, 0, r.Status)
		require.Error(t, b.client.Ready(ctx, b.ep))
	})

	t.Run("503 is busy", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{Capacity: 1, SimulateLatency: 2 * time.Second})
		done := make(chan error, 1)
		go func() {
			_, err := b.client.Segment(ctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
			done <- err
		}()
		require.Eventually(t, func() bool { return b.worker.Stats().InFlight == 1 }, 5*time.Second, 5*time.Millisecond)
		_, err := b.client.Segment(ctx, b.ep, smallPhoto().JPEG, nil, smallExpect())
		var busy *inference.Busy
		require.ErrorAs(t, err, &busy)
		require.Equal(t, http.StatusServiceUnavailable, busy.Status)
		require.Equal(t, time.Second, busy.RetryAfter)
		require.Equal(t, inference.KindBusy, inference.Kind(err))
		require.NoError(t, <-done)
	})

	// Statuses our worker never sends, from a stand-in for another server.
	cases := []struct {
		status int
		body   string
		kind   string
		msg    string
	}{
		{http.StatusTooManyRequests, `{"error":"queue full"}`, inference.KindBusy, "queue full"},
		{http.StatusBadGateway, "<html>bad gateway</html>", inference.KindRetryable, "<html>bad gateway</html>"},
		{http.StatusGatewayTimeout, "", inference.KindRetryable, "(no message)"},
		{http.StatusRequestTimeout, `{"error":"slow"}`, inference.KindRetryable, "slow"},
		{http.StatusBadRequest, `{"error":"unexpected inference input 'LABEL_HINTS'"}`, inference.KindContract, "unexpected inference input 'LABEL_HINTS'"},
		{http.StatusNoContent, "", inference.KindContract, "unexpected status 204"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			_, err := inference.New(srv.Client()).Segment(ctx, inference.Endpoint{Base: srv.URL, Model: "m"}, []byte("img"), []string{"cat"}, expect())
			require.Equal(t, c.kind, inference.Kind(err), "%v", err)
			require.ErrorContains(t, err, c.msg)
			var busy *inference.Busy
			if errors.As(err, &busy) {
				require.Equal(t, 3*time.Second, busy.RetryAfter)
			}
		})
	}
}

func TestCapacityIsNeverExceeded(t *testing.T) {
	t.Parallel()
	const capacity, clients = 2, 8
	b := setup(t, worker.Config{Capacity: capacity, SimulateLatency: 300 * time.Millisecond})
	small := segmenttest.NewPhoto(160, 120, 3, 80).JPEG
	var wg sync.WaitGroup
	errs := make([]error, clients)
	start := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			<-start
			_, errs[i] = b.client.Segment(context.Background(), b.ep, small, nil, inference.Expect{Height: 120, Width: 160})
		})
	}
	close(start)
	wg.Wait()
	var ok, busy int
	for _, err := range errs {
		switch inference.Kind(err) {
		case "":
			ok++
		case inference.KindBusy:
			busy++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Positive(t, busy)
	require.GreaterOrEqual(t, ok, capacity)
	st := b.worker.Stats()
	require.LessOrEqual(t, st.PeakInFlight, int64(capacity))
	require.Equal(t, int64(busy), st.Busy)
	require.Equal(t, int64(ok), st.Succeeded)
	require.Equal(t, int64(clients), st.Requests)
	require.Zero(t, st.InFlight)
}

func TestMetadataAndConvention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dense := range []bool{false, true} {
		b := setup(t, worker.Config{DenseMasks: dense})
		require.NoError(t, b.client.Ready(ctx, b.ep))
		require.NoError(t, b.client.ModelReady(ctx, b.ep))
		require.NoError(t, b.client.ModelReady(ctx, inference.Endpoint{Base: b.ep.Base + "/", Model: b.ep.Model, Version: "1"}))
		sm, err := b.client.ServerMetadata(ctx, b.ep)
		require.NoError(t, err)
		require.True(t, sm.HasExtension(oip.ExtensionBinaryTensorData))
		for _, v := range []string{"", "1"} {
			mm, err := b.client.ModelMetadata(ctx, inference.Endpoint{Base: b.ep.Base, Model: b.ep.Model, Version: v})
			require.NoError(t, err)
			require.Equal(t, b.ep.Model, mm.Name)
			require.Empty(t, inference.CheckConvention(mm))
			require.True(t, inference.AcceptsLabelHints(mm))
		}
		_, err = b.client.ModelMetadata(ctx, inference.Endpoint{Base: b.ep.Base, Model: b.ep.Model, Version: "2"})
		var c *inference.Contract
		require.ErrorAs(t, err, &c)
		require.Equal(t, http.StatusNotFound, c.Status)
		require.Contains(t, c.Message, "unknown version 2")
	}

	good := func() *oip.ModelMetadata {
		return &oip.ModelMetadata{
			Name:   "m",
			Inputs: []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{1}}},
			Outputs: []oip.TensorMetadata{
				{Name: "MASKS", Datatype: oip.BOOL, Shape: []int64{-1, 480, 640}},
				{Name: "SCORES", Datatype: oip.FP32, Shape: []int64{-1}},
				{Name: "LABELS", Datatype: oip.BYTES, Shape: []int64{-1}},
				{Name: "boxes", Datatype: oip.FP32, Shape: []int64{-1, 4}},
			},
		}
	}
	require.Empty(t, inference.CheckConvention(good()))
	require.False(t, inference.AcceptsLabelHints(good()))

	cases := []struct {
		name  string
		edit  func(m *oip.ModelMetadata)
		wants []string
	}{
		{"decoded pixels", func(m *oip.ModelMetadata) {
			m.Inputs[0] = oip.TensorMetadata{Name: "IMAGE", Datatype: oip.FP32, Shape: []int64{-1, 3, 224, 224}}
		}, []string{"input IMAGE is FP32; it must be BYTES", "input IMAGE has shape [-1, 3, 224, 224]; it must be [1] or [-1]"}},
		{"no image", func(m *oip.ModelMetadata) { m.Inputs[0].Name = "input_1" }, []string{
			"the model has no input IMAGE", `the model needs input "input_1" (BYTES [1]), which the hub never sends`}},
		{"hints as ints", func(m *oip.ModelMetadata) {
			m.Inputs = append(m.Inputs, oip.TensorMetadata{Name: "LABEL_HINTS", Datatype: oip.INT64, Shape: []int64{-1}})
		}, []string{"input LABEL_HINTS is INT64 [-1]; it must be BYTES [-1]"}},
		{"probabilities", func(m *oip.ModelMetadata) { m.Outputs[0].Datatype = oip.FP32 }, []string{"output MASKS is FP32 [-1, 480, 640]; it must be BYTES [N]"}},
		{"masks rank", func(m *oip.ModelMetadata) { m.Outputs[0].Shape = []int64{-1, 307200} }, []string{"output MASKS is BOOL [-1, 307200]"}},
		{"scores fp64 2d", func(m *oip.ModelMetadata) {
			m.Outputs[1] = oip.TensorMetadata{Name: "SCORES", Datatype: oip.FP64, Shape: []int64{1, -1}}
		}, []string{"output SCORES is FP64 [1, -1]; it must be FP32 [N]"}},
		{"label ids", func(m *oip.ModelMetadata) { m.Outputs[2].Datatype = oip.INT32 }, []string{"output LABELS is INT32 [-1]; it must be BYTES [N]"}},
		{"missing outputs", func(m *oip.ModelMetadata) { m.Outputs = m.Outputs[3:] }, []string{
			"the model has no output MASKS", "the model has no output SCORES", "the model has no output LABELS"}},
		{"batch index", func(m *oip.ModelMetadata) {
			m.Outputs = append(m.Outputs, oip.TensorMetadata{Name: "BATCH_INDEX", Datatype: oip.INT64, Shape: []int64{-1}})
		}, []string{"output BATCH_INDEX is INT64 [-1]; it must be INT32 [N]"}},
		{"zero dim", func(m *oip.ModelMetadata) { m.Outputs[1].Shape = []int64{0} }, []string{"output SCORES is FP32 [0]"}},
	}
	for _, c := range cases {
		m := good()
		c.edit(m)
		ps := inference.CheckConvention(m)
		var msgs []string
		for _, p := range ps {
			msgs = append(msgs, p.String())
		}
		require.Len(t, ps, len(c.wants), "%s: %v", c.name, msgs)
		for i, w := range c.wants {
			require.True(t, strings.HasPrefix(msgs[i], w) || strings.Contains(msgs[i], w), "%s: %q does not say %q", c.name, msgs[i], w)
		}
	}
	require.Len(t, inference.CheckConvention(nil), 1)
}

// BenchmarkRoundTrip sends a 1 MB JPEG (1600×1200) to a worker and reads the
// instances, in JSON (base64) and in binary form. The worker decodes and
// segments the photo each time, so the difference between the two is the
// cost of the encoding.
func BenchmarkRoundTrip(b *testing.B) {
	p := segmenttest.NewPhoto(1600, 1200, 5, 97)
	want := inference.Expect{Height: 1200, Width: 1600}
	for _, bin := range []bool{false, true} {
		name := "json"
		if bin {
			name = "binary"
		}
		b.Run(name, func(b *testing.B) {
			tb := setup(b, worker.Config{})
			tb.ep.Binary = bin
			b.SetBytes(int64(len(p.JPEG)))
			b.ReportAllocs()
			for b.Loop() {
				ins, err := tb.client.Segment(context.Background(), tb.ep, p.JPEG, []string{"thing"}, want)
				if err != nil || len(ins) == 0 {
					b.Fatal(err, len(ins))
				}
			}
		})
	}
}
