// Package config reads imagehub's settings from environment variables into one
// struct. Nothing else in the program reads the environment.
package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is every setting of the program. The README's configuration table
// lists the same variables; keep the two in step.
type Config struct {
	Port        int    `env:"PORT" envDefault:"8080"`
	DatabaseURL string `env:"DATABASE_URL"`
	// DBMaxConns is the connection pool size of one process: requests, job
	// workers and River's own listener and leader election share it.
	DBMaxConns     int32  `env:"DB_MAX_CONNS" envDefault:"25"`
	DataDir        string `env:"DATA_DIR" envDefault:".data"`
	BlobURL        string `env:"BLOB_URL"`
	LogFormat      string `env:"LOG_FORMAT" envDefault:"text"`
	LogLevel       string `env:"LOG_LEVEL" envDefault:"info"`
	BaseURL        string `env:"BASE_URL" envDefault:"http://localhost:8080"`
	SecureCookies  bool   `env:"SECURE_COOKIES" envDefault:"false"`
	MigrateOnStart bool   `env:"MIGRATE_ON_START" envDefault:"true"`

	SessionTTL         time.Duration `env:"SESSION_TTL" envDefault:"336h"`
	LoginMaxFailures   int           `env:"LOGIN_MAX_FAILURES" envDefault:"10"`
	LoginMaxFailuresIP int           `env:"LOGIN_MAX_FAILURES_PER_IP" envDefault:"100"`
	LoginFailureWindow time.Duration `env:"LOGIN_FAILURE_WINDOW" envDefault:"15m"`
	ShutdownTimeout    time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`

	UploadMaxFileBytes    int64 `env:"UPLOAD_MAX_FILE_BYTES" envDefault:"26214400"`     // 25 MiB
	UploadMaxRequestBytes int64 `env:"UPLOAD_MAX_REQUEST_BYTES" envDefault:"536870912"` // 512 MiB
	UploadMaxFiles        int   `env:"UPLOAD_MAX_FILES" envDefault:"200"`
	UploadMaxPixels       int64 `env:"UPLOAD_MAX_PIXELS" envDefault:"40000000"`

	// NearDuplicateDistance is the largest Hamming distance between perceptual
	// hashes at which two images count as near-duplicates (at most 7).
	NearDuplicateDistance int `env:"NEAR_DUPLICATE_DISTANCE" envDefault:"6"`
	// BlobGracePeriod is how old an unreferenced blob must be before the
	// sweeper deletes it, so that an upload in flight is never swept.
	BlobGracePeriod time.Duration `env:"BLOB_GRACE_PERIOD" envDefault:"24h"`
	// JobTimeout bounds one attempt of a background job.
	JobTimeout time.Duration `env:"JOB_TIMEOUT" envDefault:"2m"`
	// JobRescueAfter is how long a job may stay running before River takes
	// it for lost (its process killed) and runs it again elsewhere. It must
	// be at least JobTimeout, so that a slow job is never run twice at once.
	JobRescueAfter time.Duration `env:"JOB_RESCUE_AFTER" envDefault:"10m"`

	// InferWorkers is how many inference jobs one process runs at once. Set
	// it at least to the total capacity of the endpoints it should keep
	// busy; jobs beyond that wait for a slot and then snooze.
	InferWorkers int `env:"INFER_WORKERS" envDefault:"64"`
	// InferMaxAttempts is how often an inference is tried before its
	// failure is final. Waiting for a free endpoint is not an attempt.
	InferMaxAttempts int `env:"INFER_MAX_ATTEMPTS" envDefault:"10"`
	// InferMaxBackoff caps the wait before a failed inference is retried
	// (it doubles from one second).
	InferMaxBackoff time.Duration `env:"INFER_MAX_BACKOFF" envDefault:"1m"`
	// InferMaxInstances caps the instances in one answer; more is a
	// contract error.
	InferMaxInstances int `env:"INFER_MAX_INSTANCES" envDefault:"500"`
	// EvaluationPoll is how long an evaluation's job waits (snoozed)
	// before it looks again whether its inference is done.
	EvaluationPoll time.Duration `env:"EVALUATION_POLL" envDefault:"2s"`
	// EndpointFailures retryable failures in a row send an endpoint into a
	// cool-off of EndpointCoolOff, during which it gets no requests.
	EndpointFailures int           `env:"ENDPOINT_FAILURE_THRESHOLD" envDefault:"3"`
	EndpointCoolOff  time.Duration `env:"ENDPOINT_COOLOFF" envDefault:"30s"`
	// BuiltinWorker makes serve start the project's CPU inference worker on
	// a loopback port and register it as model imagehub-segmenter, so the
	// whole flow runs without a GPU server.
	BuiltinWorker bool `env:"BUILTIN_WORKER" envDefault:"true"`
	// BuiltinWorkerCapacity is its inferences in flight; 0 means one per core.
	BuiltinWorkerCapacity int `env:"BUILTIN_WORKER_CAPACITY" envDefault:"0"`

	// ReviewLease is how long a reviewer holds an item without renewing
	// (the open review page renews it).
	ReviewLease time.Duration `env:"REVIEW_LEASE" envDefault:"10m"`
	// ReviewMaxInstances caps the instances of one submitted review.
	ReviewMaxInstances int `env:"REVIEW_MAX_INSTANCES" envDefault:"1000"`
	// SecondReviewShare of first reviews get a blind second review; one
	// agreeing less than SecondReviewMinAgreement is flagged to admins.
	SecondReviewShare        float64 `env:"SECOND_REVIEW_SHARE" envDefault:"0.1"`
	SecondReviewMinAgreement float64 `env:"SECOND_REVIEW_MIN_AGREEMENT" envDefault:"0.7"`
}

// Load reads the configuration through getenv (os.Getenv in production, a map
// in tests) and checks it.
func Load(getenv func(string) string) (Config, error) {
	vars, err := environ(getenv)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, fmt.Errorf("error reading configuration: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// environ asks getenv for exactly the variables Config reads, so tests can pass
// a map instead of touching the process environment.
func environ(getenv func(string) string) (map[string]string, error) {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		return nil, fmt.Errorf("error reading config struct tags: %w", err)
	}
	m := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			m[p.Key] = v
		}
	}
	return m, nil
}

func (c *Config) validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("PORT %d is not a port number", c.Port)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat)
	}
	if _, err := url.Parse(c.BaseURL); err != nil {
		return fmt.Errorf("BASE_URL %q: %w", c.BaseURL, err)
	}
	if c.DBMaxConns < 5 {
		return fmt.Errorf("DB_MAX_CONNS %d: want at least 5 (River keeps some connections busy)", c.DBMaxConns)
	}
	if c.LoginMaxFailures < 1 || c.LoginMaxFailuresIP < 1 {
		return fmt.Errorf("LOGIN_MAX_FAILURES and LOGIN_MAX_FAILURES_PER_IP must be at least 1")
	}
	if c.UploadMaxFileBytes < 1 || c.UploadMaxRequestBytes < c.UploadMaxFileBytes || c.UploadMaxFiles < 1 || c.UploadMaxPixels < 1 {
		return fmt.Errorf("upload limits must be positive, and UPLOAD_MAX_REQUEST_BYTES at least UPLOAD_MAX_FILE_BYTES")
	}
	if c.NearDuplicateDistance < 0 || c.NearDuplicateDistance > 7 {
		return fmt.Errorf("NEAR_DUPLICATE_DISTANCE %d: want 0 to 7", c.NearDuplicateDistance)
	}
	if c.JobTimeout <= 0 || c.JobRescueAfter < c.JobTimeout {
		return fmt.Errorf("JOB_RESCUE_AFTER (%s) must be at least JOB_TIMEOUT (%s)", c.JobRescueAfter, c.JobTimeout)
	}
	if c.InferWorkers < 1 || c.InferMaxAttempts < 1 || c.InferMaxBackoff < time.Second || c.InferMaxInstances < 1 {
		return fmt.Errorf("INFER_WORKERS, INFER_MAX_ATTEMPTS and INFER_MAX_INSTANCES must be at least 1, INFER_MAX_BACKOFF at least 1s")
	}
	if c.EvaluationPoll < 10*time.Millisecond {
		return fmt.Errorf("EVALUATION_POLL %s is too short: want at least 10ms", c.EvaluationPoll)
	}
	if c.EndpointFailures < 1 || c.EndpointCoolOff <= 0 || c.BuiltinWorkerCapacity < 0 {
		return fmt.Errorf("ENDPOINT_FAILURE_THRESHOLD must be at least 1, ENDPOINT_COOLOFF positive, BUILTIN_WORKER_CAPACITY not negative")
	}
	if c.ReviewLease < 10*time.Second || c.ReviewMaxInstances < 1 ||
		!(c.SecondReviewShare >= 0 && c.SecondReviewShare <= 1) || !(c.SecondReviewMinAgreement >= 0 && c.SecondReviewMinAgreement <= 1) {
		return fmt.Errorf("REVIEW_LEASE must be at least 10s, REVIEW_MAX_INSTANCES at least 1, SECOND_REVIEW_SHARE and SECOND_REVIEW_MIN_AGREEMENT in [0, 1]")
	}
	if c.SessionTTL < time.Minute {
		return fmt.Errorf("SESSION_TTL %s is too short", c.SessionTTL)
	}
	return nil
}

// BlobStoreURL is BLOB_URL, or a folder under DATA_DIR when it is unset.
func (c *Config) BlobStoreURL() (string, error) {
	if c.BlobURL != "" {
		return c.BlobURL, nil
	}
	dir, err := filepath.Abs(filepath.Join(c.DataDir, "blobs"))
	if err != nil {
		return "", fmt.Errorf("error resolving blob folder: %w", err)
	}
	return (&url.URL{Scheme: "file", Path: dir}).String(), nil
}
