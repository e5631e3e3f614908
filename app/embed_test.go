package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/deepimageshub/imagehub/blob"
	"image"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"

	_ "image/jpeg" // the test encoder decodes the uploaded JPEG
)

// twoStage is a real OIP server with a SAM-like pair: "enc" (task embed)
// turns IMAGE into EMBEDDING FP32 [1, 3] = [width, height, a checksum],
// and "dec" (task interactive) takes EMBEDDING and POINTS and answers a
// 21×21 square around the first point, at the size the embedding gives:
// the decoder never sees the image.
type twoStage struct {
	encodes, decodes atomic.Int64
	lastEmbedding    atomic.Value // []float32
}

func (s *twoStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	model := r.PathValue("model")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2":
		reply(oip.ServerMetadata{Name: "two-stage", Version: "1"})
	case r.Method == http.MethodGet && model == "enc" && r.PathValue("rest") == "":
		reply(oip.ModelMetadata{Name: "enc", Versions: []string{"1"},
			Inputs:  []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{1}}},
			Outputs: []oip.TensorMetadata{{Name: "EMBEDDING", Datatype: oip.FP32, Shape: []int64{1, 3}}}})
	case r.Method == http.MethodGet && model == "dec" && r.PathValue("rest") == "":
		reply(oip.ModelMetadata{Name: "dec", Versions: []string{"1"},
			Inputs: []oip.TensorMetadata{{Name: "EMBEDDING", Datatype: oip.FP32, Shape: []int64{1, 3}},
				{Name: "POINTS", Datatype: oip.FP32, Shape: []int64{-1, 2}}, {Name: "POINT_LABELS", Datatype: oip.INT32, Shape: []int64{-1}}},
			Outputs: []oip.TensorMetadata{{Name: "MASKS", Datatype: oip.BYTES, Shape: []int64{-1}}, {Name: "SCORES", Datatype: oip.FP32, Shape: []int64{-1}}}})
	case r.Method == http.MethodGet:
		reply(map[string]bool{"ready": true})
	case r.PathValue("rest") == "infer":
		body, err := oip.ReadBody(r.Body, 64<<20)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n, _ := oip.JSONLength(r.Header, len(body))
		req, err := oip.DecodeRequest(body, n, oip.Limits{MaxBodyBytes: 64 << 20})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out []oip.Tensor
		if model == "enc" {
			s.encodes.Add(1)
			data := req.Input("IMAGE").Elems[0]
			cfg, _, err := image.DecodeConfig(bytesReader(data))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var sum float32
			for _, b := range data[:100] {
				sum += float32(b)
			}
			out = []oip.Tensor{oip.FP32Tensor("EMBEDDING", []int64{1, 3}, []float32{float32(cfg.Width), float32(cfg.Height), sum})}
		} else {
			s.decodes.Add(1)
			if req.Input("IMAGE") != nil {
				http.Error(w, "the decoder takes no IMAGE", http.StatusBadRequest)
				return
			}
			emb, _ := req.Input("EMBEDDING").Float32s()
			s.lastEmbedding.Store(emb)
			pts, _ := req.Input("POINTS").Float32s()
			w, h := int(emb[0]), int(emb[1])
			bm := mask.NewBitmap(w, h)
			for y := int(pts[1]) - 10; y <= int(pts[1])+10; y++ {
				for x := int(pts[0]) - 10; x <= int(pts[0])+10; x++ {
					if x >= 0 && y >= 0 && x < w && y < h {
						bm.Set(x, y, true)
					}
				}
			}
			enc, _ := json.Marshal(mask.Encode(bm))
			out = []oip.Tensor{oip.BytesTensor("MASKS", enc), oip.FP32Tensor("SCORES", []int64{1}, []float32{0.8})}
		}
		resp, err := oip.EncodeResponse(&oip.InferResponse{ModelName: model, ID: req.ID, Outputs: out}, func(string) bool { return false })
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp.SetHeaders(w.Header())
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.Bytes)))
		_, _ = w.Write(resp.Bytes)
	default:
		http.NotFound(w, r)
	}
}

