package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
)

// loadSettings are the knobs of BenchmarkLoad, read from the environment
// so that `make load` can be pointed at other sizes.
type loadSettings struct {
	duration  time.Duration // LOAD_DURATION: how long the clients send requests
	uploaders int           // LOAD_UPLOADERS: contributors uploading in a loop
	reviewers int           // LOAD_REVIEWERS: reviewers leasing and submitting in a loop
	drain     time.Duration // LOAD_DRAIN: how long to wait afterwards for ingest to finish
	photos    int           // LOAD_PHOTOS: photos made before the clock starts (more are made on the way)
}

// envDuration reads a positive duration from the environment variable
// name, def when it is unset.
func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive duration such as 60s", name, v)
	}
	return d
}

func readLoadSettings(tb testing.TB) loadSettings {
	tb.Helper()
	dur := func(name string, def time.Duration) time.Duration { return envDuration(tb, name, def) }
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100_000 {
			tb.Fatalf("%s=%q: want a count from 0 to 100000", name, v)
		}
		return n
	}
	s := loadSettings{
		duration:  dur("LOAD_DURATION", 60*time.Second),
		uploaders: num("LOAD_UPLOADERS", 200),
		reviewers: num("LOAD_REVIEWERS", 32),
		drain:     dur("LOAD_DRAIN", 2*time.Minute),
	}
	// Enough photos for the rate this hub reaches on a small machine; past
	// them the uploaders draw their own, which costs the run some CPU.
	s.photos = num("LOAD_PHOTOS", min(20_000, int(s.duration.Seconds())*200))
	if s.uploaders == 0 {
		tb.Fatal("LOAD_UPLOADERS=0: the load needs at least one uploader")
	}
	return s
}

// Upload loop bounds besides the clock: a request never waits longer than
// loadRequestTimeout, and no uploader sends more than loadMaxRequests.
const (
	loadRequestTimeout = 60 * time.Second
	loadMaxRequests    = 100_000
	loadWorkerLatency  = 50 * time.Millisecond
	loadModelCapacity  = 16
	loadReviewIdle     = 100 * time.Millisecond // a reviewer's pause after 204
)

// Route names in the table, as the route table writes them.
const (
	routeUpload     = "POST /api/v1/images"
	routeReviewNext = "POST /api/v1/review/next"
	routeReviewPost = "POST /api/v1/review/{item_id}"
)

var loadRoutes = []string{routeUpload, routeReviewNext, routeReviewPost}

// BenchmarkLoad runs `make load`: LOAD_UPLOADERS contributors (200) and
// LOAD_REVIEWERS reviewers (32) for LOAD_DURATION (60s) against a real
// `imagehub serve` process with its own database and blob folder, and a
// separate `imagehub worker --synthetic --simulate-latency 50ms` registered
// as the model. It prints a table of requests per second, p50/p99 latency
// per route, 5xx, uploads lost and reviews lost (both checked in the
// database and blob store afterwards) and the serve process's peak RSS.
func BenchmarkLoad(b *testing.B) {
	set := readLoadSettings(b)
	for b.Loop() {
		r := runLoad(b, set)
		r.print(os.Stdout, set)
		b.ReportMetric(r.overallRate(), "req/s")
		b.ReportMetric(float64(r.uploadedFiles)/r.elapsed.Seconds(), "files/s")
		b.ReportMetric(r.routes[routeUpload].quantile(0.99).Seconds()*1000, "upload-p99-ms")
		b.ReportMetric(float64(r.fiveXX()), "5xx")
		b.ReportMetric(float64(r.lostUploads), "uploads-lost")
		b.ReportMetric(float64(r.lostReviews), "reviews-lost")
		b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-RSS-MB")
		if r.fiveXX() > 0 || r.lostUploads > 0 || r.lostReviews > 0 {
			b.Errorf("goal missed: %d 5xx, %d uploads lost, %d reviews lost (the table's lost: and sample: lines say which)", r.fiveXX(), r.lostUploads, r.lostReviews)
		}
	}
}

// loadUser is an account of the benchmark with its API token.
type loadUser struct {
	id    uuid.UUID
	token string
}

