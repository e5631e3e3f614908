package deploy

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/app"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/jobs"
)

// recordingRegistry is a registry that notes the name of every metric
// registered with it, observed or not.
type recordingRegistry struct {
	*prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registry.Register(c)
}

func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// hubMetricNames builds the hub as `imagehub serve` does and returns the
// names of every metric it registers.
func hubMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	pool := dbtest.NewPool(t)
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	blobs, err := blob.Open(t.Context(), "file://"+t.TempDir())
	require.NoError(t, err)
	reg := &recordingRegistry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, err := jobs.NewClient(jobs.Deps{Pool: pool, Logger: logger, Blobs: blobs, Config: cfg, Metrics: reg}, jobs.Options{})
	require.NoError(t, err)
	_, err = app.New(app.Deps{Config: cfg, Pool: pool, River: rc, Blobs: blobs, Logger: logger, Registry: reg})
	require.NoError(t, err)
	return reg.names
}

var metricRef = regexp.MustCompile(`\b[a-z_]+_[a-z0-9_]*[a-z0-9]\b`)

// references returns the names in a PromQL expression that look like the
// hub's metrics or Go's and the process's.
func references(expr string) []string {
	var refs []string
	for _, m := range metricRef.FindAllString(expr, -1) {
		if strings.HasPrefix(m, "imagehub_") || strings.HasPrefix(m, "process_") || strings.HasPrefix(m, "go_") {
			refs = append(refs, m)
		}
	}
	return refs
}

func requireExported(t *testing.T, names map[string]bool, where, expr string) {
	t.Helper()
	refs := references(expr)
	require.NotEmpty(t, refs, "%s reads none of the hub's metrics: %s", where, expr)
	for _, r := range refs {
		base := r
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if !names[base] && strings.HasSuffix(base, suffix) {
				base = strings.TrimSuffix(base, suffix)
			}
		}
		require.True(t, names[base], "%s: %s is not a metric the hub exports", where, r)
	}
}

// TestAlertRulesAndDashboard: the alert rules and the Grafana dashboard
// parse, and every expression reads metrics the hub registers.
func TestAlertRulesAndDashboard(t *testing.T) {
	t.Parallel()
	names := hubMetricNames(t)
	require.True(t, names["imagehub_ingested_images_total"])
	require.True(t, names["imagehub_queue_oldest_available_age_seconds"])

	raw, err := os.ReadFile("prometheus/alerts.yaml")
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, decodeStrict(raw, &rules))
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			require.NotEmpty(t, r.Labels["severity"], r.Alert)
			requireExported(t, names, r.Alert, r.Expr)
		}
	}
	for _, a := range []string{"ImagehubQueueGrowing", "ImagehubEndpointUnhealthy", "ImagehubHigh5xxRate", "ImagehubIngestStalled"} {
		require.True(t, alerts[a], a)
	}

	raw, err = os.ReadFile("grafana/imagehub.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			requireExported(t, names, p.Title, tg.Expr)
		}
	}
	// Database-wide series are never summed across replicas.
	for _, expr := range []string{string(raw)} {
		require.NotRegexp(t, `sum[^(]*\((rate\()?imagehub_(queue_jobs|queue_oldest|endpoint_)`, expr)
	}
}
