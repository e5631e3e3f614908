package dataset

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// imageInstances is an image of the subset with the instances the subset
// takes of it, and its id: its place, from 1, in the walk that found it.
type imageInstances struct {
	queries.VersionImagesPageRow
	id        int
	instances []instance
}

// eachImageInstances pages through the subset's images in some splits (nil
// for the subset's own) with their instances, numbering the images from 1
// in manifest order. One page's images and instances are read together, so
// memory is one page's worth whatever the version's size.
func (x *export) eachImageInstances(ctx context.Context, splits []string, fn func([]imageInstances) error) error {
	if splits == nil {
		splits = x.splits
	}
	q := queries.New()
	id := 0
	var out []imageInstances
	for after := int32(0); after < x.v.Images; after += x.pageSize() {
		if err := ctx.Err(); err != nil {
			return err
		}
		until := after + x.pageSize()
		imgs, err := q.VersionImagesPage(ctx, x.DB, queries.VersionImagesPageParams{
			VersionID: x.v.ID, After: after, Until: until, Splits: splits, LabelIds: x.labels,
		})
		if err != nil {
			return fmt.Errorf("error reading the images of version %d: %w", x.v.Number, err)
		}
		if len(imgs) == 0 {
			continue
		}
		rows, err := q.VersionInstancesPage(ctx, x.DB, queries.VersionInstancesPageParams{
			VersionID: x.v.ID, After: after, Until: until, Splits: splits, LabelIds: x.labels,
		})
		if err != nil {
			return fmt.Errorf("error reading the annotations of version %d: %w", x.v.Number, err)
		}
		out = out[:0]
		j := 0
		for _, im := range imgs {
			id++
			ii := imageInstances{VersionImagesPageRow: im, id: id}
			for ; j < len(rows) && rows[j].Ordinal == im.Ordinal; j++ {
				cat, ok := x.cats[rows[j].LabelID]
				if !ok {
					return fmt.Errorf("annotation %s has a label that is not a category of version %d", rows[j].AnnotationID, x.v.Number)
				}
				ii.instances = append(ii.instances, instance{VersionInstancesPageRow: rows[j], cat: cat})
			}
			out = append(out, ii)
		}
		if err := fn(out); err != nil {
			return err
		}
	}
	return nil
}

// presentSplits are the splits with images in the subset, in train, val,
// test order (after the manifest has counted them).
func (x *export) presentSplits() []Split {
	var out []Split
	for _, s := range Splits {
		if x.stats.SplitImages[s] > 0 {
			out = append(out, s)
		}
	}
	return out
}

// categories are the subset's categories in id order.
func (x *export) categories() []queries.DatasetVersionLabel {
	var out []queries.DatasetVersionLabel
	for _, c := range x.v.Categories {
		if x.wanted == nil || x.wanted[c.LabelID] {
			out = append(out, c)
		}
	}
	return out
}

// classIndex numbers the subset's categories from 0 in id order, as YOLO
// and the VOC palettes (from 1) number classes.
func (x *export) classIndex() map[uuid.UUID]int {
	idx := map[uuid.UUID]int{}
	for i, c := range x.categories() {
		idx[c.LabelID] = i
	}
	return idx
}

