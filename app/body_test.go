package app

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

// gzipBomb is a gzip body of under 1 MiB that holds about 1 GiB of zeros:
// one member of 1 MiB of zeros, repeated (a gzip stream may hold many).
func gzipBomb(t testing.TB) ([]byte, int64) {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	n := min(1024, (1<<20-4096)/member.Len())
	return bytes.Repeat(member.Bytes(), n), int64(n) << 20
}

// deflateBomb is a zlib body ("deflate" in HTTP) of under 1 MiB that holds
// about 1 GiB of zeros: a flushed deflate block of 1 MiB of zeros refers
// only to zeros before it, so it can be repeated.
func deflateBomb(t testing.TB, blocks int) ([]byte, int64) {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	require.NoError(t, err)
	_, err = fw.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, fw.Flush())
	block := bytes.Clone(b.Bytes())
	b.Reset()
	require.NoError(t, fw.Close())
	if blocks == 0 {
		blocks = min(1024, (1<<20-4096)/len(block))
	}
	size := int64(blocks) << 20
	out := []byte{0x78, 0xda} // zlib header, best compression
	out = append(out, bytes.Repeat(block, blocks)...)
	out = append(out, b.Bytes()...)
	// Adler-32 of size zeros: A stays 1, B adds 1 per byte.
	return binary.BigEndian.AppendUint32(out, uint32(size%65521)<<16|1), size
}

func brotliOf(t testing.TB, r io.Reader) []byte {
	t.Helper()
	var b bytes.Buffer
	bw := brotli.NewWriterLevel(&b, 1)
	_, err := io.Copy(bw, r)
	require.NoError(t, err)
	require.NoError(t, bw.Close())
	return b.Bytes()
}

func TestBodyBombsAreRealBombs(t *testing.T) {
	t.Parallel()
	// The small deflate bomb decodes, checksum and all, to its zeros; the
	// big ones are made the same way.
	small, size := deflateBomb(t, 3)
	zr, err := zlib.NewReader(bytes.NewReader(small))
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, make([]byte, size), got)
	require.NoError(t, zr.Close())

	bomb, size := gzipBomb(t)
	require.Less(t, len(bomb), 1<<20)
	require.Greater(t, size, int64(900<<20))
	member := len(bomb) / int(size>>20) // each holds 1 MiB
	gr, err := gzip.NewReader(bytes.NewReader(bomb[:4*member]))
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, gr)
	require.NoError(t, err)
	require.Equal(t, int64(4<<20), n)
}

// memoryWatch samples the heap while requests run and reports how far it
// grew and how much was allocated in all.
type memoryWatch struct {
	start     runtime.MemStats
	peak      atomic.Uint64
	stop      chan struct{}
	done      sync.WaitGroup
	allocated uint64
}

func watchMemory() *memoryWatch {
	runtime.GC()
	m := &memoryWatch{stop: make(chan struct{})}
	runtime.ReadMemStats(&m.start)
	m.peak.Store(m.start.HeapInuse)
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		var s runtime.MemStats
		for {
			select {
			case <-m.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&s)
			if s.HeapInuse > m.peak.Load() {
				m.peak.Store(s.HeapInuse)
			}
		}
	}()
	return m
}

// end returns the peak heap growth and the bytes allocated since the start.
func (m *memoryWatch) end() (growth, allocated uint64) {
	close(m.stop)
	m.done.Wait()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return m.peak.Load() - min(m.peak.Load(), m.start.HeapInuse), s.TotalAlloc - m.start.TotalAlloc
}

