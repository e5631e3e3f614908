package dataset_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

type testBundle struct {
	pool  *pgxpool.Pool
	blobs blob.Store
	fx    *datasettest.Fixture
	q     *queries.Queries
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t)
	blobs, err := blob.NewFS(t.TempDir())
	require.NoError(t, err)
	return &testBundle{pool: pool, blobs: blobs, fx: datasettest.New(t, pool, blobs), q: queries.New()}
}

func (tb *testBundle) create(t *testing.T, spec dataset.Spec) queries.Dataset {
	t.Helper()
	d, err := dataset.Create(context.Background(), tb.pool, spec, tb.fx.Owner)
	require.NoError(t, err)
	return d
}

// publish makes the next version of d and publishes it, as the publish job
// does.
func (tb *testBundle) publish(t *testing.T, d queries.Dataset) dataset.Version {
	t.Helper()
	ctx := context.Background()
	var v queries.DatasetVersion
	require.NoError(t, pgx.BeginFunc(ctx, tb.pool, func(tx pgx.Tx) error {
		var err error
		v, err = dataset.NewVersion(ctx, tx, d.ID, tb.fx.Owner)
		return err
	}))
	v, err := dataset.Publish(ctx, tb.pool, nil, v.ID)
	require.NoError(t, err)
	require.Equal(t, queries.DatasetVersionStatePublished, v.State)
	ver, err := dataset.LoadVersion(ctx, tb.pool, v)
	require.NoError(t, err)
	return ver
}

func (tb *testBundle) zip(t *testing.T, v dataset.Version, sub dataset.Subset) []byte {
	t.Helper()
	var buf bytes.Buffer
	// Small pages and a small read-ahead exercise the paging and the
	// budget even on a few images.
	ex := &dataset.Exporter{DB: tb.pool, Blobs: tb.blobs, PageSize: 3, Prefetch: 2, PrefetchBytes: 1}
	_, err := ex.Write(context.Background(), &buf, v, sub)
	require.NoError(t, err)
	return buf.Bytes()
}

// splits reads a version's manifest: sha256 (hex) → split.
func (tb *testBundle) splits(t *testing.T, v dataset.Version) map[string]string {
	t.Helper()
	rows, err := tb.pool.Query(context.Background(), `SELECT sha256, split::text FROM dataset_version_images WHERE version_id = $1`, v.ID)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var sha []byte
		var split string
		require.NoError(t, rows.Scan(&sha, &split))
		out[hex.EncodeToString(sha)] = split
	}
	require.NoError(t, rows.Err())
	return out
}

func key(img datasettest.Image) string { return hex.EncodeToString(img.SHA) }

