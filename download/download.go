// Package download fetches a dataset version's zip from a hub to a file,
// as `imagehub download` does: streamed to OUT.part under a progress bar,
// resumed after a dropped connection or a killed command, verified (every
// entry's CRC, and every manifest row's image against its SHA-256), then
// renamed to OUT.
//
// Resuming: a request for a file that is partly on disk carries
// "Range: bytes=N-". A server that answers 206 from byte N is appended to.
// One that answers 200 (the hub streams a version's zip as it builds it,
// and does not take ranges) sends the whole zip again; its bytes are
// deterministic for a published version, so the first N are compared with
// the partial file's, and only what follows is written. Should they differ
// (the partial file is of something else), the file is cut where they
// part and the rest written from the new stream.
package download

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
)

// Options say what to download and where.
type Options struct {
	Base    string // the hub's URL
	Token   string // a premium token
	Dataset string // the dataset's id or name
	Version int
	Format  string   // "" for the hub's default (coco)
	Splits  []string // none for all
	Labels  []string // none for all
	Out     string   // the zip's path; OUT.part while it downloads

	// Retries is how many times a broken transfer is taken up again;
	// RetryWait the first wait, doubling each time (capped at a minute).
	Retries   int
	RetryWait time.Duration
	HTTP      *http.Client
	// Progress is where the progress bar and notes go (nil: nowhere);
	// the bar is redrawn every 200 ms on a Terminal, every 5 s elsewhere.
	Progress io.Writer
	Terminal bool
}

// Result is what was downloaded.
type Result struct {
	Bytes   int64
	Images  int // rows of the manifest, each checked
	Resumed int // times the transfer was taken up again
}

// Error is a failure the user can act on; Status is the HTTP status when
// the hub refused.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Run downloads, verifies and renames the zip.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	id, err := datasetID(ctx, o)
	if err != nil {
		return Result{}, err
	}
	q := url.Values{}
	if o.Format != "" {
		q.Set("format", o.Format)
	}
	if len(o.Splits) > 0 {
		q.Set("split", strings.Join(o.Splits, ","))
	}
	if len(o.Labels) > 0 {
		q.Set("labels", strings.Join(o.Labels, ","))
	}
	u := fmt.Sprintf("%s/api/v1/datasets/%s/versions/%d/download", strings.TrimRight(o.Base, "/"), url.PathEscape(id), o.Version)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	part := o.Out + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return Result{}, &Error{Message: fmt.Sprintf("cannot write %s: %v", part, err)}
	}
	defer f.Close()
	var res Result
	p := &progress{w: o.Progress, terminal: o.Terminal}
	wait := o.RetryWait
	for attempt := 0; ; attempt++ {
		have, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return res, fmt.Errorf("error reading %s: %w", part, err)
		}
		if have > 0 {
			p.note("resuming %s at %s", part, size(have))
			if attempt > 0 {
				res.Resumed++
			}
		}
		err = fetch(ctx, o, u, f, have, p)
		p.done()
		if err == nil {
			break
		}
		var fatal *Error
		if errors.As(err, &fatal) || ctx.Err() != nil || attempt >= o.Retries {
			if !errors.As(err, &fatal) {
				err = &Error{Message: fmt.Sprintf("the download broke off (%v); %s keeps what arrived: run the same command again to resume", err, part)}
			}
			return res, err
		}
		p.note("the transfer broke off (%v); trying again in %s (%d of %d)", err, wait, attempt+1, o.Retries)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		wait = min(2*wait, time.Minute)
	}
	if err := f.Sync(); err != nil {
		return res, &Error{Message: fmt.Sprintf("cannot write %s: %v", part, err)}
	}
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	res.Bytes = st.Size()
	n, err := Verify(part)
	if err != nil {
		_ = os.Remove(part)
		return res, &Error{Message: fmt.Sprintf("the downloaded zip is not sound, and was removed: %v", err)}
	}
	res.Images = n
	if err := f.Close(); err != nil {
		return res, &Error{Message: fmt.Sprintf("cannot write %s: %v", part, err)}
	}
	if err := os.Rename(part, o.Out); err != nil {
		return res, &Error{Message: fmt.Sprintf("cannot move %s to %s: %v", part, o.Out, err)}
	}
	return res, nil
}

