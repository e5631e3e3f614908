package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// The tasks a model may have (docs/interactive.md): segmentation proposes
// an image's masks when it is accepted; interactive answers a reviewer's
// prompt with one mask; embed computes the image embedding that a two-stage
// interactive model's decoder takes.
const (
	TaskSegmentation = "segmentation"
	TaskInteractive  = "interactive"
	TaskEmbed        = "embed"
)

// Spec is a model version as an admin registers it (API.md's body of
// POST /api/v1/models).
type Spec struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Task      string   `json:"task"`
	Endpoints []string `json:"endpoints"`
	Capacity  int      `json:"capacity"`
	TimeoutMS int      `json:"timeout_ms"`
	Enabled   *bool    `json:"enabled"`

	// Layout says how to read the model (package layout): "imagehub"
	// (the default), "yolo-seg" or "maskrcnn", with the class names in
	// the model's output order and the decoding thresholds; 0 takes a
	// threshold's default. InputSize is maskrcnn's long side; for yolo-seg
	// the model's metadata fixes S, and InputSize only stands in for a
	// variable one.
	Layout         string   `json:"layout"`
	Labels         []string `json:"labels"`
	ScoreThreshold float32  `json:"score_threshold"`
	IoUThreshold   float32  `json:"iou_threshold"`
	MaskThreshold  float32  `json:"mask_threshold"`
	MaxInstances   int      `json:"max_instances"`
	InputSize      int      `json:"input_size"`
	// LabelTag is a label-studio model's control in the labeling config
	// the hub sends it: "BrushLabels" (the default) or "PolygonLabels".
	LabelTag string `json:"label_tag"`
	// Headers go on every request to the model's endpoints. nil keeps
	// what is stored (an update need not repeat a token); an empty object
	// removes them.
	Headers inference.Headers `json:"headers"`

	// MaxBatch is how many images one request may carry (1 to 256; 1, the
	// default, sends each image on its own); BatchWindowMS how long the
	// hub waits to gather them (0 to 1000 ms; 10 by default). A model that
	// batches must declare a variable leading batch dimension.
	MaxBatch      int  `json:"max_batch"`
	BatchWindowMS *int `json:"batch_window_ms"`

	// EmbedModel and EmbedVersion (default "1") name, for a two-stage
	// interactive model (one that takes EMBEDDING), the embed model whose
	// output it takes (docs/interactive.md).
	EmbedModel   string `json:"embed_model"`
	EmbedVersion string `json:"embed_version"`
}

// Batch limits of a registration.
const (
	MaxMaxBatch          = 256
	MaxBatchWindowMS     = 1000
	DefaultBatchWindowMS = 10
)

// LayoutParams is the layout part of s, InputSize as given (0 when left
// to the model or the default).
func (s Spec) LayoutParams() layout.Params {
	return layout.Params{
		Kind: layout.Kind(s.Layout), Labels: s.Labels, ScoreThreshold: s.ScoreThreshold,
		IoUThreshold: s.IoUThreshold, MaskThreshold: s.MaskThreshold, MaxInstances: s.MaxInstances,
		InputSize: s.InputSize, LabelTag: s.LabelTag,
	}
}

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// MaxEndpoints bounds the endpoints of one model.
const MaxEndpoints = 64

