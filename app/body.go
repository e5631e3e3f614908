package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/problem"
)

// bodyPolicy is what a route accepts as a request body and how its CSRF
// check works. Each entry of the route table names one of the policies
// below, so everything about a route is on its line.
//
// The server streams every body (StreamRequestBody): before the handler
// only the headers and a few kilobytes are read. The role is checked first,
// then CSRF, and only then is a buffered route's body read, within its
// limit; a streamed route's handler reads and caps the body itself.
type bodyPolicy struct {
	// limit is the largest body read into memory before the handler.
	limit int
	// stream leaves the body unread for the handler, which reads it as a
	// stream with caps of its own (uploads).
	stream bool
	// csrf is how a state-changing browser request proves it comes from
	// this site.
	csrf csrfMode
}

// csrfMode says what csrfProtect asks of a state-changing request that has
// no bearer token. Every mode first refuses cross-origin requests (by
// Sec-Fetch-Site or Origin).
type csrfMode int

const (
	// csrfForm: a page form or htmx request carries the token, in the
	// X-CSRF-Token header or the _csrf field of a form body.
	csrfForm csrfMode = iota
	// csrfScript: an API call. A browser's call carries the token in the
	// header; a script's (no Origin, no Sec-Fetch-Site) needs none.
	csrfScript
	// csrfBrowser: the token in the header, or else a browser that says the
	// request is same-origin. For streamed bodies, whose form fields must
	// not be parsed here, and for riverui, which sends no token of ours.
	csrfBrowser
)

const (
	// maxSmallBody caps JSON and form bodies.
	maxSmallBody = 1 << 20
	// maxReviewBody caps a submitted review: hundreds of full-resolution
	// masks in COCO RLE can take several megabytes.
	maxReviewBody = 64 << 20
	// maxDrain is how much of an unread body is read and dropped after an
	// answer so that the connection can be kept; past it, it is closed.
	maxDrain = 1 << 20
)

// The policies of the route table.
var (
	// noBody: GET routes. A body is refused.
	noBody = bodyPolicy{limit: 0, csrf: csrfForm}
	// pageForm: a page's form post (application/x-www-form-urlencoded).
	pageForm = bodyPolicy{limit: maxSmallBody, csrf: csrfForm}
	// apiJSON: an API call with a small JSON body (or none).
	apiJSON = bodyPolicy{limit: maxSmallBody, csrf: csrfScript}
	// apiReview: a submitted review, large JSON.
	apiReview = bodyPolicy{limit: maxReviewBody, csrf: csrfScript}
	// pageUpload: the upload form, multipart, streamed by the handler.
	pageUpload = bodyPolicy{stream: true, csrf: csrfBrowser}
	// apiUpload: the upload API, multipart, streamed by the handler.
	apiUpload = bodyPolicy{stream: true, csrf: csrfScript}
	// apiStream: a raw body streamed by the handler (a trained artifact).
	apiStream = bodyPolicy{stream: true, csrf: csrfScript}
	// console: riverui's own API calls, small JSON without our token.
	console = bodyPolicy{limit: maxSmallBody, csrf: csrfBrowser}
)

// refuseEncoded answers 415 to a request with a Content-Encoding other than
// identity, from its headers alone. Fiber's c.Body() (and fasthttp's
// multipart parser) would decompress such a body into memory without any
// cap: a megabyte of gzip can hold gigabytes of zeros. No client of the hub
// needs to compress what it sends.
func refuseEncoded(c *fiber.Ctx) error {
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderContentEncoding) {
		for _, coding := range strings.Split(string(v), ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return problem.New(http.StatusUnsupportedMediaType, "unsupported_encoding", "",
					fmt.Sprintf("Request bodies must not be compressed: send the body as is, without the Content-Encoding header (it said %q).", string(v)))
			}
		}
	}
	return c.Next()
}

func tooLargeBody(limit int) *problem.Error {
	if limit == 0 {
		return problem.New(http.StatusRequestEntityTooLarge, "too_large", "", "This address takes no request body.")
	}
	return problem.New(http.StatusRequestEntityTooLarge, "too_large", "",
		fmt.Sprintf("The request body is larger than %s.", humanBytes(int64(limit))))
}

