// Package inference is the hub's client of remote inference workers: it
// sends an image to a model over the Open Inference Protocol (KServe V2 REST,
// optionally with Triton's binary tensor extension) and turns the answer into
// instances (label, score, COCO RLE mask, box, area), after checking every
// rule of the segmentation convention (PROTOCOL.md).
//
// Every failure is classified for the caller, who decides what to do with
// it: *Retryable (timeouts, connection errors, 5xx other than 503), *Busy
// (429 and 503) and *Contract (an answer that breaks the protocol or the
// convention, or a request refused with a 4xx), all usable with errors.As;
// Kind names the class for metrics. A canceled context gives an error that
// wraps context.Canceled. Segment and SegmentBatch (several images in one
// request, docs/batching.md) return instances only when the whole answer
// is valid, never part of one.
//
// The Client holds configuration only. Choosing endpoints, counting
// capacity and retrying belong to the caller.
package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
)

// Defaults of the Client's caps.
const (
	DefaultMaxResponseBytes = 256 << 20
	DefaultMaxInstances     = 100
	maxMetadataBytes        = 1 << 20
	maxErrorBytes           = 4 << 10
	maxLabelBytes           = 256
)

// Client talks to inference servers. Its fields are read-only once it is in
// use; one Client serves any number of goroutines.
type Client struct {
	HTTP *http.Client
	// MaxResponseBytes caps an answer's body (dense masks are large).
	MaxResponseBytes int64
	// MaxInstances caps the instances of one answer when Expect does not.
	MaxInstances int
}

// New returns a Client using hc, or a client with a two-minute timeout when
// hc is nil. Callers set deadlines per call with the context.
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{HTTP: hc, MaxResponseBytes: DefaultMaxResponseBytes, MaxInstances: DefaultMaxInstances}
}

// Endpoint is one model on one server.
type Endpoint struct {
	Base    string // server URL, e.g. http://gpu-1:8000
	Model   string
	Version string // "" for the server's choice
	// Binary sends and receives tensors with the binary extension; use it
	// whenever ServerMetadata lists binary_tensor_data. Triton needs it: in
	// JSON it takes BYTES strings as they are, ignoring the base64
	// content_type that JSON mode uses (the MLServer convention).
	Binary bool
	// SkipHints leaves LABEL_HINTS out, for a model whose metadata lacks it
	// (see AcceptsLabelHints); servers such as Triton refuse unknown inputs.
	SkipHints bool
	// Layout says how to read the model: the hub's convention (the zero
	// value) or a stock export whose tensors the hub makes and decodes
	// itself (package layout).
	Layout layout.Params
	// Headers go on every request to the endpoint (metadata, readiness,
	// inference); they never appear in an error.
	Headers Headers
}

// Expect is what the hub knows of the image and accepts in an answer.
type Expect struct {
	Height, Width int // the image's size; every mask must have it
	// KnownLabel maps a label the model returns to the hub's label name,
	// reporting false for a label the hub does not know. nil accepts every
	// label as it is.
	KnownLabel func(string) (string, bool)
	// MaxInstances caps N; 0 takes the Client's cap.
	MaxInstances int
}

// Instance is one proposed object.
type Instance struct {
	Label string
	Score float32
	Mask  mask.RLE
	BBox  [4]int // [x, y, w, h], as pycocotools computes it from the RLE
	Area  int
	// ModelVersion is the version the model said made the instance, when
	// its protocol says one (Label Studio's model_version); "" otherwise.
	ModelVersion string
}

