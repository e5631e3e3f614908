package app

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/imaging/turbojpeg"
)

// vipsThumbnail is Debian's libvips-tools' vipsthumbnail (make bench
// installs it).
const vipsThumbnail = "/usr/bin/vipsthumbnail"

// phonePhotos are n distinct 12-megapixel JPEGs as a phone stores a
// portrait photo: 4032×3024 sideways, EXIF orientation 6 with GPS, about
// 2.5 MB each. Generating a photo takes seconds, so two are generated and
// each copy is rolled by its own offset, which makes another picture (not
// a near-duplicate) for the price of a copy.
func phonePhotos(b *testing.B, n int, seed uint64) []file {
	b.Helper()
	const w, h = 4032, 3024
	bases := []*image.RGBA{imagingtest.Photo(w, h, seed), imagingtest.Photo(w, h, seed+1)}
	out := make([]file, n)
	for i := range out {
		src := bases[i%len(bases)]
		dx, dy := (i*997)%w, (i*631)%h
		img := image.NewRGBA(src.Rect)
		for y := range h {
			row := src.Pix[((y+dy)%h)*src.Stride : ((y+dy)%h+1)*src.Stride]
			d := img.Pix[y*img.Stride : (y+1)*img.Stride]
			copy(d, row[4*dx:])
			copy(d[4*(w-dx):], row[:4*dx])
		}
		data, err := imaging.EncodeJPEG(img, 85)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = file{fmt.Sprintf("IMG_%04d.jpg", i), imagingtest.WithEXIF(data, 6)}
	}
	return out
}