// readBody reads a buffered route's body into memory, within the route's
// limit, before its handler (or the CSRF check of a form) looks at it. A
// streamed route's body is left alone. Reading twice is a no-op.
func readBody(c *fiber.Ctx, p bodyPolicy) error {
	req := c.Request()
	if p.stream || !req.IsBodyStream() {
		return nil
	}
	if n := req.Header.ContentLength(); n > p.limit {
		closeAfterAnswer(c) // the unread body must not be taken for a request
		return tooLargeBody(p.limit)
	}
	b, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(p.limit)+1))
	if err != nil {
		closeAfterAnswer(c)
		return problem.BadInput("bad_body", "", "The request body could not be read.")
	}
	if len(b) > p.limit {
		closeAfterAnswer(c)
		return tooLargeBody(p.limit)
	}
	req.SetBody(b) // also ends the stream
	return nil
}

// receiveBody is the route middleware that reads the body by the policy.
func receiveBody(p bodyPolicy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := readBody(c, p); err != nil {
			return err
		}
		return c.Next()
	}
}

// countedReader counts what a handler read of a streamed body.
type countedReader struct {
	r io.Reader
	n int64
}

func (cr *countedReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

const localsBodyStream = "body_stream"

// bodyStream is a streamed route's request body, for its handler. What the
// handler reads of it is counted, so that finishBody knows what is left.
func bodyStream(c *fiber.Ctx) io.Reader {
	if cr, ok := c.Locals(localsBodyStream).(*countedReader); ok {
		return cr
	}
	rs := c.Context().RequestBodyStream()
	if rs == nil {
		return strings.NewReader("")
	}
	cr := &countedReader{r: rs}
	c.Locals(localsBodyStream, cr)
	return cr
}

// finishBody runs after every answer. fasthttp parses the next request on a
// connection from wherever the last one's body stopped being read, so a
// body that was not read to its end (an early refusal, a handler that
// stopped) would be taken for a request. Like net/http, a small rest is read
// and dropped, so that a client still sending gets the answer and keeps the
// connection; a large rest, or a chunked body nobody started to read, is cut
// off by closing the connection without reading it.
func finishBody(c *fiber.Ctx) {
	req := c.Request()
	if !req.IsBodyStream() || c.Context().Response.ConnectionClose() {
		return
	}
	size := req.Header.ContentLength()
	if size == 0 {
		return
	}
	var read int64
	if cr, ok := c.Locals(localsBodyStream).(*countedReader); ok {
		read = cr.n
	}
	rest := int64(size) - read
	if size < 0 { // chunked: the rest is unknown
		rest = -1
	}
	if rest > maxDrain || rest < 0 && read == 0 {
		closeAfterAnswer(c)
		return
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(req.BodyStream(), maxDrain+1)); err != nil || n > maxDrain {
		closeAfterAnswer(c)
	}
}

// How long, and for how many bytes, a connection closed with the rest of a
// request body unread goes on being read (and the bytes dropped) after the
// answer went out.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 16 << 20
)

// closeAfterAnswer closes the connection once the answer is sent, with a
// lingering close, as nginx does: a client still sending a body the hub
// will not read (too large, refused early) would otherwise meet a reset,
// and on a reset the kernel throws away what the client had received but
// not yet read, the answer with it: a phone uploading too much would see
// "connection reset" instead of the 413 that says why. So the hub first
// shuts its side for writing (the client sees the answer and the end),
// then reads and drops what still arrives, for a short time and a bounded
// number of bytes, and only then closes.
//
// fasthttp runs no hijack handler for a response that says "Connection:
// close" (it closes at once, the reset this is here to avoid), so the
// server is told to send nothing and the handler writes the answer itself,
// with that header, once the route and the error handler have made it.
func closeAfterAnswer(c *fiber.Ctx) {
	ctx := c.Context()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(conn net.Conn) {
		// ctx stays valid until this returns: fasthttp releases it after.
		defer conn.Close()
		ctx.Response.SetConnectionClose()
		_ = conn.SetWriteDeadline(time.Now().Add(lingerTime))
		w := bufio.NewWriter(conn)
		if err := ctx.Response.Write(w); err != nil || w.Flush() != nil {
			return
		}
		raw := conn
		if u, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn() // fasthttp's wrapper reads through its buffer
		}
		if cw, ok := raw.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, conn, lingerBytes)
	})
}
