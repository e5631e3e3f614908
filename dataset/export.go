package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/deepimageshub/imagehub/augment"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// Format is the layout of a download: which tools read it as it is.
type Format string

// The formats.
const (
	// COCO is COCO instance segmentation: annotations.json for the whole
	// subset and annotations/instances_<split>.json per split (Detectron2,
	// MMDetection, Datumaro, pycocotools).
	COCO Format = "coco"
	// PNG is one 8-bit mask per instance with masks.csv (your own loader).
	PNG Format = "png"
	// YOLO is Ultralytics' YOLO segmentation layout: data.yaml,
	// images/<split>/ and labels/<split>/ with normalised polygons.
	YOLO Format = "yolo"
	// VOC is Pascal VOC / CVAT "Segmentation mask 1.1": JPEGImages/,
	// SegmentationClass/ and SegmentationObject/ index PNGs, labelmap.txt
	// and ImageSets/Segmentation/<split>.txt (semantic segmentation code).
	VOC Format = "voc"
)

// Formats lists every format, in the order pages offer them.
var Formats = []Format{COCO, YOLO, VOC, PNG}

// MaskFormat is how COCO files carry masks.
type MaskFormat string

// The mask formats.
const (
	// MaskRLE is compressed RLE, the exact pixels (the default).
	MaskRLE MaskFormat = "rle"
	// MaskPolygon is polygons traced from the masks in the per-split files
	// (mask.FitPolygons); a mask with a hole keeps its RLE.
	MaskPolygon MaskFormat = "polygon"
)

// Subset is what a download takes of a version: its images in some splits,
// with an instance of some labels (and only those instances). Empty lists
// take everything. MaskFormat applies to COCO only (empty means RLE).
type Subset struct {
	Format     Format
	MaskFormat MaskFormat
	Splits     []Split
	Labels     []uuid.UUID
	// Augment, when enabled, adds augmented copies of the train images
	// (and their masks) after each original, in every format.
	Augment augment.Spec
}

// Version is a version with what a download needs of it.
type Version struct {
	queries.DatasetVersion
	DatasetName string
	Ratios      Ratios
	Filter      Filter
	// Categories are the version's labels with their COCO ids and class
	// histogram, in id order.
	Categories []queries.DatasetVersionLabel
}

// LoadVersion reads what a download of v needs.
func LoadVersion(ctx context.Context, db queries.DBTX, v queries.DatasetVersion) (Version, error) {
	q := queries.New()
	d, err := q.DatasetGet(ctx, db, v.DatasetID)
	if err != nil {
		return Version{}, fmt.Errorf("error reading dataset %s: %w", v.DatasetID, err)
	}
	cats, err := q.VersionLabels(ctx, db, v.ID)
	if err != nil {
		return Version{}, fmt.Errorf("error reading categories of version %d: %w", v.Number, err)
	}
	out := Version{DatasetVersion: v, DatasetName: d.Name, Ratios: RatiosOf(d), Categories: cats}
	if err := json.Unmarshal(v.Filter, &out.Filter); err != nil {
		return Version{}, fmt.Errorf("error reading the filter of version %d: %w", v.Number, err)
	}
	return out, nil
}

// Category returns the version's category of a label name.
func (v Version) Category(name string) (queries.DatasetVersionLabel, bool) {
	for _, c := range v.Categories {
		if c.Name == name {
			return c, true
		}
	}
	return queries.DatasetVersionLabel{}, false
}

// Stats count what a download holds.
type Stats struct {
	Images      int
	Instances   int
	ImageBytes  int64
	SplitImages map[Split]int
	// KeptRLE counts the instances of COCO polygon files whose mask has a
	// hole and so stays RLE; FilledHoles those of YOLO labels whose holes
	// were filled; SplitParts those written as several YOLO polygons;
	// Unnumbered those past the 254th of an image, left out of VOC's
	// SegmentationObject (they are in SegmentationClass).
	KeptRLE, FilledHoles, SplitParts, Unnumbered int
	// Copies counts the augmented copies of train images.
	Copies int
}

// Exporter writes downloads. Its memory stays bounded whatever the
// version's size: the manifest is read a page at a time (keyset on the
// ordinal), and images are read a few ahead within a byte budget.
type Exporter struct {
	DB    queries.DBTX
	Blobs blob.Store
	// PageSize is the range of manifest rows one query reads (default 1000).
	PageSize int
	// Prefetch is how many images are read ahead of the one being written
	// (default 8), and PrefetchBytes bounds their bytes (default 32 MiB),
	// so that reads from S3 overlap.
	Prefetch      int
	PrefetchBytes int64
	// Progress, when set, is called after each image is written with the
	// image bytes written so far.
	Progress func(imageBytes int64)
}

