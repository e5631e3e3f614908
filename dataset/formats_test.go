package dataset_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/mask"
)

// formatsWorld is a published version whose masks cover what the formats
// must handle: ellipses, a ring (a hole), a mask of two parts, overlapping
// instances, an image without instances, a PNG image, three splits.
type formatsWorld struct {
	*testBundle
	v     dataset.Version
	bySHA map[string]stored
	split map[string]string // sha256 → split
}

func newFormatsWorld(t *testing.T) formatsWorld {
	t.Helper()
	tb := setup(t)
	fx := tb.fx
	w := formatsWorld{testBundle: tb, bySHA: map[string]stored{}}
	for i := range 12 {
		img := fx.Image(datasettest.ImageOpts{PNG: i == 5, W: 90 + 3*i, H: 70 + 2*i})
		var ins []datasettest.Instance
		switch i % 4 {
		case 0:
			ins = []datasettest.Instance{{Label: "cat", Mask: datasettest.Blob(img.W, img.H, 4, 6, 60, 50)}}
		case 1:
			// A ring, and a dog overlapping it (smaller: on top in VOC).
			ring := datasettest.Box(img.W, img.H, 10, 10, 70, 60)
			for y := 25; y < 45; y++ {
				for x := 25; x < 55; x++ {
					ring.Set(x, y, false)
				}
			}
			ins = []datasettest.Instance{{Label: "person", Mask: ring}, {Label: "dog", Mask: datasettest.Blob(img.W, img.H, 40, 30, 85, 68)}}
		case 2:
			two := datasettest.Blob(img.W, img.H, 2, 2, 30, 40)
			other := datasettest.Blob(img.W, img.H, 50, 20, 88, 66)
			for i, v := range other.Pix {
				two.Pix[i] |= v
			}
			ins = []datasettest.Instance{{Label: "dog", Mask: two}, {Label: "cat", Mask: datasettest.Box(img.W, img.H, 30, 30, 40, 50)}}
		}
		w.bySHA[key(img)] = stored{img, fx.Review(img, ins...)}
	}
	// Splits come from a random seed per dataset: twelve photos leave a
	// split empty a few times in a hundred. The tests want all three, so a
	// dataset whose seed leaves one empty is followed by another.
	for attempt := 1; ; attempt++ {
		d := tb.create(t, dataset.Spec{Name: fmt.Sprintf("formats %d", attempt), Splits: &dataset.Shares{Train: 0.4, Val: 0.3, Test: 0.3}})
		w.v = tb.publish(t, d)
		w.split = tb.splits(t, w.v)
		counts := map[string]int{}
		for _, sp := range w.split {
			counts[sp]++
		}
		if len(counts) == 3 {
			return w
		}
		require.Less(t, attempt, 10, "no seed put photos in every split")
	}
}

func (w formatsWorld) annsOf(sha string) []datasettest.Annotation { return w.bySHA[sha].anns }

func decoded(t *testing.T, r mask.RLE) *mask.Bitmap {
	t.Helper()
	b, err := r.Decode()
	require.NoError(t, err)
	return b
}