// Normalize fills defaults and checks every field, naming the one at fault.
func (s *Spec) Normalize() error {
	s.Name, s.Version = strings.TrimSpace(s.Name), strings.TrimSpace(s.Version)
	if s.Task == "" {
		s.Task = "segmentation"
	}
	if s.Version == "" {
		s.Version = "1"
	}
	if s.Capacity == 0 {
		s.Capacity = 4
	}
	if s.TimeoutMS == 0 {
		s.TimeoutMS = 60_000
	}
	if s.Enabled == nil {
		t := true
		s.Enabled = &t
	}
	if s.MaxBatch == 0 {
		s.MaxBatch = 1
	}
	if s.BatchWindowMS == nil {
		w := DefaultBatchWindowMS
		s.BatchWindowMS = &w
	}
	switch {
	case !nameRe.MatchString(s.Name):
		return problem.BadInput("invalid_model", "name", "A model name is 1 to 128 letters, digits, '.', '_' or '-', as the inference server names it.")
	case !versionRe.MatchString(s.Version):
		return problem.BadInput("invalid_model", "version", "A version is 1 to 64 letters, digits, '.', '_' or '-'.")
	case s.Task != TaskSegmentation && s.Task != TaskInteractive && s.Task != TaskEmbed:
		return problem.BadInput("invalid_model", "task", `The task is "segmentation", "interactive" or "embed".`)
	case s.Task != TaskSegmentation && s.Layout != "" && s.Layout != string(layout.ImageHub) && s.Layout != string(layout.SAM):
		return problem.BadInput("invalid_model", "layout", `Interactive and embed models follow the hub's prompt protocol (docs/interactive.md) or are a Segment Anything pair served with its own tensors ("sam"); the other stock layouts are for segmentation models.`)
	case s.Task == TaskSegmentation && s.Layout == string(layout.SAM):
		return problem.BadInput("invalid_model", "layout", `The "sam" layout is for the two models of a Segment Anything pair: the encoder with task "embed", the decoder with task "interactive" and embed_model.`)
	case s.Capacity < 1 || s.Capacity > 1024:
		return problem.BadInput("invalid_model", "capacity", "Capacity is the requests one endpoint may have in flight: 1 to 1024.")
	case s.TimeoutMS < 100 || s.TimeoutMS > 600_000:
		return problem.BadInput("invalid_model", "timeout_ms", "The timeout is 100 to 600000 milliseconds.")
	case s.MaxBatch < 1 || s.MaxBatch > MaxMaxBatch:
		return problem.BadInput("invalid_model", "max_batch", fmt.Sprintf("max_batch is how many images one request may carry: 1 (no batching) to %d.", MaxMaxBatch))
	case *s.BatchWindowMS < 0 || *s.BatchWindowMS > MaxBatchWindowMS:
		return problem.BadInput("invalid_model", "batch_window_ms", fmt.Sprintf("batch_window_ms is how long the hub waits to fill a batch: 0 to %d milliseconds.", MaxBatchWindowMS))
	case len(s.Endpoints) == 0:
		return problem.BadInput("invalid_model", "endpoints", "Give at least one endpoint base URL, such as http://gpu-1:8000.")
	case len(s.Endpoints) > MaxEndpoints:
		return problem.BadInput("invalid_model", "endpoints", fmt.Sprintf("At most %d endpoints per model.", MaxEndpoints))
	}
	seen := map[string]bool{}
	out := s.Endpoints[:0:0]
	for _, e := range s.Endpoints {
		base, err := normalizeBase(e)
		if err != nil {
			return problem.BadInput("invalid_model", "endpoints", err.Error())
		}
		if !seen[base] {
			seen[base] = true
			out = append(out, base)
		}
	}
	s.Endpoints = out

	given := s.InputSize
	p := s.LayoutParams().WithDefaults()
	// A stock layout given no labels takes them from the model's metadata
	// (Inspect); ResolveLabels refuses it when there are none.
	if err := p.ValidateAwaitingLabels(); err != nil {
		var fe *layout.FieldError
		if errors.As(err, &fe) {
			return problem.BadInput("invalid_model", fe.Field, fe.Message)
		}
		return err
	}
	s.Layout, s.ScoreThreshold, s.IoUThreshold, s.MaskThreshold, s.MaxInstances, s.LabelTag =
		string(p.Kind), p.ScoreThreshold, p.IoUThreshold, p.MaskThreshold, p.MaxInstances, p.LabelTag
	s.InputSize = given
	if s.Labels == nil {
		s.Labels = []string{}
	}
	if msg := s.Headers.Check(); msg != "" {
		return problem.BadInput("invalid_model", "headers", msg)
	}
	s.EmbedModel, s.EmbedVersion = strings.TrimSpace(s.EmbedModel), strings.TrimSpace(s.EmbedVersion)
	if s.EmbedModel != "" {
		if s.EmbedVersion == "" {
			s.EmbedVersion = "1"
		}
		switch {
		case s.Task != TaskInteractive:
			return problem.BadInput("invalid_model", "embed_model", "Only an interactive model takes an embed model's output.")
		case !nameRe.MatchString(s.EmbedModel):
			return problem.BadInput("invalid_model", "embed_model", "embed_model names a registered model of task \"embed\".")
		case !versionRe.MatchString(s.EmbedVersion):
			return problem.BadInput("invalid_model", "embed_version", "A version is 1 to 64 letters, digits, '.', '_' or '-'.")
		}
	}
	return nil
}

