package imaging_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// refusal returns the code of err, which must be a *imaging.Refusal.
func refusal(t *testing.T, err error) *imaging.Refusal {
	t.Helper()
	var ref *imaging.Refusal
	require.ErrorAs(t, err, &ref)
	require.NotEmpty(t, ref.Message)
	return ref
}

func TestInspectRefusesTheBadCorpus(t *testing.T) {
	t.Parallel()
	files := imagingtest.BadFiles()
	require.GreaterOrEqual(t, len(files), 25)
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
			ref := refusal(t, err)
			require.Equal(t, f.WantCode, ref.Code, ref.Message)
		})
	}
}

func TestInspectNamesTheType(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"animation.gif": "GIF", "scan-le.tif": "TIFF", "scan-be.tiff": "TIFF", "paint.bmp": "BMP",
		"evil.svg": "SVG", "page.jpg": "HTML", "doc.pdf": "PDF", "photos.zip": "ZIP", "photo.jpg.gz": "gzip",
		"animated.webp": "animated WebP",
	}
	for _, f := range imagingtest.BadFiles() {
		if name, ok := want[f.Name]; ok {
			_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
			require.Contains(t, refusal(t, err).Message, name, f.Name)
			delete(want, f.Name)
		}
	}
	require.Empty(t, want, "files missing from the corpus")
}

// chunked writes data to an Inspector n bytes at a time, as an upload
// arrives, stopping at the first refusal.
func chunked(data []byte, n int, lim imaging.Limits) (imaging.Header, int, error) {
	in := imaging.NewInspector(lim)
	written := 0
	for len(data) > 0 {
		p := data[:min(n, len(data))]
		data = data[len(p):]
		if _, err := in.Write(p); err != nil {
			return imaging.Header{}, written, err
		}
		written += len(p)
	}
	h, err := in.Finish()
	return h, written, err
}

// TestInspectorStreams checks that the verdict does not depend on how the
// bytes arrive, down to one at a time.
func TestInspectorStreams(t *testing.T) {
	t.Parallel()
	files := imagingtest.BadFiles()
	photo := imagingtest.Photo(640, 480, 1)
	for _, good := range []imagingtest.File{
		{Name: "photo.jpg", Data: imagingtest.WithEXIF(imagingtest.JPEG(photo), 6)},
		{Name: "photo.png", Data: imagingtest.PNGWithEXIF(imagingtest.PNG(photo), 6)},
		{Name: "photo.webp", Data: imagingtest.WebPWithEXIF(photo, 6)},
	} {
		files = append(files, imagingtest.BadFile{Name: good.Name, Data: good.Data})
	}
	for _, f := range files {
		want, wantErr := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
		for _, n := range []int{1, 3, 13, 512, 4096} {
			got, _, err := chunked(f.Data, n, imaging.Limits{})
			require.Equal(t, want, got, "%s in chunks of %d", f.Name, n)
			require.Equal(t, wantErr, err, "%s in chunks of %d", f.Name, n)
		}
	}
}

func TestInspectAcceptsPhotos(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(800, 600, 1)
	for _, tc := range []struct {
		name, format string
		data         []byte
	}{
		{"jpeg", "jpeg", imagingtest.JPEG(photo)},
		{"jpeg with metadata", "jpeg", imagingtest.WithEXIF(imagingtest.JPEG(photo), 6)},
		{"jpeg with ICC", "jpeg", imagingtest.WithICC(imagingtest.JPEG(photo))},
		{"png", "png", imagingtest.PNG(photo)},
		{"png with metadata", "png", imagingtest.PNGWithEXIF(imagingtest.PNG(photo), 6)},
		{"webp", "webp", imagingtest.WebP(photo)},
		{"webp with metadata", "webp", imagingtest.WebPWithEXIF(photo, 6)},
	} {
		h, err := imaging.Inspect(bytes.NewReader(tc.data), imaging.Limits{})
		require.NoError(t, err, tc.name)
		require.Equal(t, imaging.Header{
			Format: tc.format, ContentType: "image/" + tc.format, Ext: map[string]string{"jpeg": "jpg", "png": "png", "webp": "webp"}[tc.format],
			Width: 800, Height: 600, Size: int64(len(tc.data)),
		}, h, tc.name)
	}
}