// twoStageServer serves a twoStage pair, enc and dec.
func twoStageServer(t *testing.T) (*twoStage, *httptest.Server) {
	ts := &twoStage{}
	mux := http.NewServeMux()
	mux.Handle("/v2", ts)
	mux.Handle("/v2/health/ready", ts)
	mux.Handle("/v2/models/{model}", ts)
	mux.Handle("/v2/models/{model}/{rest}", ts)
	mux.Handle("/v2/models/{model}/versions/{v}", ts)
	mux.Handle("/v2/models/{model}/versions/{v}/{rest}", ts)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return ts, srv
}

// TestModelFormTasks: the admin page's form registers an embed model and
// the interactive model that takes its EMBEDDING, picked from the
// registered embed models; a bad task, an embed model for a segmentation
// model and a decoder without its encoder are refused on the form, naming
// the field or the finding.
func TestModelFormTasks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	_, srv := twoStageServer(t)
	form := func(name, task, embed string) url.Values {
		return url.Values{"name": {name}, "version": {"1"}, "endpoints": {srv.URL}, "capacity": {"2"}, "timeout_ms": {"60000"},
			"layout": {"imagehub"}, "task": {task}, "embed_model": {embed}, "enabled": {"on"}}
	}
	doc := admin.get("/admin/models").doc(t)
	require.Equal(t, "segmentation", doc.Find("#model-task option[selected]").AttrOr("value", ""))
	require.Equal(t, 1, doc.Find("#model-embed option").Length(), "no embed model yet: only none")

	res := admin.form("/admin/models", form("enc", "bogus", ""))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#task-error").Text(), `"segmentation", "interactive" or "embed"`)
	require.Zero(t, tb.count(t, `SELECT count(*) FROM models`))

	res = admin.form("/admin/models", form("enc", "embed", ""))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	doc = admin.get("/admin/models").doc(t)
	require.Equal(t, "enc:1", doc.Find("#model-embed option").Last().AttrOr("value", ""))
	require.Contains(t, doc.Find(".model-task").Text(), "embed")

	// A decoder that takes EMBEDDING without its encoder: the finding shown.
	res = admin.form("/admin/models", form("dec", "interactive", ""))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#model-form").Text(), "name the embed model")
	require.Equal(t, "interactive", res.doc(t).Find("#model-task option[selected]").AttrOr("value", ""), "the form keeps the task")
	// An embed model for a segmentation model: refused on embed_model.
	res = admin.form("/admin/models", form("dec", "segmentation", "enc:1"))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#embed_model-error").Text(), "Only an interactive model takes an embed model")

	res = admin.form("/admin/models", form("dec", "interactive", "enc:1"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, 1, tb.count(t, `SELECT count(*) FROM models d JOIN models e ON e.id = d.embed_model_id
		WHERE d.name = 'dec' AND d.task = 'interactive' AND e.name = 'enc' AND e.task = 'embed'`))
}