// Flusher is a writer that can push what it holds to its reader; Write
// flushes once the zip's first header is written, so a download's first
// bytes leave at once.
type Flusher interface {
	Flush() error
}

// Write writes the zip of a subset of a version to w, in this order:
// manifest.csv, README.txt, annotations.json (COCO) or masks.csv (PNG),
// images/<sha256>.<ext>, and for PNG masks/<sha256>/<n>.png. The same
// version and subset give the same bytes every time: later reviews write
// new annotation rows and never change the ones a version points at.
func (e *Exporter) Write(ctx context.Context, w io.Writer, v Version, sub Subset) (Stats, error) {
	if v.State != queries.DatasetVersionStatePublished || v.PublishedAt == nil {
		return Stats{}, fmt.Errorf("version %d is %s, not published", v.Number, v.State)
	}
	if sub.Format == "" {
		sub.Format = COCO
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := &export{Exporter: e, v: v, sub: sub, z: newZipWriter(w, *v.PublishedAt), cats: map[uuid.UUID]queries.DatasetVersionLabel{}}
	for _, c := range v.Categories {
		x.cats[c.LabelID] = c
	}
	if len(sub.Labels) > 0 {
		x.wanted = map[uuid.UUID]bool{}
		for _, id := range sub.Labels {
			x.wanted[id] = true
		}
	}
	for _, s := range sub.Splits {
		x.splits = append(x.splits, string(s))
	}
	if x.splits == nil {
		x.splits = []string{}
	}
	if x.labels = sub.Labels; x.labels == nil {
		x.labels = []uuid.UUID{}
	}
	if sub.MaskFormat == "" {
		sub.MaskFormat = MaskRLE
		x.sub.MaskFormat = MaskRLE
	}
	images := func(name func(queries.VersionImagesPageRow) string) func(context.Context) error {
		return func(ctx context.Context) error { return x.images(ctx, name) }
	}
	hubImages := images(func(r queries.VersionImagesPageRow) string { return imageName(r.Sha256, r.ContentType) })
	// README.txt comes second, unless it reports what writing the masks
	// found; then it follows them, still before the images.
	var steps []func(context.Context) error
	switch {
	case sub.Format == PNG:
		steps = []func(context.Context) error{x.manifest, x.readme, x.masksCSV, hubImages, x.masks}
	case sub.Format == YOLO:
		steps = []func(context.Context) error{x.manifest, x.yoloDataYAML, x.yoloLabels, x.readme, images(yoloImageName)}
	case sub.Format == VOC:
		steps = []func(context.Context) error{x.manifest, x.vocLabelmap, x.vocImageSets, x.vocMasks, x.readme, images(vocImageName)}
	case sub.MaskFormat == MaskPolygon:
		steps = []func(context.Context) error{x.manifest, x.cocoJSON, x.cocoSplits, x.readme, hubImages}
	default:
		steps = []func(context.Context) error{x.manifest, x.readme, x.cocoJSON, x.cocoSplits, hubImages}
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return x.stats, err
		}
	}
	return x.stats, x.z.close()
}

// export is one run of Write.
type export struct {
	*Exporter
	v      Version
	sub    Subset
	z      *zipWriter
	cats   map[uuid.UUID]queries.DatasetVersionLabel
	wanted map[uuid.UUID]bool // nil: every label
	splits []string
	labels []uuid.UUID
	stats  Stats
}

// pages calls fn with the rows query returns for each range of ordinals,
// in order, skipping empty ranges. Ranges of the manifest's primary key
// (ordinals run from 1 to the version's image count) keep every page an
// index range scan, anywhere in a large version.
func pages[R any](ctx context.Context, total, size int32, query func(after, until int32) ([]R, error), fn func([]R) error) error {
	for after := int32(0); after < total; after += size {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := query(after, after+size)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			continue
		}
		if err := fn(rows); err != nil {
			return err
		}
	}
	return nil
}

func (x *export) pageSize() int32 {
	if x.PageSize > 0 {
		return int32(x.PageSize)
	}
	return 1000
}

// eachManifest pages through the subset's manifest with its labels.
func (x *export) eachManifest(ctx context.Context, fn func([]queries.VersionManifestPageRow) error) error {
	return pages(ctx, x.v.Images, x.pageSize(), func(after, until int32) ([]queries.VersionManifestPageRow, error) {
		rows, err := queries.New().VersionManifestPage(ctx, x.DB, queries.VersionManifestPageParams{
			VersionID: x.v.ID, After: after, Until: until, Splits: x.splits, LabelIds: x.labels,
		})
		if err != nil {
			return nil, fmt.Errorf("error reading the manifest of version %d: %w", x.v.Number, err)
		}
		return rows, nil
	}, fn)
}