// normalizeBase checks an endpoint base URL: http or https, a host, no
// query, no credentials, and no /v2 (the hub adds the protocol's paths).
func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL with a host, such as http://gpu-1:8000", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q carries credentials: endpoints take none in the URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment: give the server's base URL only", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	if strings.HasSuffix(p, "/v2") || strings.Contains(p, "/v2/") {
		return "", fmt.Errorf("%q includes the protocol path: give the base URL, without /v2", raw)
	}
	u.Path = p
	return u.String(), nil
}

// Check is what the hub found when it asked a model's endpoints about it.
type Check struct {
	// Unfit lists what in the model's metadata breaks the convention
	// (PROTOCOL.md); such a model is not saved.
	Unfit []string
	// BatchUnfit lists why the model cannot take the registration's
	// max_batch images a request (inference.CheckBatch); such a model is
	// not saved either, and the fault is the max_batch field's.
	BatchUnfit []string
	// Unreachable lists endpoints that did not answer as ready; the model
	// is saved and jobs wait for them.
	Unreachable []string
	// Binary: every endpoint that answered lists binary_tensor_data.
	Binary bool
	// LabelHints: the model takes LABEL_HINTS.
	LabelHints bool
	// Embedding: an interactive model that takes EMBEDDING, not IMAGE.
	Embedding bool
	// Layout is the spec's layout completed by the first endpoint that
	// answered: its image input's name and yolo-seg's S, and the labels
	// its metadata names when the spec gives none (FromMetadata).
	Layout       layout.Params
	FromMetadata bool
}

// ResolveLabels checks that a stock layout has its labels once the
// endpoints have been asked: given in s, or from the metadata (c.Layout).
// Without them the registration is refused, naming labels.
func ResolveLabels(s Spec, c Check) error {
	p := c.Layout
	if p.Kind == "" {
		p = s.LayoutParams().WithDefaults()
	}
	if !p.Stock() || p.Kind == layout.SAM || len(p.Labels) > 0 {
		if err := p.Validate(); err != nil {
			var fe *layout.FieldError
			if errors.As(err, &fe) && c.FromMetadata {
				return problem.BadInput("invalid_model", fe.Field, fe.Message+" (the labels of the model's metadata)")
			}
			if errors.As(err, &fe) {
				return problem.BadInput("invalid_model", fe.Field, fe.Message)
			}
			return err
		}
		return nil
	}
	if p.Kind == layout.LabelStudio {
		return problem.BadInput("invalid_model", "labels", "A label-studio model labels with the config the hub sends it: give the labels it may answer with (the API fills in the hub's when none are given).")
	}
	return problem.BadInput("invalid_model", "labels", fmt.Sprintf(
		"A %s model returns class numbers: give its class names, in the model's output order (the model's metadata names none, or no endpoint answered).", p.Kind))
}

// Problems is every finding, for display.
func (c Check) Problems() []string { return append(append([]string{}, c.Unfit...), c.Unreachable...) }