// cocoSplits writes annotations/instances_<split>.json for each split the
// subset has, as Detectron2, MMDetection and Datumaro look for them: every
// image in exactly one file, ids from 1 in each file, the same categories in
// all. With MaskPolygon, each instance is the polygons of mask.FitPolygons,
// unless its mask has a hole, which only RLE can hold.
func (x *export) cocoSplits(ctx context.Context) error {
	for _, s := range x.presentSplits() {
		if err := x.cocoSplit(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (x *export) cocoSplit(ctx context.Context, split Split) error {
	name := "annotations/instances_" + string(split) + ".json"
	w, err := x.z.deflated(name)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	put := func() error {
		_, err := w.Write(b.Bytes())
		b.Reset()
		if err != nil {
			return fmt.Errorf("error writing %s: %w", name, err)
		}
		return nil
	}
	add := func(sep string, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("error encoding %s: %w", name, err)
		}
		b.WriteString(sep)
		b.Write(j)
		return nil
	}
	v := x.v
	info := COCOInfo{
		Description: v.DatasetName + " (" + string(split) + ")", Version: strconv.Itoa(int(v.Number)), Year: v.PublishedAt.UTC().Year(),
		Contributor: "Deep Images Hub", DateCreated: v.PublishedAt.UTC().Format(time.RFC3339),
	}
	cats := []COCOCategory{}
	for _, c := range x.categories() {
		cats = append(cats, COCOCategory{ID: int(c.CategoryID), Name: c.Name, DisplayName: c.DisplayName, Supercategory: "object"})
	}
	if err := add(`{"info":`, info); err != nil {
		return err
	}
	if err := add(",\n\"licenses\":[],\n\"categories\":", cats); err != nil {
		return err
	}
	b.WriteString(",\n\"images\":[")
	sep := "\n"
	splits := []string{string(split)}
	// Ids run from 1 over the files of the split, copies right after
	// their image.
	imgID := 0
	err = x.eachImageInstances(ctx, splits, func(imgs []imageInstances) error {
		for _, im := range imgs {
			vs, err := x.variants(im.VersionImagesPageRow, nil, false)
			if err != nil {
				return err
			}
			sha := hex.EncodeToString(im.Sha256)
			for _, vr := range vs {
				imgID++
				ci := COCOImage{ID: imgID, FileName: vr.stem + "." + vr.ext, Width: vr.w, Height: vr.h, SHA256: sha}
				if vr.k > 0 {
					ci.Augment = vr.p.String()
				}
				if err := add(sep, ci); err != nil {
					return err
				}
				sep = ",\n"
			}
		}
		return put()
	})
	if err != nil {
		return err
	}
	b.WriteString("],\n\"annotations\":[")
	sep = "\n"
	annID := 0
	imgID = 0
	err = x.eachImageInstances(ctx, splits, func(imgs []imageInstances) error {
		page, err := x.pageVariants(ctx, imgs, x.sub.MaskFormat == MaskPolygon)
		if err != nil {
			return err
		}
		for _, vs := range page {
			for _, vr := range vs {
				imgID++
				for _, in := range vr.instances {
					annID++
					a := COCOAnnotation{ID: annID, ImageID: imgID, CategoryID: int(in.cat.CategoryID), Area: int(in.Area)}
					for i, n := range in.Bbox {
						if i < 4 {
							a.BBox[i] = float64(n)
						}
					}
					rle := mask.RLE{Size: [2]int{int(in.Height), int(in.Width)}, Counts: in.Counts}
					a.Segmentation.RLE = &rle
					if x.sub.MaskFormat == MaskPolygon {
						if in.holes || len(in.polys) == 0 {
							x.stats.KeptRLE++
						} else {
							a.Segmentation = COCOSegmentation{Polygons: in.polys}
						}
					}
					if err := add(sep, a); err != nil {
						return err
					}
					sep = ",\n"
				}
			}
		}
		return put()
	})
	if err != nil {
		return err
	}
	b.WriteString("]}\n")
	return put()
}

// yoloDataYAML writes data.yaml as Ultralytics reads it.
func (x *export) yoloDataYAML(context.Context) error {
	w, err := x.z.deflated("data.yaml")
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s, version %d: YOLO segmentation (Ultralytics). Train with\n", x.v.DatasetName, x.v.Number)
	b.WriteString("#   yolo segment train data=data.yaml\n")
	b.WriteString("# from the folder this file is in, or set path to that folder's absolute path.\n")
	b.WriteString("path: .\n")
	for _, s := range Splits {
		if x.stats.SplitImages[s] > 0 {
			fmt.Fprintf(&b, "%s: images/%s\n", s, s)
		} else {
			fmt.Fprintf(&b, "# %s: none in this download\n", s)
		}
	}
	b.WriteString("names:\n")
	for i, c := range x.categories() {
		fmt.Fprintf(&b, "  %d: %s\n", i, yamlString(c.Name))
	}
	if _, err := w.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("error writing data.yaml: %w", err)
	}
	return nil
}

// yamlString quotes a name when YAML would read it as something else.
func yamlString(s string) string {
	plain := s != "" && !strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`\n\t") && strings.TrimSpace(s) == s
	switch strings.ToLower(s) {
	case "yes", "no", "true", "false", "on", "off", "null", "~", "y", "n":
		plain = false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		plain = false
	}
	if plain {
		return s
	}
	j, _ := json.Marshal(s) // a JSON string is a YAML double-quoted string
	return string(j)
}

// yoloImageName places an image in its split's folder.
func yoloImageName(r queries.VersionImagesPageRow) string {
	return "images/" + string(r.Split) + "/" + hex.EncodeToString(r.Sha256) + "." + ext(r.ContentType)
}

// yoloLabels writes labels/<split>/<sha256>.txt for every image (empty for
// an image without instances, which Ultralytics reads as background): one
// line per polygon, "class x1 y1 x2 y2 …" with coordinates divided by the
// image's width and height, six decimals. A mask of several parts gives a
// line per part; a hole is filled (YOLO has no holes).
func (x *export) yoloLabels(ctx context.Context) error {
	idx := x.classIndex()
	var b []byte
	return x.eachImageInstances(ctx, nil, func(imgs []imageInstances) error {
		page, err := x.pageVariants(ctx, imgs, true)
		if err != nil {
			return err
		}
		for i, im := range imgs {
			for _, vr := range page[i] {
				b = b[:0]
				for _, in := range vr.instances {
					if in.holes {
						x.stats.FilledHoles++
					}
					if len(in.polys) > 1 {
						x.stats.SplitParts++
					}
					for _, p := range in.polys {
						b = strconv.AppendInt(b, int64(idx[in.LabelID]), 10)
						for i, c := range p {
							d := float64(vr.w)
							if i%2 == 1 {
								d = float64(vr.h)
							}
							b = append(b, ' ')
							b = strconv.AppendFloat(b, c/d, 'f', 6, 64)
						}
						b = append(b, '\n')
					}
				}
				name := "labels/" + string(im.Split) + "/" + vr.stem + ".txt"
				if err := x.z.stored(name, b, crc32.ChecksumIEEE(b)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// vocPalette is Pascal VOC's colour map: index i's colour spreads i's bits
// over the high bits of red, green and blue. 255 (VOC's "void", for
// unlabelled edges) is the cream VOC uses.
func vocPalette() color.Palette {
	p := make(color.Palette, 256)
	for i := range 256 {
		var r, g, b uint8
		c := i
		for j := 0; j < 8; j++ {
			r |= uint8((c>>0)&1) << (7 - j)
			g |= uint8((c>>1)&1) << (7 - j)
			b |= uint8((c>>2)&1) << (7 - j)
			c >>= 3
		}
		p[i] = color.RGBA{R: r, G: g, B: b, A: 255}
	}
	p[255] = color.RGBA{R: 224, G: 224, B: 192, A: 255}
	return p
}

// vocMaxObjects is the most instances SegmentationObject can number in one
// image: 0 is background and 255 VOC's void.
const vocMaxObjects = 254

// vocImageName keeps VOC's folder for every image; the extension says what
// it is (VOC's are all JPEG; ours may be PNG or WebP, kept as uploaded).
func vocImageName(r queries.VersionImagesPageRow) string {
	return "JPEGImages/" + hex.EncodeToString(r.Sha256) + "." + ext(r.ContentType)
}

// vocLabelmap writes labelmap.txt as CVAT's "Segmentation mask 1.1" does:
// background first, then each class with its palette colour.
func (x *export) vocLabelmap(context.Context) error {
	w, err := x.z.deflated("labelmap.txt")
	if err != nil {
		return err
	}
	pal := vocPalette()
	var b strings.Builder
	b.WriteString("# label:color_rgb:parts:actions\nbackground:0,0,0::\n")
	for i, c := range x.categories() {
		r, g, bl, _ := pal[i+1].RGBA()
		fmt.Fprintf(&b, "%s:%d,%d,%d::\n", c.Name, r>>8, g>>8, bl>>8)
	}
	if _, err := w.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("error writing labelmap.txt: %w", err)
	}
	return nil
}

// vocImageSets writes ImageSets/Segmentation/<split>.txt: the names,
// without extension, of each split's images.
func (x *export) vocImageSets(ctx context.Context) error {
	for _, s := range x.presentSplits() {
		name := "ImageSets/Segmentation/" + string(s) + ".txt"
		w, err := x.z.deflated(name)
		if err != nil {
			return err
		}
		var b []byte
		err = pages(ctx, x.v.Images, x.pageSize(), func(after, until int32) ([]queries.VersionImagesPageRow, error) {
			rows, err := queries.New().VersionImagesPage(ctx, x.DB, queries.VersionImagesPageParams{
				VersionID: x.v.ID, After: after, Until: until, Splits: []string{string(s)}, LabelIds: x.labels,
			})
			if err != nil {
				return nil, fmt.Errorf("error reading the images of version %d: %w", x.v.Number, err)
			}
			return rows, nil
		}, func(rows []queries.VersionImagesPageRow) error {
			b = b[:0]
			for _, r := range rows {
				b = hex.AppendEncode(b, r.Sha256)
				b = append(b, '\n')
				if x.augmented(r.Split) {
					for k := 1; k <= x.sub.Augment.Copies; k++ {
						b = append(b, copyStem(hex.EncodeToString(r.Sha256), k)...)
						b = append(b, '\n')
					}
				}
			}
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("error writing %s: %w", name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// vocMasks writes, for every image, SegmentationClass/<sha256>.png (each
// pixel the index of its class, from 1 in category order; 0 background)
// and SegmentationObject/<sha256>.png (each pixel the number of its
// instance, from 1 in the image's order), palette PNGs with VOC's colours.
// Where instances overlap, the smaller one is on top (of equal areas, the
// later): a small object in front of a large one stays visible.
func (x *export) vocMasks(ctx context.Context) error {
	idx := x.classIndex()
	pal := vocPalette()
	type pngs struct {
		cls, obj   []byte
		stem       string
		unnumbered int
	}
	// Every image, with instances or without (an all-background mask).
	return x.eachImageInstances(ctx, nil, func(imgs []imageInstances) error {
		vs, err := x.pageVariants(ctx, imgs, false)
		if err != nil {
			return err
		}
		page := slices.Concat(vs...)
		return inOrder(ctx, len(page), func(i int) (pngs, error) {
			im := page[i]
			w, h := im.w, im.h
			r := image.Rect(0, 0, w, h)
			cls, obj := image.NewPaletted(r, pal), image.NewPaletted(r, pal)
			out := pngs{stem: im.stem}
			order := make([]int, len(im.instances))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return int(im.instances[b].Area) - int(im.instances[a].Area) })
			for _, i := range order {
				in := im.instances[i]
				if i >= vocMaxObjects {
					out.unnumbered++
				}
				c, o := uint8(idx[in.LabelID]+1), uint8(min(i+1, vocMaxObjects))
				err := mask.RLE{Size: [2]int{h, w}, Counts: in.Counts}.ColumnRuns(func(x, y0, y1 int) {
					for at := y0*w + x; y0 < y1; y0, at = y0+1, at+w {
						cls.Pix[at] = c
						if i < vocMaxObjects {
							obj.Pix[at] = o
						}
					}
				})
				if err != nil {
					return pngs{}, fmt.Errorf("error decoding annotation %s: %w", in.AnnotationID, err)
				}
			}
			enc := png.Encoder{CompressionLevel: png.BestSpeed}
			for _, e := range []struct {
				img *image.Paletted
				out *[]byte
			}{{cls, &out.cls}, {obj, &out.obj}} {
				var buf bytes.Buffer
				if err := enc.Encode(&buf, e.img); err != nil {
					return pngs{}, fmt.Errorf("error encoding the masks of %s: %w", im.stem, err)
				}
				*e.out = buf.Bytes()
			}
			return out, nil
		}, func(p pngs) error {
			x.stats.Unnumbered += p.unnumbered
			for _, e := range []struct {
				name string
				data []byte
			}{{"SegmentationClass/" + p.stem + ".png", p.cls}, {"SegmentationObject/" + p.stem + ".png", p.obj}} {
				if err := x.z.stored(e.name, e.data, crc32.ChecksumIEEE(e.data)); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