func iou(a, b *mask.Bitmap) float64 {
	inter, union := 0, 0
	for i := range a.Pix {
		x, y := a.Pix[i] != 0, b.Pix[i] != 0
		if x || y {
			union++
			if x && y {
				inter++
			}
		}
	}
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// unzipT runs Info-ZIP's `unzip -t` on a zip.
func unzipT(t *testing.T, data []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.zip")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	out, err := exec.Command("unzip", "-t", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "No errors detected")
}

// TestExportCOCOPerSplit: annotations/instances_<split>.json for each
// split, every image in exactly one, ids from 1 in each file, the same
// categories, file_name under images/, and the stored pixels (RLE), or
// polygons within IoU 0.95 of them, with the ring kept as RLE.
func TestExportCOCOPerSplit(t *testing.T) {
	t.Parallel()
	w := newFormatsWorld(t)
	for _, mf := range []dataset.MaskFormat{dataset.MaskRLE, dataset.MaskPolygon} {
		data := w.zip(t, w.v, dataset.Subset{Format: dataset.COCO, MaskFormat: mf})
		require.Equal(t, data, w.zip(t, w.v, dataset.Subset{Format: dataset.COCO, MaskFormat: mf}), "the same bytes twice")
		unzipT(t, data)
		files := readZip(t, data)
		var root dataset.COCOFile
		require.NoError(t, json.Unmarshal(files["annotations.json"], &root))
		seen := map[string]string{}
		var cats []dataset.COCOCategory
		polygons, kept := 0, 0
		for _, sp := range []string{"train", "val", "test"} {
			raw, ok := files["annotations/instances_"+sp+".json"]
			require.True(t, ok, "%s: %s", mf, sp)
			var c dataset.COCOFile
			require.NoError(t, json.Unmarshal(raw, &c))
			if cats == nil {
				cats = c.Categories
			}
			require.Equal(t, cats, c.Categories, "the same categories in every file")
			byID := map[int]dataset.COCOImage{}
			for i, im := range c.Images {
				require.Equal(t, i+1, im.ID, "image ids from 1")
				require.NotContains(t, seen, im.SHA256, "an image in one file only")
				seen[im.SHA256] = sp
				require.Equal(t, w.split[im.SHA256], sp)
				require.Equal(t, w.bySHA[im.SHA256].img.Bytes, files["images/"+im.FileName])
				byID[im.ID] = im
			}
			k := map[string]int{}
			for i, a := range c.Annotations {
				require.Equal(t, i+1, a.ID, "annotation ids from 1")
				im := byID[a.ImageID]
				want := w.annsOf(im.SHA256)[k[im.SHA256]]
				k[im.SHA256]++
				got, err := a.Segmentation.Mask(im.Height, im.Width)
				require.NoError(t, err)
				stored := decoded(t, want.RLE)
				if a.Segmentation.RLE != nil {
					require.Equal(t, stored.Pix, got.Pix, "RLE is the stored pixels")
					if mf == dataset.MaskPolygon {
						kept++
						require.Equal(t, "person", want.Label, "only the ring keeps RLE")
					}
					continue
				}
				polygons++
				require.GreaterOrEqual(t, iou(stored, got), 0.95, "polygons of %s", want.Label)
			}
		}
		require.Len(t, seen, len(w.bySHA))
		readme := string(files["README.txt"])
		if mf == dataset.MaskPolygon {
			require.Equal(t, 3, kept, "three rings")
			require.Positive(t, polygons)
			require.Contains(t, readme, "keeps its RLE: 3 instances")
		} else {
			require.Zero(t, polygons)
		}
	}

	// A subset writes the files of its splits only.
	files := readZip(t, w.zip(t, w.v, dataset.Subset{Format: dataset.COCO, Splits: []dataset.Split{dataset.Val}}))
	require.Contains(t, files, "annotations/instances_val.json")
	require.NotContains(t, files, "annotations/instances_train.json")
}

// TestExportYOLO: data.yaml, images and labels per split, label lines that
// parse and rasterise back within IoU 0.9 of the masks (rings filled).
func TestExportYOLO(t *testing.T) {
	t.Parallel()
	w := newFormatsWorld(t)
	data := w.zip(t, w.v, dataset.Subset{Format: dataset.YOLO})
	require.Equal(t, data, w.zip(t, w.v, dataset.Subset{Format: dataset.YOLO}))
	unzipT(t, data)
	files := readZip(t, data)
	yaml := string(files["data.yaml"])
	require.Contains(t, yaml, "\npath: .\ntrain: images/train\nval: images/val\ntest: images/test\n")
	require.Contains(t, yaml, "names:\n  0: cat\n  1: dog\n  2: person\n")
	names := []string{"cat", "dog", "person"}
	for sha, s := range w.bySHA {
		sp := w.split[sha]
		ext := map[string]string{"image/jpeg": "jpg", "image/png": "png"}[s.img.ContentType]
		require.Equal(t, s.img.Bytes, files["images/"+sp+"/"+sha+"."+ext])
		label, ok := files["labels/"+sp+"/"+sha+".txt"]
		require.True(t, ok, "every image has a label file")
		got := map[string]*mask.Bitmap{}
		sc := bufio.NewScanner(bytes.NewReader(label))
		lines := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			require.GreaterOrEqual(t, len(f), 7, "a class and three points at least")
			require.Equal(t, 1, len(f)%2)
			cls, err := strconv.Atoi(f[0])
			require.NoError(t, err)
			var p mask.Polygon
			for i, v := range f[1:] {
				require.Len(t, strings.Split(v, ".")[1], 6, "six decimals")
				x, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				require.True(t, x >= 0 && x <= 1, "normalised: %v", x)
				if i%2 == 0 {
					p = append(p, x*float64(s.img.W))
				} else {
					p = append(p, x*float64(s.img.H))
				}
			}
			name := names[cls]
			if got[name] == nil {
				got[name] = mask.NewBitmap(s.img.W, s.img.H)
			}
			one := mask.FromPolygons([]mask.Polygon{p}, s.img.H, s.img.W)
			for i, v := range one.Pix {
				got[name].Pix[i] |= v
			}
			lines++
		}
		want := map[string]*mask.Bitmap{}
		parts := 0
		for _, a := range s.anns {
			m := decoded(t, a.RLE)
			filled, _ := mask.Outlines(m, 0)
			parts += len(filled)
			m = mask.FromPolygons(filled, s.img.H, s.img.W) // YOLO has no holes
			if want[a.Label] == nil {
				want[a.Label] = m
			} else {
				for i, v := range m.Pix {
					want[a.Label].Pix[i] |= v
				}
			}
		}
		require.Equal(t, parts, lines, "a line per part")
		require.Len(t, got, len(want))
		for name, m := range want {
			require.GreaterOrEqual(t, iou(m, got[name]), 0.9, "%s of %s", name, sha)
		}
	}
	require.Contains(t, string(files["README.txt"]), "3 instances had holes filled, 3 have several parts")

	files = readZip(t, w.zip(t, w.v, dataset.Subset{Format: dataset.YOLO, Labels: labelIDs(t, w, "dog")}))
	require.Contains(t, string(files["data.yaml"]), "names:\n  0: dog\n")
}

