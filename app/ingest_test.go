package app

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestIngestVerdicts: a near-duplicate (the same photo re-encoded smaller)
// is flagged with a reason and linked to its original; a dark photo is
// flagged; the contributor sees why.
func TestIngestVerdicts(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	recordEvents(t, tb.pool)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	photo := imagingtest.Photo(1024, 768, 77)
	res := c.upload([]file{{"original.jpg", imagingtest.JPEG(photo)}}, nil)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	orig := c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	require.Equal(t, "awaiting_inference", orig["status"])

	// Re-encoded at another quality and size: other bytes, same picture.
	small := image.NewRGBA(image.Rect(0, 0, 800, 600))
	for y := 0; y < 600; y++ {
		for x := 0; x < 800; x++ {
			small.Set(x, y, photo.At(x*1024/800, y*768/600))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, small, &jpeg.Options{Quality: 60}))
	res = c.upload([]file{{"again.jpg", buf.Bytes()}}, nil)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.Equal(t, "created", res.json(t)["results"].([]any)[0].(map[string]any)["status"], "different bytes")
	dup := c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	require.Equal(t, "flagged", dup["status"])
	require.Equal(t, orig["id"], dup["near_duplicate_of"])
	require.Contains(t, dup["reason"], "near-duplicate")

	dark := imagingtest.Photo(1024, 768, 78)
	for i := 0; i < len(dark.Pix); i += 4 {
		dark.Pix[i], dark.Pix[i+1], dark.Pix[i+2] = dark.Pix[i]/12, dark.Pix[i+1]/12, dark.Pix[i+2]/12
	}
	res = c.upload([]file{{"night.jpg", imagingtest.JPEG(dark)}}, nil)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	img := c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	require.Equal(t, "flagged", img["status"])
	require.Contains(t, img["reason"], "too dark")

	// The contributor's page shows the reasons.
	page := c.get("/uploads").doc(t)
	require.Contains(t, page.Find("#image-"+img["id"].(string)+" .reason").Text(), "too dark")
	require.Equal(t, []string{"image.accepted", "image.flagged"}, emitted(t, tb.pool))
}

// TestIngestFlagsCrops: a photo cropped to 80% (here its top-right corner)
// is flagged as a near-duplicate of the photo it was cut from, and so is a
// photo uploaded after a crop of it; another photo of the same scene is
// not.
func TestIngestFlagsCrops(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("crop@example.com", "Crop")
	upload := func(name string, img image.Image) map[string]any {
		t.Helper()
		res := c.upload([]file{{name, imagingtest.JPEG(img)}}, nil)
		require.Equal(t, http.StatusCreated, res.StatusCode)
		return c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	}

	scene := imagingtest.Scene(1024, 768, 5, 1)
	orig := upload("scene.jpg", scene)
	require.Equal(t, "awaiting_inference", orig["status"])
	crop := upload("crop.jpg", scene.SubImage(image.Rect(1024-819, 0, 1024, 614)))
	require.Equal(t, "flagged", crop["status"])
	require.Equal(t, orig["id"], crop["near_duplicate_of"])
	require.Contains(t, crop["reason"], "near-duplicate")

	other := upload("same-place.jpg", imagingtest.Scene(1024, 768, 5, 2))
	require.Equal(t, "awaiting_inference", other["status"], "another photo of the scene is no near-duplicate")
	require.Nil(t, other["near_duplicate_of"])

	photo := imagingtest.Photo(1024, 768, 4711)
	first := upload("centre.jpg", photo.SubImage(image.Rect(102, 77, 102+819, 77+614)))
	require.Equal(t, "awaiting_inference", first["status"])
	later := upload("whole.jpg", photo)
	require.Equal(t, "flagged", later["status"])
	require.Equal(t, first["id"], later["near_duplicate_of"])
}
