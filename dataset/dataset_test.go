package dataset

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewRatios(t *testing.T) {
	t.Parallel()
	r, err := NewRatios(0.8, 0.1, 0.1)
	require.NoError(t, err)
	require.Equal(t, DefaultRatios, r)
	r, err = NewRatios(1.0/3, 1.0/3, 1.0/3)
	require.NoError(t, err)
	require.Equal(t, PPM, r.Train+r.Val+r.Test, "parts always add up to a million")
	r, err = NewRatios(1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, Ratios{Train: PPM}, r)
	for _, bad := range [][3]float64{{0.8, 0.1, 0.2}, {-0.1, 0.6, 0.5}, {math.NaN(), 0.5, 0.5}, {0, 0, 0}, {1.5, -0.5, 0}} {
		_, err := NewRatios(bad[0], bad[1], bad[2])
		require.Error(t, err, "%v", bad)
	}
}

// TestBucket pins the split function to its definition (the SQL computes
// the same, see TestPublishSplitsMatchGo) and checks it spreads images as
// the ratios say.
func TestBucket(t *testing.T) {
	t.Parallel()
	seed := []byte("0123456789abcdef")
	group := sha256.Sum256([]byte("an image"))
	sum := sha256.Sum256(append(append([]byte{}, seed...), group[:]...))
	want := int((binary.BigEndian.Uint64(sum[:8]) & math.MaxInt64) % PPM)
	require.Equal(t, want, Bucket(seed, group[:]))

	counts := map[Split]int{}
	const n = 20000
	for i := range n {
		g := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		counts[Assign(seed, g[:], DefaultRatios)]++
	}
	require.InDelta(t, 0.8, float64(counts[Train])/n, 0.015)
	require.InDelta(t, 0.1, float64(counts[Val])/n, 0.01)
	require.InDelta(t, 0.1, float64(counts[Test])/n, 0.01)

	other := []byte("fedcba9876543210")
	same := 0
	for i := range 1000 {
		g := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		if Bucket(seed, g[:]) == Bucket(other, g[:]) {
			same++
		}
	}
	require.Less(t, same, 5, "another seed splits differently")
}

// TestZipWriterDeterministic writes the same entries twice and gets the
// same bytes, readable by archive/zip, with stored entries that carry their
// sizes up front (no data descriptor).
func TestZipWriterDeterministic(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	write := func() []byte {
		var buf bytes.Buffer
		z := newZipWriter(&buf, when)
		w, err := z.deflated("a.json")
		require.NoError(t, err)
		_, err = io.WriteString(w, `{"hello": "world"}`)
		require.NoError(t, err)
		data := bytes.Repeat([]byte{1, 2, 3, 250}, 5000)
		require.NoError(t, z.stored("images/x.jpg", data, crc32.ChecksumIEEE(data)))
		require.NoError(t, z.close())
		return buf.Bytes()
	}
	a, b := write(), write()
	require.Equal(t, a, b)
	r, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	require.NoError(t, err)
	require.Len(t, r.File, 2)
	for _, f := range r.File {
		require.True(t, f.Modified.Equal(when), "%s: %s", f.Name, f.Modified)
		rc, err := f.Open()
		require.NoError(t, err)
		_, err = io.ReadAll(rc) // checks the CRC
		require.NoError(t, err)
	}
	require.Equal(t, zip.Store, r.File[1].Method)
	require.Zero(t, r.File[1].Flags&0x8, "a stored entry has its sizes in the local header")
}

func TestQualityJSON(t *testing.T) {
	t.Parallel()
	var f Filter
	require.NoError(t, json.Unmarshal([]byte(`{"min_quality": 55.5}`), &f))
	require.Equal(t, 55.5, *f.MinQuality.Sharpness)
	require.NoError(t, json.Unmarshal([]byte(`{"min_quality": {"short_side": 512}}`), &f))
	require.Nil(t, f.MinQuality.Sharpness)
	require.Equal(t, 512, *f.MinQuality.ShortSide)
	require.Error(t, json.Unmarshal([]byte(`{"min_quality": "high"}`), &f))
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`VQi31m>0O2N100O10`, `a\b"c`, "caf\u00e9 <b>", "tab\there", ""} {
		var got string
		require.NoError(t, json.Unmarshal(appendString(nil, s), &got))
		require.Equal(t, s, got)
	}
}