func TestInspectLimits(t *testing.T) {
	t.Parallel()
	data := imagingtest.JPEG(imagingtest.Photo(800, 600, 1))
	for _, tc := range []struct {
		lim  imaging.Limits
		code string
	}{
		{imaging.Limits{MaxPixels: 400 * 600}, "too_many_pixels"},
		{imaging.Limits{MaxSide: 799}, "too_many_pixels"},
		{imaging.Limits{MinShortSide: 601}, "too_small"},
		{imaging.Limits{MaxBytes: int64(len(data)) - 1}, "too_large"},
	} {
		_, err := imaging.Inspect(bytes.NewReader(data), tc.lim)
		require.Equal(t, tc.code, refusal(t, err).Code, "%+v", tc.lim)
	}
	_, err := imaging.Inspect(bytes.NewReader(data), imaging.Limits{MaxPixels: 800 * 600, MaxSide: 800, MinShortSide: 600, MaxBytes: int64(len(data))})
	require.NoError(t, err, "limits are inclusive")
	_, err = imaging.Inspect(bytes.NewReader(imagingtest.JPEG(imagingtest.Photo(40, 30, 1))), imaging.Limits{MinShortSide: -1})
	require.NoError(t, err, "a negative minimum turns the check off")

	ref := imaging.TooLarge(50 << 20)
	require.Equal(t, "too_large", ref.Code)
	require.Contains(t, ref.Message, "50 MiB")
}

// TestInspectorRefusesEarly checks that a stream is refused as soon as its
// first bytes or its header show it, so that an upload handler can stop
// reading (and writing to disk) there.
func TestInspectorRefusesEarly(t *testing.T) {
	t.Parallel()
	for _, f := range imagingtest.BadFiles() {
		switch f.WantCode {
		case "too_many_pixels", "unsupported_type":
		default:
			continue
		}
		padded := append(append([]byte(nil), f.Data...), make([]byte, 1<<20)...)
		_, written, err := chunked(padded, 4096, imaging.Limits{})
		require.Equal(t, f.WantCode, refusal(t, err).Code, f.Name)
		require.LessOrEqual(t, written, 64<<10, "%s: refused only after %d bytes", f.Name, written)
	}
	// The byte cap, when the Inspector is given one.
	big := imagingtest.JPEG(imagingtest.Photo(1024, 768, 1))
	require.Greater(t, len(big), 100<<10)
	_, written, err := chunked(big, 4096, imaging.Limits{MaxBytes: 100 << 10})
	require.Equal(t, "too_large", refusal(t, err).Code)
	require.Equal(t, 100<<10, written)
}

// TestInspectReadError keeps read failures apart from refusals.
func TestInspectReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(imagingtest.JPEG(imagingtest.Photo(300, 300, 1))[:1000]), iotestErrReader{boom})
	_, err := imaging.Inspect(r, imaging.Limits{})
	require.ErrorIs(t, err, boom)
	var ref *imaging.Refusal
	require.False(t, errors.As(err, &ref))
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestPixelBombsStayCheap checks that refusing a pixel bomb decodes
// nothing: the heap hardly grows, through Inspect and through Process.
func TestPixelBombsStayCheap(t *testing.T) {
	var bombs []imagingtest.BadFile
	for _, f := range imagingtest.BadFiles() {
		if f.WantCode == "too_many_pixels" {
			bombs = append(bombs, f)
		}
	}
	require.GreaterOrEqual(t, len(bombs), 5)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		for _, b := range bombs {
			_, err := imaging.Inspect(bytes.NewReader(b.Data), imaging.Limits{})
			require.Equal(t, "too_many_pixels", refusal(t, err).Code, b.Name)
			_, err = imaging.Process(b.Data)
			require.Equal(t, "too_many_pixels", refusal(t, err).Code, b.Name)
		}
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(16<<20), "allocated %d bytes", allocated)
}

// FuzzInspect: whatever the bytes, Inspect neither panics nor accepts an
// image it cannot describe, and the streaming Inspector agrees with it.
func FuzzInspect(f *testing.F) {
	for _, b := range imagingtest.BadFiles() {
		if len(b.Data) < 4<<10 {
			f.Add(b.Data)
		}
	}
	f.Add(imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(16, 16, 1)), 6))
	f.Add(imagingtest.PNGWithEXIF(imagingtest.PNG(imagingtest.Photo(16, 16, 1)), 6))
	f.Add(imagingtest.WebPWithEXIF(imagingtest.Photo(16, 16, 1), 6))
	// The second limits are small, so that the fuzzer reaches them with
	// small inputs: an accepted file never claims a size above them.
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []imaging.Limits{{MinShortSide: -1}, {MaxPixels: 4096, MaxSide: 128, MinShortSide: 8}} {
			h, err := imaging.Inspect(bytes.NewReader(data), lim)
			if err == nil {
				require.Positive(t, h.Width)
				require.Positive(t, h.Height)
				require.Contains(t, []string{"jpeg", "png", "webp"}, h.Format)
				require.Equal(t, int64(len(data)), h.Size)
				if lim.MaxPixels > 0 {
					require.LessOrEqual(t, int64(h.Width)*int64(h.Height), lim.MaxPixels)
					require.LessOrEqual(t, max(h.Width, h.Height), lim.MaxSide)
					require.GreaterOrEqual(t, min(h.Width, h.Height), lim.MinShortSide)
				}
			} else {
				refusal(t, err)
			}
			h2, _, err2 := chunked(data, 7, lim)
			require.Equal(t, h, h2)
			require.Equal(t, err, err2)
		}
	})
}
