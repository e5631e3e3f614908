package jobs

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// inferMetrics are the dispatcher's own numbers; queue depth and in-flight
// per endpoint across every process are read from PostgreSQL by the app.
type inferMetrics struct {
	latency  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
	// ingested counts the images this process finished ingesting, by the
	// status ingest gave them: rate() of its sum over replicas is the
	// cluster's ingest throughput.
	ingested *prometheus.CounterVec
}

func newInferMetrics(reg prometheus.Registerer) (*inferMetrics, error) {
	m := &inferMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagehub_inference_duration_seconds",
			Help:    "Time from sending an image to an inference endpoint to its answer, by model and outcome.",
			Buckets: prometheus.ExponentialBucketsRange(0.01, 120, 16),
		}, []string{"model", "version", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagehub_inference_errors_total",
			Help: "Failed inference requests by model and class (retryable, busy, contract, canceled, other).",
		}, []string{"model", "version", "class"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagehub_inference_in_flight",
			Help: "Inference requests this process has in flight, by endpoint.",
		}, []string{"endpoint"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagehub_ingested_images_total",
			Help: "Images this process finished ingesting, by the status ingest gave them (awaiting_inference, rejected, ...).",
		}, []string{"status"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.latency, m.errors, m.inFlight, m.ingested} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("error registering inference metrics: %w", err)
		}
	}
	return m, nil
}

func (m *inferMetrics) observe(model, version, kind string, d time.Duration) {
	outcome := "ok"
	if kind != "" {
		outcome = kind
		m.errors.WithLabelValues(model, version, kind).Inc()
	}
	m.latency.WithLabelValues(model, version, outcome).Observe(d.Seconds())
}