// Segment sends one image (and the contributor's labels as LABEL_HINTS) to
// ep and returns the instances found, in the server's order: SegmentBatch
// with one item. Instances with an empty mask propose nothing and are left
// out. For a stock layout the hub makes the model's input from the image
// and decodes its outputs (segmentLayout); hints are not sent, as such
// models take none.
func (c *Client) Segment(ctx context.Context, ep Endpoint, image []byte, hints []string, want Expect) ([]Instance, error) {
	out, err := c.SegmentBatch(ctx, ep, []Item{{Image: image, Hints: hints, Want: want}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// infer posts req to u, the model's infer URL, and decodes the answer,
// returning it with the answer's status for error messages. The caller
// checks the answer's id.
func (c *Client) infer(ctx context.Context, ep Endpoint, u string, req *oip.InferRequest) (*oip.InferResponse, int, error) {
	body, err := oip.EncodeRequest(req, ep.Binary)
	if err != nil {
		return nil, 0, fmt.Errorf("inference: error encoding the request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body.Bytes))
	if err != nil {
		return nil, 0, fmt.Errorf("inference: error making the request: %w", err)
	}
	ep.Headers.apply(hreq)
	body.SetHeaders(hreq.Header)
	resp, data, err := c.do(ctx, hreq, c.maxResponse())
	if err != nil {
		return nil, 0, ep.Headers.scrub(err)
	}
	jsonLen, err := oip.JSONLength(resp.Header, len(data))
	if err != nil {
		return nil, 0, contractf(u, resp.StatusCode, "%v", err)
	}
	ans, err := oip.DecodeResponse(data, jsonLen, oip.Limits{MaxBodyBytes: c.maxResponse()})
	if err != nil {
		return nil, 0, contractf(u, resp.StatusCode, "the answer is not a valid inference response: %v", err)
	}
	return ans, resp.StatusCode, nil
}

// maxInstances is the cap on the instances of one image.
func (c *Client) maxInstances(want Expect) int {
	maxN := want.MaxInstances
	if maxN <= 0 {
		maxN = c.MaxInstances
	}
	if maxN <= 0 {
		maxN = DefaultMaxInstances
	}
	return maxN
}

func (c *Client) maxResponse() int64 {
	if c.MaxResponseBytes > 0 {
		return c.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

// instances checks an answer to a request of len(wants) images against
// the convention and returns each image's instances, split by BATCH_INDEX,
// or a message saying what is wrong. maxN caps each image's instances.
func instances(ans *oip.InferResponse, id string, wants []Expect, maxN []int) ([][]Instance, string) {
	if ans.ID != id {
		return nil, fmt.Sprintf("the answer's id is %q, the request's was %q", clip(ans.ID), id)
	}
	masks, scores, labels := ans.Output("MASKS"), ans.Output("SCORES"), ans.Output("LABELS")
	for i, t := range []*oip.Tensor{masks, scores, labels} {
		if t == nil {
			return nil, fmt.Sprintf("output %s is missing", [...]string{"MASKS", "SCORES", "LABELS"}[i])
		}
	}
	if scores.Datatype != oip.FP32 || len(scores.Shape) != 1 {
		return nil, fmt.Sprintf("output SCORES is %s %s; it must be FP32 [N]", scores.Datatype, shape(scores.Shape))
	}
	n := scores.Shape[0]
	if labels.Datatype != oip.BYTES || len(labels.Shape) != 1 || labels.Shape[0] != n {
		return nil, fmt.Sprintf("output LABELS is %s %s; it must be BYTES [%d], one per score", labels.Datatype, shape(labels.Shape), n)
	}
	dense := masks.Datatype == oip.UINT8 || masks.Datatype == oip.BOOL
	switch {
	case masks.Datatype == oip.BYTES && len(masks.Shape) == 1 && masks.Shape[0] == n:
	case dense && len(masks.Shape) == 3 && masks.Shape[0] == n:
		// Dense masks share one [H, W]: a batch must be of one size.
		for b, want := range wants {
			if masks.Shape[1] != int64(want.Height) || masks.Shape[2] != int64(want.Width) {
				return nil, fmt.Sprintf("output MASKS is %s but %s is %d×%d (h×w): the masks must be [%d, %d, %d]",
					shape(masks.Shape), which(b, len(wants)), want.Height, want.Width, n, want.Height, want.Width)
			}
		}
	default:
		return nil, fmt.Sprintf("output MASKS is %s %s; it must be BYTES [%d] of COCO RLE, or UINT8 or BOOL [%d, %d, %d]",
			masks.Datatype, shape(masks.Shape), n, n, wants[0].Height, wants[0].Width)
	}
	batch := make([]int32, n) // every instance is image 0's unless BATCH_INDEX says
	if bi := ans.Output("BATCH_INDEX"); bi != nil {
		idx, err := bi.Int32s()
		if err != nil || len(bi.Shape) != 1 || int64(len(idx)) != n {
			return nil, fmt.Sprintf("output BATCH_INDEX is %s %s; it must be INT32 [%d]", bi.Datatype, shape(bi.Shape), n)
		}
		for i, b := range idx {
			if b < 0 || int(b) >= len(wants) {
				return nil, fmt.Sprintf("BATCH_INDEX element %d is %d, but %d image(s) were sent", i, b, len(wants))
			}
		}
		batch = idx
	} else if len(wants) > 1 && n > 0 {
		return nil, fmt.Sprintf("output BATCH_INDEX is missing: %d images were sent, and the answer must say which image each instance belongs to", len(wants))
	}
	count := make([]int, len(wants))
	for _, b := range batch {
		count[b]++
	}
	for b, c := range count {
		if c > maxN[b] {
			if len(wants) == 1 {
				return nil, fmt.Sprintf("the answer has %d instances, more than the %d allowed", c, maxN[b])
			}
			return nil, fmt.Sprintf("the answer has %d instances for image %d, more than the %d allowed", c, b, maxN[b])
		}
	}
	sc, err := scores.Float32s()
	if err != nil {
		return nil, err.Error()
	}
	out := make([][]Instance, len(wants))
	for b := range out {
		out[b] = make([]Instance, 0, count[b])
	}
	var hw int
	if dense {
		hw = int(masks.Shape[1] * masks.Shape[2])
	}
	for i := range int(n) {
		b := batch[i]
		want := wants[b]
		s := sc[i]
		if math.IsNaN(float64(s)) || s < 0 || s > 1 {
			return nil, fmt.Sprintf("SCORES element %d is %v; a score must be a number in [0, 1]", i, s)
		}
		raw := labels.Elems[i]
		if len(raw) == 0 || len(raw) > maxLabelBytes || !utf8.Valid(raw) {
			return nil, fmt.Sprintf("LABELS element %d must be 1 to %d bytes of UTF-8", i, maxLabelBytes)
		}
		label := string(raw)
		if want.KnownLabel != nil {
			name, ok := want.KnownLabel(label)
			if !ok {
				return nil, fmt.Sprintf("LABELS element %d is %q, a label the hub does not know", i, clip(label))
			}
			label = name
		}
		var rle mask.RLE
		if dense {
			pix := masks.Raw[i*hw : (i+1)*hw]
			for _, v := range pix {
				if v > 1 {
					return nil, fmt.Sprintf("MASKS element %d holds the value %d; a dense mask holds only 0 and 1", i, v)
				}
			}
			rle = mask.Encode(&mask.Bitmap{W: want.Width, H: want.Height, Pix: pix})
		} else {
			if err := json.Unmarshal(masks.Elems[i], &rle); err != nil {
				return nil, fmt.Sprintf("MASKS element %d is not a COCO RLE JSON object: %v", i, err)
			}
			if rle.Size != [2]int{want.Height, want.Width} {
				return nil, fmt.Sprintf("MASKS element %d has size %s but %s is [%d, %d] ([height, width])", i, shape([]int64{int64(rle.Size[0]), int64(rle.Size[1])}), which(int(b), len(wants)), want.Height, want.Width)
			}
		}
		area, err := rle.Area()
		if err != nil {
			return nil, fmt.Sprintf("MASKS element %d is not a valid mask: %v", i, err)
		}
		if area == 0 {
			continue
		}
		box, err := rle.BBox()
		if err != nil {
			return nil, fmt.Sprintf("MASKS element %d is not a valid mask: %v", i, err)
		}
		out[b] = append(out[b], Instance{Label: label, Score: s, Mask: rle, BBox: box, Area: area})
	}
	return out, ""
}

// which names image b of a request of n images in a message.
func which(b, n int) string {
	if n == 1 {
		return "the image"
	}
	return fmt.Sprintf("image %d", b)
}

// Ready reports nil when the server at ep.Base answers 200 to its
// readiness probe; only the status counts, as bodies differ between
// servers. Only Base and Headers of ep are used.
func (c *Client) Ready(ctx context.Context, ep Endpoint) error {
	u, err := serverURL(ep.Base, "/v2/health/ready")
	if err != nil {
		return err
	}
	_, err = c.get(ctx, ep, u, nil)
	return err
}

// ModelReady reports nil when the server says ep's model is ready.
func (c *Client) ModelReady(ctx context.Context, ep Endpoint) error {
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/ready")
	if err != nil {
		return err
	}
	_, err = c.get(ctx, ep, u, nil)
	return err
}

// ServerMetadata reads GET {base}/v2, whose extensions say whether the
// binary form can be used. Only Base and Headers of ep are used.
func (c *Client) ServerMetadata(ctx context.Context, ep Endpoint) (*oip.ServerMetadata, error) {
	u, err := serverURL(ep.Base, "/v2")
	if err != nil {
		return nil, err
	}
	var m oip.ServerMetadata
	if _, err := c.get(ctx, ep, u, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ModelMetadata reads ep's model's metadata, to check with CheckLayout.
func (c *Client) ModelMetadata(ctx context.Context, ep Endpoint) (*oip.ModelMetadata, error) {
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "")
	if err != nil {
		return nil, err
	}
	var m oip.ModelMetadata
	if _, err := c.get(ctx, ep, u, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// get fetches u with ep's headers and decodes its JSON into v unless v is
// nil.
func (c *Client) get(ctx context.Context, ep Endpoint, u string, v any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("inference: error making the request: %w", err)
	}
	ep.Headers.apply(req)
	resp, data, err := c.do(ctx, req, maxMetadataBytes)
	if err != nil {
		return nil, ep.Headers.scrub(err)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return nil, contractf(u, resp.StatusCode, "the answer is not the expected JSON: %v", err)
		}
	}
	return resp, nil
}

// do sends req and reads a 200 answer's body, classifying every failure.
func (c *Client) do(ctx context.Context, req *http.Request, maxBody int64) (*http.Response, []byte, error) {
	u := req.URL.String()
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, transportError(ctx, u, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, statusError(ctx, u, resp)
	}
	data, err := oip.ReadBody(resp.Body, maxBody)
	if errors.Is(err, oip.ErrTooLarge) {
		return nil, nil, contractf(u, resp.StatusCode, "the answer is larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, nil, transportError(ctx, u, resp.StatusCode, err)
	}
	return resp, data, nil
}

// transportError classifies a failure to get an answer: the caller's
// cancellation is passed on as it is, everything else may pass.
func transportError(ctx context.Context, u string, status int, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("inference %s: %w", u, ctx.Err())
	}
	return &Retryable{URL: u, Status: status, Err: err}
}

// statusError classifies a non-200 answer by its status.
func statusError(ctx context.Context, u string, resp *http.Response) error {
	msg := errorMessage(resp.Body)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return &Busy{URL: u, Status: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Message: msg}
	case code >= 500 || code == http.StatusRequestTimeout:
		return &Retryable{URL: u, Status: code, Err: errors.New(msg)}
	case code >= 400:
		return contractf(u, code, "the server refused the request with status %d: %s", code, msg)
	default:
		return contractf(u, code, "unexpected status %d: %s", code, msg)
	}
}

// errorMessage reads the {"error": "…"} of a failed answer, or the start of
// whatever body came instead.
func errorMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBytes))
	var e oip.ErrorBody
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return clip(e.Error)
	}
	if len(b) == 0 {
		return "(no message)"
	}
	return clip(strings.ToValidUTF8(string(b), "?"))
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// clip shortens text from a server for a message.
func clip(s string) string {
	const n = 300
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func serverURL(base, path string) (string, error) {
	b, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "" {
		return "", fmt.Errorf("inference: endpoint %q is not an http(s) URL", base)
	}
	return b.String() + path, nil
}

func modelURL(base, model, version, suffix string) (string, error) {
	if model == "" {
		return "", errors.New("inference: no model named")
	}
	p := "/v2/models/" + url.PathEscape(model)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return serverURL(base, p+suffix)
}

// requestOutputs asks for the named outputs, in binary when ep takes it.
func requestOutputs(ep Endpoint, names ...string) []oip.RequestedOutput {
	out := make([]oip.RequestedOutput, 0, len(names))
	for _, name := range names {
		o := oip.RequestedOutput{Name: name}
		if ep.Binary {
			o.Parameters = oip.Parameters{oip.ParamBinaryData: true}
		}
		out = append(out, o)
	}
	return out
}
