package regionmodel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// sample is a small hand-made model: "red" wins where a* is high.
func sample() *regionmodel.Model {
	m := &regionmodel.Model{
		Labels:         []string{"red", "blue"},
		Weights:        make([][regionmodel.NumFeatures + 1]float64, 3),
		SegmentOptions: segment.Options{K: 150, Sigma: 0.8, WorkSize: 256},
		MinProb:        0.5,
		MinArea:        0.002,
	}
	for i := range regionmodel.NumFeatures {
		m.Mean[i], m.Scale[i] = 0, 1
	}
	m.Weights[0][regionmodel.NumFeatures] = 2 // background by default
	m.Weights[1][1] = 20                      // mean a* / 100
	m.Weights[2][2] = -20                     // mean b* / 100, blue is negative
	return m
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	m := sample()
	b, err := m.Bytes()
	require.NoError(t, err)
	got, err := regionmodel.Load(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, m, got)
	again, err := got.Bytes()
	require.NoError(t, err)
	require.Equal(t, b, again, "encoding is deterministic")
	labels, err := regionmodel.Check(context.Background(), b)
	require.NoError(t, err)
	require.Equal(t, []string{"red", "blue"}, labels)
}

func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	good, err := sample().Bytes()
	require.NoError(t, err)
	// reseal fixes the checksum after an edit, so the check behind it runs.
	reseal := func(b []byte) []byte {
		n := len(b) - 4
		binary.LittleEndian.PutUint32(b[n:], crc32.ChecksumIEEE(b[:n]))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"Empty":         {nil, "IHRM header"},
		"NotAModel":     {[]byte("PK\x03\x04 this is a zip, not a model file at all"), "IHRM header"},
		"Truncated":     {good[:len(good)-9], "truncated"},
		"TrailingBytes": {append(bytes.Clone(good), 0), "truncated or with trailing bytes"},
		"FlippedBit":    {edit(func(b []byte) []byte { b[40] ^= 1; return b }), "checksum"},
		"NewerFormat":   {edit(func(b []byte) []byte { b[8] = 2; return reseal(b) }), "format version 2"},
		"OtherFeatures": {edit(func(b []byte) []byte { b[10] = 9; return reseal(b) }), "feature spec 9"},
		"NaNWeight": {edit(func(b []byte) []byte {
			// The last weight row's bias sits before the 5 trailing fields.
			off := len(b) - 4 - (8 + 8 + 2 + 8 + 8) - 8
			binary.LittleEndian.PutUint64(b[off:], 0x7ff8000000000001)
			return reseal(b)
		}), "weight is NaN"},
		"ZeroScale": {edit(func(b []byte) []byte {
			// labels: 2 + (2+3) + (2+4); dims 2; means 21×8; then the first scale.
			off := 16 + 2 + 5 + 6 + 2 + regionmodel.NumFeatures*8
			binary.LittleEndian.PutUint64(b[off:], 0)
			return reseal(b)
		}), "scale 0"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := regionmodel.Load(bytes.NewReader(tc.data))
			require.ErrorIs(t, err, regionmodel.ErrCorrupt)
			require.ErrorContains(t, err, tc.want)
			_, err = regionmodel.Check(context.Background(), tc.data)
			require.ErrorIs(t, err, regionmodel.ErrCorrupt)
		})
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	t.Parallel()
	m := sample()
	m.Labels = []string{"red", "red"}
	_, err := m.Bytes()
	require.ErrorContains(t, err, "appears twice")
	m = sample()
	m.Weights = m.Weights[:2]
	_, err = m.Bytes()
	require.ErrorContains(t, err, "weight rows")
}

// TestSegment checks that the hand-made model finds a red and a blue square
// on grey, with their labels and about their masks.
func TestSegment(t *testing.T) {
	t.Parallel()
	img := image.NewRGBA(image.Rect(0, 0, 80, 60))
	for y := range 60 {
		for x := range 80 {
			c := color.RGBA{128, 128, 128, 255}
			switch {
			case x >= 10 && x < 30 && y >= 10 && y < 30:
				c = color.RGBA{220, 30, 30, 255}
			case x >= 45 && x < 70 && y >= 20 && y < 50:
				c = color.RGBA{30, 40, 220, 255}
			}
			img.Set(x, y, c)
		}
	}
	ins := sample().Segment(img)
	require.Len(t, ins, 2)
	byLabel := map[string]regionmodel.Instance{}
	for _, in := range ins {
		byLabel[in.Label] = in
		require.Greater(t, in.Score, float32(0.5))
		require.Equal(t, 80, in.Mask.W)
		require.Equal(t, 60, in.Mask.H)
	}
	require.InDelta(t, 400, byLabel["red"].Mask.Area(), 100) // smoothing widens an edge by a pixel
	require.InDelta(t, 750, byLabel["blue"].Mask.Area(), 130)
	require.True(t, byLabel["red"].Mask.At(20, 20))
	require.True(t, byLabel["blue"].Mask.At(55, 35))
}