// loadAccounts creates the admin, the contributors and the reviewers
// straight in the database, with their roles given outright (no first-admin
// rule is involved), and an API token each. One bcrypt hash serves every
// account: nobody signs in with a password here.
func loadAccounts(ctx context.Context, pool *pgxpool.Pool, contributors, reviewers int) (admin loadUser, ups, revs []loadUser, err error) {
	hash, err := auth.NewPasswords(0).Hash("a long load-test password")
	if err != nil {
		return admin, nil, nil, err
	}
	accounts := account.NewService(pool, account.Limits{})
	create := func(email string, role auth.Role) (loadUser, error) {
		var u loadUser
		err := pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING id`,
			email, strings.Split(email, "@")[0], hash, string(role)).Scan(&u.id)
		if err != nil {
			return u, fmt.Errorf("error creating %s: %w", email, err)
		}
		u.token, _, err = accounts.CreateToken(ctx, u.id, account.NewToken{Name: "load"})
		return u, err
	}
	if admin, err = create("load-admin@example.com", auth.RoleAdmin); err != nil {
		return admin, nil, nil, err
	}
	for i := range contributors {
		u, err := create(fmt.Sprintf("uploader-%03d@example.com", i), auth.RoleContributor)
		if err != nil {
			return admin, nil, nil, err
		}
		ups = append(ups, u)
	}
	for i := range reviewers {
		u, err := create(fmt.Sprintf("reviewer-%03d@example.com", i), auth.RoleReviewer)
		if err != nil {
			return admin, nil, nil, err
		}
		revs = append(revs, u)
	}
	return admin, ups, revs, nil
}

// routeStats are one route's answers: latencies of every answer, and
// counts by status class.
type routeStats struct {
	latencies []time.Duration
	byStatus  map[int]int
	errors    int // no answer: connection refused, reset, timed out
}

func (s *routeStats) add(status int, d time.Duration, err error) {
	if s.byStatus == nil {
		s.byStatus = map[int]int{}
	}
	if err != nil {
		s.errors++
		return
	}
	s.latencies = append(s.latencies, d)
	s.byStatus[status]++
}

func (s *routeStats) merge(o *routeStats) {
	if s.byStatus == nil {
		s.byStatus = map[int]int{}
	}
	s.latencies = append(s.latencies, o.latencies...)
	for k, v := range o.byStatus {
		s.byStatus[k] += v
	}
	s.errors += o.errors
}

func (s *routeStats) count(lo, hi int) int {
	n := 0
	for k, v := range s.byStatus {
		if k >= lo && k <= hi {
			n += v
		}
	}
	return n
}

// quantile of the sorted latencies (nearest rank).
func (s *routeStats) quantile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(s.latencies))+0.999999) - 1
	return s.latencies[min(max(i, 0), len(s.latencies)-1)]
}

// client is one goroutine's requests, merged at the end so that the loops
// never contend on a lock.
type client struct {
	routes map[string]*routeStats
	// first answers that were 5xx or unexpected, for the report
	samples []string
	// answers by the X-Served-By header a load balancer in front adds
	// (empty without one), all and 5xx only
	servedBy, fiveXXBy map[string]int
	// the local addresses of the connections of requests that got no
	// answer ("" when none was made)
	unanswered   []string
	unansweredAt []time.Time
	// the review leases this client was given, in order
	leases []leaseSpan
}

// leaseSpan is one review lease as a reviewer saw it: from the answer of
// POST /api/v1/review/next to the sending of its submission (zero when none
// was sent), bounded by the lease's expiry.
type leaseSpan struct {
	item      uuid.UUID
	reviewer  uuid.UUID
	got       time.Time // the lease's answer arrived: the lease was held by then
	submitted time.Time // the submission was sent: the lease was held until then at least
	expires   time.Time
	acked     bool // the submission was answered 200
}

func newClient() *client {
	c := &client{routes: map[string]*routeStats{}, servedBy: map[string]int{}, fiveXXBy: map[string]int{}}
	for _, r := range loadRoutes {
		c.routes[r] = &routeStats{}
	}
	return c
}

func (c *client) note(route string, status int, body []byte, err error) {
	if len(c.samples) >= 3 {
		return
	}
	if err != nil {
		c.samples = append(c.samples, fmt.Sprintf("%s: %v", route, err))
		return
	}
	c.samples = append(c.samples, fmt.Sprintf("%s: %d %.300s", route, status, body))
}

// do sends one request and records its latency under route. The body is
// read whole, so the connection goes back to the pool.
func (c *client) do(hc *http.Client, route string, req *http.Request) (int, []byte, error) {
	start := time.Now()
	// The connection's local address names it in a load balancer's log.
	var local string
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { local = ci.Conn.LocalAddr().String() },
	}))
	res, err := hc.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	d := time.Since(start)
	status := 0
	if res != nil {
		status = res.StatusCode
		by := res.Header.Get("X-Served-By")
		c.servedBy[by]++
		if status >= 500 {
			c.fiveXXBy[by]++
		}
	}
	c.routes[route].add(status, d, err)
	if err != nil {
		c.unanswered = append(c.unanswered, local)
		c.unansweredAt = append(c.unansweredAt, time.Now())
	}
	if err != nil || status >= 500 {
		c.note(route, status, body, err)
	}
	return status, body, err
}

// ackedUpload is a file the hub answered "created" for.
type ackedUpload struct {
	id     uuid.UUID
	sha    [32]byte // of the bytes sent
	userID uuid.UUID
}

// ackedReview is a submission the hub answered 200 for.
type ackedReview struct {
	item      uuid.UUID
	reviewer  uuid.UUID
	instances int
}

type loadResult struct {
	elapsed       time.Duration
	routes        map[string]*routeStats
	samples       []string
	uploadedFiles int // acknowledged created
	duplicates    int // answered duplicate: distinct bytes should never be
	refusedFiles  int // answered refused
	madeDuring    int // photos drawn during the run, past the pool
	acked         int
	lostUploads   int
	lostDetail    []string
	unacked       int            // stored although no answer said so (a client gave up)
	ingesting     int            // images still waiting for ingest after the drain
	statuses      map[string]int // acknowledged images by status after the drain
	jobErrors     map[string]int // River jobs by kind that failed an attempt
	pipeline      pipelineSample // at the end of the run
	firstItem     time.Duration  // when the first review item appeared
	peakOpen      int            // most review items waiting at once, sampled each second and at the end
	drainTook     time.Duration
	reviewsAcked  int
	lostReviews   int
	secondReviews int
	conflicts     int
	peakRSS       int64
	workerStats   simStats
}

func (r *loadResult) total() int {
	n := 0
	for _, s := range r.routes {
		n += len(s.latencies) + s.errors
	}
	return n
}

func (r *loadResult) overallRate() float64 { return float64(r.total()) / r.elapsed.Seconds() }

func (r *loadResult) fiveXX() int {
	n := 0
	for _, s := range r.routes {
		n += s.count(500, 599)
	}
	return n
}

// print writes the table, every line prefixed "load:" so that make bench can
// pick it out of go test's output.
func (r *loadResult) print(w io.Writer, set loadSettings) {
	p := func(format string, args ...any) { fmt.Fprintf(w, "load: "+format+"\n", args...) }
	p("%d uploaders, %d reviewers for %s against imagehub serve + imagehub worker --synthetic --simulate-latency %s (capacity %d); %d cores",
		set.uploaders, set.reviewers, r.elapsed.Round(100*time.Millisecond), loadWorkerLatency, loadModelCapacity, runtime.NumCPU())
	r.printTable(w, "load: ", set.drain)
	p("peak RSS of imagehub serve (VmHWM): %.0f MB; worker: %d inferences, peak %d in flight",
		float64(r.peakRSS)/(1<<20), r.workerStats.Succeeded, r.workerStats.Peak)
	for _, d := range r.lostDetail {
		p("lost: %s", d)
	}
	for _, s := range r.samples {
		p("sample: %s", s)
	}
}

// printTable writes the routes, the uploads and reviews lost and the
// pipeline's state, each line starting with prefix.
func (r *loadResult) printTable(w io.Writer, prefix string, drain time.Duration) {
	p := func(format string, args ...any) { fmt.Fprintf(w, prefix+format+"\n", args...) }
	p("%-30s %9s %8s %9s %9s %7s %6s %5s %7s", "route", "requests", "req/s", "p50 ms", "p99 ms", "2xx", "4xx", "5xx", "no-ans")
	all := &routeStats{}
	for _, name := range loadRoutes {
		s := r.routes[name]
		all.merge(s)
		p("%-30s %9d %8.1f %9.1f %9.1f %7d %6d %5d %7d", name, len(s.latencies)+s.errors,
			float64(len(s.latencies)+s.errors)/r.elapsed.Seconds(), ms(s.quantile(0.5)), ms(s.quantile(0.99)),
			s.count(200, 299), s.count(400, 499), s.count(500, 599), s.errors)
	}
	slices.Sort(all.latencies)
	p("%-30s %9d %8.1f %9.1f %9.1f %7d %6d %5d %7d", "all", r.total(), r.overallRate(), ms(all.quantile(0.5)), ms(all.quantile(0.99)),
		all.count(200, 299), all.count(400, 499), all.count(500, 599), all.errors)
	p("5xx: %d (goal 0)", r.fiveXX())
	p("uploads: %d files acknowledged created (%.1f files/s), %d duplicate, %d refused; %d photos drawn during the run",
		r.uploadedFiles, float64(r.uploadedFiles)/r.elapsed.Seconds(), r.duplicates, r.refusedFiles, r.madeDuring)
	p("uploads lost: %d of %d acknowledged (goal 0: each exactly once in the database, its bytes in the blob store); %d stored without an answer",
		r.lostUploads, r.acked, r.unacked)
	statuses := make([]string, 0, len(r.statuses))
	for k, v := range r.statuses {
		statuses = append(statuses, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(statuses)
	p("ingest: waited %s after the run, %d still ingesting (LOAD_DRAIN=%s); acknowledged images now: %s",
		r.drainTook.Round(100*time.Millisecond), r.ingesting, drain, cmp.Or(strings.Join(statuses, ", "), "none"))
	jobs := make([]string, 0, len(r.jobErrors))
	for k, v := range r.jobErrors {
		jobs = append(jobs, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(jobs)
	p("jobs with a failed attempt: %s", cmp.Or(strings.Join(jobs, ", "), "none"))
	first := "never"
	if r.firstItem > 0 {
		first = "after " + r.firstItem.Round(time.Second).String()
	}
	p("pipeline at the end of the run: %d images, %d ingested, %d awaiting inference, %d review items waiting (at most %d); the first %s",
		r.pipeline.images, r.pipeline.ingested, r.pipeline.inferring, r.pipeline.open, r.peakOpen, first)
	p("reviews lost: %d of %d acknowledged 200 (goal 0), %d of them second reviews; %d answered 409",
		r.lostReviews, r.reviewsAcked, r.secondReviews, r.conflicts)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// photoSource hands out distinct JPEG photos: first those made before the
// clock started, then fresh ones.
type photoSource struct {
	pool  [][]byte
	next  atomic.Int64
	drawn atomic.Int64
}

func photo(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6c6f6164))
	w, h := 240+rng.IntN(81), 200+rng.IntN(41)
	return imagingtest.JPEG(imagingtest.Photo(w, h, 1_000_000+seed))
}

func newPhotoSource(n int) *photoSource {
	s := &photoSource{pool: make([][]byte, n)}
	var wg sync.WaitGroup
	par := runtime.GOMAXPROCS(0)
	for g := range par {
		wg.Go(func() {
			for i := g; i < n; i += par {
				s.pool[i] = photo(uint64(i))
			}
		})
	}
	wg.Wait()
	return s
}

func (s *photoSource) take() []byte {
	i := s.next.Add(1) - 1
	if int(i) < len(s.pool) {
		p := s.pool[i]
		s.pool[i] = nil
		return p
	}
	s.drawn.Add(1)
	return photo(uint64(i))
}

var loadLabels = []string{"cat", "dog", "person", "car", "bicycle", "bird", "horse", "boat", "bus", "chair"}

// uploadLoop uploads one to three photos per request, with one or two
// labels, until the deadline or the request bound.
func uploadLoop(hc *http.Client, base string, u loadUser, photos *photoSource, deadline time.Time, seed uint64, c *client, acked *[]ackedUpload, res *loadResult, mu *sync.Mutex) {
	rng := rand.New(rand.NewPCG(seed, 42))
	var mine []ackedUpload
	var created, dups, refused int
	for n := 0; n < loadMaxRequests && time.Now().Before(deadline); n++ {
		files := 1 + rng.IntN(3)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for range 1 + rng.IntN(2) {
			_ = mw.WriteField("labels", loadLabels[rng.IntN(len(loadLabels))])
		}
		sums := map[string][32]byte{}
		for f := range files {
			data := photos.take()
			name := fmt.Sprintf("photo-%d-%d.jpg", n, f)
			sums[name] = sha256.Sum256(data)
			fw, _ := mw.CreateFormFile("files", name)
			_, _ = fw.Write(data)
		}
		_ = mw.Close()
		req, _ := http.NewRequest("POST", base+"/api/v1/images", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+u.token)
		status, body, err := c.do(hc, routeUpload, req)
		if err != nil {
			continue
		}
		if status != http.StatusCreated && status != http.StatusMultiStatus {
			if status < 500 {
				c.note(routeUpload, status, body, nil)
			}
			continue
		}
		var out struct {
			Results []struct {
				Filename string `json:"filename"`
				Status   string `json:"status"`
				Image    *struct {
					ID string `json:"id"`
				} `json:"image"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			c.note(routeUpload, status, body, fmt.Errorf("error reading the answer: %w", err))
			continue
		}
		for _, r := range out.Results {
			switch r.Status {
			case "created":
				id, err := uuid.Parse(r.Image.ID)
				if err != nil {
					c.note(routeUpload, status, body, fmt.Errorf("created with a bad id: %w", err))
					continue
				}
				created++
				mine = append(mine, ackedUpload{id: id, sha: sums[r.Filename], userID: u.id})
			case "duplicate":
				dups++
			default:
				refused++
				c.note(routeUpload, status, body, nil)
			}
		}
	}
	mu.Lock()
	*acked = append(*acked, mine...)
	res.uploadedFiles += created
	res.duplicates += dups
	res.refusedFiles += refused
	mu.Unlock()
}