// fetch makes one request and writes what it brings after the have bytes
// on disk. A non-nil *Error is final; any other error may pass.
func fetch(ctx context.Context, o Options, u string, f *os.File, have int64, p *progress) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &Error{Message: fmt.Sprintf("bad hub URL: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)):
		total := have + resp.ContentLength
		if resp.ContentLength < 0 {
			total = -1
		}
		p.start(total, have)
		return copyTo(f, resp.Body, have, p)
	case resp.StatusCode == http.StatusOK:
		// The whole zip comes again: its first have bytes are read
		// (and compared) too, so the bar starts at 0.
		p.start(resp.ContentLength, 0)
		return overlap(f, resp.Body, have, p)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("the hub answered %s", resp.Status)
	default:
		return refusal(resp, o)
	}
}

// refusal turns a 4xx into a message naming what to change.
func refusal(resp *http.Response, o Options) error {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	_ = json.Unmarshal(b, &body)
	msg := body.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(b))
	}
	var what string
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		what = "the hub refused the token (401): check --token, or make a new one with `imagehub tokens create`"
	case http.StatusForbidden:
		what = "the token's user may not download datasets (403): it takes the premium role"
	case http.StatusNotFound:
		what = fmt.Sprintf("no dataset %q with a version %d on this hub (404)", o.Dataset, o.Version)
	default:
		what = fmt.Sprintf("the hub refused the download (%s)", resp.Status)
	}
	if msg != "" {
		what += ": " + msg
	}
	return &Error{Status: resp.StatusCode, Message: what}
}

// overlap reads a whole stream whose first have bytes should be on disk
// already: it compares them, cuts the file where they differ, and writes
// the rest.
func overlap(f *os.File, body io.Reader, have int64, p *progress) error {
	if have > 0 {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return &Error{Message: fmt.Sprintf("cannot read %s: %v", f.Name(), err)}
		}
		net, disk := make([]byte, 64<<10), make([]byte, 64<<10)
		var at int64
		for at < have {
			n, rerr := io.ReadFull(body, net[:min(int64(len(net)), have-at)])
			if _, err := io.ReadFull(f, disk[:n]); err != nil {
				return &Error{Message: fmt.Sprintf("cannot read %s: %v", f.Name(), err)}
			}
			if i := firstDiff(net[:n], disk[:n]); i >= 0 {
				p.note("the hub's bytes differ from %s's from byte %d: replacing what follows", f.Name(), at+int64(i))
				if err := f.Truncate(at + int64(i)); err != nil {
					return &Error{Message: fmt.Sprintf("cannot write %s: %v", f.Name(), err)}
				}
				if _, err := f.Seek(at+int64(i), io.SeekStart); err != nil {
					return err
				}
				if _, err := f.Write(net[i:n]); err != nil {
					return &Error{Message: fmt.Sprintf("cannot write %s: %v", f.Name(), err)}
				}
				return copyTo(f, body, at+int64(n), p)
			}
			at += int64(n)
			p.show(at)
			if rerr != nil {
				return rerr
			}
		}
	}
	return copyTo(f, body, have, p)
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// copyTo appends body to f, which holds at bytes. A write that fails
// (a full disk) is final; a read that fails may pass.
func copyTo(f *os.File, body io.Reader, at int64, p *progress) error {
	if _, err := f.Seek(at, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return &Error{Message: fmt.Sprintf("cannot write %s: %v", f.Name(), err)}
			}
			at += int64(n)
			p.show(at)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// datasetID is o.Dataset when it is an id, else the id of the dataset of
// that name.
func datasetID(ctx context.Context, o Options) (string, error) {
	if _, err := uuid.Parse(o.Dataset); err == nil {
		return o.Dataset, nil
	}
	cursor := ""
	for {
		u := strings.TrimRight(o.Base, "/") + "/api/v1/datasets?limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", &Error{Message: fmt.Sprintf("bad hub URL: %v", err)}
		}
		req.Header.Set("Authorization", "Bearer "+o.Token)
		resp, err := o.HTTP.Do(req)
		if err != nil {
			return "", &Error{Message: fmt.Sprintf("the hub at %s does not answer: %v", o.Base, err)}
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return "", refusal(resp, o)
		}
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return "", &Error{Message: fmt.Sprintf("the hub's list of datasets is not JSON: %v", err)}
		}
		for _, d := range page.Items {
			if d.Name == o.Dataset {
				return d.ID, nil
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return "", &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no dataset named %q on this hub", o.Dataset)}
		}
		cursor = *page.NextCursor
	}
}

