package mask

import (
	"encoding/json"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedMasks are the COCO masks a fuzz target starts from: all 734 when
// fuzzing (make fuzz), every eighth in a plain test run, where the seeds
// only replay and TestCOCOMasks already checks every mask against
// pycocotools (under -race, all 734 cost half a minute).
func seedMasks(f *testing.F) []RLE {
	all := cocoMasks(f)
	if fz := flag.Lookup("test.fuzz"); fz != nil && fz.Value.String() != "" {
		return all
	}
	var some []RLE
	for i := 0; i < len(all); i += 8 {
		some = append(some, all[i])
	}
	return some
}

// FuzzUnmarshalJSON feeds arbitrary JSON to the mask parser, seeded with the
// 734 COCO masks in both their compressed and uncompressed forms: it never
// panics, a mask it reads and that validates has an area of at most h×w and
// a box inside the mask, and it marshals and reads back to the same mask.
func FuzzUnmarshalJSON(f *testing.F) {
	for i, m := range seedMasks(f) {
		j, err := json.Marshal(m)
		require.NoError(f, err)
		f.Add(j)
		if i%50 == 0 {
			runs, err := m.Runs()
			require.NoError(f, err)
			u, err := json.Marshal(map[string]any{"size": m.Size, "counts": runs})
			require.NoError(f, err)
			f.Add(u)
		}
	}
	f.Add([]byte(`{"size":[2,3],"counts":[0,2,4]}`))
	f.Add([]byte(`{"size":[2,3],"counts":"51"}`))
	f.Add([]byte(`{"size":[1],"counts":"0"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r RLE
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		h, w := r.Size[0], r.Size[1]
		area, err := r.Area()
		require.NoError(t, err)
		require.GreaterOrEqual(t, area, 0)
		require.LessOrEqual(t, area, h*w)
		box, err := r.BBox()
		require.NoError(t, err)
		require.LessOrEqual(t, box[0]+box[2], w)
		require.LessOrEqual(t, box[1]+box[3], h)
		require.LessOrEqual(t, area, box[2]*box[3])

		j, err := json.Marshal(r)
		require.NoError(t, err)
		var back RLE
		require.NoError(t, json.Unmarshal(j, &back))
		require.Equal(t, r, back)

		if h*w <= 1<<20 {
			b, err := r.Decode()
			require.NoError(t, err)
			require.Equal(t, area, b.Area())
			again, err := Encode(b).Decode()
			require.NoError(t, err)
			require.Equal(t, b, again)
		}
	})
}