// reviewItem is the part of POST /api/v1/review/next's answer a reviewer
// needs to accept the proposals.
type reviewItem struct {
	ItemID         string    `json:"item_id"`
	Kind           string    `json:"kind"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	Image          struct {
		Width  int      `json:"width"`
		Height int      `json:"height"`
		Labels []string `json:"labels"`
	} `json:"image"`
	Proposals []struct {
		ID    string   `json:"id"`
		Label string   `json:"label"`
		Mask  mask.RLE `json:"mask"`
	} `json:"proposals"`
}

// submission accepts every proposal unchanged; a blind second review (no
// proposals shown) draws the middle half of the photo with its first label.
func (it reviewItem) submission() (map[string]any, int) {
	type inst struct {
		ProposalID string   `json:"proposal_id,omitempty"`
		Label      string   `json:"label"`
		Mask       mask.RLE `json:"mask"`
	}
	ins := []inst{}
	for _, p := range it.Proposals {
		ins = append(ins, inst{ProposalID: p.ID, Label: p.Label, Mask: p.Mask})
	}
	if it.Kind == "second" && len(it.Image.Labels) > 0 && it.Image.Width > 0 && it.Image.Height > 0 {
		bm := mask.NewBitmap(it.Image.Width, it.Image.Height)
		for y := it.Image.Height / 4; y < it.Image.Height*3/4; y++ {
			for x := it.Image.Width / 4; x < it.Image.Width*3/4; x++ {
				bm.Set(x, y, true)
			}
		}
		ins = append(ins, inst{Label: it.Image.Labels[0], Mask: mask.Encode(bm)})
	}
	return map[string]any{"instances": ins, "rejected_proposals": []string{}, "time_spent_ms": 1500}, len(ins)
}

// reviewLoop leases the next item and accepts its proposals, pausing when
// nothing waits, until the deadline or the request bound.
func reviewLoop(hc *http.Client, base string, u loadUser, deadline time.Time, c *client, acked *[]ackedReview, res *loadResult, mu *sync.Mutex) {
	var mine []ackedReview
	var seconds, conflicts int
	post := func(route, url string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+u.token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return c.do(hc, route, req)
	}
	for n := 0; n < loadMaxRequests && time.Now().Before(deadline); n++ {
		status, body, err := post(routeReviewNext, base+"/api/v1/review/next", nil)
		if err != nil || status != http.StatusOK {
			if err == nil && status != http.StatusNoContent && status < 500 {
				c.note(routeReviewNext, status, body, nil)
			}
			time.Sleep(loadReviewIdle)
			continue
		}
		got := time.Now()
		var it reviewItem
		if err := json.Unmarshal(body, &it); err != nil {
			c.note(routeReviewNext, status, body, fmt.Errorf("error reading the item: %w", err))
			continue
		}
		id, err := uuid.Parse(it.ItemID)
		if err != nil {
			c.note(routeReviewNext, status, body, fmt.Errorf("bad item id: %w", err))
			continue
		}
		sub, count := it.submission()
		data, _ := json.Marshal(sub)
		lease := leaseSpan{item: id, reviewer: u.id, got: got, submitted: time.Now(), expires: it.LeaseExpiresAt}
		status, body, err = post(routeReviewPost, base+"/api/v1/review/"+it.ItemID, data)
		lease.acked = err == nil && status == http.StatusOK
		c.leases = append(c.leases, lease)
		switch {
		case err != nil:
		case status == http.StatusOK:
			mine = append(mine, ackedReview{item: id, reviewer: u.id, instances: count})
			if it.Kind == "second" {
				seconds++
			}
		case status == http.StatusConflict:
			conflicts++
		case status < 500:
			c.note(routeReviewPost, status, body, nil)
		}
	}
	mu.Lock()
	*acked = append(*acked, mine...)
	res.secondReviews += seconds
	res.conflicts += conflicts
	mu.Unlock()
}

// loadHTTPClient is one client for all the load's clients, with a
// connection per client kept alive.
func loadHTTPClient(clients int) *http.Client {
	return &http.Client{
		Timeout: loadRequestTimeout,
		Transport: &http.Transport{
			MaxIdleConns: clients + 16, MaxIdleConnsPerHost: clients + 16,
			IdleConnTimeout: 90 * time.Second,
		},
	}
}

// registerSegmenter registers the endpoints as the segmentation model.
func registerSegmenter(hc *http.Client, base, adminToken string, endpoints []string, capacity, timeoutMS int) error {
	reg, _ := json.Marshal(map[string]any{
		"name": "imagehub-segmenter", "version": "1", "task": "segmentation",
		"endpoints": endpoints, "capacity": capacity, "timeout_ms": timeoutMS, "enabled": true,
	})
	req, _ := http.NewRequest("POST", base+"/api/v1/models", bytes.NewReader(reg))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("error registering the workers: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("registering the workers: %d %s", res.StatusCode, body)
	}
	return nil
}

// runLoad starts the worker and the hub, creates the accounts, registers
// the model, runs the clients and checks what the hub said it stored.
func runLoad(b *testing.B, set loadSettings) *loadResult {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	blobDir := filepath.Join(dir, "blobs")
	w := startWorkerProc(b, "127.0.0.1:0", "--synthetic", "--simulate-latency", loadWorkerLatency.String())
	vars := map[string]string{
		"DATABASE_URL": dbtest.NewURL(b), "DATA_DIR": dir, "BLOB_URL": "file://" + blobDir,
		"BUILTIN_WORKER": "false",
	}
	srv := startServer(b, vars)
	pool, err := pgxpool.New(ctx, vars["DATABASE_URL"])
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	admin, ups, revs, err := loadAccounts(ctx, pool, set.uploaders, set.reviewers)
	if err != nil {
		b.Fatal(err)
	}

	hc := loadHTTPClient(set.uploaders + set.reviewers)
	defer hc.CloseIdleConnections()
	if err := registerSegmenter(hc, srv.base, admin.token, []string{w.base}, loadModelCapacity, 30_000); err != nil {
		b.Fatal(err)
	}

	photos := newPhotoSource(set.photos)
	res := &loadResult{routes: map[string]*routeStats{}, statuses: map[string]int{}, jobErrors: map[string]int{}}
	var uploads []ackedUpload
	var reviews []ackedReview
	var mu sync.Mutex
	clients := make([]*client, 0, set.uploaders+set.reviewers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(set.duration)
	for i, u := range ups {
		c := newClient()
		clients = append(clients, c)
		wg.Go(func() { uploadLoop(hc, srv.base, u, photos, deadline, uint64(i), c, &uploads, res, &mu) })
	}
	for _, u := range revs {
		c := newClient()
		clients = append(clients, c)
		wg.Go(func() { reviewLoop(hc, srv.base, u, deadline, c, &reviews, res, &mu) })
	}
	// Sample how far the pipeline has come, so that the table can tell a
	// reviewer who found nothing from a queue that is not moving.
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			ps, err := samplePipeline(ctx, pool)
			if err != nil {
				continue // the final sample reports errors
			}
			if ps.open > 0 && res.firstItem == 0 {
				res.firstItem = time.Since(start)
			}
			res.peakOpen = max(res.peakOpen, ps.open)
		}
	}()
	wg.Wait()
	res.elapsed = time.Since(start)
	close(stopSampling)
	<-sampled
	if res.pipeline, err = samplePipeline(ctx, pool); err != nil {
		b.Fatal(err)
	}
	res.peakOpen = max(res.peakOpen, res.pipeline.open)
	res.madeDuring = int(photos.drawn.Load())
	photos.pool = nil
	for _, name := range loadRoutes {
		res.routes[name] = &routeStats{}
	}
	for _, c := range clients {
		for name, s := range c.routes {
			res.routes[name].merge(s)
		}
		res.samples = append(res.samples, c.samples...)
	}
	for _, s := range res.routes {
		slices.Sort(s.latencies)
	}
	if len(res.samples) > 10 {
		res.samples = res.samples[:10]
	}

	// The peak is read before the drain, which only ingests.
	res.peakRSS = vmHWM(b, srv.cmd.Process.Pid)
	drain := time.Now()
	for {
		var left int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM images WHERE status IN ('uploaded', 'processing')").Scan(&left); err != nil {
			b.Fatal(err)
		}
		res.ingesting = left
		if left == 0 || time.Since(drain) > set.drain {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.drainTook = time.Since(drain)
	res.peakRSS = max(res.peakRSS, vmHWM(b, srv.cmd.Process.Pid))
	res.workerStats = w.stats(b)

	rows, err := pool.Query(ctx, "SELECT kind, count(*) FROM river_job WHERE cardinality(errors) > 0 GROUP BY kind")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			b.Fatal(err)
		}
		res.jobErrors[kind] = n
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	store, err := blob.Open(ctx, "file://"+blobDir)
	if err != nil {
		b.Fatal(err)
	}
	checkUploads(b, ctx, pool, store, uploads, res)
	checkReviews(b, ctx, pool, reviews, res)
	return res
}

// pipelineSample counts images by stage and the review items a reviewer
// could lease.
type pipelineSample struct {
	images, ingested, inferring, open int
}

func samplePipeline(ctx context.Context, pool *pgxpool.Pool) (pipelineSample, error) {
	var ps pipelineSample
	err := pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE status NOT IN ('uploaded', 'processing')),
		       count(*) FILTER (WHERE status = 'awaiting_inference'),
		       (SELECT count(*) FROM review_items WHERE done_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= now()))
		FROM images`).Scan(&ps.images, &ps.ingested, &ps.inferring, &ps.open)
	if err != nil {
		return ps, fmt.Errorf("error sampling the pipeline: %w", err)
	}
	return ps, nil
}

