package dataset_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/augment"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/mask"
)

// augWorld is a published version of PNG images (so that copies compare
// exactly) and two JPEGs, with lopsided, non-overlapping masks (so that a
// flip or a turn shows, and VOC's object numbers are each instance's
// pixels), in all three splits.
type augWorld struct {
	*testBundle
	v     dataset.Version
	bySHA map[string]stored
	split map[string]string
}

func newAugWorld(t *testing.T) augWorld {
	t.Helper()
	tb := setup(t)
	w := augWorld{testBundle: tb, bySHA: map[string]stored{}}
	for i := range 10 {
		img := tb.fx.Image(datasettest.ImageOpts{PNG: i < 8, W: 40 + 3*i, H: 30 + 2*i})
		ins := []datasettest.Instance{
			{Label: "cat", Mask: datasettest.Blob(img.W, img.H, 2, 3, 15, 12)},
			{Label: "dog", Mask: datasettest.Box(img.W, img.H, 20, 16, 38, 28)},
		}
		w.bySHA[key(img)] = stored{img, tb.fx.Review(img, ins...)}
	}
	for attempt := 1; ; attempt++ {
		d := tb.create(t, dataset.Spec{Name: fmt.Sprintf("augment %d", attempt), Splits: &dataset.Shares{Train: 0.5, Val: 0.25, Test: 0.25}})
		w.v = tb.publish(t, d)
		w.split = tb.splits(t, w.v)
		counts := map[string]int{}
		pngTrain := 0
		for sha, sp := range w.split {
			counts[sp]++
			if sp == "train" && w.bySHA[sha].img.ContentType == "image/png" {
				pngTrain++
			}
		}
		if len(counts) == 3 && pngTrain >= 2 {
			return w
		}
		require.Less(t, attempt, 20, "no seed put PNG photos in train and photos in every split")
	}
}

// flipH and turnCW are the expected transforms, written out pixel by
// pixel apart from the augment package.
func flipH(b *mask.Bitmap) *mask.Bitmap {
	out := mask.NewBitmap(b.W, b.H)
	for y := range b.H {
		for x := range b.W {
			out.Pix[y*b.W+x] = b.Pix[y*b.W+b.W-1-x]
		}
	}
	return out
}

func turnCW(b *mask.Bitmap) *mask.Bitmap {
	out := mask.NewBitmap(b.H, b.W)
	for y := range b.H {
		for x := range b.W {
			// (x, y) goes to (H−1−y, x) in a clockwise quarter turn.
			out.Pix[x*out.W+(b.H-1-y)] = b.Pix[y*b.W+x]
		}
	}
	return out
}

// channel planes of an image, one bitmap-like slice per channel, to run
// the same expected transforms on pixels.
func planes(img image.Image) [4]*mask.Bitmap {
	b := img.Bounds()
	var out [4]*mask.Bitmap
	for c := range out {
		out[c] = mask.NewBitmap(b.Dx(), b.Dy())
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range []uint32{r, g, bl, a} {
				out[c].Pix[y*b.Dx()+x] = uint8(v >> 8)
			}
		}
	}
	return out
}

// copyRef parses a copy's file name: <sha>_aug<k>.<ext>.
func copyRef(t *testing.T, name string) (sha string, k int, ok bool) {
	stem, _, _ := strings.Cut(name[strings.LastIndex(name, "/")+1:], ".")
	sha, ks, ok := strings.Cut(stem, "_aug")
	if !ok {
		return stem, 0, false
	}
	k, err := strconv.Atoi(ks)
	require.NoError(t, err, name)
	return sha, k, true
}

