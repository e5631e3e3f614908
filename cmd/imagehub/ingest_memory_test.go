package main

import (
	"bytes"
	"compress/flate"
	"context"
	be "encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
)

// TestIngestMemoryBudget uploads twelve 36-megapixel 16-bit RGBA PNGs at
// once to a real `imagehub serve` with the default INGEST_MEMORY_BUDGET
// (1 GiB). Each decodes to 288 MB, and ingest makes copies of it for the
// thumbnails; admitted by count alone (two ingest jobs per core) they
// would take gigabytes. All twelve are ingested, and the serve process's
// peak resident memory stays under 1.5 GB.
func TestIngestMemoryBudget(t *testing.T) {
	t.Parallel()
	const n, side = 12, 6000
	start := time.Now()
	files := bigPNGs(t, n, side)
	t.Logf("made %d PNGs of %d bytes in %s", n, len(files[0]), time.Since(start).Round(time.Millisecond))

	dbURL := dbtest.NewURL(t)
	// No inference: a model would decode the photos again, elsewhere.
	vars := map[string]string{"DATABASE_URL": dbURL, "BUILTIN_WORKER": "false"}
	srv := startServer(t, vars)
	_, errOut, err := runCmdInput(t, envOf(srv), "a long password\n", "users", "create", "--email", "ada@example.com")
	require.NoError(t, err, errOut)
	token, errOut, err := runCmd(t, envOf(srv), "tokens", "create", "--email", "ada@example.com", "--name", "memory test")
	require.NoError(t, err, errOut)
	token = strings.TrimSpace(token)

	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { uploadPhoto(t, srv.base, token, "big-"+strconv.Itoa(i)+".png", f) })
	}
	wg.Wait()

	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	deadline := time.Now().Add(8 * time.Minute)
	for count(t, pool, "SELECT count(*) FROM images WHERE status NOT IN ('uploaded', 'processing')") < n {
		require.True(t, time.Now().Before(deadline), "ingest did not finish: %d of %d\n%s",
			count(t, pool, "SELECT count(*) FROM images WHERE status NOT IN ('uploaded', 'processing')"), n, srv.logs)
		time.Sleep(200 * time.Millisecond)
	}
	hwm := peakRSS(t, srv.cmd.Process.Pid)
	t.Logf("ingested %d in %s; serve's peak RSS %d MB", n, time.Since(start).Round(time.Millisecond), hwm>>20)
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM images WHERE status IN ('awaiting_inference', 'flagged') AND width = 6000 AND height = 6000"),
		"every photo ingested\n%s", srv.logs)
	require.Equal(t, n, count(t, pool, "SELECT count(DISTINCT sha256) FROM images"))
	require.Less(t, hwm, int64(1_500_000_000), "peak RSS %d MB", hwm>>20)
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

// bigPNGs makes n side×side 16-bit RGBA PNGs with different pixels,
// cheaply: each has its own first row, and every other row repeats the one
// above (PNG's Up filter with zero differences). The rows after the first
// are the same bytes in every file, so they are compressed once, as a
// deflate stream of their own after each file's first row, and the zlib
// checksums are combined rather than computed over every row again.
func bigPNGs(t *testing.T, n, side int) [][]byte {
	t.Helper()
	rowLen := 1 + 8*side
	var tail bytes.Buffer
	zw, err := flate.NewWriter(&tail, flate.BestSpeed)
	require.NoError(t, err)
	up := make([]byte, rowLen)
	up[0] = 2 // Up
	tailSum := adler32.New()
	for range side - 1 {
		_, err := zw.Write(up)
		require.NoError(t, err)
		tailSum.Write(up)
	}
	require.NoError(t, zw.Close())
	tailLen := int64(side-1) * int64(rowLen)

	out := make([][]byte, n)
	for i := range n {
		row := make([]byte, rowLen) // filter 0, None
		for x := range side {
			p := row[1+8*x:]
			be.BigEndian.PutUint16(p[0:], uint16(x*10+i*3001))
			be.BigEndian.PutUint16(p[2:], uint16((x*x)/7+i*17))
			be.BigEndian.PutUint16(p[4:], uint16(65535-x*9))
			be.BigEndian.PutUint16(p[6:], 65535)
		}
		var idat bytes.Buffer
		idat.Write([]byte{0x78, 0x01}) // zlib header: deflate, 32K window
		hw, err := flate.NewWriter(&idat, flate.BestSpeed)
		require.NoError(t, err)
		_, err = hw.Write(row)
		require.NoError(t, err)
		require.NoError(t, hw.Flush()) // byte-aligned, not final: the tail's blocks follow
		idat.Write(tail.Bytes())
		idat.Write(be.BigEndian.AppendUint32(nil, adler32Combine(adler32.Checksum(row), tailSum.Sum32(), tailLen)))

		var png bytes.Buffer
		png.WriteString("\x89PNG\r\n\x1a\n")
		ihdr := be.BigEndian.AppendUint32(nil, uint32(side))
		ihdr = be.BigEndian.AppendUint32(ihdr, uint32(side))
		ihdr = append(ihdr, 16, 6, 0, 0, 0) // 16-bit, RGBA, deflate, adaptive filters, no interlace
		writeChunk(&png, "IHDR", ihdr)
		writeChunk(&png, "IDAT", idat.Bytes())
		writeChunk(&png, "IEND", nil)
		out[i] = png.Bytes()
	}
	return out
}

func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	b.Write(be.BigEndian.AppendUint32(nil, uint32(len(data))))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	b.Write(be.BigEndian.AppendUint32(nil, crc.Sum32()))
}

// adler32Combine is the Adler-32 of A followed by B from the checksums of
// each and B's length (zlib's adler32_combine).
func adler32Combine(a, b uint32, lenB int64) uint32 {
	const base = 65521
	rem := uint32(lenB % base)
	sum1 := a & 0xffff
	sum2 := (rem * sum1) % base
	sum1 += (b & 0xffff) + base - 1
	sum2 += (a >> 16) + (b >> 16) + base - rem
	if sum1 >= base {
		sum1 -= base
	}
	if sum1 >= base {
		sum1 -= base
	}
	if sum2 >= base<<1 {
		sum2 -= base << 1
	}
	if sum2 >= base {
		sum2 -= base
	}
	return sum1 | sum2<<16
}
