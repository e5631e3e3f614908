package dataset_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/mask"
)

// TestReadCOCOExported reads back the per-split files of an export, RLE
// and polygons: every instance, with its label and image, and the stored
// pixels (RLE) or the polygons' pixels within IoU 0.95.
func TestReadCOCOExported(t *testing.T) {
	t.Parallel()
	w := newFormatsWorld(t)
	for _, mf := range []dataset.MaskFormat{dataset.MaskRLE, dataset.MaskPolygon} {
		files := readZip(t, w.zip(t, w.v, dataset.Subset{Format: dataset.COCO, MaskFormat: mf}))
		got := map[string][]dataset.COCOInstance{}
		for _, sp := range []string{"train", "val", "test"} {
			file, ok := files["annotations/instances_"+sp+".json"]
			if !ok {
				continue // a split with no image has no file
			}
			problems, err := dataset.ReadCOCO(bytes.NewReader(file), func(in dataset.COCOInstance) error {
				got[in.Image.SHA256] = append(got[in.Image.SHA256], in)
				return nil
			})
			require.NoError(t, err)
			require.Empty(t, problems)
		}
		for sha, s := range w.bySHA {
			require.Len(t, got[sha], len(s.anns), sha)
			for i, a := range s.anns {
				in := got[sha][i]
				require.Equal(t, a.Label, in.Label)
				stored := decoded(t, a.RLE)
				if in.FromPolygons {
					require.GreaterOrEqual(t, iou(stored, decoded(t, in.Mask)), 0.95)
				} else {
					require.Equal(t, a.RLE, in.Mask, "RLE comes back as it was written")
				}
			}
		}
	}
}

// TestReadCOCOBadRows: each bad element is reported with its line and
// skipped; the others are read.
func TestReadCOCOBadRows(t *testing.T) {
	t.Parallel()
	square := mask.Encode(mask.FromPolygons([]mask.Polygon{{1, 1, 5, 1, 5, 5, 1, 5}}, 8, 10))
	rle, err := json.Marshal(square)
	require.NoError(t, err)
	file := `{
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 7, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]},
    {"id": 2, "image_id": 9, "category_id": 7, "segmentation": [[1, 1, 5, 1, 5, 5]]},
    {"id": 3, "image_id": 1, "category_id": 8, "segmentation": [[1, 1, 5, 1, 5, 5]]},
    {"id": 4, "image_id": 1, "category_id": 7, "segmentation": [[1, 1, 5, 1]]},
    {"id": 5, "image_id": 1, "category_id": 7, "segmentation": {"size": [4, 4], "counts": "04"}},
    {"id": 6, "image_id": 1, "category_id": 7,
     "segmentation": ` + string(rle) + `},
    {"id": 7, "image_id": 1, "category_id": 7, "segmentation": {"size": [8, 10], "counts": "zz"}}
  ],
  "info": {"description": "by hand"},
  "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}, {"id": 2, "file_name": ""}],
  "categories": [{"id": 7, "name": "cat"}]
}`
	var got []dataset.COCOInstance
	problems, err := dataset.ReadCOCO(strings.NewReader(file), func(in dataset.COCOInstance) error {
		got = append(got, in)
		return nil
	})
	require.NoError(t, err)
	var lines []int
	for _, p := range problems {
		lines = append(lines, p.Line)
	}
	require.Equal(t, []int{13, 4, 5, 6, 7, 10}, lines, "%v", problems)
	require.Contains(t, problems[1].What, "image 9")
	require.Contains(t, problems[2].What, "category 8")
	require.Contains(t, problems[4].What, "4x4")
	require.Len(t, got, 2)
	require.Equal(t, "1", got[0].ID)
	require.Equal(t, 3, got[0].Line)
	require.True(t, got[0].FromPolygons)
	require.Equal(t, square, got[0].Mask, "the polygon rasterised as the COCO API does")
	require.Equal(t, "6", got[1].ID)
	require.Equal(t, 8, got[1].Line)
	require.Equal(t, square, got[1].Mask)

	_, err = dataset.ReadCOCO(strings.NewReader(`{"images": [}`), func(dataset.COCOInstance) error { return nil })
	require.ErrorContains(t, err, "not JSON")
	// Cut off, or with nothing in it: damaged, not an empty dataset.
	for in, want := range map[string]string{
		`{`:                   "not JSON",
		`{"images": []`:       "not JSON",
		`{}`:                  `no "images" list`,
		`{"images": []}`:      `no "annotations" list`,
		`{"annotations": []}`: `no "images" list`,
	} {
		_, err = dataset.ReadCOCO(strings.NewReader(in), func(dataset.COCOInstance) error { return nil })
		require.ErrorContains(t, err, want, in)
	}
}