// checkUploads counts the acknowledged uploads that are not in the
// database exactly once, under the id the answer gave, with their uploader,
// and with their bytes in the blob store (the canonical file once ingest
// accepted it, the upload until then).
func checkUploads(b testing.TB, ctx context.Context, pool *pgxpool.Pool, store blob.Store, acked []ackedUpload, res *loadResult) {
	b.Helper()
	res.acked = len(acked)
	shas := make([][]byte, len(acked))
	for i, a := range acked {
		shas[i] = a.sha[:]
	}
	type row struct {
		id, owner  uuid.UUID
		canonical  []byte
		status     string
		uploadedBy bool
		n          int
	}
	found := map[[32]byte]*row{}
	rows, err := pool.Query(ctx, `
		SELECT i.id, i.upload_sha256, i.sha256, i.status::text, i.owner_id,
		       EXISTS (SELECT 1 FROM image_uploads u WHERE u.image_id = i.id AND u.user_id = i.owner_id)
		FROM images i WHERE i.upload_sha256 = ANY($1)`, shas)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var r row
		var up []byte
		if err := rows.Scan(&r.id, &up, &r.canonical, &r.status, &r.owner, &r.uploadedBy); err != nil {
			b.Fatal(err)
		}
		key := [32]byte(up)
		if prev, ok := found[key]; ok {
			prev.n++
			continue
		}
		r.n = 1
		found[key] = &r
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	lost := func(a ackedUpload, why string) {
		res.lostUploads++
		if len(res.lostDetail) < 10 {
			res.lostDetail = append(res.lostDetail, fmt.Sprintf("image %s: %s", a.id, why))
		}
	}
	for _, a := range acked {
		r, ok := found[a.sha]
		switch {
		case !ok:
			lost(a, "not in the database")
			continue
		case r.n != 1:
			lost(a, fmt.Sprintf("in the database %d times", r.n))
			continue
		case r.id != a.id:
			lost(a, fmt.Sprintf("stored as %s", r.id))
			continue
		case r.owner != a.userID || !r.uploadedBy:
			lost(a, "not recorded as its uploader's")
			continue
		}
		var key string
		switch {
		case r.canonical != nil:
			key = blob.ImageKey(r.canonical)
		case r.status == "uploaded" || r.status == "processing":
			key = blob.UploadKey(a.sha[:])
		default:
			res.statuses[r.status]++
			continue // ingest refused it (rejected, failed): no bytes are kept, by design
		}
		_, err := store.Stat(ctx, key)
		if errors.Is(err, blob.ErrNotFound) && r.canonical == nil {
			// Ingest may have finished since the rows were read: it
			// deletes the upload only after committing the canonical
			// file's hash, so read the row again.
			if err := pool.QueryRow(ctx, "SELECT sha256, status::text FROM images WHERE id = $1", a.id).Scan(&r.canonical, &r.status); err != nil {
				b.Fatal(err)
			}
			if r.canonical != nil {
				key = blob.ImageKey(r.canonical)
				_, err = store.Stat(ctx, key)
			}
		}
		res.statuses[r.status]++
		if err != nil {
			lost(a, fmt.Sprintf("status %s, %v", r.status, err))
		}
	}
	var total int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM images").Scan(&total); err != nil {
		b.Fatal(err)
	}
	res.unacked = total - len(found)
}