// TestPublishSplitsMatchGo checks the split the publishing SQL gives every
// image against dataset.Assign on the root of its near-duplicate group;
// that near-duplicates share a split (even when their root is not in the
// dataset); and that no image changes split in the next version.
func TestPublishSplitsMatchGo(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	fx := tb.fx
	// Equal train and test shares make a split group as likely as not.
	d := tb.create(t, dataset.Spec{Name: "splits", Splits: &dataset.Shares{Train: 0.5, Val: 0.2, Test: 0.3}})
	box := func(img datasettest.Image) datasettest.Instance {
		return datasettest.Instance{Label: "cat", Mask: datasettest.Box(img.W, img.H, 10, 10, 40, 30)}
	}
	root := map[string][]byte{} // image → sha256 of its group's root
	var plain []datasettest.Image
	for range 30 {
		img := fx.Image(datasettest.ImageOpts{})
		fx.Review(img, box(img))
		plain = append(plain, img)
		root[key(img)] = img.SHA
	}
	// Groups: a root, a child of it and a grandchild (a chain), and groups
	// whose root never made it into the dataset (flagged, not reviewed).
	var groups [][]datasettest.Image
	for g := range 16 {
		status := "reviewed"
		if g%4 == 0 {
			status = "flagged"
		}
		r := fx.Image(datasettest.ImageOpts{Status: status})
		if status == "reviewed" {
			fx.Review(r, box(r))
		}
		child := fx.Image(datasettest.ImageOpts{NearDuplicateOf: &r.ID})
		fx.Review(child, box(child))
		grandchild := fx.Image(datasettest.ImageOpts{NearDuplicateOf: &child.ID})
		fx.Review(grandchild)
		for _, img := range []datasettest.Image{r, child, grandchild} {
			root[key(img)] = r.SHA
		}
		groups = append(groups, []datasettest.Image{r, child, grandchild})
	}

	v1 := tb.publish(t, d)
	got := tb.splits(t, v1)
	require.Len(t, got, 30+16*3-4, "reviewed images only")
	for sha, split := range got {
		require.Equal(t, string(dataset.Assign(d.Seed, root[sha], dataset.RatiosOf(d))), split, sha)
	}
	seen := map[string]bool{}
	for _, g := range groups {
		s := got[key(g[1])]
		require.Equal(t, s, got[key(g[2])], "near-duplicates share a split")
		if _, in := got[key(g[0])]; in {
			require.Equal(t, s, got[key(g[0])], "near-duplicates share a split")
		}
		seen[s] = true
	}
	// Any two splits show the groups are spread by their roots; asking for
	// train and test in particular failed one run in 300 (0.7^16 of no test).
	require.GreaterOrEqual(t, len(seen), 2, "groups land in more than one split: %v", seen)

	// More images, re-reviews and a removal; nobody changes split.
	for range 10 {
		img := fx.Image(datasettest.ImageOpts{})
		fx.Review(img, box(img))
	}
	for _, img := range plain[:5] {
		fx.Review(img, datasettest.Instance{Label: "dog", Mask: datasettest.Blob(img.W, img.H, 0, 0, 50, 50)})
	}
	_, err := tb.pool.Exec(context.Background(), `UPDATE images SET status = 'rejected' WHERE id = $1`, plain[5].ID)
	require.NoError(t, err)
	v2 := tb.publish(t, d)
	got2 := tb.splits(t, v2)
	require.Len(t, got2, len(got)+10-1)
	for sha, split := range got {
		if s2, ok := got2[sha]; ok {
			require.Equal(t, split, s2, "image %s changed split", sha)
		}
	}
	require.EqualValues(t, 10, v2.Added)
	require.EqualValues(t, 1, v2.Removed)
	require.EqualValues(t, 5, v2.Changed)
	require.EqualValues(t, 1, *v2.Previous)
	changes, err := tb.q.VersionChanges(context.Background(), tb.pool, queries.VersionChangesParams{
		VersionID: v2.ID, Change: queries.DatasetChangeRemoved, MaxRows: 10})
	require.NoError(t, err)
	require.Len(t, changes, 1)
	require.Equal(t, plain[5].SHA, changes[0].Sha256)
}

// TestPublishCountsAndFilter checks a filtered dataset: only images with an
// instance of its labels, only those instances; counts, category ids kept
// across versions, and the class histogram per split.
func TestPublishCountsAndFilter(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	fx := tb.fx
	d := tb.create(t, dataset.Spec{Name: "pets", Filter: dataset.Filter{Labels: []string{"dog", "cat"}}})
	want := map[string]int{}
	for i := range 12 {
		img := fx.Image(datasettest.ImageOpts{})
		var ins []datasettest.Instance
		if i%2 == 0 {
			ins = append(ins, datasettest.Instance{Label: "cat", Mask: datasettest.Box(img.W, img.H, 0, 0, 10, 10)})
			want["cat"]++
		}
		if i%3 == 0 {
			ins = append(ins, datasettest.Instance{Label: "dog", Mask: datasettest.Box(img.W, img.H, 20, 20, 30, 30)})
			want["dog"]++
		}
		ins = append(ins, datasettest.Instance{Label: "person", Mask: datasettest.Box(img.W, img.H, 40, 40, 50, 50)})
		fx.Review(img, ins...)
	}
	v := tb.publish(t, d)
	require.EqualValues(t, 8, v.Images, "images with a cat or a dog")
	require.EqualValues(t, want["cat"]+want["dog"], v.Instances, "no person instances")
	require.EqualValues(t, v.Images, v.TrainImages+v.ValImages+v.TestImages)
	require.Len(t, v.Categories, 2)
	require.Equal(t, "cat", v.Categories[0].Name)
	require.EqualValues(t, 1, v.Categories[0].CategoryID, "ids by name at first appearance")
	require.Equal(t, "dog", v.Categories[1].Name)
	for _, c := range v.Categories {
		require.EqualValues(t, want[c.Name], c.TrainInstances+c.ValInstances+c.TestInstances, c.Name)
	}

	// A new label that sorts first does not renumber the others.
	_, err := tb.pool.Exec(context.Background(), `UPDATE datasets SET label_ids = label_ids || (SELECT id FROM labels WHERE name = 'bird')`)
	require.NoError(t, err)
	img := fx.Image(datasettest.ImageOpts{})
	fx.Review(img, datasettest.Instance{Label: "bird", Mask: datasettest.Box(img.W, img.H, 0, 0, 5, 5)})
	v2 := tb.publish(t, d)
	ids := map[string]int32{}
	for _, c := range v2.Categories {
		ids[c.Name] = c.CategoryID
	}
	require.Equal(t, map[string]int32{"cat": 1, "dog": 2, "bird": 3}, ids)
}

