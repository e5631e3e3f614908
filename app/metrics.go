package app

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/deepimageshub/imagehub/queries"
)

// Registry is where the app registers its metrics and what /metrics
// serves: a *prometheus.Registry, or one that also records what is
// registered (the tests of deploy/ check the alert rules against it).
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagehub_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagehub_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.duration, &queueCollector{pool: pool}, &endpointCollector{pool: pool},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("error registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// databaseWide marks the series read from PostgreSQL at scrape time: every
// replica reports the same value for them, so across replicas they are
// aggregated with max() (never sum()), e.g.
// max without (instance, pod) (imagehub_queue_jobs). Per-process series
// (requests, inference latency, ingested images) carry no such label and
// add up with sum().
var databaseWide = prometheus.Labels{"scope": "database"}

// queueCollector reports River's queue depth at scrape time, read from
// PostgreSQL so that every replica reports the same numbers.
type queueCollector struct{ pool *pgxpool.Pool }

var (
	queueDepthDesc = prometheus.NewDesc("imagehub_queue_jobs",
		"River jobs by queue and state (available, running, retryable, scheduled), database-wide.",
		[]string{"queue", "state"}, databaseWide)
	queueOldestDesc = prometheus.NewDesc("imagehub_queue_oldest_available_age_seconds",
		"Age of the oldest job waiting (available) in a queue, database-wide; 0 when none waits.",
		[]string{"queue"}, databaseWide)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueOldestDesc
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := q.pool.Query(ctx, `
		SELECT queue, state::text, count(*)
		FROM river_job
		WHERE state IN ('available', 'running', 'retryable', 'scheduled')
		GROUP BY queue, state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, fmt.Errorf("error reading queue depth: %w", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var queue, state string
		var n int64
		if err := rows.Scan(&queue, &state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n), queue, state)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	q.collectOldest(ctx, ch)
}

// collectOldest reports, per queue with jobs, how long its oldest available
// job has waited: a queue whose depth is flat but whose oldest job keeps
// ageing has stalled.
func (q *queueCollector) collectOldest(ctx context.Context, ch chan<- prometheus.Metric) {
	rows, err := q.pool.Query(ctx, `
		SELECT queue,
		       coalesce(extract(epoch FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0)::float8
		FROM river_job
		WHERE state IN ('available', 'running', 'retryable', 'scheduled')
		GROUP BY queue`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueOldestDesc, fmt.Errorf("error reading oldest job age: %w", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var queue string
		var age float64
		if err := rows.Scan(&queue, &age); err != nil {
			ch <- prometheus.NewInvalidMetric(queueOldestDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, max(age, 0), queue)
	}
}

// endpointCollector reports each inference endpoint's requests in flight
// (slots held, by every process), capacity and health, from PostgreSQL.
type endpointCollector struct{ pool *pgxpool.Pool }

var (
	endpointInFlightDesc = prometheus.NewDesc("imagehub_endpoint_in_flight",
		"Inference requests in flight to an endpoint, from every hub process.",
		[]string{"model", "version", "endpoint"}, databaseWide)
	endpointCapacityDesc = prometheus.NewDesc("imagehub_endpoint_capacity",
		"Registered capacity (requests in flight) of an endpoint.",
		[]string{"model", "version", "endpoint"}, databaseWide)
	endpointHealthyDesc = prometheus.NewDesc("imagehub_endpoint_healthy",
		"1 when an endpoint takes requests, 0 while it cools off after failures.",
		[]string{"model", "version", "endpoint"}, databaseWide)
)

func (e *endpointCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- endpointInFlightDesc
	ch <- endpointCapacityDesc
	ch <- endpointHealthyDesc
}

func (e *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := queries.New().EndpointInFlight(ctx, e.pool)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(endpointInFlightDesc, fmt.Errorf("error reading endpoints: %w", err))
		return
	}
	for _, r := range rows {
		labels := []string{r.ModelName, r.ModelVersion, r.BaseUrl}
		healthy := 1.0
		if r.Cooling {
			healthy = 0
		}
		ch <- prometheus.MustNewConstMetric(endpointInFlightDesc, prometheus.GaugeValue, float64(r.InFlight), labels...)
		ch <- prometheus.MustNewConstMetric(endpointCapacityDesc, prometheus.GaugeValue, float64(r.Capacity), labels...)
		ch <- prometheus.MustNewConstMetric(endpointHealthyDesc, prometheus.GaugeValue, healthy, labels...)
	}
}
