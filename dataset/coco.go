package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/deepimageshub/imagehub/mask"
)

// COCOFile is a COCO instance-segmentation file as the exports write it and
// as readers (the tests, an importer) read it back. Exports write it one
// element at a time, so that nothing of a version's size is held.
type COCOFile struct {
	Info        COCOInfo         `json:"info"`
	Licenses    []COCOLicense    `json:"licenses"`
	Categories  []COCOCategory   `json:"categories"`
	Images      []COCOImage      `json:"images"`
	Annotations []COCOAnnotation `json:"annotations"`
}

// COCOInfo describes the dataset.
type COCOInfo struct {
	Description string `json:"description"`
	Version     string `json:"version"`
	Year        int    `json:"year"`
	Contributor string `json:"contributor"`
	DateCreated string `json:"date_created"`
}

// COCOLicense is a licence entry; the hub writes none.
type COCOLicense struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// COCOCategory is a class. Ids are the dataset's category ids, kept across
// versions and the same in every file of a download.
type COCOCategory struct {
	ID            int    `json:"id"`
	Name          string `json:"name"`
	DisplayName   string `json:"display_name,omitempty"`
	Supercategory string `json:"supercategory"`
}

// COCOImage is an image; FileName is relative to the zip's images/ folder.
// SHA256 and Split are the hub's own fields (readers ignore them).
type COCOImage struct {
	ID       int    `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	SHA256   string `json:"sha256,omitempty"`
	Split    string `json:"split,omitempty"`
	// Augment is the transforms an augmented copy was made with
	// (augment.Params.String); empty for an image as stored.
	Augment string `json:"augment,omitempty"`
}

// COCOAnnotation is one instance. Area is the mask's pixel count and BBox
// its tight box, whichever form the segmentation takes.
type COCOAnnotation struct {
	ID           int              `json:"id"`
	ImageID      int              `json:"image_id"`
	CategoryID   int              `json:"category_id"`
	Segmentation COCOSegmentation `json:"segmentation"`
	Area         int              `json:"area"`
	BBox         [4]float64       `json:"bbox"`
	IsCrowd      int              `json:"iscrowd"`
}

// COCOSegmentation is either a compressed RLE ({"size", "counts"}) or a
// list of polygons ([[x1, y1, x2, y2, …], …]), as COCO allows both.
type COCOSegmentation struct {
	RLE      *mask.RLE
	Polygons []mask.Polygon
}

// MarshalJSON writes the RLE when there is one, else the polygons.
func (s COCOSegmentation) MarshalJSON() ([]byte, error) {
	if s.RLE != nil {
		return json.Marshal(s.RLE)
	}
	if s.Polygons == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(s.Polygons)
}

// UnmarshalJSON reads either form.
func (s *COCOSegmentation) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		s.RLE = nil
		return json.Unmarshal(data, &s.Polygons)
	}
	var r mask.RLE
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	s.RLE, s.Polygons = &r, nil
	return nil
}

// Mask returns the pixels of the segmentation on an h×w image: the RLE
// decoded, or the polygons rasterised as the COCO API does.
func (s COCOSegmentation) Mask(h, w int) (*mask.Bitmap, error) {
	if s.RLE != nil {
		if s.RLE.Size != [2]int{h, w} {
			return nil, fmt.Errorf("mask is %dx%d on an image of %dx%d", s.RLE.Size[1], s.RLE.Size[0], w, h)
		}
		return s.RLE.Decode()
	}
	return mask.FromPolygons(s.Polygons, h, w), nil
}