// TestExportImmutable downloads version 1, changes everything a later
// review can change, and downloads it again: the same bytes, in both
// formats. Every mask in annotations.json and every PNG mask is the stored
// annotation's pixels.
func TestExportImmutable(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	fx := tb.fx
	d := tb.create(t, dataset.Spec{Name: "immutable"})
	var imgs []stored
	for i := range 7 {
		img := fx.Image(datasettest.ImageOpts{PNG: i == 3, W: 80 + i, H: 60 + 2*i})
		var ins []datasettest.Instance
		for k := range i % 4 {
			label := []string{"cat", "dog", "person"}[k]
			ins = append(ins, datasettest.Instance{Label: label, Mask: datasettest.Blob(img.W, img.H, 5*k, 3*k, 30+9*k, 20+7*k)})
		}
		imgs = append(imgs, stored{img, fx.Review(img, ins...)})
	}
	v1 := tb.publish(t, d)
	cocoZip := tb.zip(t, v1, dataset.Subset{Format: dataset.COCO})
	pngZip := tb.zip(t, v1, dataset.Subset{Format: dataset.PNG})
	require.Equal(t, cocoZip, tb.zip(t, v1, dataset.Subset{Format: dataset.COCO}), "the same bytes twice")

	bySHA := map[string]stored{}
	for _, s := range imgs {
		bySHA[key(s.img)] = s
	}
	checkCOCO(t, cocoZip, bySHA)
	checkPNG(t, pngZip, bySHA)

	// Later reviews, a new image, a renamed label: version 1 stays.
	fx.Review(imgs[1].img, datasettest.Instance{Label: "dog", Mask: datasettest.Box(imgs[1].img.W, imgs[1].img.H, 0, 0, 8, 8)})
	fx.Review(imgs[2].img)
	img := fx.Image(datasettest.ImageOpts{})
	fx.Review(img, datasettest.Instance{Label: "cat", Mask: datasettest.Box(img.W, img.H, 1, 1, 9, 9)})
	_, err := tb.pool.Exec(context.Background(), `UPDATE labels SET display_name = 'Kitty' WHERE name = 'cat'`)
	require.NoError(t, err)
	again, err := dataset.LoadVersion(context.Background(), tb.pool, v1.DatasetVersion)
	require.NoError(t, err)
	require.Equal(t, cocoZip, tb.zip(t, again, dataset.Subset{Format: dataset.COCO}), "version 1 is byte-for-byte the same")
	require.Equal(t, pngZip, tb.zip(t, again, dataset.Subset{Format: dataset.PNG}))

	v2 := tb.publish(t, d)
	require.NotEqual(t, cocoZip, tb.zip(t, v2, dataset.Subset{Format: dataset.COCO}))
	require.EqualValues(t, 1, v2.Added)
	require.EqualValues(t, 2, v2.Changed)
}

// stored is an image with its annotations as the fixture wrote them.
type stored struct {
	img  datasettest.Image
	anns []datasettest.Annotation
}

func readZip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, f := range r.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc) // checks each entry's CRC
		require.NoError(t, err, f.Name)
		out[f.Name] = b
	}
	return out
}

