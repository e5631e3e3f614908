package imaging_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// cpuTime is the CPU time this process has used, all threads together (GC
// included). Benchmarks report it per operation beside the wall time, since
// it holds still on a busy machine where wall time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs op b.N times and reports CPU time per op and, from it, how
// many images one core handles per second.
func measure(b *testing.B, op func()) {
	b.Helper()
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	cpu := cpuTime() - start
	perOp := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(perOp, "cpu-ns/op")
	b.ReportMetric(1e9/perOp, "images/s/core")
}

// ingest is the CPU work of ingest for one upload: canonicalise, then two
// thumbnails, perceptual hash and quality report, with ingest's options.
func ingest(b *testing.B, data []byte) {
	res, err := imaging.Options{ReduceTo: imaging.ReviewSize}.Process(data)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := imaging.Derive(res); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngest is the per-image CPU cost of ingest for a 1024×768 JPEG
// with EXIF and GPS, upright: the lossless path (its own review image).
func BenchmarkIngest(b *testing.B) {
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 1)
	b.SetBytes(int64(len(data)))
	measure(b, func() { ingest(b, data) })
}

// BenchmarkIngestRotated is the same photo taken in portrait (EXIF
// orientation 6): turned, encoded anew, plus a review image.
func BenchmarkIngestRotated(b *testing.B) {
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 6)
	b.SetBytes(int64(len(data)))
	measure(b, func() { ingest(b, data) })
}

// BenchmarkIngest12MP is a phone's 4000×3000 JPEG in portrait.
func BenchmarkIngest12MP(b *testing.B) {
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(4000, 3000, 1)), 6)
	b.SetBytes(int64(len(data)))
	measure(b, func() { ingest(b, data) })
}

// The stages of BenchmarkIngest.

func decoded(b *testing.B) image.Image {
	img, err := jpeg.Decode(bytes.NewReader(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1))))
	if err != nil {
		b.Fatal(err)
	}
	return img
}

func BenchmarkStageInspect(b *testing.B) {
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 1)
	measure(b, func() { _, _ = imaging.Inspect(bytes.NewReader(data), imaging.Limits{}) })
}

func BenchmarkStageDecode(b *testing.B) {
	data := imagingtest.JPEG(imagingtest.Photo(1024, 768, 1))
	measure(b, func() { _, _ = jpeg.Decode(bytes.NewReader(data)) })
}

func BenchmarkStageThumbnail(b *testing.B) {
	img := decoded(b)
	measure(b, func() { imaging.Thumbnail(img, imaging.GridSize) })
}

// BenchmarkStageThumbnailPhone is the review image of a phone photo as
// ingest makes it: from the 1512×2016 that a 3024×4032 JPEG decodes to at
// half size, to 1200×1600.
func BenchmarkStageThumbnailPhone(b *testing.B) {
	img, err := jpeg.Decode(bytes.NewReader(imagingtest.JPEG(imagingtest.Photo(1512, 2016, 1))))
	if err != nil {
		b.Fatal(err)
	}
	measure(b, func() { imaging.Thumbnail(img, imaging.ReviewSize) })
}

func BenchmarkStageEncodeGrid(b *testing.B) {
	g := imaging.Thumbnail(decoded(b), imaging.GridSize)
	measure(b, func() { _, _ = imaging.EncodeJPEG(g, 82) })
}

func BenchmarkStagePHash(b *testing.B) {
	g := imaging.Thumbnail(decoded(b), imaging.GridSize)
	measure(b, func() { imaging.PHash(g) })
}

func BenchmarkStageQuality(b *testing.B) {
	img := decoded(b)
	measure(b, func() { imaging.Quality(img) })
}

// BenchmarkImageMagick is the yardstick: Debian's ImageMagick making the
// grid thumbnail of the same photo, one process per image as a shell-out
// would. It is skipped where ImageMagick is not installed.
func BenchmarkImageMagick(b *testing.B) {
	const convert = "/usr/bin/convert"
	if _, err := os.Stat(convert); err != nil {
		b.Skip("ImageMagick not installed")
	}
	dir := b.TempDir()
	in := filepath.Join(dir, "in.jpg")
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 1)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.jpg")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var cpu time.Duration
	n := 0
	for b.Loop() {
		cmd := exec.Command(convert, in, "-auto-orient", "-thumbnail", "320x320", out)
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		n++
	}
	perOp := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(perOp, "cpu-ns/op")
	b.ReportMetric(1e9/perOp, "images/s/core")
}