// TestBodyCompressedRefused sends decompression bombs (about 1 GiB of zeros
// in under 1 MiB) with every Content-Encoding, alone and chained, to the
// sign-in API, the sign-in form, a JSON route and the upload API: each is
// refused with 415 from its headers, and the process allocates under 100 MB
// for all of them together. Not parallel, so that the memory measured is
// this test's.
func TestBodyCompressedRefused(t *testing.T) {
	tb := setup(t)
	contributor, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	token := contributor.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "script"}).json(t)["token"].(string)

	gz, gzSize := gzipBomb(t)
	zl, zlSize := deflateBomb(t, 0)
	br := brotliOf(t, io.LimitReader(zeroReader{}, 32<<20))
	brOfGzip := brotliOf(t, bytes.NewReader(gz))
	t.Logf("bombs: gzip %d bytes → %d MiB, deflate %d → %d MiB, br %d → 32 MiB, br of the gzip one %d → %d MiB",
		len(gz), gzSize>>20, len(zl), zlSize>>20, len(br), len(brOfGzip), gzSize>>20)

	type encoded struct {
		name     string
		encoding []string // header lines
		body     []byte
	}
	encodings := []encoded{
		{"gzip", []string{"gzip"}, gz},
		{"x-gzip", []string{"x-gzip"}, gz},
		{"upper-case GZIP", []string{"GZIP"}, gz},
		{"deflate", []string{"deflate"}, zl},
		{"br", []string{"br"}, br},
		{"gzip, br", []string{"gzip, br"}, gz},
		{"br, gzip", []string{"br, gzip"}, brOfGzip},
		{"identity, gzip", []string{"identity, gzip"}, gz},
		{"two header lines", []string{"identity", "gzip"}, gz},
	}
	type target struct {
		name, path, contentType string
		header                  http.Header
	}
	_, uploadCT := multipartBody(t, nil, nil)
	targets := []target{
		{"sign-in API", "/api/v1/auth/login", "application/json", nil},
		{"sign-in form", "/login", "application/x-www-form-urlencoded", nil},
		{"JSON route", "/api/v1/tokens", "application/json", http.Header{"Authorization": {"Bearer " + token}}},
		{"upload API", "/api/v1/images", uploadCT, http.Header{"Authorization": {"Bearer " + token}}},
	}
	anonymous := tb.client(t)
	mem := watchMemory()
	for _, tg := range targets {
		for _, enc := range encodings {
			h := http.Header{"Content-Type": {tg.contentType}, "Content-Encoding": enc.encoding}
			for k, v := range tg.header {
				h[k] = v
			}
			res := anonymous.do(http.MethodPost, tg.path, bytes.NewReader(enc.body), h)
			require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, "%s with %s: %.300s", tg.name, enc.name, res.body)
			if strings.HasPrefix(tg.path, "/api/") {
				code, _ := res.apiError(t)
				require.Equal(t, "unsupported_encoding", code)
			}
			require.Contains(t, string(res.body), "Content-Encoding", "the refusal names the header")
		}
	}
	growth, allocated := mem.end()
	t.Logf("%d requests: heap grew by %.1f MB at most, %.1f MB allocated in all",
		len(targets)*len(encodings), float64(growth)/1e6, float64(allocated)/1e6)
	require.Less(t, growth, uint64(100e6), "heap growth")
	require.Less(t, allocated, uint64(100e6), "bytes allocated while the bombs were refused")

	// Nothing was signed in, stored or created; identity is accepted.
	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM images"))
	res := contributor.do(http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"plain"}`),
		http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"identity"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// rawConn is an HTTP/1.1 connection driven by hand, so that a test can send
// the headers and a little of a body, and read the answer without sending
// the rest.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func (tb *testBundle) dial(t testing.TB) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(tb.base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// send writes a request head (the request line and header lines, each
// ending in CRLF, without the blank line) and the first part of its body.
func (rc *rawConn) send(head string, body []byte) {
	rc.t.Helper()
	_ = rc.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.conn.Write(append([]byte(head+"\r\n"), body...))
	require.NoError(rc.t, err)
}

// read reads one answer, waiting at most 10 seconds.
func (rc *rawConn) read(method string) *response {
	rc.t.Helper()
	_ = rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	require.NoError(rc.t, err, "no answer while the body was still unsent")
	b, err := io.ReadAll(res.Body)
	require.NoError(rc.t, err)
	res.Body.Close()
	return &response{Response: res, body: b}
}

// closed reports whether the server closes the connection (within 5 s)
// rather than wait for more of the body or another request.
func (rc *rawConn) closed() bool {
	_ = rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func sessionCookies(t testing.TB, c *client) string {
	t.Helper()
	u, err := url.Parse(c.base)
	require.NoError(t, err)
	var parts []string
	for _, ck := range c.http.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	require.NotEmpty(t, parts)
	return strings.Join(parts, "; ")
}

// TestBodyRefusedBeforeRead: anonymous and under-privileged requests that
// announce a large body get their 401 or 403 after the client has sent only
// 16 KiB of it (the server reads the headers and at most a few KiB ahead,
// never the body), and the server then closes the connection rather than
// read the rest. A body over a JSON route's cap gets 413 the same way.
func TestBodyRefusedBeforeRead(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	contributor, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	cookies := sessionCookies(t, contributor)
	token := contributor.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "script"}).json(t)["token"].(string)
	_, uploadCT := multipartBody(t, nil, nil)
	sent := bytes.Repeat([]byte("a"), 16<<10)
	item := uuid.NewString()

	cases := []struct {
		name    string
		method  string
		path    string
		headers []string
		size    int64
		status  int
	}{
		{"anonymous form post of 400 MiB to the upload page", "POST", "/upload",
			[]string{"Content-Type: application/x-www-form-urlencoded"}, 400 << 20, http.StatusUnauthorized},
		{"anonymous multipart post of 400 MiB to the upload page", "POST", "/upload",
			[]string{"Content-Type: " + uploadCT, "Origin: " + tb.base}, 400 << 20, http.StatusUnauthorized},
		{"anonymous upload of 400 MiB to the API", "POST", "/api/v1/images",
			[]string{"Content-Type: " + uploadCT}, 400 << 20, http.StatusUnauthorized},
		{"anonymous review of 64 MiB", "POST", "/api/v1/review/" + item,
			[]string{"Content-Type: application/json"}, 64 << 20, http.StatusUnauthorized},
		{"anonymous review renewal of 64 MiB", "POST", "/api/v1/review/" + item + "/renew",
			[]string{"Content-Type: application/json"}, 64 << 20, http.StatusUnauthorized},
		{"contributor's review of 64 MiB, signed in", "POST", "/api/v1/review/" + item,
			[]string{"Content-Type: application/json", "Cookie: " + cookies}, 64 << 20, http.StatusForbidden},
		{"contributor's review of 64 MiB, with a token", "POST", "/api/v1/review/" + item,
			[]string{"Content-Type: application/json", "Authorization: Bearer " + token}, 64 << 20, http.StatusForbidden},
		{"contributor's label of 400 MiB (admins only)", "POST", "/api/v1/labels",
			[]string{"Content-Type: application/json", "Authorization: Bearer " + token}, 400 << 20, http.StatusForbidden},
		{"contributor's form post of 400 MiB to an admin page", "POST", "/admin/labels",
			[]string{"Content-Type: application/x-www-form-urlencoded", "Cookie: " + cookies}, 400 << 20, http.StatusForbidden},
		{"contributor's form post of 400 MiB to the upload page, no token: CSRF reads no streamed body", "POST", "/upload",
			[]string{"Content-Type: application/x-www-form-urlencoded", "Cookie: " + cookies}, 400 << 20, http.StatusForbidden},
		{"contributor's same-origin form post of 400 MiB to the upload page: not multipart", "POST", "/upload",
			[]string{"Content-Type: application/x-www-form-urlencoded", "Cookie: " + cookies, "Origin: " + tb.base}, 400 << 20, http.StatusUnsupportedMediaType},
		{"anonymous GET of a page with a 400 MiB body", "GET", "/account",
			[]string{"Content-Type: application/x-www-form-urlencoded"}, 400 << 20, http.StatusSeeOther},
		{"a bad token with a 400 MiB body", "POST", "/api/v1/auth/login",
			[]string{"Content-Type: application/json", "Authorization: Bearer nope"}, 400 << 20, http.StatusUnauthorized},
		{"2 MiB to a JSON route with a 1 MiB cap", "POST", "/api/v1/tokens",
			[]string{"Content-Type: application/json", "Authorization: Bearer " + token}, 2 << 20, http.StatusRequestEntityTooLarge},
		{"2 MiB to the sign-in form", "POST", "/login",
			[]string{"Content-Type: application/x-www-form-urlencoded"}, 2 << 20, http.StatusRequestEntityTooLarge},
		{"65 MiB review from a reviewer", "POST", "/api/v1/review/" + item,
			[]string{"Content-Type: application/json"}, 65 << 20, 0}, // filled in below
	}
	reviewer, _ := tb.userWithRole(t, "rita@example.com", auth.RoleReviewer)
	cases[len(cases)-1].headers = append(cases[len(cases)-1].headers, "Cookie: "+sessionCookies(t, reviewer))
	cases[len(cases)-1].status = http.StatusRequestEntityTooLarge

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := tb.dial(t)
			head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n",
				tc.method, tc.path, strings.TrimPrefix(tb.base, "http://"), tc.size, strings.Join(tc.headers, "\r\n"))
			start := time.Now()
			rc.send(head, sent)
			res := rc.read(tc.method)
			require.Equal(t, tc.status, res.StatusCode, "%.300s", res.body)
			if tc.status == http.StatusSeeOther {
				require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/login?next="))
			}
			require.Less(t, time.Since(start), 5*time.Second)
			require.True(t, rc.closed(), "the server must close rather than wait for (or read) the rest of the body")
		})
	}

	// A client that does not wait for the answer (most do not: they write
	// the whole body, then read) must still get it. Were the connection
	// closed with the body unread, what the client goes on sending would
	// meet a reset, its writes would fail and the answer would be lost; the
	// hub reads and drops the rest instead, and ends with a clean close.
	t.Run("a client that goes on sending after a 413 gets its answer and a clean end", func(t *testing.T) {
		rc := tb.dial(t)
		host := strings.TrimPrefix(tb.base, "http://")
		const size = 8 << 20
		rc.send(fmt.Sprintf("POST /api/v1/tokens HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n", host, token, size), sent)
		res := rc.read("POST")
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
		require.True(t, res.Close, "the answer says Connection: close")
		chunk := make([]byte, 64<<10)
		for left := size - len(sent); left > 0; left -= len(chunk) {
			_, err := rc.conn.Write(chunk[:min(left, len(chunk))])
			require.NoError(t, err, "the rest of the body, %d bytes before its end", left)
		}
		_ = rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := rc.br.ReadByte()
		require.ErrorIs(t, err, io.EOF, "the hub shuts its side after the answer: no reset")
	})

	t.Run("a small unread body is drained, and what it holds is not taken for a request", func(t *testing.T) {
		rc := tb.dial(t)
		host := strings.TrimPrefix(tb.base, "http://")
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		body := smuggled + strings.Repeat("x", 100<<10)
		rc.send(fmt.Sprintf("POST /api/v1/review/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", item, host, len(body)), []byte(body))
		require.Equal(t, http.StatusUnauthorized, rc.read("POST").StatusCode)
		rc.send("GET /healthz HTTP/1.1\r\nHost: "+host+"\r\n", nil)
		res := rc.read("GET")
		require.Equal(t, http.StatusOK, res.StatusCode, "the second answer is for /healthz: %s", res.body)
		require.JSONEq(t, `{"status":"ok"}`, string(res.body))
	})

	t.Run("a chunked body over the cap gets 413", func(t *testing.T) {
		rc := tb.dial(t)
		host := strings.TrimPrefix(tb.base, "http://")
		var body bytes.Buffer
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for range 17 { // 1 MiB and 64 KiB
			fmt.Fprintf(&body, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		body.WriteString("0\r\n\r\n")
		rc.send("POST /api/v1/tokens HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/json\r\nAuthorization: Bearer "+token+"\r\nTransfer-Encoding: chunked\r\n", body.Bytes())
		res := rc.read("POST")
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
		code, _ := res.apiError(t)
		require.Equal(t, "too_large", code)
	})

	t.Run("an upload's epilogue is not taken for a request", func(t *testing.T) {
		rc := tb.dial(t)
		host := strings.TrimPrefix(tb.base, "http://")
		mp, ct := multipartBody(t, photos(1, 77), nil)
		b, err := io.ReadAll(mp)
		require.NoError(t, err)
		// Past what the multipart reader reads ahead: empty lines, which an
		// HTTP parser skips before a request line, then a request.
		b = append(b, strings.Repeat("\r\n", 32<<10)+"GET /smuggled HTTP/1.1\r\nHost: "+host+"\r\n\r\n"...)
		rc.send(fmt.Sprintf("POST /api/v1/images HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n", host, ct, token, len(b)), b)
		require.Equal(t, http.StatusCreated, rc.read("POST").StatusCode)
		rc.send("GET /healthz HTTP/1.1\r\nHost: "+host+"\r\n", nil)
		res := rc.read("GET")
		require.Equal(t, http.StatusOK, res.StatusCode, "the second answer is for /healthz: %s", res.body)
		require.JSONEq(t, `{"status":"ok"}`, string(res.body))
	})

	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM labels WHERE name = 'x'"))
}

// TestBodyLimits: each route takes a body up to its own cap.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)

	// Just under 1 MiB of JSON is read (and then judged by the handler).
	pad := strings.Repeat(" ", maxSmallBody-64)
	res := admin.json(http.MethodPost, "/api/v1/labels", `{"name": "red panda"`+pad+`}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%.300s", res.body)
	// A review may be larger than 1 MiB: it reaches the handler, which
	// finds no such item.
	res = admin.json(http.MethodPost, "/api/v1/review/"+uuid.NewString(), `{"instances": []`+strings.Repeat(" ", 3<<20)+`}`)
	require.Equal(t, http.StatusNotFound, res.StatusCode, "%.300s", res.body)
	// A GET takes no body.
	res = admin.do(http.MethodGet, "/api/v1/me", strings.NewReader("{}"), nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%.300s", res.body)
}