// TestEmbeddingAheadOfClicks: with a two-stage interactive model, an
// uploaded photo's embedding is computed by a River job once inference
// sends it to review and kept in the blob store, so the reviewer's clicks
// send EMBEDDING to the decoder and never wait for the encoder.
func TestEmbeddingAheadOfClicks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	rev, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	seg := httptest.NewServer(worker.New(worker.Config{Synthetic: true}))
	t.Cleanup(seg.Close)
	ts, enc := twoStageServer(t)

	for _, body := range []map[string]any{
		{"name": "imagehub-segmenter", "endpoints": []string{seg.URL}},
		{"name": "enc", "task": "embed", "endpoints": []string{enc.URL}},
		{"name": "dec", "task": "interactive", "endpoints": []string{enc.URL}, "embed_model": "enc"},
	} {
		res := admin.json(http.MethodPost, "/api/v1/models", body)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
		require.Empty(t, res.json(t)["model"].(map[string]any)["problems"], "%v", body["name"])
	}
	// A decoder without its encoder is refused, naming what is missing.
	res := admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "dec", "version": "2", "task": "interactive", "endpoints": []string{enc.URL}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), "embed_model")
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "dec", "version": "3", "task": "interactive", "endpoints": []string{enc.URL}, "embed_model": "nope"})
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	_, f := res.apiError(t)
	require.Equal(t, "embed_model", f)

	up := uploadOne(t, admin, photos(1, 77)[0])
	imageID := up["image"].(map[string]any)["id"].(string)
	require.Eventually(t, func() bool {
		return tb.count(t, `SELECT count(*) FROM images WHERE id = $1 AND status = 'awaiting_review'`, imageID) == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return tb.blobCount(t, "embeddings/") == 1 }, 30*time.Second, 20*time.Millisecond,
		"the embed job keeps the embedding")
	require.EqualValues(t, 1, ts.encodes.Load())
	require.Zero(t, ts.decodes.Load())

	status, item := next(t, rev)
	require.Equal(t, http.StatusOK, status)
	path := "/api/v1/review/" + item["item_id"].(string) + "/segment"
	for i := range 3 {
		res := rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{float64(100 + 50*i), 200, 1}}})
		got, score := decodeAnswer(t, res)
		require.Equal(t, 1024, got.W)
		require.Equal(t, 768, got.H)
		require.Equal(t, 21*21, got.Area())
		require.True(t, got.At(100+50*i, 200))
		require.InDelta(t, 0.8, score, 1e-6)
	}
	require.EqualValues(t, 3, ts.decodes.Load())
	require.EqualValues(t, 1, ts.encodes.Load(), "clicks use the kept embedding: no encoder call")
	emb := ts.lastEmbedding.Load().([]float32)
	require.Equal(t, []float32{1024, 768}, emb[:2], "the decoder got the encoder's output")
	require.Equal(t, fmt.Sprint(emb), fmt.Sprint(ts.lastEmbedding.Load()))

	// Without the kept embedding (lost), the first prompt computes it again.
	require.NoError(t, tb.blobs.List(context.Background(), "embeddings/", func(info blobInfo) error {
		return tb.blobs.Delete(context.Background(), info.Key)
	}))
	decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{300, 300, 1}}}))
	require.EqualValues(t, 2, ts.encodes.Load())
	require.Equal(t, 1, tb.blobCount(t, "embeddings/"))
}

type blobInfo = blob.Info

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// TestPreparedWhenReviewable: with the built-in single-stage model, an
// uploaded photo is warmed up (prepared by the worker) as soon as its
// inference sends it to review, before anyone leases it, by a job queued
// in the transaction that puts it in the review queue.
func TestPreparedWhenReviewable(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	wk := worker.New(worker.Config{Synthetic: true})
	srv := httptest.NewServer(wk)
	t.Cleanup(srv.Close)
	for _, body := range []map[string]any{
		{"name": "imagehub-segmenter", "endpoints": []string{srv.URL}},
		{"name": wk.InteractiveModel(), "task": "interactive", "endpoints": []string{srv.URL}},
	} {
		res := admin.json(http.MethodPost, "/api/v1/models", body)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	}
	require.Zero(t, wk.Stats().Prompts)
	// The transactions that insert jobs and review items, as triggers of
	// this test's own database see them.
	_, err := tb.pool.Exec(context.Background(), `
		CREATE TABLE insert_xids (tbl text, kind text, xid bigint);
		CREATE FUNCTION log_insert_xid() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO insert_xids VALUES (TG_TABLE_NAME, CASE WHEN TG_TABLE_NAME = 'river_job' THEN NEW.kind END, txid_current());
			RETURN NEW;
		END $$;
		CREATE TRIGGER log_xid AFTER INSERT ON river_job FOR EACH ROW EXECUTE FUNCTION log_insert_xid();
		CREATE TRIGGER log_xid AFTER INSERT ON review_items FOR EACH ROW EXECUTE FUNCTION log_insert_xid();`)
	require.NoError(t, err)
	up := uploadOne(t, admin, photos(1, 78)[0])
	imageID := up["image"].(map[string]any)["id"].(string)
	require.Eventually(t, func() bool { return wk.Stats().Prompts == 1 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, tb.count(t, `SELECT count(*) FROM images WHERE id = $1 AND status = 'awaiting_review'`, imageID))
	require.EqualValues(t, 1, wk.Stats().Requests, "one proposal request, one warm-up")
	// The job was queued by the transaction that wrote the review item.
	require.Equal(t, 1, tb.count(t, `SELECT count(*) FROM insert_xids j JOIN insert_xids r ON r.xid = j.xid
		WHERE j.tbl = 'river_job' AND j.kind = 'prepare_prompts' AND r.tbl = 'review_items'`))
}