// checkReviews counts the submissions answered 200 that are not stored:
// the item done by that reviewer, with as many annotations as were sent.
func checkReviews(b testing.TB, ctx context.Context, pool *pgxpool.Pool, acked []ackedReview, res *loadResult) {
	b.Helper()
	res.reviewsAcked = len(acked)
	ids := make([]uuid.UUID, len(acked))
	for i, a := range acked {
		ids[i] = a.item
	}
	type row struct {
		doneBy      *uuid.UUID
		done        bool
		annotations int
	}
	found := map[uuid.UUID]row{}
	rows, err := pool.Query(ctx, `
		SELECT r.id, r.done_by, r.done_at IS NOT NULL,
		       (SELECT count(*) FROM annotations a WHERE a.review_item_id = r.id)
		FROM review_items r WHERE r.id = ANY($1)`, ids)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var r row
		if err := rows.Scan(&id, &r.doneBy, &r.done, &r.annotations); err != nil {
			b.Fatal(err)
		}
		found[id] = r
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	for _, a := range acked {
		r, ok := found[a.item]
		why := ""
		switch {
		case !ok:
			why = "not in the database"
		case seen[a.item]:
			why = "acknowledged twice"
		case !r.done || r.doneBy == nil || *r.doneBy != a.reviewer:
			why = "not done by its reviewer"
		case r.annotations != a.instances:
			why = fmt.Sprintf("%d annotations stored of %d sent", r.annotations, a.instances)
		}
		seen[a.item] = true
		if why != "" {
			res.lostReviews++
			if len(res.lostDetail) < 20 {
				res.lostDetail = append(res.lostDetail, fmt.Sprintf("review %s: %s", a.item, why))
			}
		}
	}
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(tb testing.TB, pid int) int64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("error reading the peak RSS of imagehub serve: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("error reading VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