// labelIDs looks up the version's label ids by name.
func labelIDs(t *testing.T, w formatsWorld, names ...string) (out []uuid.UUID) {
	t.Helper()
	for _, n := range names {
		c, ok := w.v.Category(n)
		require.True(t, ok, n)
		out = append(out, c.LabelID)
	}
	return out
}

// TestExportVOC: palette PNGs decode to the instances, the smaller on top
// where they overlap; labelmap.txt as CVAT writes it; ImageSets per split.
func TestExportVOC(t *testing.T) {
	t.Parallel()
	w := newFormatsWorld(t)
	data := w.zip(t, w.v, dataset.Subset{Format: dataset.VOC})
	require.Equal(t, data, w.zip(t, w.v, dataset.Subset{Format: dataset.VOC}))
	unzipT(t, data)
	files := readZip(t, data)
	require.Equal(t, "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:128,0,0::\ndog:0,128,0::\nperson:128,128,0::\n",
		string(files["labelmap.txt"]))
	class := map[string]uint8{"cat": 1, "dog": 2, "person": 3}
	for _, sp := range []string{"train", "val", "test"} {
		var want []string
		for sha, s := range w.split {
			if s == sp {
				want = append(want, sha)
			}
		}
		got := strings.Fields(string(files["ImageSets/Segmentation/"+sp+".txt"]))
		require.ElementsMatch(t, want, got, sp) // a split may be empty
	}
	overlaps := 0
	for sha, s := range w.bySHA {
		ext := map[string]string{"image/jpeg": "jpg", "image/png": "png"}[s.img.ContentType]
		require.Equal(t, s.img.Bytes, files["JPEGImages/"+sha+"."+ext])
		read := func(name string) *image.Paletted {
			img, err := png.Decode(bytes.NewReader(files[name]))
			require.NoError(t, err, name)
			p, ok := img.(*image.Paletted)
			require.True(t, ok, "%s is a palette PNG", name)
			require.Equal(t, image.Rect(0, 0, s.img.W, s.img.H), p.Bounds())
			return p
		}
		cls, obj := read("SegmentationClass/"+sha+".png"), read("SegmentationObject/"+sha+".png")
		masks := make([]*mask.Bitmap, len(s.anns))
		areas := make([]int, len(s.anns))
		for i, a := range s.anns {
			masks[i] = decoded(t, a.RLE)
			areas[i] = masks[i].Area()
		}
		for y := range s.img.H {
			for x := range s.img.W {
				top := -1 // the smallest instance here, the later of equals
				for i, m := range masks {
					if m.At(x, y) {
						if top >= 0 {
							overlaps++
						}
						if top < 0 || areas[i] <= areas[top] {
							top = i
						}
					}
				}
				wantCls, wantObj := uint8(0), uint8(0)
				if top >= 0 {
					wantCls, wantObj = class[s.anns[top].Label], uint8(top+1)
				}
				require.Equal(t, wantCls, cls.ColorIndexAt(x, y), "class at %d,%d of %s", x, y, sha)
				require.Equal(t, wantObj, obj.ColorIndexAt(x, y), "object at %d,%d of %s", x, y, sha)
			}
		}
	}
	require.Positive(t, overlaps, "the test has overlapping instances")
	require.Contains(t, string(files["README.txt"]), "smaller one is drawn on top")
}