// checkCOCO decodes every mask of annotations.json and compares it with the
// stored annotation, pixel for pixel, and each image with its bytes.
func checkCOCO(t *testing.T, data []byte, bySHA map[string]stored) {
	t.Helper()
	files := readZip(t, data)
	var c dataset.COCOFile
	require.NoError(t, json.Unmarshal(files["annotations.json"], &c))
	require.Len(t, c.Images, len(bySHA))
	cats := map[int]string{}
	for _, cat := range c.Categories {
		cats[cat.ID] = cat.Name
	}
	images := map[int]string{}
	for _, im := range c.Images {
		s := bySHA[im.SHA256]
		images[im.ID] = im.SHA256
		require.Equal(t, s.img.Bytes, files["images/"+im.FileName], "image bytes")
		require.Equal(t, s.img.W, im.Width)
		require.Equal(t, s.img.H, im.Height)
	}
	n := 0
	for _, s := range bySHA {
		n += len(s.anns)
	}
	require.Len(t, c.Annotations, n)
	seen := map[string]int{}
	for _, a := range c.Annotations {
		sha := images[a.ImageID]
		s := bySHA[sha]
		want := s.anns[seen[sha]]
		seen[sha]++
		require.Equal(t, want.Label, cats[a.CategoryID])
		got, err := a.Segmentation.RLE.Decode()
		require.NoError(t, err)
		stored, err := want.RLE.Decode()
		require.NoError(t, err)
		require.Equal(t, stored.Pix, got.Pix, "mask of annotation %d", a.ID)
		require.Equal(t, [2]int{s.img.H, s.img.W}, a.Segmentation.RLE.Size)
		area, _ := want.RLE.Area()
		box, _ := want.RLE.BBox()
		require.Equal(t, area, a.Area)
		require.Equal(t, [4]float64{float64(box[0]), float64(box[1]), float64(box[2]), float64(box[3])}, a.BBox)
		require.Zero(t, a.IsCrowd)
	}
	m, err := csv.NewReader(bytes.NewReader(files["manifest.csv"])).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"sha256", "split", "width", "height", "labels"}, m[0])
	require.Len(t, m, len(bySHA)+1)
	require.Contains(t, string(files["README.txt"]), "immutable, version 1")
}

func checkPNG(t *testing.T, data []byte, bySHA map[string]stored) {
	t.Helper()
	files := readZip(t, data)
	require.NotContains(t, files, "annotations.json")
	rows, err := csv.NewReader(bytes.NewReader(files["masks.csv"])).ReadAll()
	require.NoError(t, err)
	n := 0
	for sha, s := range bySHA {
		for k, a := range s.anns {
			n++
			name := "masks/" + sha + "/" + string(rune('1'+k)) + ".png"
			img, err := png.Decode(bytes.NewReader(files[name]))
			require.NoError(t, err, name)
			got := mask.FromImage(img, 127)
			want, err := a.RLE.Decode()
			require.NoError(t, err)
			require.Equal(t, want.Pix, got.Pix, name)
		}
		ext := ".jpg"
		if s.img.ContentType == "image/png" {
			ext = ".png"
		}
		require.Equal(t, s.img.Bytes, files["images/"+sha+ext])
	}
	require.Len(t, rows, n+1)
	require.True(t, strings.HasPrefix(rows[1][0], "masks/"))
}

// TestPublishEmpty: a filter that takes nothing publishes an empty version
// whose download is a valid zip with empty lists.
func TestPublishEmpty(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	img := tb.fx.Image(datasettest.ImageOpts{})
	tb.fx.Review(img, datasettest.Instance{Label: "cat", Mask: datasettest.Box(img.W, img.H, 0, 0, 5, 5)})
	d := tb.create(t, dataset.Spec{Name: "nothing", Filter: dataset.Filter{Labels: []string{"zebra"}}})
	v := tb.publish(t, d)
	require.Zero(t, v.Images)
	require.Len(t, v.Categories, 1, "the filter's label is a category even with no instance")
	files := readZip(t, tb.zip(t, v, dataset.Subset{}))
	var c dataset.COCOFile
	require.NoError(t, json.Unmarshal(files["annotations.json"], &c))
	require.Empty(t, c.Images)
	require.Empty(t, c.Annotations)
	require.Equal(t, "zebra", c.Categories[0].Name)
	require.Equal(t, "sha256,split,width,height,labels\n", string(files["manifest.csv"]))
}