// BenchmarkIngestPhone is BenchmarkIngestPipeline for phone photos:
// 12-megapixel JPEGs (phonePhotos) uploaded two at a time through the
// whole hub (HTTP, blob store, transaction, ingest job: canonical file,
// 1600 and 320 px derivatives, hashes, quality), beside vipsthumbnail
// making the same two derivatives (--size 1600, then --size 320, each from
// the file, auto-rotated) of the same files, two files at a time. It
// prints both rates, from the wall clock and per CPU second (the hub's
// process against vipsthumbnail's children; PostgreSQL's work is not
// counted), their ratio, and the peak memory of one decode: the resident
// memory a fresh process gains decoding and deriving one photo as ingest
// does (C allocations included), beside the reservation ingest makes for
// it and vipsthumbnail's peak resident size. Build with -tags nojpegturbo
// for the standard library's decoder.
func BenchmarkIngestPhone(b *testing.B) {
	if _, err := os.Stat(vipsThumbnail); err != nil {
		b.Fatalf("%s not found: run make bench (it installs Debian's libvips-tools)", vipsThumbnail)
	}
	const perRound, par = 16, 2
	tb := setup(b)
	c := tb.client(b)
	c.signup("bench@example.com", "Bench")

	var hubTime, vipsTime, hubCPU, vipsCPU time.Duration
	var vipsRSS int64
	var peak, reserved int64
	total, size := 0, 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		files := phonePhotos(b, perRound, uint64(20000+i*perRound))
		dir := b.TempDir()
		for _, f := range files {
			size += len(f.data)
			if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		if i == 0 {
			peak, reserved = decodePeak(b, filepath.Join(dir, files[0].name))
		}
		b.StartTimer()

		start, cpu := time.Now(), processCPU(syscall.RUSAGE_SELF)
		uploadAndIngest(b, tb, c, files, par)
		total += perRound
		var wg sync.WaitGroup
		hubTime += time.Since(start)
		hubCPU += processCPU(syscall.RUSAGE_SELF) - cpu

		start, cpu = time.Now(), processCPU(syscall.RUSAGE_CHILDREN)
		names := make(chan string)
		for range par {
			wg.Go(func() {
				for n := range names {
					for _, size := range []string{"1600", "320"} {
						out, err := exec.Command(vipsThumbnail, filepath.Join(dir, n), "--size", size,
							"-o", filepath.Join(dir, "%s-"+size+".jpg")).CombinedOutput()
						if err != nil {
							b.Errorf("vipsthumbnail: %v %s", err, out)
						}
					}
				}
			})
		}
		for _, f := range files {
			names <- f.name
		}
		close(names)
		wg.Wait()
		vipsTime += time.Since(start)
		vipsCPU += processCPU(syscall.RUSAGE_CHILDREN) - cpu
		if i == 0 {
			b.StopTimer()
			vipsRSS = vipsPeak(b, filepath.Join(dir, files[0].name))
			b.StartTimer()
		}
	}
	var done int
	_ = tb.pool.QueryRow(context.Background(), "SELECT count(*) FROM images WHERE status = 'awaiting_inference'").Scan(&done)
	if done != total {
		b.Fatalf("%d of %d images ingested", done, total)
	}
	hub, vips := float64(total)/hubTime.Seconds(), float64(total)/vipsTime.Seconds()
	hubPerCPU, vipsPerCPU := float64(total)/hubCPU.Seconds(), float64(total)/vipsCPU.Seconds()
	decoder := "standard library"
	if turbojpeg.Available {
		decoder = "libjpeg-turbo"
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(hub, "hub_photos/s")
	b.ReportMetric(vips, "vips_photos/s")
	b.ReportMetric(hub/vips, "ratio")
	b.ReportMetric(hubPerCPU/vipsPerCPU, "cpu_ratio")
	b.ReportMetric(float64(peak)/(1<<20), "decode_peak_MiB")
	b.ReportMetric(float64(reserved)/(1<<20), "reserved_MiB")
	fmt.Fprintf(os.Stderr, "ingest: %d photos 4032×3024 (orientation 6, %.1f MB each), %d at a time, %s decoder: hub %.2f photos/s (%.2f per CPU second), vipsthumbnail %.2f photos/s (%.2f per CPU second), ratio %.2f (per CPU second %.2f); memory per decode: hub peak %.0f MiB (ingest reserves %.0f MiB), vipsthumbnail peak RSS %.0f MiB; load %s\n",
		total, float64(size)/float64(total)/1e6, par, decoder, hub, hubPerCPU, vips, vipsPerCPU, hub/vips, hubPerCPU/vipsPerCPU,
		float64(peak)/(1<<20), float64(reserved)/(1<<20), float64(vipsRSS)/(1<<20), loadAverage())
}

// vipsPeak is vipsthumbnail's peak resident size making the larger
// derivative of the photo at path, as GNU time reports it (a child's own
// rusage would count the test process it was forked from); 0 without
// /usr/bin/time.
func vipsPeak(b *testing.B, path string) int64 {
	b.Helper()
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return 0
	}
	cmd := exec.Command("/usr/bin/time", "-f", "maxrss %M", vipsThumbnail, path, "--size", "1600",
		"-o", filepath.Join(filepath.Dir(path), "%s-peak.jpg"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("vipsthumbnail: %v %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "maxrss "); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// processCPU is the user and system time of this process (RUSAGE_SELF) or
// of its finished children (RUSAGE_CHILDREN).
func processCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// decodePeak runs TestDecodePeakHelper in a fresh copy of the test binary
// on the photo at path, and returns what it measured.
func decodePeak(b *testing.B, path string) (peak, reserved int64) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDecodePeakHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IMAGEHUB_DECODE_PEAK="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("decode peak: %v %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "decodepeak" {
			peak, _ = strconv.ParseInt(f[1], 10, 64)
			reserved, _ = strconv.ParseInt(f[2], 10, 64)
			return peak, reserved
		}
	}
	b.Fatalf("decode peak: no figure in %s", out)
	return 0, 0
}

// TestDecodePeakHelper is BenchmarkIngestPhone's measurement of one
// decode, in a process of its own: the growth of its resident memory from
// before ingest's decode and derivation of the photo to their peak (the
// kernel's VmHWM, which counts what libjpeg-turbo allocates in C as well
// as Go's heap). Without IMAGEHUB_DECODE_PEAK it is skipped.
func TestDecodePeakHelper(t *testing.T) {
	path := os.Getenv("IMAGEHUB_DECODE_PEAK")
	if path == "" {
		t.Skip("run by BenchmarkIngestPhone")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before := procStatus(t, "VmRSS")
	prep, err := imaging.Options{ReduceTo: imaging.ReviewSize}.Prepare(data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := prep.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imaging.Derive(res); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("decodepeak %d %d\n", procStatus(t, "VmHWM")-before, prep.Memory())
}

// procStatus is a size from /proc/self/status, in bytes.
func procStatus(t *testing.T, key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}
