package trainer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/trainer/trainertest"
	"github.com/deepimageshub/imagehub/worker"
)

// TestTrainedModelServed trains a model, serves its artifact from the
// worker through a loader as the hub's built-in worker does, and checks
// that a held-out image comes back with the trained labels and masks of
// its size.
func TestTrainedModelServed(t *testing.T) {
	t.Parallel()
	tr := openShapes(t, "train", 120, 1, 21)
	val := openShapes(t, "val", 10, 9001, 22)
	res := train(t, tr, val, 5)
	w := worker.New(worker.Config{Loader: func(ctx context.Context, name, version string) (io.ReadCloser, error) {
		require.Equal(t, "training-9", name)
		require.Equal(t, "1", version)
		return io.NopCloser(bytes.NewReader(res.Artifact)), nil
	}})
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)

	im := val.Images[0]
	pix, err := val.Decode(im)
	require.NoError(t, err)
	var file bytes.Buffer
	require.NoError(t, png.Encode(&file, pix))
	body, err := oip.EncodeRequest(&oip.InferRequest{ID: "1", Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", file.Bytes())}}, false)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v2/models/training-9/versions/1/infer", bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	body.SetHeaders(req.Header)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	n, err := oip.JSONLength(resp.Header, len(data))
	require.NoError(t, err)
	ans, err := oip.DecodeResponse(data, n, oip.Limits{})
	require.NoError(t, err)

	m, err := regionmodel.Load(bytes.NewReader(res.Artifact))
	require.NoError(t, err)
	want := m.Segment(pix)
	require.NotEmpty(t, want, "the trained model finds something in a held-out image")
	labels := ans.Output("LABELS").Elems
	require.Len(t, labels, len(want))
	for i, e := range labels {
		require.Contains(t, trainertest.Labels, string(e))
		require.Equal(t, want[i].Label, string(e))
		var r mask.RLE
		require.NoError(t, json.Unmarshal(ans.Output("MASKS").Elems[i], &r))
		require.Equal(t, [2]int{im.H, im.W}, r.Size)
	}
}