// Inspect asks every endpoint whether it is ready, what it supports and how
// the model looks, within timeout per endpoint, sending s.Headers.
func Inspect(ctx context.Context, client *inference.Client, s Spec, timeout time.Duration) Check {
	if s.LayoutParams().Kind == layout.LabelStudio {
		return inspectLabelStudio(ctx, client, s, timeout)
	}
	c := Check{Binary: true, LabelHints: true}
	c.Layout, _ = inference.CheckLayout(nil, s.LayoutParams())
	answered := 0
	for _, base := range s.Endpoints {
		ep := inference.Endpoint{Base: base, Model: s.Name, Version: s.Version, Headers: s.Headers}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		if err := client.Ready(ctx, ep); err != nil {
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: not ready (%v)", base, err))
			cancel()
			continue
		}
		srv, err := client.ServerMetadata(ctx, ep)
		if err != nil {
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: no server metadata at /v2 (%v)", base, err))
			cancel()
			continue
		}
		meta, err := client.ModelMetadata(ctx, ep)
		cancel()
		if err != nil {
			var ce *inference.Contract
			if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: the server does not serve model %q version %q", base, s.Name, s.Version))
				continue
			}
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: no model metadata (%v)", base, err))
			continue
		}
		c.Binary = c.Binary && srv.HasExtension("binary_tensor_data")
		c.LabelHints = c.LabelHints && inference.AcceptsLabelHints(meta)
		lp := s.LayoutParams()
		if lp.WithDefaults().Stock() && lp.Kind != layout.SAM && len(s.Labels) == 0 {
			// The registration leaves the class names to the model.
			labels, ok, err := inference.MetadataLabels(meta)
			switch {
			case err != nil:
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: %v", base, err))
			case ok && c.FromMetadata && !slices.Equal(labels, c.Layout.Labels):
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: the model's metadata names other labels than the first endpoint's: every endpoint must serve the same model", base))
			case ok:
				lp.Labels = labels
			}
		}
		p, problems := inference.CheckLayout(meta, lp)
		for _, p := range inference.CheckBatch(meta, p, s.MaxBatch) {
			c.BatchUnfit = append(c.BatchUnfit, fmt.Sprintf("%s: %s", base, p.Message))
		}
		switch {
		case s.Task == TaskInteractive && lp.Kind == layout.SAM:
			problems = inference.CheckSAMDecoder(meta)
			c.Embedding = true
			if s.EmbedModel == "" {
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: a sam decoder takes image_embeddings: name the embed model that computes it (embed_model)", base))
			}
		case s.Task == TaskEmbed && lp.Kind == layout.SAM:
			p, problems = inference.CheckSAMEncoder(meta, p)
		case s.Task == TaskInteractive:
			problems = inference.CheckInteractive(meta)
			c.Embedding = inference.TakesEmbedding(meta)
			if c.Embedding && s.EmbedModel == "" {
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: the model takes EMBEDDING: name the embed model that computes it (embed_model)", base))
			}
		case s.Task == TaskEmbed:
			problems = inference.CheckEmbed(meta)
		}
		for _, p := range problems {
			c.Unfit = append(c.Unfit, fmt.Sprintf("%s: %s", base, p.Message))
		}
		if answered == 0 {
			c.Layout = p
			c.FromMetadata = len(lp.Labels) > 0 && len(s.Labels) == 0
		} else if p.Input != c.Layout.Input || p.InputSize != c.Layout.InputSize {
			c.Unfit = append(c.Unfit, fmt.Sprintf("%s: the model's input differs from the first endpoint's (%s of side %d there, %s of side %d here): every endpoint must serve the same model",
				base, c.Layout.InputName(), c.Layout.InputSize, p.InputName(), p.InputSize))
		}
		answered++
	}
	if answered == 0 {
		// Nothing known yet: JSON works everywhere, and hints are sent
		// only to a model whose metadata asks for them.
		c.Binary, c.LabelHints = false, false
	}
	return c
}

// inspectLabelStudio checks a Label Studio ML backend the way Label Studio
// connects one: GET /health, then POST /setup with the labeling config the
// hub generates from the registration's labels. A backend that refuses
// the config (a 4xx) is unfit; one that does not answer is unreachable,
// and the model is saved to wait for it.
func inspectLabelStudio(ctx context.Context, client *inference.Client, s Spec, timeout time.Duration) Check {
	c := Check{Layout: s.LayoutParams().WithDefaults()}
	for _, base := range s.Endpoints {
		ep := inference.Endpoint{Base: base, Model: s.Name, Version: s.Version, Headers: s.Headers, Layout: c.Layout}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		err := client.LabelStudioHealth(ctx, ep)
		if err == nil {
			_, err = client.LabelStudioSetup(ctx, ep)
		}
		cancel()
		var ce *inference.Contract
		switch {
		case errors.As(err, &ce):
			c.Unfit = append(c.Unfit, fmt.Sprintf("%s: %v", base, err))
		case err != nil:
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: not ready (%v)", base, err))
		}
	}
	return c
}