// TestExportAugmentFlipRot: with flip_h (then rot90) the copies' COCO RLE
// masks, per split and in annotations.json, are the stored masks flipped
// (turned) pixel for pixel, and so are the copies' image pixels; val and
// test have no copies; the README and the manifest record the transforms.
func TestExportAugmentFlipRot(t *testing.T) {
	t.Parallel()
	w := newAugWorld(t)
	for _, tc := range []struct {
		augment string
		want    func(p augment.Params, b *mask.Bitmap) *mask.Bitmap
		drawn   func(p augment.Params) bool
	}{
		{"flip_h", func(p augment.Params, b *mask.Bitmap) *mask.Bitmap {
			if p.FlipH {
				return flipH(b)
			}
			return b
		}, func(p augment.Params) bool { return p.FlipH }},
		{"rot90", func(p augment.Params, b *mask.Bitmap) *mask.Bitmap {
			for range p.Turns {
				b = turnCW(b)
			}
			return b
		}, func(p augment.Params) bool { return p.Turns > 0 }},
	} {
		spec, err := augment.Parse(tc.augment, "3", "11")
		require.NoError(t, err)
		data := w.zip(t, w.v, dataset.Subset{Format: dataset.COCO, Augment: spec})
		unzipT(t, data)
		files := readZip(t, data)
		var root dataset.COCOFile
		require.NoError(t, json.Unmarshal(files["annotations.json"], &root))
		var train dataset.COCOFile
		require.NoError(t, json.Unmarshal(files["annotations/instances_train.json"], &train))
		trainImages := 0
		for _, sp := range w.split {
			if sp == "train" {
				trainImages++
			}
		}
		for _, sp := range []string{"val", "test"} {
			var c dataset.COCOFile
			require.NoError(t, json.Unmarshal(files["annotations/instances_"+sp+".json"], &c))
			for _, im := range c.Images {
				require.NotContains(t, im.FileName, "_aug", "%s has no copies", sp)
				require.Empty(t, im.Augment)
			}
		}
		for name := range files {
			if sha, _, ok := copyRef(t, name); ok {
				require.Equal(t, "train", w.split[sha], "%s: copies of train images only", name)
			}
		}
		drawn, exact := 0, 0
		for _, c := range []dataset.COCOFile{train, root} {
			byID := map[int]dataset.COCOImage{}
			copies := 0
			for _, im := range c.Images {
				byID[im.ID] = im
				if _, _, ok := copyRef(t, im.FileName); ok {
					copies++
				}
			}
			require.Equal(t, 3*trainImages, copies, "three copies per train image")
			seen := map[int]int{}
			for _, a := range c.Annotations {
				im := byID[a.ImageID]
				sha, k, ok := copyRef(t, im.FileName)
				if !ok {
					continue
				}
				s := w.bySHA[sha]
				p := spec.Draw(s.img.SHA, k, s.img.W, s.img.H)
				require.Equal(t, p.String(), im.Augment)
				require.Equal(t, [2]int{p.W, p.H}, [2]int{im.Width, im.Height})
				got, err := a.Segmentation.Mask(im.Height, im.Width)
				require.NoError(t, err)
				want := tc.want(p, decoded(t, s.anns[seen[im.ID]].RLE))
				seen[im.ID]++
				require.Equal(t, want.W, got.W)
				require.Equal(t, want.Pix, got.Pix, "%s %s: the copy's mask is the stored mask transformed", tc.augment, im.FileName)
				box := got.BBox()
				require.Equal(t, [4]float64{float64(box[0]), float64(box[1]), float64(box[2]), float64(box[3])}, a.BBox)
				require.Equal(t, got.Area(), a.Area)
				if tc.drawn(p) {
					drawn++
				}
				if s.img.ContentType != "image/png" || seen[im.ID] > 1 {
					continue
				}
				require.True(t, strings.HasSuffix(im.FileName, ".png"))
				orig, err := png.Decode(bytes.NewReader(s.img.Bytes))
				require.NoError(t, err)
				cp, err := png.Decode(bytes.NewReader(files["images/"+im.FileName]))
				require.NoError(t, err, im.FileName)
				op, gp := planes(orig), planes(cp)
				for ch := range op {
					require.Equal(t, tc.want(p, op[ch]).Pix, gp[ch].Pix, "%s: the copy's pixels, channel %d", im.FileName, ch)
				}
				exact++
			}
		}
		require.Positive(t, drawn, "%s: some copies were transformed", tc.augment)
		require.Positive(t, exact, "%s: some PNG copies compared", tc.augment)

		readme := string(files["README.txt"])
		require.Contains(t, readme, "Augmented: "+spec.String()+".")
		require.Contains(t, readme, fmt.Sprintf("followed by 3 augmented copies (%d in all)", 3*trainImages))
		rows, err := csv.NewReader(bytes.NewReader(files["manifest.csv"])).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"sha256", "split", "width", "height", "labels", "file", "augment"}, rows[0])
		require.Len(t, rows, 1+len(w.bySHA)+3*trainImages)
		for _, r := range rows[1:] {
			_, ok := files[r[5]]
			require.True(t, ok, "%s is in the zip", r[5])
			if sha, k, isCopy := copyRef(t, r[5]); isCopy {
				s := w.bySHA[sha]
				require.Equal(t, spec.Draw(s.img.SHA, k, s.img.W, s.img.H).String(), r[6])
			} else {
				require.Empty(t, r[6])
			}
		}
	}
}

