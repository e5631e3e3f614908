package dataset

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"runtime"
	"strconv"

	_ "golang.org/x/image/webp"
	"golang.org/x/sync/errgroup" // stored WebP images are decoded for their copies

	"github.com/deepimageshub/imagehub/augment"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// copyJPEGQuality is the quality of the augmented copies of JPEG images:
// one fixed value, so the same request gives the same bytes.
const copyJPEGQuality = 92

// variant is one image file of the export: an image as stored (k 0) or
// its k-th augmented copy, with the instances in its pixels.
type variant struct {
	k         int
	p         augment.Params
	stem, ext string // the file's name is stem.ext, in the format's folder
	w, h      int
	instances []instance
}

// augmented reports whether images of a split get augmented copies: the
// train split's only, so that val and test measure the images as they are.
func (x *export) augmented(split queries.DatasetSplit) bool {
	return x.sub.Augment.Enabled() && Split(split) == Train
}

// copyStem is the name of copy k of an image, without extension.
func copyStem(sha string, k int) string { return sha + "_aug" + strconv.Itoa(k) }

// copyExt is the extension of an image's copies: JPEG stays JPEG, anything
// else (PNG, WebP) becomes PNG, which loses nothing.
func copyExt(contentType string) string {
	if contentType == "image/jpeg" {
		return "jpg"
	}
	return "png"
}

// variants returns the files an image of the subset makes: itself, then
// its augmented copies when it is in the train split. With masks, each
// copy carries its instances transformed by the same pixel mapping as its
// image; an instance cropped out of a copy is left out of it.
func (x *export) variants(im queries.VersionImagesPageRow, ins []instance, masks bool) ([]variant, error) {
	sha := hex.EncodeToString(im.Sha256)
	out := []variant{{stem: sha, ext: ext(im.ContentType), w: int(im.Width), h: int(im.Height), instances: ins}}
	if !x.augmented(im.Split) {
		return out, nil
	}
	for k := 1; k <= x.sub.Augment.Copies; k++ {
		p := x.sub.Augment.Draw(im.Sha256, k, int(im.Width), int(im.Height))
		v := variant{k: k, p: p, stem: copyStem(sha, k), ext: copyExt(im.ContentType), w: p.W, h: p.H}
		if masks {
			for _, in := range ins {
				t, ok, err := transformInstance(in, p)
				if err != nil {
					return nil, err
				}
				if ok {
					v.instances = append(v.instances, t)
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// pageVariants is variants for every image of a page, masks included,
// with every instance's polygons fitted when polygons is set. Tracing the
// polygons is nearly all the work of the polygon layouts, so it runs on
// every core while the page waits; the writer then goes through the page
// in order, and the bytes are the same as one core's.
func (x *export) pageVariants(ctx context.Context, imgs []imageInstances, polygons bool) ([][]variant, error) {
	out := make([][]variant, len(imgs))
	for i, im := range imgs {
		vs, err := x.variants(im.VersionImagesPageRow, im.instances, true)
		if err != nil {
			return nil, err
		}
		out[i] = vs
	}
	if !polygons {
		return out, nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, vs := range out {
		for _, v := range vs {
			for i := range v.instances {
				in := &v.instances[i]
				g.Go(func() error {
					if err := ctx.Err(); err != nil {
						return err
					}
					var err error
					in.polys, in.holes, err = mask.FitPolygonsRLE(mask.RLE{Size: [2]int{int(in.Height), int(in.Width)}, Counts: in.Counts})
					if err != nil {
						return fmt.Errorf("error decoding annotation %s: %w", in.AnnotationID, err)
					}
					return nil
				})
			}
		}
	}
	return out, g.Wait()
}

// transformInstance is an instance in a copy: its mask's pixels moved as
// the copy's image's are, with the area and box of the result. ok is false
// when nothing of the mask is left.
func transformInstance(in instance, p augment.Params) (instance, bool, error) {
	bm, err := mask.RLE{Size: [2]int{int(in.Height), int(in.Width)}, Counts: in.Counts}.Decode()
	if err != nil {
		return instance{}, false, fmt.Errorf("error decoding annotation %s: %w", in.AnnotationID, err)
	}
	t := p.Mask(bm)
	area := t.Area()
	if area == 0 {
		return instance{}, false, nil
	}
	box := t.BBox()
	in.Counts = mask.Encode(t).Counts
	in.Width, in.Height = int32(t.W), int32(t.H)
	in.Area = int32(area)
	in.Bbox = []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])}
	return in, true, nil
}

// copyImages decodes a stored train image and encodes each of its copies,
// calling put with each in turn, so that only one copy is held at a time.
func (x *export) copyImages(r queries.VersionImagesPageRow, data []byte, put func(v variant, data []byte) error) error {
	vs, err := x.variants(r, nil, false)
	if err != nil || len(vs) == 1 {
		return err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("error decoding image %x for its augmented copies: %w", r.Sha256, err)
	}
	if b := img.Bounds(); b.Dx() != int(r.Width) || b.Dy() != int(r.Height) {
		return fmt.Errorf("image %x is %dx%d, not %dx%d as the version says", r.Sha256, b.Dx(), b.Dy(), r.Width, r.Height)
	}
	src := toNRGBA(img)
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	for _, v := range vs[1:] {
		out := v.p.Image(src)
		buf.Reset()
		if v.ext == "jpg" {
			err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: copyJPEGQuality})
		} else {
			err = enc.Encode(&buf, out)
		}
		if err != nil {
			return fmt.Errorf("error encoding copy %d of image %x: %w", v.k, r.Sha256, err)
		}
		if err := put(v, buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// toNRGBA converts a decoded image once for all its copies, quickly for
// what the decoders give: JPEG's YCbCr through image/draw's fast path (the
// result is opaque, so RGBA and NRGBA bytes are the same), PNG's NRGBA and
// opaque RGBA as they are; anything else pixel by pixel.
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	r := image.Rect(0, 0, b.Dx(), b.Dy())
	switch m := img.(type) {
	case *image.NRGBA:
		if b.Min == (image.Point{}) && m.Stride == 4*b.Dx() {
			return m
		}
	case *image.YCbCr:
		dst := image.NewRGBA(r)
		draw.Draw(dst, r, m, b.Min, draw.Src)
		return &image.NRGBA{Pix: dst.Pix, Stride: dst.Stride, Rect: r}
	case *image.RGBA:
		if m.Opaque() && b.Min == (image.Point{}) && m.Stride == 4*b.Dx() {
			return &image.NRGBA{Pix: m.Pix, Stride: m.Stride, Rect: r}
		}
	}
	dst := image.NewNRGBA(r)
	for y := range b.Dy() {
		for x := range b.Dx() {
			dst.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}
