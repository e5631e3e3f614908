package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/deepimageshub/imagehub/mask"
)

// COCOInstance is one annotation read from a COCO file: its image, label,
// mask at the image's size (polygons rasterised as the COCO API does), the
// annotation's original id and the line it starts on.
type COCOInstance struct {
	Line         int
	ID           string
	Image        COCOImage
	Label        string
	Mask         mask.RLE
	FromPolygons bool
}

// COCOProblem is an element of a COCO file that was skipped, with the line
// it starts on and why.
type COCOProblem struct {
	Line int
	What string
}

func (p COCOProblem) String() string {
	if p.Line == 0 {
		return p.What
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.What)
}

// ReadCOCO reads a COCO instance-segmentation file (as the hub, pycocotools,
// CVAT or Label Studio write it) and calls fn with each usable annotation,
// in file order, then returns the problems: elements skipped, each with
// its line, without stopping the rest. It reads the file twice (images and
// categories may come after the annotations) and holds only the images and
// categories, never the annotations.
func ReadCOCO(r io.ReadSeeker, fn func(COCOInstance) error) ([]COCOProblem, error) {
	images := map[int64]COCOImage{}
	cats := map[int64]string{}
	var problems []COCOProblem
	err := walkCOCO(r, func(key string, line int, raw json.RawMessage) error {
		switch key {
		case "images":
			var im COCOImage
			if err := json.Unmarshal(raw, &im); err != nil || im.FileName == "" || im.Width <= 0 || im.Height <= 0 {
				problems = append(problems, COCOProblem{line, "an image needs an id, a file_name, a width and a height"})
				return nil
			}
			if _, dup := images[int64(im.ID)]; dup {
				problems = append(problems, COCOProblem{line, fmt.Sprintf("image id %d appears twice; the first is kept", im.ID)})
				return nil
			}
			images[int64(im.ID)] = im
		case "categories":
			var c COCOCategory
			if err := json.Unmarshal(raw, &c); err != nil || c.Name == "" {
				problems = append(problems, COCOProblem{line, "a category needs an id and a name"})
				return nil
			}
			cats[int64(c.ID)] = c.Name
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("error rewinding the COCO file: %w", err)
	}
	err = walkCOCO(r, func(key string, line int, raw json.RawMessage) error {
		if key != "annotations" {
			return nil
		}
		in, what := readAnnotation(raw, images, cats)
		if what != "" {
			problems = append(problems, COCOProblem{line, what})
			return nil
		}
		in.Line = line
		return fn(in)
	})
	return problems, err
}

// readAnnotation checks one annotation; what says why it is skipped.
func readAnnotation(raw json.RawMessage, images map[int64]COCOImage, cats map[int64]string) (COCOInstance, string) {
	var a struct {
		ID           json.Number      `json:"id"`
		ImageID      *int64           `json:"image_id"`
		CategoryID   *int64           `json:"category_id"`
		Segmentation *json.RawMessage `json:"segmentation"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return COCOInstance{}, "not an annotation: " + err.Error()
	}
	if a.ImageID == nil || a.CategoryID == nil || a.Segmentation == nil {
		return COCOInstance{}, fmt.Sprintf("annotation %s needs an image_id, a category_id and a segmentation", a.ID)
	}
	im, ok := images[*a.ImageID]
	if !ok {
		return COCOInstance{}, fmt.Sprintf("annotation %s is of image %d, which the file does not list", a.ID, *a.ImageID)
	}
	label, ok := cats[*a.CategoryID]
	if !ok {
		return COCOInstance{}, fmt.Sprintf("annotation %s has category %d, which the file does not list", a.ID, *a.CategoryID)
	}
	var seg COCOSegmentation
	if err := json.Unmarshal(*a.Segmentation, &seg); err != nil {
		return COCOInstance{}, fmt.Sprintf("annotation %s: segmentation is neither RLE nor polygons: %v", a.ID, err)
	}
	in := COCOInstance{ID: a.ID.String(), Image: im, Label: label}
	if seg.RLE != nil {
		if seg.RLE.Size != [2]int{im.Height, im.Width} {
			return COCOInstance{}, fmt.Sprintf("annotation %s: mask is %dx%d, its image %dx%d", a.ID, seg.RLE.Size[1], seg.RLE.Size[0], im.Width, im.Height)
		}
		if err := seg.RLE.Validate(); err != nil {
			return COCOInstance{}, fmt.Sprintf("annotation %s: %v", a.ID, err)
		}
		in.Mask = *seg.RLE
	} else {
		for _, p := range seg.Polygons {
			if len(p) < 6 || len(p)%2 != 0 {
				return COCOInstance{}, fmt.Sprintf("annotation %s: a polygon needs three points or more (x1, y1, x2, y2, …)", a.ID)
			}
		}
		if len(seg.Polygons) == 0 {
			return COCOInstance{}, fmt.Sprintf("annotation %s has no polygon", a.ID)
		}
		in.Mask, in.FromPolygons = mask.Encode(mask.FromPolygons(seg.Polygons, im.Height, im.Width)), true
	}
	if area, _ := in.Mask.Area(); area == 0 {
		return COCOInstance{}, fmt.Sprintf("annotation %s: the mask is empty", a.ID)
	}
	return in, ""
}

// walkCOCO streams a COCO file's top-level object and calls fn with each
// element of its arrays, the array's key, and the line the element starts
// on.
func walkCOCO(r io.Reader, fn func(key string, line int, raw json.RawMessage) error) error {
	lr := &lineReader{r: bufio.NewReaderSize(r, 1<<16)}
	dec := json.NewDecoder(lr)
	bad := func(err error) error {
		return fmt.Errorf("the COCO file is not JSON (near line %d): %w", lr.lineAt(dec.InputOffset()), err)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("the COCO file is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		key, _ := tok.(string)
		seen[key] = true
		if key != "images" && key != "categories" && key != "annotations" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err)
			}
			continue
		}
		if tok, err = dec.Token(); err != nil {
			return bad(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("the COCO file's %q is not a list", key)
		}
		for dec.More() {
			// The element starts after the separator and spaces that
			// InputOffset still counts before it.
			start := dec.InputOffset()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad(err)
			}
			if err := fn(key, lr.lineAt(start+lr.skipSpace(start)), raw); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
	}
	// The object's end: a file cut off after its last complete list is
	// damaged, not a smaller dataset.
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	for _, key := range []string{"images", "annotations"} {
		if !seen[key] {
			return fmt.Errorf("the COCO file has no %q list", key)
		}
	}
	return nil
}

// lineReader remembers where the lines it has passed on begin, keeping
// only those the decoder may still ask about.
type lineReader struct {
	r     io.Reader
	read  int64
	lines int     // newlines before base
	base  int64   // offset of buf[0]
	buf   []byte  // bytes read from base on
	nls   []int64 // offsets of newlines at or after base
}

func (l *lineReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if c == '\n' {
			l.nls = append(l.nls, l.read+int64(i))
		}
	}
	l.buf = append(l.buf, p[:n]...)
	l.read += int64(n)
	return n, err
}

// skipSpace counts the separator and white space at offset off.
func (l *lineReader) skipSpace(off int64) int64 {
	i := off - l.base
	start := i
	for i >= 0 && i < int64(len(l.buf)) && bytes.IndexByte([]byte(", \t\r\n"), l.buf[i]) >= 0 {
		i++
	}
	return i - start
}

// lineAt returns the 1-based line of offset off, and forgets what lies
// before off: the decoder's offsets only grow.
func (l *lineReader) lineAt(off int64) int {
	k := 0
	for k < len(l.nls) && l.nls[k] < off {
		k++
	}
	l.lines += k
	l.nls = l.nls[k:]
	if drop := off - l.base; drop > 0 && drop <= int64(len(l.buf)) {
		l.buf = l.buf[drop:]
		l.base = off
	}
	return l.lines + 1
}
