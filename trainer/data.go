package trainer

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // the dataset's images are JPEG,
	_ "image/png"  // PNG
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"

	_ "golang.org/x/image/webp" // or WebP.

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/mask"
)

// Split is one split of a COCO dataset zip as package dataset exports it:
// images/… and annotations/instances_<split>.json.
type Split struct {
	Images []Image
	zip    *zip.Reader
	files  map[string]*zip.File
}

// Image is one image of a split with its ground truth.
type Image struct {
	ID        int64
	File      string // inside the zip, images/<file_name>
	W, H      int
	Instances []Truth
}

// Truth is one annotated instance.
type Truth struct {
	Label string
	Mask  mask.RLE
}

// Decode reads and decodes one image of the split.
func (s *Split) Decode(im Image) (image.Image, error) {
	f := s.files[im.File]
	if f == nil {
		return nil, fmt.Errorf("error reading image %d: %s is not in the zip", im.ID, im.File)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", im.File, err)
	}
	defer rc.Close()
	m, _, err := image.Decode(rc)
	if err != nil {
		return nil, fmt.Errorf("error decoding %s: %w", im.File, err)
	}
	if b := m.Bounds(); b.Dx() != im.W || b.Dy() != im.H {
		return nil, fmt.Errorf("image %s is %dx%d, its annotations say %dx%d", im.File, b.Dx(), b.Dy(), im.W, im.H)
	}
	return m, nil
}

// OpenSplit reads a COCO dataset zip. Only images listed in the
// annotations file count; images without annotations stay (they are
// negatives). Annotations of labels not in keep are dropped when keep is
// not empty.
func OpenSplit(r io.ReaderAt, size int64, keep []string) (*Split, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("error opening the dataset zip: %w", err)
	}
	s := &Split{zip: zr, files: map[string]*zip.File{}}
	var ann *zip.File
	for _, f := range zr.File {
		s.files[f.Name] = f
		dir, name := path.Split(f.Name)
		if dir == "annotations/" && strings.HasPrefix(name, "instances_") && strings.HasSuffix(name, ".json") {
			if ann != nil {
				return nil, fmt.Errorf("error reading the dataset zip: it holds %s and %s; a split's zip holds one", ann.Name, f.Name)
			}
			ann = f
		}
	}
	if ann == nil {
		return nil, fmt.Errorf("error reading the dataset zip: no annotations/instances_<split>.json (is it the COCO format?)")
	}
	rc, err := ann.Open()
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", ann.Name, err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", ann.Name, err)
	}
	var head struct {
		Images []dataset.COCOImage `json:"images"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("error reading %s: %w", ann.Name, err)
	}
	index := map[int64]int{}
	for _, im := range head.Images {
		if _, dup := index[int64(im.ID)]; dup || im.Width <= 0 || im.Height <= 0 {
			continue
		}
		index[int64(im.ID)] = len(s.Images)
		s.Images = append(s.Images, Image{ID: int64(im.ID), File: "images/" + im.FileName, W: im.Width, H: im.Height})
	}
	_, err = dataset.ReadCOCO(bytes.NewReader(raw), func(in dataset.COCOInstance) error {
		if len(keep) > 0 && !slices.Contains(keep, in.Label) {
			return nil
		}
		if i, ok := index[int64(in.Image.ID)]; ok {
			s.Images[i].Instances = append(s.Images[i].Instances, Truth{Label: in.Label, Mask: in.Mask})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", ann.Name, err)
	}
	slices.SortFunc(s.Images, func(a, b Image) int { return cmp.Compare(a.ID, b.ID) })
	return s, nil
}

// download streams url into a temporary file in dir (a zip needs random
// access) and returns it open, rewound; the caller removes it.
func download(ctx context.Context, client *http.Client, url, dir string) (*os.File, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("error downloading the dataset: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("error downloading the dataset: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("error downloading the dataset: %s answered %s", req.URL.Redacted(), resp.Status)
	}
	f, err := os.CreateTemp(dir, "imagehub-trainer-*.zip")
	if err != nil {
		return nil, 0, fmt.Errorf("error downloading the dataset: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("error downloading the dataset: %w", err)
	}
	return f, n, nil
}