// Verify reads every entry of the zip at p (archive/zip checks each CRC),
// and checks each row of its manifest.csv against its image: present, and
// of the SHA-256 the row names (an augmented copy, which the row names by
// its file, only present). It returns the manifest's rows.
func Verify(p string) (int, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return 0, fmt.Errorf("not a zip: %w", err)
	}
	defer zr.Close()
	hashes := map[string]string{} // entry name → sha256 of its bytes
	var manifest []byte
	for _, e := range zr.File {
		rc, err := e.Open()
		if err != nil {
			return 0, fmt.Errorf("entry %s: %w", e.Name, err)
		}
		h := sha256.New()
		var w io.Writer = h
		var mb bytes.Buffer
		if e.Name == "manifest.csv" {
			w = io.MultiWriter(h, &mb)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("entry %s: %w", e.Name, err)
		}
		hashes[e.Name] = hex.EncodeToString(h.Sum(nil))
		if e.Name == "manifest.csv" {
			manifest = mb.Bytes()
		}
	}
	if manifest == nil {
		return 0, errors.New("the zip has no manifest.csv")
	}
	// Images by their stem, wherever the format puts them (images/,
	// images/<split>/, JPEGImages/…).
	byStem := map[string]string{}
	for name := range hashes {
		stem := strings.TrimSuffix(path.Base(name), path.Ext(name))
		if len(stem) == 64 && !strings.HasPrefix(name, "masks/") && !strings.HasPrefix(name, "labels/") {
			byStem[stem] = name
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(manifest)).ReadAll()
	if err != nil || len(rows) == 0 {
		return 0, fmt.Errorf("manifest.csv is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	si, ok := col["sha256"]
	if !ok {
		return 0, errors.New("manifest.csv has no sha256 column")
	}
	fi, hasFile := col["file"]
	for n, r := range rows[1:] {
		sha := r[si]
		if hasFile && r[fi] != "" && !strings.Contains(r[fi], sha) {
			if _, ok := hashes[r[fi]]; !ok {
				return 0, fmt.Errorf("manifest row %d names %s, which the zip lacks", n+1, r[fi])
			}
			continue
		}
		name, ok := byStem[sha]
		if !ok {
			return 0, fmt.Errorf("manifest row %d: the zip has no image %s", n+1, sha)
		}
		if hashes[name] != sha {
			return 0, fmt.Errorf("%s: its bytes hash to %s, not the %s the manifest says", name, hashes[name], sha)
		}
	}
	return len(rows) - 1, nil
}

// progress is the transfer's bar (progressbar: bytes, rate, and the share
// when the length is known), with notes printed on their own lines between
// its redraws. Nothing is shown when w is nil (--quiet).
type progress struct {
	w        io.Writer
	terminal bool
	bar      *progressbar.ProgressBar
	from     int64 // the file's size when the bar started
}

// start shows a new bar for one response: total bytes of the file (-1
// when unknown), of which from are on disk already and not sent again.
//
// A resumed bar counts what this response brings, and names where it
// took up: progressbar (v3.19) can only start at an offset by adding it,
// which its rolling rate would count as bytes of the first half second
// (a rate of GB/s for the next five).
func (p *progress) start(total, from int64) {
	if p.w == nil {
		return
	}
	p.done()
	desc := "downloading"
	if from > 0 {
		desc = "resumed at " + size(from)
		if total > 0 {
			desc += " of " + size(total)
			total -= from
		}
	}
	p.from = from
	// Redrawn often on a terminal; elsewhere (a log) now and then.
	every := 200 * time.Millisecond
	if !p.terminal {
		every = 5 * time.Second
	}
	p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(every),
		// No spinner of its own: with the length unknown it would
		// redraw from a goroutine of its own, between the notes.
		progressbar.OptionSetSpinnerChangeInterval(0))
	_ = p.bar.RenderBlank()
}

// show moves the bar to at bytes of the file.
func (p *progress) show(at int64) {
	if p.bar != nil {
		_ = p.bar.Set64(at - p.from)
	}
}

// note prints a line over the bar, which is drawn again below it.
func (p *progress) note(format string, a ...any) {
	if p.w == nil {
		return
	}
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

// done stops the bar and erases it: its last drawing may be older than
// the throttle, and what follows (a note, the result) says where it
// ended.
func (p *progress) done() {
	if p.bar == nil {
		return
	}
	_ = p.bar.Exit()
	_ = p.bar.Clear()
	p.bar = nil
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
