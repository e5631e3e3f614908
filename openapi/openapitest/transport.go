package openapitest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Transport is an http.RoundTripper that passes each request to base
// (http.DefaultTransport when nil) and holds every /api/v1 call to the
// description with Check, so that a test's own requests are checked
// however they are made: give a test's http.Client this transport, or
// put it behind a proxy that the program under test talks through.
//
// The request body is kept as the base transport sends it (not read
// ahead, so a test may stream a body the hub refuses part way), except a
// compressed one. A JSON answer is read whole before RoundTrip returns;
// any other answer (a zip, an image) is checked when its body is first
// read or closed, so that a download still streams.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, base: base}
}

// Client is an http.Client whose transport is Transport(t, nil).
func Client(t testing.TB) *http.Client {
	return &http.Client{Transport: Transport(t, nil)}
}

type transport struct {
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return tr.base.RoundTrip(req)
	}
	var sent *lockedBuffer
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		sent = &lockedBuffer{}
	case req.Header.Get("Content-Encoding") == "":
		// A RoundTripper must not change the request it is given: the
		// copy carries the body through a tee.
		sent = &lockedBuffer{}
		orig := req
		req = req.Clone(req.Context())
		req.Body = teeBody{Reader: io.TeeReader(orig.Body, sent), Closer: orig.Body}
	}
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if mt := mediaType(res.Header); mt == "application/json" || strings.HasSuffix(mt, "+json") {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			// A JSON answer cut short is the caller's to see, as
			// it would be without this transport; it is not held
			// to the description.
			res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
			return res, nil
		}
		tr.t.Helper()
		Check(tr.t, req, sent.snapshot(), res, b)
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res, nil
	}
	res.Body = &checkedBody{ReadCloser: res.Body, check: func(first []byte) {
		Check(tr.t, req, sent.snapshot(), res, first)
	}}
	return res, nil
}

// teeBody is a request body read through a tee and closed at its source.
type teeBody struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// checkedBody checks its call once, with the first bytes read (the check
// only needs to know whether there is a body), or none when it is closed
// unread.
type checkedBody struct {
	io.ReadCloser
	once  sync.Once
	check func(first []byte)
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 || err != nil {
		b.once.Do(func() { b.check(p[:n]) })
	}
	return n, err
}

func (b *checkedBody) Close() error {
	b.once.Do(func() { b.check(nil) })
	return b.ReadCloser.Close()
}

// lockedBuffer keeps what a request sent. The base transport may still be
// writing the body when the answer is in (a refusal before the end), so
// reads and writes take the lock.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// snapshot is a copy of what was sent so far; nil for no kept body.
func (l *lockedBuffer) snapshot() *bytes.Buffer {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.NewBuffer(bytes.Clone(l.buf.Bytes()))
}