// Save creates or updates the model named by s (name and version) with its
// endpoints and their slots, inside tx, and records the check. It reports
// whether the model is new.
func Save(ctx context.Context, tx pgx.Tx, s Spec, c Check) (queries.Model, bool, error) {
	q := queries.New()
	created := false
	m, err := q.ModelGetByNameVersion(ctx, tx, queries.ModelGetByNameVersionParams{Name: s.Name, Version: s.Version})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		m, err = q.ModelInsert(ctx, tx, queries.ModelInsertParams{
			Name: s.Name, Version: s.Version, Task: s.Task, TimeoutMs: int32(s.TimeoutMS), Enabled: *s.Enabled,
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return queries.Model{}, false, problem.Conflict("model_exists", "name", "This model version was registered at the same moment; try again.")
		}
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error saving model: %w", err)
		}
		created = true
	case err != nil:
		return queries.Model{}, false, fmt.Errorf("error reading model: %w", err)
	default:
		m, err = q.ModelUpdate(ctx, tx, queries.ModelUpdateParams{ID: m.ID, TimeoutMs: int32(s.TimeoutMS), Enabled: *s.Enabled})
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error updating model: %w", err)
		}
	}
	if err := q.EndpointDeleteOthers(ctx, tx, queries.EndpointDeleteOthersParams{ModelID: m.ID, Keep: s.Endpoints}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error removing endpoints: %w", err)
	}
	for _, base := range s.Endpoints {
		e, err := q.EndpointUpsert(ctx, tx, queries.EndpointUpsertParams{ModelID: m.ID, BaseUrl: base, Capacity: int32(s.Capacity)})
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error saving endpoint %s: %w", base, err)
		}
		if err := q.EndpointSlotsAdd(ctx, tx, queries.EndpointSlotsAddParams{EndpointID: e.ID, Capacity: int32(s.Capacity)}); err != nil {
			return queries.Model{}, false, fmt.Errorf("error adding endpoint slots: %w", err)
		}
		if err := q.EndpointSlotsTrim(ctx, tx, queries.EndpointSlotsTrimParams{EndpointID: e.ID, Capacity: int32(s.Capacity)}); err != nil {
			return queries.Model{}, false, fmt.Errorf("error trimming endpoint slots: %w", err)
		}
	}
	lp := c.Layout
	if lp.Kind == "" {
		// A check made without Inspect.
		lp = s.LayoutParams().WithDefaults()
	}
	labels := s.Labels
	if len(labels) == 0 && c.FromMetadata {
		labels = lp.Labels
	}
	if err := q.ModelSetLayout(ctx, tx, queries.ModelSetLayoutParams{
		ID: m.ID, Layout: string(lp.Kind), Labels: labels, ScoreThreshold: lp.ScoreThreshold,
		IouThreshold: lp.IoUThreshold, MaskThreshold: lp.MaskThreshold, MaxInstances: int32(lp.MaxInstances),
		InputSize: int32(lp.InputSize), InputName: lp.Input, LabelTag: lp.LabelTag,
	}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error saving model layout: %w", err)
	}
	window := DefaultBatchWindowMS
	if s.BatchWindowMS != nil {
		window = *s.BatchWindowMS
	}
	if err := q.ModelSetBatch(ctx, tx, queries.ModelSetBatchParams{
		ID: m.ID, MaxBatch: int32(max(1, s.MaxBatch)), BatchWindowMs: int32(window),
	}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error saving model batching: %w", err)
	}
	if s.Headers != nil {
		// The plain map: Headers itself encodes redacted.
		h, err := json.Marshal(map[string]string(s.Headers))
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error encoding headers: %w", err)
		}
		if err := q.ModelSetHeaders(ctx, tx, queries.ModelSetHeadersParams{ID: m.ID, Headers: h}); err != nil {
			return queries.Model{}, false, fmt.Errorf("error saving model headers: %w", err)
		}
	}
	var embed *uuid.UUID
	if s.EmbedModel != "" {
		em, err := q.ModelGetByNameVersion(ctx, tx, queries.ModelGetByNameVersionParams{Name: s.EmbedModel, Version: s.EmbedVersion})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && em.Task != TaskEmbed) {
			return queries.Model{}, false, problem.BadInput("invalid_model", "embed_model",
				fmt.Sprintf("No model %s version %s of task \"embed\" is registered: register the embed model first.", s.EmbedModel, s.EmbedVersion))
		}
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error reading embed model: %w", err)
		}
		embed = &em.ID
	}
	if err := q.ModelSetEmbed(ctx, tx, queries.ModelSetEmbedParams{ID: m.ID, EmbedModelID: embed}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error saving embed model: %w", err)
	}
	problems := c.Problems()
	if problems == nil {
		problems = []string{}
	}
	if err := q.ModelSetCheck(ctx, tx, queries.ModelSetCheckParams{
		ID: m.ID, BinaryData: c.Binary, LabelHints: c.LabelHints, Problems: problems,
	}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error recording model check: %w", err)
	}
	m, err = q.ModelGet(ctx, tx, m.ID)
	if err != nil {
		return queries.Model{}, false, fmt.Errorf("error reading model: %w", err)
	}
	return m, created, nil
}

// StoredHeaders reads the headers stored for the model of s's name and
// version, nil when it is not registered: what Inspect must send when an
// update keeps them.
func StoredHeaders(ctx context.Context, db queries.DBTX, s Spec) (inference.Headers, error) {
	raw, err := queries.New().ModelHeaders(ctx, db, queries.ModelHeadersParams{Name: s.Name, Version: s.Version})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("error reading model headers: %w", err)
	}
	var h inference.Headers
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("error decoding model headers: %w", err)
	}
	return h, nil
}
