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

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, pool *pgxpool.Pool) (*metrics, error) {
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

// queueCollector reports River's queue depth at scrape time, read from
// PostgreSQL so that every replica reports the same numbers.
type queueCollector struct{ pool *pgxpool.Pool }

var queueDepthDesc = prometheus.NewDesc("imagehub_queue_jobs",
	"River jobs by queue and state (available, running, retryable, scheduled).",
	[]string{"queue", "state"}, nil)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

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
}

// endpointCollector reports each inference endpoint's requests in flight
// (slots held, by every process), capacity and health, from PostgreSQL.
type endpointCollector struct{ pool *pgxpool.Pool }

var (
	endpointInFlightDesc = prometheus.NewDesc("imagehub_endpoint_in_flight",
		"Inference requests in flight to an endpoint, from every hub process.",
		[]string{"model", "version", "endpoint"}, nil)
	endpointCapacityDesc = prometheus.NewDesc("imagehub_endpoint_capacity",
		"Registered capacity (requests in flight) of an endpoint.",
		[]string{"model", "version", "endpoint"}, nil)
	endpointHealthyDesc = prometheus.NewDesc("imagehub_endpoint_healthy",
		"1 when an endpoint takes requests, 0 while it cools off after failures.",
		[]string{"model", "version", "endpoint"}, nil)
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