// TestExportAugmentFormats: every format's copies read back with the
// transformed masks (flip, turns, crop and scale together), the copies'
// images have the copies' sizes, val and test have none, and the same
// request gives the same bytes.
func TestExportAugmentFormats(t *testing.T) {
	t.Parallel()
	w := newAugWorld(t)
	spec, err := augment.Parse("flip_h,rot90,crop:0.7,scale:0.5-1.5,brightness:0.2,contrast:0.2", "2", "5")
	require.NoError(t, err)
	type copyOf struct {
		s    stored
		k    int
		p    augment.Params
		want []*mask.Bitmap
	}
	copiesOf := func(spec augment.Spec) []copyOf {
		var copies []copyOf
		for sha, s := range w.bySHA {
			if w.split[sha] != "train" {
				continue
			}
			for k := 1; k <= spec.Copies; k++ {
				p := spec.Draw(s.img.SHA, k, s.img.W, s.img.H)
				c := copyOf{s: s, k: k, p: p}
				for _, a := range s.anns {
					c.want = append(c.want, p.Mask(decoded(t, a.RLE)))
				}
				copies = append(copies, c)
			}
		}
		return copies
	}
	copies := copiesOf(spec)
	// A hard crop loses instances from some copies: they are left out.
	hard, err := augment.Parse("crop:0.2", "4", "9")
	require.NoError(t, err)
	sizeOf := func(t *testing.T, data []byte, c copyOf) {
		t.Helper()
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, [2]int{c.p.W, c.p.H}, [2]int{cfg.Width, cfg.Height})
	}
	checkSplits := func(t *testing.T, files map[string][]byte) {
		t.Helper()
		n := 0
		for name := range files {
			if sha, _, ok := copyRef(t, name); ok {
				require.Equal(t, "train", w.split[sha], name)
				n++
			}
		}
		require.Positive(t, n)
	}
	zipOf := func(t *testing.T, sub dataset.Subset) map[string][]byte {
		t.Helper()
		data := w.zip(t, w.v, sub)
		again := w.zip(t, w.v, sub)
		require.Equal(t, sha256.Sum256(data), sha256.Sum256(again), "%s: the same request, the same bytes", sub.Format)
		unzipT(t, data)
		files := readZip(t, data)
		checkSplits(t, files)
		return files
	}

	for _, tc := range []struct {
		name string
		spec augment.Spec
		lost bool
	}{{"png", spec, false}, {"png hard crop", hard, true}} {
		t.Run(tc.name, func(t *testing.T) {
			copies := copiesOf(tc.spec)
			files := zipOf(t, dataset.Subset{Format: dataset.PNG, Augment: tc.spec})
			rows, err := csv.NewReader(bytes.NewReader(files["manifest.csv"])).ReadAll()
			require.NoError(t, err)
			byFile := map[string][]string{}
			for _, r := range rows[1:] {
				byFile[r[5]] = r
			}
			lost := 0
			for _, c := range copies {
				var left []string
				for i, m := range c.want {
					if m.Area() > 0 {
						left = append(left, c.s.anns[i].Label)
					} else {
						lost++
					}
				}
				r := byFile["images/"+copyStem(c.s, c.k)+"."+copyExt(c.s)]
				require.NotNil(t, r)
				require.Equal(t, strings.Join(left, ";"), r[4], "a copy's labels are those left in it")
				require.Equal(t, []string{strconv.Itoa(c.p.W), strconv.Itoa(c.p.H)}, r[2:4])
			}
			t.Logf("%d instances cropped or scaled out of %d copies", lost, len(copies))
			if tc.lost {
				require.Positive(t, lost, "the hard crop lost some instances")
			}
			for _, c := range copies {
				stem := copyStem(c.s, c.k)
				sizeOf(t, files["images/"+stem+"."+copyExt(c.s)], c)
				for i, want := range c.want {
					raw, ok := files["masks/"+stem+"/"+strconv.Itoa(i+1)+".png"]
					if want.Area() == 0 {
						require.False(t, ok, "an instance cropped out is left out")
						continue
					}
					img, err := png.Decode(bytes.NewReader(raw))
					require.NoError(t, err, stem)
					require.Equal(t, want.Pix, mask.FromImage(img, 127).Pix, "%s mask %d", stem, i+1)
				}
			}
		})
	}
	t.Run("voc", func(t *testing.T) {
		files := zipOf(t, dataset.Subset{Format: dataset.VOC, Augment: spec})
		trainSet := string(files["ImageSets/Segmentation/train.txt"])
		for _, c := range copies {
			stem := copyStem(c.s, c.k)
			require.Contains(t, trainSet, stem+"\n")
			sizeOf(t, files["JPEGImages/"+stem+"."+copyExt(c.s)], c)
			obj, err := png.Decode(bytes.NewReader(files["SegmentationObject/"+stem+".png"]))
			require.NoError(t, err, stem)
			pal := obj.(*image.Paletted)
			require.Equal(t, [2]int{c.p.W, c.p.H}, [2]int{pal.Rect.Dx(), pal.Rect.Dy()})
			n := 0
			for i, want := range c.want {
				if want.Area() == 0 {
					continue
				}
				n++
				got := mask.NewBitmap(c.p.W, c.p.H)
				for j, v := range pal.Pix {
					if int(v) == n {
						got.Pix[j] = 1
					}
				}
				require.Equal(t, want.Pix, got.Pix, "%s object %d (instance %d)", stem, n, i+1)
			}
		}
		require.NotContains(t, string(files["ImageSets/Segmentation/val.txt"]), "_aug")
	})
	t.Run("yolo", func(t *testing.T) {
		files := zipOf(t, dataset.Subset{Format: dataset.YOLO, Augment: spec})
		for _, c := range copies {
			stem := copyStem(c.s, c.k)
			sizeOf(t, files["images/train/"+stem+"."+copyExt(c.s)], c)
			label, ok := files["labels/train/"+stem+".txt"]
			require.True(t, ok, stem)
			got := map[int]*mask.Bitmap{}
			sc := bufio.NewScanner(bytes.NewReader(label))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				cls, err := strconv.Atoi(f[0])
				require.NoError(t, err)
				var p mask.Polygon
				for i, v := range f[1:] {
					x, err := strconv.ParseFloat(v, 64)
					require.NoError(t, err)
					if i%2 == 0 {
						p = append(p, x*float64(c.p.W))
					} else {
						p = append(p, x*float64(c.p.H))
					}
				}
				if got[cls] == nil {
					got[cls] = mask.NewBitmap(c.p.W, c.p.H)
				}
				for i, v := range mask.FromPolygons([]mask.Polygon{p}, c.p.H, c.p.W).Pix {
					got[cls].Pix[i] |= v
				}
			}
			// cat is class 0 and dog 1; each copy has one of each.
			for cls, want := range c.want {
				if want.Area() < 16 {
					continue // a sliver left by the crop traces too coarsely to compare
				}
				require.NotNil(t, got[cls], "%s class %d", stem, cls)
				require.GreaterOrEqual(t, iou(want, got[cls]), 0.9, "%s class %d", stem, cls)
			}
		}
	})
	t.Run("coco polygon", func(t *testing.T) {
		files := zipOf(t, dataset.Subset{Format: dataset.COCO, MaskFormat: dataset.MaskPolygon, Augment: spec})
		var train dataset.COCOFile
		require.NoError(t, json.Unmarshal(files["annotations/instances_train.json"], &train))
		byID := map[int]dataset.COCOImage{}
		for _, im := range train.Images {
			byID[im.ID] = im
		}
		want := map[string][]*mask.Bitmap{}
		for _, c := range copies {
			sizeOf(t, files["images/"+copyStem(c.s, c.k)+"."+copyExt(c.s)], c)
			for _, m := range c.want {
				if m.Area() > 0 {
					want[copyStem(c.s, c.k)] = append(want[copyStem(c.s, c.k)], m)
				}
			}
		}
		seen := map[string]int{}
		compared := 0
		for _, a := range train.Annotations {
			im := byID[a.ImageID]
			stem, _, _ := strings.Cut(im.FileName, ".")
			if !strings.Contains(stem, "_aug") {
				continue
			}
			got, err := a.Segmentation.Mask(im.Height, im.Width)
			require.NoError(t, err)
			m := want[stem][seen[stem]]
			seen[stem]++
			if m.Area() >= 16 {
				require.GreaterOrEqual(t, iou(m, got), 0.9, "%s", stem)
				compared++
			}
		}
		require.Positive(t, compared)
		for stem, ms := range want {
			require.Equal(t, len(ms), seen[stem], "%s: every instance left in the copy", stem)
		}
	})
}

func copyStem(s stored, k int) string {
	return hex.EncodeToString(s.img.SHA) + "_aug" + strconv.Itoa(k)
}

func copyExt(s stored) string {
	if s.img.ContentType == "image/jpeg" {
		return "jpg"
	}
	return "png"
}