// eachImage pages through the subset's images.
func (x *export) eachImage(ctx context.Context, fn func([]queries.VersionImagesPageRow) error) error {
	return pages(ctx, x.v.Images, x.pageSize(), func(after, until int32) ([]queries.VersionImagesPageRow, error) {
		rows, err := queries.New().VersionImagesPage(ctx, x.DB, queries.VersionImagesPageParams{
			VersionID: x.v.ID, After: after, Until: until, Splits: x.splits, LabelIds: x.labels,
		})
		if err != nil {
			return nil, fmt.Errorf("error reading the images of version %d: %w", x.v.Number, err)
		}
		return rows, nil
	}, fn)
}

// instance is one annotation of the subset, with its category.
type instance struct {
	queries.VersionInstancesPageRow
	cat queries.DatasetVersionLabel
	// polys and holes are mask.FitPolygonsRLE of the mask, for the
	// polygon layouts (see pageVariants).
	polys []mask.Polygon
	holes bool
}

// eachInstance pages through the annotations the subset takes, in
// manifest order.
func (x *export) eachInstance(ctx context.Context, fn func([]instance) error) error {
	var ins []instance
	return pages(ctx, x.v.Images, x.pageSize(), func(after, until int32) ([]queries.VersionInstancesPageRow, error) {
		rows, err := queries.New().VersionInstancesPage(ctx, x.DB, queries.VersionInstancesPageParams{
			VersionID: x.v.ID, After: after, Until: until, Splits: x.splits, LabelIds: x.labels,
		})
		if err != nil {
			return nil, fmt.Errorf("error reading the annotations of version %d: %w", x.v.Number, err)
		}
		return rows, nil
	}, func(rows []queries.VersionInstancesPageRow) error {
		ins = ins[:0]
		for _, r := range rows {
			cat, ok := x.cats[r.LabelID]
			if !ok {
				return fmt.Errorf("annotation %s has a label that is not a category of version %d", r.AnnotationID, x.v.Number)
			}
			ins = append(ins, instance{VersionInstancesPageRow: r, cat: cat})
		}
		return fn(ins)
	})
}

// keptLabels returns the labels of an image's instances that the subset
// takes, in the image's order.
func (x *export) keptLabels(labels []uuid.UUID) []uuid.UUID {
	if x.wanted == nil {
		return labels
	}
	out := make([]uuid.UUID, 0, len(labels))
	for _, l := range labels {
		if x.wanted[l] {
			out = append(out, l)
		}
	}
	return out
}

