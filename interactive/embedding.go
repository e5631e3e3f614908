package interactive

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/queries"
)

// EmbeddingKey is where the embedding of the image of hash sha by embed
// model model is kept. The blob sweep removes it with the image.
func EmbeddingKey(model uuid.UUID, sha []byte) string {
	return "embeddings/" + model.String() + "/" + hex.EncodeToString(sha)
}

// maxEmbeddingBytes bounds a stored embedding (SAM ViT-H's is 4 MiB).
const maxEmbeddingBytes = 64 << 20

// An embedding blob is one JSON line {"shape": [...]} and then the values
// as little-endian float32.
func encodeEmbedding(v []float32, shape []int64) ([]byte, error) {
	head, err := json.Marshal(map[string][]int64{"shape": shape})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(head)+1+4*len(v))
	b = append(append(b, head...), '\n')
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b, nil
}

func decodeEmbedding(b []byte) ([]float32, []int64, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, errors.New("no header line")
	}
	var head struct {
		Shape []int64 `json:"shape"`
	}
	if err := json.Unmarshal(b[:i], &head); err != nil {
		return nil, nil, fmt.Errorf("bad header: %w", err)
	}
	raw := b[i+1:]
	n, err := oip.Count(head.Shape, maxEmbeddingBytes/4)
	if err != nil || int64(len(raw)) != 4*n {
		return nil, nil, fmt.Errorf("shape %v does not match %d bytes of values", head.Shape, len(raw))
	}
	v := make([]float32, n)
	for j := range v {
		v[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
	}
	return v, head.Shape, nil
}

// Embedder computes and keeps image embeddings with embed models.
type Embedder struct {
	Slots    *dispatch.Slots
	Client   *inference.Client
	Blobs    blob.Store
	SlotWait time.Duration // longest wait for an endpoint slot

	// flight makes prompts and warm-ups that find the same embedding
	// missing wait for one computation rather than each ask the encoder.
	flight singleflight.Group
}

type embedded struct {
	v     []float32
	shape []int64
}

// Stored returns the kept embedding of the image by model; ok is false
// when there is none yet.
func (e *Embedder) Stored(ctx context.Context, model uuid.UUID, sha []byte) (v []float32, shape []int64, ok bool, err error) {
	rc, _, err := e.Blobs.Get(ctx, EmbeddingKey(model, sha))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("error reading embedding: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxEmbeddingBytes+4096))
	if err != nil {
		return nil, nil, false, fmt.Errorf("error reading embedding: %w", err)
	}
	v, shape, err = decodeEmbedding(b)
	if err != nil {
		// A damaged blob is computed again.
		return nil, nil, false, nil
	}
	return v, shape, true, nil
}

// Ensure returns the image's embedding by model m, computing and storing it
// when it is not kept yet. image gives the image's bytes, read only when
// needed.
func (e *Embedder) Ensure(ctx context.Context, m queries.Model, sha []byte, image func(context.Context) ([]byte, error)) ([]float32, []int64, error) {
	if v, shape, ok, err := e.Stored(ctx, m.ID, sha); err != nil || ok {
		return v, shape, err
	}
	r, err, _ := e.flight.Do(EmbeddingKey(m.ID, sha), func() (any, error) {
		// Another caller may have stored it between the look and the call.
		if v, shape, ok, err := e.Stored(ctx, m.ID, sha); err != nil || ok {
			return embedded{v, shape}, err
		}
		v, shape, err := e.compute(ctx, m, sha, image)
		return embedded{v, shape}, err
	})
	if err != nil {
		return nil, nil, err
	}
	got := r.(embedded)
	return got.v, got.shape, nil
}

// compute asks the embed model and keeps its answer.
func (e *Embedder) compute(ctx context.Context, m queries.Model, sha []byte, image func(context.Context) ([]byte, error)) ([]float32, []int64, error) {
	data, err := image(ctx)
	if err != nil {
		return nil, nil, err
	}
	timeout := time.Duration(m.TimeoutMs) * time.Millisecond
	slot, err := e.Slots.Acquire(ctx, m.ID, timeout+2*time.Second, e.SlotWait)
	if err != nil {
		return nil, nil, fmt.Errorf("no slot of embed model %s: %w", m.Name, err)
	}
	var headers inference.Headers
	_ = json.Unmarshal(m.Headers, &headers)
	// A sam model is called with its own tensors (inference, layout.SAM).
	ep := inference.Endpoint{Base: slot.BaseURL, Model: m.Name, Version: m.Version, Binary: m.BinaryData, Headers: headers,
		Layout: layout.Params{Kind: layout.Kind(m.Layout), Input: m.InputName}}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	v, shape, err := e.Client.Embed(callCtx, ep, data)
	cancel()
	if rerr := e.Slots.Release(ctx, slot, err == nil); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		if inference.Kind(err) == inference.KindRetryable {
			_, _ = e.Slots.Failed(ctx, slot.EndpointID, err)
		}
		return nil, nil, fmt.Errorf("embed model %s: %w", m.Name, err)
	}
	b, err := encodeEmbedding(v, shape)
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxEmbeddingBytes {
		return nil, nil, fmt.Errorf("embed model %s returned %d bytes, more than the %d kept", m.Name, len(b), maxEmbeddingBytes)
	}
	if err := e.Blobs.Put(ctx, EmbeddingKey(m.ID, sha), bytes.NewReader(b), int64(len(b)), "application/octet-stream"); err != nil {
		return nil, nil, fmt.Errorf("error storing embedding: %w", err)
	}
	return v, shape, nil
}
