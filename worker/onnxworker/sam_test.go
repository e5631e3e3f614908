//go:build cgo

package onnxworker_test

import (
	"bytes"
	"context"
	stdimage "image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// samSetup serves testdata/onnx/sam-encoder.onnx and sam-decoder.onnx (see
// generate.py for what they compute) as the embed and interactive models.
func samSetup(t testing.TB) (*onnxworker.SAMServer, *httptest.Server) {
	return samSetupWith(t, "sam-decoder.onnx")
}

func samSetupWith(t testing.TB, decoder string) (*onnxworker.SAMServer, *httptest.Server) {
	t.Helper()
	enc, err := onnxworker.Open(filepath.Join(testdata, "sam-encoder.onnx"), onnxworker.Options{Threads: 1})
	require.NoError(t, err, "these tests load ONNX Runtime: run `make onnxruntime` or set ONNXRUNTIME_LIB")
	t.Cleanup(func() { _ = enc.Close() })
	dec, err := onnxworker.Open(filepath.Join(testdata, decoder), onnxworker.Options{Threads: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dec.Close() })
	s, err := onnxworker.NewSAM(enc, dec, onnxworker.SAMConfig{EmbedModel: "sam-enc", InteractiveModel: "sam-dec"})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// twoColours is a w×h PNG, colour a left of x = w/2 and b from it.
func twoColours(t testing.TB, w, h int, a, b color.RGBA) []byte {
	img := stdimage.NewRGBA(stdimage.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := a
			if x >= w/2 {
				c = b
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// samDisc is what sam-decoder.onnx answers: the pixels whose centres lie
// within sqrt(r2) of (cx, cy), at w×h.
func samDisc(w, h int, cx, cy, r2 float64) mask.RLE {
	bm := mask.NewBitmap(w, h)
	for y := range h {
		for x := range w {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if dx*dx+dy*dy < r2 {
				bm.Pix[y*w+x] = 1
			}
		}
	}
	return mask.Encode(bm)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestSAMEmbedAndPrompt(t *testing.T) {
	s, srv := samSetup(t)
	em := s.EmbedMetadata()
	require.Empty(t, inference.CheckEmbed(&em))
	pm := s.InteractiveMetadata()
	require.Empty(t, inference.CheckInteractive(&pm))
	require.True(t, inference.TakesEmbedding(&pm))

	ctx := context.Background()
	client := inference.New(srv.Client())
	const w, h = 512, 256 // resized to 1024 × 512 exactly: a scale of 2
	a, b := color.RGBA{200, 100, 50, 255}, color.RGBA{10, 240, 128, 255}
	for _, bin := range []bool{false, true} {
		emb, shape, err := client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-enc", Binary: bin}, twoColours(t, w, h, a, b))
		require.NoError(t, err)
		require.Equal(t, []int64{2 + 256*64*64}, shape)
		require.Equal(t, []float32{h, w}, emb[:2], "the header: height, width")

		// The encoder pools 16 × 16 blocks of the normalised 1024 frame:
		// rows 0–31 of the grid are the photo (512 resized rows), the rest
		// padding; columns up to 30 are colour a, from 33 colour b (31 and
		// 32 straddle the bilinear seam).
		mean := [3]float64{123.675, 116.28, 103.53}
		std := [3]float64{58.395, 57.12, 57.375}
		norm := func(c color.RGBA, ch int) float64 {
			return (float64([3]uint8{c.R, c.G, c.B}[ch]) - mean[ch]) / std[ch]
		}
		v := emb[2:]
		for c := range 256 {
			for y := range 64 {
				for x := range 64 {
					got := float64(v[c*64*64+y*64+x])
					switch {
					case y >= 32:
						require.Zerof(t, got, "padding at channel %d, %d, %d", c, y, x)
					case x <= 30:
						require.InDeltaf(t, norm(a, c%3), got, 1e-4, "channel %d at %d, %d", c, y, x)
					case x >= 33:
						require.InDeltaf(t, norm(b, c%3), got, 1e-4, "channel %d at %d, %d", c, y, x)
					}
				}
			}
		}
		var emean float64
		for _, f := range v {
			emean += float64(f)
		}
		emean /= float64(len(v))

		ep := inference.Endpoint{Base: srv.URL, Model: "sam-dec", Binary: bin}
		want := inference.Expect{Height: h, Width: w}
		ask := func(p inference.Prompt) inference.Answer {
			t.Helper()
			p.Embedding, p.EmbeddingShape = emb, shape
			ans, err := client.Prompt(ctx, ep, p, want)
			require.NoError(t, err)
			return ans
		}

		// One object click: a disc of radius² 300 round it, in the
		// original frame; the labels are 1 and the padding point's -1.
		ans := ask(inference.Prompt{Points: []inference.Point{{X: 100, Y: 60, Object: true}}})
		require.Equal(t, samDisc(w, h, 100, 60, 300), ans.Mask)
		require.InDelta(t, sigmoid(0.1*(1-1)+emean), ans.Score, 1e-5)

		// A background click first: the disc is round it, radius² 200.
		ans = ask(inference.Prompt{Points: []inference.Point{{X: 300, Y: 100}, {X: 100, Y: 60, Object: true}}})
		require.Equal(t, samDisc(w, h, 300, 100, 200), ans.Mask)
		require.InDelta(t, sigmoid(0.1*(0+1-1)+emean), ans.Score, 1e-5)

		// A box alone: its corners are the points, labelled 2 and 3,
		// without a padding point.
		ans = ask(inference.Prompt{Box: &[4]float32{50, 40, 150, 120}})
		require.Equal(t, samDisc(w, h, 50, 40, 400), ans.Mask)
		require.InDelta(t, sigmoid(0.1*(2+3)+emean), ans.Score, 1e-5)

		// A click after the box comes first.
		ans = ask(inference.Prompt{Points: []inference.Point{{X: 400, Y: 200, Object: true}}, Box: &[4]float32{50, 40, 150, 120}})
		require.Equal(t, samDisc(w, h, 400, 200, 300), ans.Mask)
		require.InDelta(t, sigmoid(0.1*(1+2+3)+emean), ans.Score, 1e-5)

		// Refining the left half of the image: mask_input is +10 over
		// the cells of the photo's left half (128 × 128 of 256 × 256) and
		// -10 elsewhere, padding included, so its mean is -5; and
		// has_mask_input is 1.
		left := mask.NewBitmap(w, h)
		for y := range h {
			for x := range w / 2 {
				left.Pix[y*w+x] = 1
			}
		}
		inst := mask.Encode(left)
		ans = ask(inference.Prompt{Points: []inference.Point{{X: 100, Y: 60, Object: true}}, Instance: &inst})
		require.Equal(t, samDisc(w, h, 100, 60, 300), ans.Mask)
		require.InDelta(t, sigmoid(0+1+emean-5.0/16), ans.Score, 1e-5)

		// A warm-up: no clicks, no box, no mask.
		ans = ask(inference.Prompt{})
		require.Zero(t, ans.Mask.Size)
	}
}

func TestSAMResizedAndScale(t *testing.T) {
	// ResizeLongestSide rounds the short side half up.
	for _, c := range []struct{ w, h, nw, nh int }{
		{512, 256, 1024, 512}, {640, 480, 1024, 768}, {480, 640, 768, 1024}, {1000, 333, 1024, 341}, {3, 1, 1024, 341}, {2048, 2048, 1024, 1024},
	} {
		nw, nh := layout.SAMResized(c.w, c.h)
		require.Equal(t, [2]int{c.nw, c.nh}, [2]int{nw, nh}, "%d×%d", c.w, c.h)
	}
	// A non-square, non-power-of-two image: the click is scaled by the
	// rounded sides, as SamPredictor's apply_coords does, and the disc is
	// drawn at the original size.
	_, srv := samSetup(t)
	client := inference.New(srv.Client())
	ctx := context.Background()
	const w, h = 640, 480
	emb, shape, err := client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-enc"}, twoColours(t, w, h, color.RGBA{1, 2, 3, 255}, color.RGBA{4, 5, 6, 255}))
	require.NoError(t, err)
	require.Equal(t, []float32{h, w}, emb[:2])
	ans, err := client.Prompt(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-dec"}, inference.Prompt{Embedding: emb, EmbeddingShape: shape, Points: []inference.Point{{X: 320, Y: 240, Object: true}}}, inference.Expect{Height: h, Width: w})
	require.NoError(t, err)
	// 320 × 1024/640 × 640/1024 comes back to 320 (and 240 × 768/480 ×
	// 640/1024 = 240) within float32 rounding, far from any pixel centre's
	// distance.
	require.Equal(t, samDisc(w, h, 320, 240, 300), ans.Mask)
}

func TestSAMRefusesBadPrompts(t *testing.T) {
	_, srv := samSetup(t)
	client := inference.New(srv.Client())
	ctx := context.Background()
	emb, shape, err := client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-enc"}, twoColours(t, 64, 32, color.RGBA{1, 2, 3, 255}, color.RGBA{4, 5, 6, 255}))
	require.NoError(t, err)
	ep := inference.Endpoint{Base: srv.URL, Model: "sam-dec"}
	want := inference.Expect{Height: 32, Width: 64}
	obj := []inference.Point{{X: 10, Y: 10, Object: true}}

	_, err = client.Prompt(ctx, ep, inference.Prompt{Embedding: emb[:len(emb)-1], EmbeddingShape: []int64{shape[0] - 1}, Points: obj}, want)
	require.ErrorContains(t, err, "EMBEDDING")
	bad := append([]float32{0.5}, emb[1:]...)
	_, err = client.Prompt(ctx, ep, inference.Prompt{Embedding: bad, EmbeddingShape: shape, Points: obj}, want)
	require.ErrorContains(t, err, "height and width")
	_, err = client.Prompt(ctx, ep, inference.Prompt{Embedding: emb, EmbeddingShape: shape, Points: []inference.Point{{X: 10, Y: 10}}}, want)
	require.ErrorContains(t, err, "nothing says what to segment")
	_, err = client.Prompt(ctx, ep, inference.Prompt{Embedding: emb, EmbeddingShape: shape, Box: &[4]float32{20, 10, 10, 20}}, want)
	require.ErrorContains(t, err, "x1 < x2")
	small := mask.Encode(mask.NewBitmap(8, 8))
	_, err = client.Prompt(ctx, ep, inference.Prompt{Embedding: emb, EmbeddingShape: shape, Points: obj, Instance: &small}, want)
	require.ErrorContains(t, err, "MASK_INPUT")
	_, _, err = client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-enc"}, []byte("not an image"))
	require.ErrorContains(t, err, "IMAGE")
	_, _, err = client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-dec"}, []byte("x"))
	require.Error(t, err, "the decoder is no embed model")
}

// TestSAMMultimask: a decoder exported without --return-single-mask answers
// four masks, all returned with their scores; the hub's client keeps the
// best-scored, the third (generate.py: radius² + 100, score × 1).
func TestSAMMultimask(t *testing.T) {
	_, srv := samSetupWith(t, "sam-decoder-multimask.onnx")
	client := inference.New(srv.Client())
	ctx := context.Background()
	const w, h = 512, 256
	emb, shape, err := client.Embed(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-enc", Binary: true}, twoColours(t, w, h, color.RGBA{200, 100, 50, 255}, color.RGBA{10, 240, 128, 255}))
	require.NoError(t, err)
	var emean float64
	for _, f := range emb[2:] {
		emean += float64(f)
	}
	emean /= float64(len(emb) - 2)
	ans, err := client.Prompt(ctx, inference.Endpoint{Base: srv.URL, Model: "sam-dec", Binary: true}, inference.Prompt{Embedding: emb, EmbeddingShape: shape, Points: []inference.Point{{X: 200, Y: 100, Object: true}}}, inference.Expect{Height: h, Width: w})
	require.NoError(t, err)
	require.Equal(t, samDisc(w, h, 200, 100, 400), ans.Mask)
	require.InDelta(t, sigmoid(emean), ans.Score, 1e-5)

	// The worker's own answer has all four, in the decoder's order.
	body, err := oip.EncodeRequest(&oip.InferRequest{ID: "m", Inputs: []oip.Tensor{
		oip.FP32Tensor("EMBEDDING", shape, emb),
		oip.FP32Tensor("POINTS", []int64{1, 2}, []float32{200, 100}),
		oip.Int32Tensor("POINT_LABELS", []int64{1}, []int32{1}),
	}}, false)
	require.NoError(t, err)
	res, err := srv.Client().Post(srv.URL+"/v2/models/sam-dec/versions/1/infer", "application/json", bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	out, err := oip.DecodeResponse(raw, len(raw), oip.Limits{})
	require.NoError(t, err)
	sc, err := out.Output("SCORES").Float32s()
	require.NoError(t, err)
	s := sigmoid(emean)
	require.InDeltaSlice(t, []float64{0.5 * s, 0.25 * s, s, 0.75 * s}, []float64{float64(sc[0]), float64(sc[1]), float64(sc[2]), float64(sc[3])}, 1e-5)
	require.Len(t, out.Output("MASKS").Elems, 4)
}

// TestSAMRoutes: both models answer metadata and readiness; anything else
// is a 404 naming what is served.
func TestSAMRoutes(t *testing.T) {
	_, srv := samSetup(t)
	b := &testBundle{srv: srv}
	var meta oip.ModelMetadata
	require.Equal(t, http.StatusOK, b.get(t, "/v2/models/sam-enc", &meta))
	require.Equal(t, oip.Parameters{"layout": "sam"}, meta.Parameters)
	require.Equal(t, []oip.TensorMetadata{{Name: "EMBEDDING", Datatype: oip.FP32, Shape: []int64{2 + 256*64*64}}}, meta.Outputs)
	require.Equal(t, http.StatusOK, b.get(t, "/v2/models/sam-dec/versions/1", &meta))
	require.Equal(t, "sam-dec", meta.Name)
	var ready map[string]bool
	require.Equal(t, http.StatusOK, b.get(t, "/v2/models/sam-dec/ready", &ready))
	var e oip.ErrorBody
	require.Equal(t, http.StatusNotFound, b.get(t, "/v2/models/other", &e))
	require.Contains(t, e.Error, "sam-enc and sam-dec")
	require.Equal(t, http.StatusNotFound, b.get(t, "/v2/models/sam-enc/versions/2", &e))
}

// BenchmarkSAM times the embed model on a 1024 × 768 photo (decoding, SAM's
// pre-processing, the tiny test encoder, 4 MiB of EMBEDDING back) and one
// click on the interactive model (4 MiB of EMBEDDING sent, the test
// decoder, the mask's RLE), both over HTTP in binary form.
func BenchmarkSAM(b *testing.B) {
	_, srv := samSetup(b)
	client := inference.New(srv.Client())
	ctx := context.Background()
	photo := twoColours(b, 1024, 768, color.RGBA{200, 100, 50, 255}, color.RGBA{10, 240, 128, 255})
	enc := inference.Endpoint{Base: srv.URL, Model: "sam-enc", Binary: true}
	dec := inference.Endpoint{Base: srv.URL, Model: "sam-dec", Binary: true}
	emb, shape, err := client.Embed(ctx, enc, photo)
	require.NoError(b, err)
	b.Run("embed", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := client.Embed(ctx, enc, photo); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prompt", func(b *testing.B) {
		p := inference.Prompt{Embedding: emb, EmbeddingShape: shape, Points: []inference.Point{{X: 500, Y: 400, Object: true}}}
		for b.Loop() {
			if _, err := client.Prompt(ctx, dec, p, inference.Expect{Height: 768, Width: 1024}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