// labelNames returns the distinct names of labels, sorted.
func (x *export) labelNames(labels []uuid.UUID) []string {
	var names []string
	for _, l := range labels {
		if c, ok := x.cats[l]; ok && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names
}

// manifest writes manifest.csv and counts the subset.
func (x *export) manifest(ctx context.Context) error {
	w, err := x.z.deflated("manifest.csv")
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	header := []string{"sha256", "split", "width", "height", "labels"}
	aug := x.sub.Augment.Enabled()
	if aug {
		// An augmented download says which file each row is and the
		// transforms drawn for it; a plain one keeps the plain columns.
		header = append(header, "file", "augment")
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("error writing manifest.csv: %w", err)
	}
	// The first bytes go out now, before any query: a download starts at
	// once, whatever the version's size.
	if err := x.z.flush(); err != nil {
		return err
	}
	x.stats.SplitImages = map[Split]int{}
	rec := make([]string, len(header))
	// row writes an image's row, then its copies' (each with the labels
	// left in it: a crop or a scale may lose an instance).
	row := func(r queries.VersionImagesPageRow, labels []uuid.UUID, vs []variant) error {
		rec[0] = hex.EncodeToString(r.Sha256)
		rec[1] = string(r.Split)
		rec[2] = strconv.Itoa(int(r.Width))
		rec[3] = strconv.Itoa(int(r.Height))
		rec[4] = strings.Join(x.labelNames(labels), ";")
		if aug {
			rec[5], rec[6] = x.imagePath(r.Split, rec[0], ext(r.ContentType)), ""
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("error writing manifest.csv: %w", err)
		}
		for _, v := range vs {
			var left []uuid.UUID
			for _, in := range v.instances {
				left = append(left, in.LabelID)
			}
			rec[2], rec[3] = strconv.Itoa(v.w), strconv.Itoa(v.h)
			rec[4] = strings.Join(x.labelNames(left), ";")
			rec[5], rec[6] = x.imagePath(r.Split, v.stem, v.ext), v.p.String()
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("error writing manifest.csv: %w", err)
			}
			x.stats.Copies++
		}
		x.stats.Images++
		x.stats.Instances += len(labels)
		x.stats.ImageBytes += r.ByteSize
		x.stats.SplitImages[Split(r.Split)]++
		return nil
	}
	if aug {
		// The copies' labels need their instances: the walk of images
		// with their instances, which are the subset's.
		err = x.eachImageInstances(ctx, nil, func(imgs []imageInstances) error {
			for _, im := range imgs {
				vs, err := x.variants(im.VersionImagesPageRow, im.instances, true)
				if err != nil {
					return err
				}
				labels := make([]uuid.UUID, 0, len(im.instances))
				for _, in := range im.instances {
					labels = append(labels, in.LabelID)
				}
				if err := row(im.VersionImagesPageRow, labels, vs[1:]); err != nil {
					return err
				}
			}
			return nil
		})
	} else {
		err = x.eachManifest(ctx, func(rows []queries.VersionManifestPageRow) error {
			for _, r := range rows {
				im := queries.VersionImagesPageRow{Ordinal: r.Ordinal, Sha256: r.Sha256, Split: r.Split, Width: r.Width, Height: r.Height,
					ContentType: r.ContentType, ByteSize: r.ByteSize}
				if err := row(im, x.keptLabels(r.AnnotationLabels), nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("error writing manifest.csv: %w", err)
	}
	return nil
}

// readme writes README.txt: what the download is and where it came from.
func (x *export) readme(context.Context) error {
	w, err := x.z.deflated("README.txt")
	if err != nil {
		return err
	}
	v := x.v
	var b strings.Builder
	fmt.Fprintf(&b, "%s, version %d\n", v.DatasetName, v.Number)
	fmt.Fprintf(&b, "Published %s by Deep Images Hub.\n\n", v.PublishedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Filter: %s.\n", v.Filter.Describe())
	tr, va, te := v.Ratios.Fractions()
	fmt.Fprintf(&b, "Splits: train %g%%, val %g%%, test %g%%. Each image's split comes from a hash of the\n", tr*100, va*100, te*100)
	b.WriteString("dataset's seed and the image (the first of its near-duplicates, so that near-duplicates\n")
	b.WriteString("share a split): an image never changes split between versions.\n\n")
	splits, labels := "all", "all"
	if len(x.sub.Splits) > 0 {
		splits = strings.Join(x.splits, ", ")
	}
	if len(x.sub.Labels) > 0 {
		var names []string
		for _, id := range x.sub.Labels {
			names = append(names, x.cats[id].Name)
		}
		slices.Sort(names)
		labels = strings.Join(names, ", ") + " (only their instances)"
	}
	format := string(x.sub.Format)
	if x.sub.Format == COCO {
		format += ", masks " + string(x.sub.MaskFormat)
	}
	fmt.Fprintf(&b, "This download: format %s; splits: %s; labels: %s.\n", format, splits, labels)
	fmt.Fprintf(&b, "Images: %d (train %d, val %d, test %d); instances: %d.\n\n", x.stats.Images,
		x.stats.SplitImages[Train], x.stats.SplitImages[Val], x.stats.SplitImages[Test], x.stats.Instances)
	if a := x.sub.Augment; a.Enabled() {
		fmt.Fprintf(&b, "Augmented: %s.\n", a)
		fmt.Fprintf(&b, "Each train image is followed by %d augmented copies (%d in all), named <name>_aug<k>.<ext>\n", a.Copies, x.stats.Copies)
		b.WriteString("(k from 1) beside the original, in every folder the format has, with its masks moved\n")
		b.WriteString("pixel for pixel as the image's pixels are (an instance cropped out of a copy is left out).\n")
		b.WriteString("The transforms apply in this order: flip_h (half the time), rot90 (0 to 3 clockwise quarter\n")
		b.WriteString("turns), crop, scale (nearest neighbour), then brightness and contrast on the image only; each\n")
		b.WriteString("copy's draws come from augment_seed, the image's sha256 and k, so the same request gives the\n")
		fmt.Fprintf(&b, "same files. manifest.csv lists every file with the transforms drawn for it (columns file and\n")
		fmt.Fprintf(&b, "augment). Copies of JPEG images are JPEG at quality %d, the others PNG. Val and test images\n", copyJPEGQuality)
		b.WriteString("have no copies.\n\n")
	}
	b.WriteString("Layout:\n")
	b.WriteString("  manifest.csv                 sha256,split,width,height,labels: one row per image; labels are\n")
	b.WriteString("                               the names of its instances' labels, separated by ';'\n")
	if x.sub.Augment.Enabled() {
		b.WriteString("                               (here also file,augment: one row per file, copies included)\n")
	}
	const stored = "the images, as stored (orientation applied, metadata removed)"
	switch x.sub.Format {
	case PNG:
		b.WriteString("  masks.csv                    mask,image,label,category_id,area,x,y,w,h: one row per instance\n")
		b.WriteString("  images/<sha256>.<ext>        " + stored + "\n")
		b.WriteString("  masks/<sha256>/<n>.png       one 8-bit mask per instance, 255 inside and 0 outside\n")
	case YOLO:
		b.WriteString("  data.yaml                    Ultralytics dataset file: path, train/val/test folders, names\n")
		b.WriteString("                               (class index from 0 in category id order)\n")
		b.WriteString("  labels/<split>/<sha256>.txt  one line per polygon: class x1 y1 x2 y2 ..., coordinates divided\n")
		b.WriteString("                               by the image's width and height (6 decimals); empty for an image\n")
		b.WriteString("                               without instances\n")
		b.WriteString("  images/<split>/<sha256>.<ext> " + stored + "\n")
		b.WriteString("\nPolygons are the outer boundaries of each connected part of a mask, traced along the\n")
		b.WriteString("pixels' edges and simplified (Douglas-Peucker, 1 pixel, less where needed to keep an IoU\n")
		b.WriteString("of 0.97 with the mask). A mask of several parts has a line per part; YOLO has no holes,\n")
		fmt.Fprintf(&b, "so holes are filled. In this download: %d instances had holes filled, %d have several parts.\n",
			x.stats.FilledHoles, x.stats.SplitParts)
	case VOC:
		b.WriteString("  labelmap.txt                 CVAT's label map: name:r,g,b:: per class, background first\n")
		b.WriteString("  ImageSets/Segmentation/<split>.txt  the image names of each split, one a line\n")
		b.WriteString("  SegmentationClass/<sha256>.png   palette PNG: each pixel its class's index (the line of\n")
		b.WriteString("                               labelmap.txt, from 0 for background), VOC's colours\n")
		b.WriteString("  SegmentationObject/<sha256>.png  palette PNG: each pixel its instance's number (from 1 in\n")
		b.WriteString("                               the image's order; 0 background)\n")
		b.WriteString("  JPEGImages/<sha256>.<ext>    " + stored + "; an image uploaded as PNG or WebP keeps\n")
		b.WriteString("                               its format and extension (nothing is re-encoded)\n")
		b.WriteString("\nWhere instances overlap, the smaller one is drawn on top (of equal areas, the later one),\n")
		b.WriteString("so a small object in front of a large one stays visible; no 255 edges are drawn.\n")
		if x.stats.Unnumbered > 0 {
			fmt.Fprintf(&b, "%d instances past the 254th of their image are in SegmentationClass only.\n", x.stats.Unnumbered)
		}
	default:
		b.WriteString("  annotations.json             COCO instance segmentation of the whole download, compressed\n")
		b.WriteString("                               RLE masks as pycocotools writes them (COCO(path).annToMask works);\n")
		b.WriteString("                               an image's file_name is relative to images/, its split a field\n")
		b.WriteString("  annotations/instances_<split>.json  the same per split, as Detectron2 and MMDetection\n")
		b.WriteString("                               expect: each image in one file, ids from 1 in each file\n")
		b.WriteString("  images/<sha256>.<ext>        " + stored + "\n")
		if x.sub.MaskFormat == MaskPolygon {
			b.WriteString("\nIn the per-split files, masks are polygons: the outer boundary of each connected part,\n")
			b.WriteString("traced along the pixels' edges and simplified (Douglas-Peucker, 1 pixel, less where needed\n")
			b.WriteString("to keep an IoU of 0.97 with the mask). A polygon cannot hold a hole, so an instance with\n")
			fmt.Fprintf(&b, "holes keeps its RLE: %d instances in this download. annotations.json keeps RLE for all.\n", x.stats.KeptRLE)
		}
	}
	if x.sub.Format == COCO {
		b.WriteString("\nCategory ids are kept across versions of the dataset; in annotations.json image and\n")
		b.WriteString("annotation ids are positions in this version's manifest, the same in every download of it.\n\n")
	} else {
		b.WriteString("\n")
	}
	b.WriteString("Licence: the images were contributed by users of this hub under its terms; check them\n")
	b.WriteString("before you publish or redistribute the images or masks.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("error writing README.txt: %w", err)
	}
	return nil
}

// ext is the file extension of an image's content type.
func ext(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return "jpg"
	case "image/png":
		return "png"
	case "image/webp":
		return "webp"
	}
	return "bin"
}

// cocoJSON writes annotations.json in three passes over the manifest
// (categories need none), so that nothing of size is held in memory.
func (x *export) cocoJSON(ctx context.Context) error {
	w, err := x.z.deflated("annotations.json")
	if err != nil {
		return err
	}
	var b []byte
	put := func() error {
		_, err := w.Write(b)
		b = b[:0]
		if err != nil {
			return fmt.Errorf("error writing annotations.json: %w", err)
		}
		return nil
	}
	v := x.v
	info := map[string]any{
		"description": v.DatasetName, "version": strconv.Itoa(int(v.Number)), "year": v.PublishedAt.UTC().Year(),
		"contributor": "Deep Images Hub", "date_created": v.PublishedAt.UTC().Format(time.RFC3339),
	}
	head, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("error encoding info: %w", err)
	}
	b = append(b, `{"info":`...)
	b = append(b, head...)
	b = append(b, ",\n\"licenses\":[],\n\"categories\":["...)
	first := true
	for _, c := range v.Categories {
		if x.wanted != nil && !x.wanted[c.LabelID] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, "\n{\"id\":"...)
		b = strconv.AppendInt(b, int64(c.CategoryID), 10)
		b = append(b, `,"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"display_name":`...)
		b = appendString(b, c.DisplayName)
		b = append(b, `,"supercategory":"object"}`...)
	}
	b = append(b, "],\n\"images\":["...)
	if err := put(); err != nil {
		return err
	}
	first = true
	err = x.eachImage(ctx, func(rows []queries.VersionImagesPageRow) error {
		for _, r := range rows {
			vs, err := x.variants(r, nil, false)
			if err != nil {
				return err
			}
			sha := hex.EncodeToString(r.Sha256)
			for _, vr := range vs {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = append(b, "\n{\"id\":"...)
				b = strconv.AppendInt(b, x.cocoImageID(r.Ordinal, vr.k), 10)
				b = append(b, `,"file_name":"`...)
				b = append(b, vr.stem...)
				b = append(b, '.')
				b = append(b, vr.ext...)
				b = append(b, `","width":`...)
				b = strconv.AppendInt(b, int64(vr.w), 10)
				b = append(b, `,"height":`...)
				b = strconv.AppendInt(b, int64(vr.h), 10)
				b = append(b, `,"sha256":"`...)
				b = append(b, sha...)
				b = append(b, `","split":"`...)
				b = append(b, r.Split...)
				b = append(b, '"')
				if vr.k > 0 {
					b = append(b, `,"augment":`...)
					b = appendString(b, vr.p.String())
				}
				b = append(b, '}')
			}
		}
		return put()
	})
	if err != nil {
		return err
	}
	b = append(b, "],\n\"annotations\":["...)
	first = true
	annotate := func(a instance, k int) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, "\n{\"id\":"...)
		b = strconv.AppendInt(b, int64(k)*x.v.Instances+int64(a.FirstAnnotation)+int64(a.K), 10)
		b = append(b, `,"image_id":`...)
		b = strconv.AppendInt(b, x.cocoImageID(a.Ordinal, k), 10)
		b = append(b, `,"category_id":`...)
		b = strconv.AppendInt(b, int64(a.cat.CategoryID), 10)
		b = append(b, `,"segmentation":{"size":[`...)
		b = strconv.AppendInt(b, int64(a.Height), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(a.Width), 10)
		b = append(b, `],"counts":`...)
		b = appendString(b, a.Counts)
		b = append(b, `},"area":`...)
		b = strconv.AppendInt(b, int64(a.Area), 10)
		b = append(b, `,"bbox":[`...)
		for i, n := range a.Bbox {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, `],"iscrowd":0}`...)
	}
	if x.sub.Augment.Enabled() {
		// The copies' instances follow their image's, which needs the
		// images' splits: the walk of images with their instances.
		err = x.eachImageInstances(ctx, nil, func(imgs []imageInstances) error {
			for _, im := range imgs {
				vs, err := x.variants(im.VersionImagesPageRow, im.instances, true)
				if err != nil {
					return err
				}
				for _, vr := range vs {
					for _, a := range vr.instances {
						annotate(a, vr.k)
					}
				}
			}
			return put()
		})
	} else {
		err = x.eachInstance(ctx, func(ins []instance) error {
			for _, a := range ins {
				annotate(a, 0)
			}
			return put()
		})
	}
	if err != nil {
		return err
	}
	b = append(b, "]}\n"...)
	return put()
}

// cocoImageID is the id in annotations.json of copy k (0 for the image
// itself) of the image with an ordinal: the ordinal for the image, and
// past the version's ordinals for its copies, the same in every download.
func (x *export) cocoImageID(ordinal int32, k int) int64 {
	return int64(k)*int64(x.v.Images) + int64(ordinal)
}

// appendString appends s as a JSON string. Mask counts are ASCII (48 to
// 111), so the quick path is the common one; anything unusual goes through
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// masksCSV writes masks.csv: one row per instance of the PNG format.
func (x *export) masksCSV(ctx context.Context) error {
	w, err := x.z.deflated("masks.csv")
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"mask", "image", "label", "category_id", "area", "x", "y", "w", "h"}); err != nil {
		return fmt.Errorf("error writing masks.csv: %w", err)
	}
	err = x.eachVariant(ctx, func(vr variant) error {
		for _, in := range vr.instances {
			rec := []string{maskPath(vr.stem, in.K), "images/" + vr.stem + "." + vr.ext, in.cat.Name, strconv.Itoa(int(in.cat.CategoryID)),
				strconv.Itoa(int(in.Area))}
			for _, n := range in.Bbox {
				rec = append(rec, strconv.Itoa(int(n)))
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("error writing masks.csv: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("error writing masks.csv: %w", err)
	}
	return nil
}

func imageName(sha []byte, contentType string) string {
	return "images/" + hex.EncodeToString(sha) + "." + ext(contentType)
}

// maskPath numbers an image's masks from 1 in the version's order, so a
// mask keeps its name in every subset; stem is the image file's name
// without extension.
func maskPath(stem string, k int32) string {
	return "masks/" + stem + "/" + strconv.Itoa(int(k)) + ".png"
}

// imagePath is where the format puts an image file.
func (x *export) imagePath(split queries.DatasetSplit, stem, ext string) string {
	switch x.sub.Format {
	case YOLO:
		return "images/" + string(split) + "/" + stem + "." + ext
	case VOC:
		return "JPEGImages/" + stem + "." + ext
	}
	return "images/" + stem + "." + ext
}

// eachVariant walks the subset's image files in order, copies after
// their image, with their instances. Without augmentation it is the walk
// of instances alone, which reads less.
func (x *export) eachVariant(ctx context.Context, fn func(variant) error) error {
	return x.eachVariantPage(ctx, func(vs []variant) error {
		for _, vr := range vs {
			if err := fn(vr); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachVariantPage is eachVariant a page of files at a time.
func (x *export) eachVariantPage(ctx context.Context, fn func([]variant) error) error {
	var page []variant
	if !x.sub.Augment.Enabled() {
		return x.eachInstance(ctx, func(ins []instance) error {
			page = page[:0]
			for i := 0; i < len(ins); {
				j := i + 1
				for j < len(ins) && ins[j].Ordinal == ins[i].Ordinal {
					j++
				}
				page = append(page, variant{stem: hex.EncodeToString(ins[i].Sha256), ext: ext(ins[i].ContentType), instances: ins[i:j]})
				i = j
			}
			return fn(page)
		})
	}
	return x.eachImageInstances(ctx, nil, func(imgs []imageInstances) error {
		page = page[:0]
		for _, im := range imgs {
			vs, err := x.variants(im.VersionImagesPageRow, im.instances, true)
			if err != nil {
				return err
			}
			page = append(page, vs...)
		}
		return fn(page)
	})
}

// inOrder calls produce for 0 … n-1 on every core and write with each result
// in order, so the bytes written are the same as one core's. It holds at
// most two results per core at once: the encoders of the PNG layouts are
// their whole cost, and a page of their output could be large.
func inOrder[T any](ctx context.Context, n int, produce func(int) (T, error), write func(T) error) error {
	window := 2 * runtime.GOMAXPROCS(0)
	out := make([]T, window)
	for lo := 0; lo < n; lo += window {
		hi := min(n, lo+window)
		g, gctx := errgroup.WithContext(ctx)
		for i := lo; i < hi; i++ {
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				var err error
				out[i-lo], err = produce(i)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			if err := write(out[i-lo]); err != nil {
				return err
			}
		}
	}
	return nil
}

// masks writes one PNG per instance.
func (x *export) masks(ctx context.Context) error {
	type entry struct {
		vr *variant
		in *instance
	}
	type file struct {
		name string
		data []byte
		crc  uint32
	}
	var entries []entry
	return x.eachVariantPage(ctx, func(page []variant) error {
		entries = entries[:0]
		for i := range page {
			for j := range page[i].instances {
				entries = append(entries, entry{&page[i], &page[i].instances[j]})
			}
		}
		return inOrder(ctx, len(entries), func(i int) (file, error) {
			e := entries[i]
			bm, err := mask.RLE{Size: [2]int{int(e.in.Height), int(e.in.Width)}, Counts: e.in.Counts}.Decode()
			if err != nil {
				return file{}, fmt.Errorf("error decoding annotation %s: %w", e.in.AnnotationID, err)
			}
			var buf bytes.Buffer
			if err := bm.WritePNG(&buf); err != nil {
				return file{}, err
			}
			return file{maskPath(e.vr.stem, e.in.K), buf.Bytes(), crc32.ChecksumIEEE(buf.Bytes())}, nil
		}, func(f file) error {
			return x.z.stored(f.name, f.data, f.crc)
		})
	})
}

// fetched is an image being read ahead of the writer.
type fetched struct {
	row  queries.VersionImagesPageRow
	name string
	key  string
	size int64 // as the manifest says: what the budget counts
	done chan struct{}
	buf  *[]byte
	data []byte
	crc  uint32
	err  error
}

// images writes every image of the subset, stored, under the names name
// gives them. A producer walks the
// manifest and starts reads in order, at most Prefetch at once and within
// PrefetchBytes; this goroutine writes them in the same order as they
// complete, so the zip is the same whatever the timing.
func (x *export) images(ctx context.Context, name func(queries.VersionImagesPageRow) string) error {
	depth := x.Prefetch
	if depth <= 0 {
		depth = 8
	}
	limit := x.PrefetchBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bud := newBudget(limit)
	queue := make(chan *fetched, depth)
	var walkErr error
	go func() {
		defer close(queue)
		walkErr = x.eachImage(ctx, func(rows []queries.VersionImagesPageRow) error {
			for _, r := range rows {
				f := &fetched{row: r, name: name(r), key: blob.ImageKey(r.Sha256), size: r.ByteSize, done: make(chan struct{})}
				if err := bud.acquire(ctx, f.size); err != nil {
					return err
				}
				select {
				case queue <- f:
				case <-ctx.Done():
					bud.release(f.size)
					return ctx.Err()
				}
				go x.fetch(ctx, f)
			}
			return nil
		})
	}()
	var written int64
	var err error
	for f := range queue {
		<-f.done
		if err == nil {
			err = f.err
		}
		if err == nil {
			err = x.z.stored(f.name, f.data, f.crc)
			written += int64(len(f.data))
		}
		if err == nil && x.augmented(f.row.Split) {
			// The copies follow their image, encoded here one at a time:
			// memory stays one image and one copy whatever the version.
			err = x.copyImages(f.row, f.data, func(v variant, data []byte) error {
				return x.z.stored(x.imagePath(f.row.Split, v.stem, v.ext), data, crc32.ChecksumIEEE(data))
			})
		}
		bufPool.Put(f.buf)
		bud.release(f.size)
		if err != nil {
			cancel() // stops the walk; the reads in the queue end and are drained
			continue
		}
		if x.Progress != nil {
			x.Progress(written)
		}
	}
	if err != nil {
		return err
	}
	return walkErr
}

// bufPool holds image buffers between images, so that a download of many
// gigabytes does not make as many gigabytes of garbage.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// fetch reads one image whole and computes its CRC, off the writer's path.
func (x *export) fetch(ctx context.Context, f *fetched) {
	defer close(f.done)
	f.buf = bufPool.Get().(*[]byte)
	rc, info, err := x.Blobs.Get(ctx, f.key)
	if errors.Is(err, blob.ErrNotFound) {
		f.err = fmt.Errorf("image %s of version %d is missing from the blob store", f.key, x.v.Number)
		return
	}
	if err != nil {
		f.err = fmt.Errorf("error reading %s: %w", f.key, err)
		return
	}
	defer rc.Close()
	b := (*f.buf)[:0]
	if info.Size > 0 {
		// Blobs are written whole and renamed into place, never changed:
		// the size the store reports is the size, and reading exactly that
		// saves a read per image that would only find the end.
		if int64(cap(b)) < info.Size {
			b = make([]byte, 0, info.Size)
		}
		b = b[:info.Size]
		if _, err := io.ReadFull(rc, b); err != nil {
			*f.buf = b
			f.err = fmt.Errorf("error reading %s: %w", f.key, err)
			return
		}
	} else {
		// A store that does not know the size: read to the end, as
		// io.ReadAll does, reusing the buffer.
		for {
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)]
			}
			m, err := rc.Read(b[len(b):cap(b)])
			b = b[:len(b)+m]
			if err == io.EOF {
				break
			}
			if err != nil {
				*f.buf = b
				f.err = fmt.Errorf("error reading %s: %w", f.key, err)
				return
			}
		}
	}
	*f.buf = b
	f.data = b
	f.crc = crc32.ChecksumIEEE(f.data)
}

// budget bounds the bytes of images read ahead. One image always fits, even
// when it alone is larger than the limit.
type budget struct {
	mu    sync.Mutex
	used  int64
	limit int64
	wake  chan struct{}
}

func newBudget(limit int64) *budget { return &budget{limit: limit, wake: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}
