// Package config reads imagehub's settings from environment variables into one
// struct. Nothing else in the program reads the environment.
package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/clientip"
	"github.com/deepimageshub/imagehub/webhook"
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
	// MetricsAddr, when set (e.g. 127.0.0.1:9090), serves /metrics on a
	// listener of its own and no longer on the main one.
	MetricsAddr string `env:"METRICS_ADDR"`

	// SessionTTL is the sliding lifetime of an idle session; SessionMaxAge
	// ends a session that long after sign-in, however busy.
	SessionTTL    time.Duration `env:"SESSION_TTL" envDefault:"336h"`
	SessionMaxAge time.Duration `env:"SESSION_MAX_AGE" envDefault:"720h"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed; from
	// anyone else the TCP peer address is the client.
	TrustedProxies []string `env:"TRUSTED_PROXIES" envSeparator:","`
	// LoginFreeAttempts failed sign-ins per (account, client), and
	// LoginFreeAttemptsPerClient per client whatever the account, go
	// through at once; after that each attempt waits LoginDelay, doubling
	// with each further failure up to LoginMaxDelay. A count with no failure
	// for LoginFailureWindow starts again.
	LoginFreeAttempts          int           `env:"LOGIN_FREE_ATTEMPTS" envDefault:"5"`
	LoginFreeAttemptsPerClient int           `env:"LOGIN_FREE_ATTEMPTS_PER_CLIENT" envDefault:"50"`
	LoginDelay                 time.Duration `env:"LOGIN_DELAY" envDefault:"1s"`
	LoginMaxDelay              time.Duration `env:"LOGIN_MAX_DELAY" envDefault:"15m"`
	LoginFailureWindow         time.Duration `env:"LOGIN_FAILURE_WINDOW" envDefault:"1h"`
	// PasswordHashCost is the bcrypt cost of new password hashes. Keep the
	// default on a server; the tests lower it, since each hash at cost 10
	// costs about a second of CPU under the race detector.
	PasswordHashCost int `env:"PASSWORD_HASH_COST" envDefault:"10"`
	// SignupOpen lets anyone create an account; when false, admins create
	// them (imagehub users create, POST /api/v1/users).
	SignupOpen bool `env:"SIGNUP_OPEN" envDefault:"true"`
	// SignupMaxPerClient sign-ups per client address inside SignupWindow.
	SignupMaxPerClient int           `env:"SIGNUP_MAX_PER_CLIENT" envDefault:"10"`
	SignupWindow       time.Duration `env:"SIGNUP_WINDOW" envDefault:"1h"`
	ShutdownTimeout    time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`

	// OIDCIssuer turns on "Sign in with …" through an OpenID Connect
	// provider: its issuer URL, exactly as its discovery document names it.
	// Unset, OpenID Connect is off and its routes answer 404.
	OIDCIssuer       string `env:"OIDC_ISSUER"`
	OIDCClientID     string `env:"OIDC_CLIENT_ID"`
	OIDCClientSecret string `env:"OIDC_CLIENT_SECRET"`
	// OIDCName is the provider's name on the sign-in button.
	OIDCName string `env:"OIDC_NAME" envDefault:"single sign-on"`
	// OIDCScopes are asked for at sign-in, space-separated; some providers
	// send a groups claim only for an extra scope.
	OIDCScopes string `env:"OIDC_SCOPES" envDefault:"openid email profile"`
	// OIDCRoleClaim names the claim (a string or an array of strings; a
	// dotted path reaches into objects, as in realm_access.roles) whose
	// values OIDC_ROLE_MAP turns into a role at each sign-in.
	OIDCRoleClaim string `env:"OIDC_ROLE_CLAIM"`
	// OIDCRoleMap is value:role pairs, comma-separated; the role is after
	// the last colon, so values may hold colons themselves. Read into
	// OIDCRoles.
	OIDCRoleMap string `env:"OIDC_ROLE_MAP"`
	// OIDCRoles is OIDCRoleMap parsed: claim value → role.
	OIDCRoles map[string]auth.Role

	UploadMaxFileBytes    int64 `env:"UPLOAD_MAX_FILE_BYTES" envDefault:"26214400"`     // 25 MiB
	UploadMaxRequestBytes int64 `env:"UPLOAD_MAX_REQUEST_BYTES" envDefault:"536870912"` // 512 MiB
	UploadMaxFiles        int   `env:"UPLOAD_MAX_FILES" envDefault:"200"`
	UploadMaxPixels       int64 `env:"UPLOAD_MAX_PIXELS" envDefault:"40000000"`
	// ImportMaxBytes caps the body of POST /api/v1/imports (a COCO file
	// and its images, or a zip of them), and what an import's zip may
	// unpack to is ten times it.
	ImportMaxBytes int64 `env:"IMPORT_MAX_BYTES" envDefault:"2147483648"` // 2 GiB
	// IngestMemoryBudget is the memory, in bytes, that the images being
	// decoded by one process may take together: each ingest waits until the
	// memory its image needs (estimated from its header) is free.
	IngestMemoryBudget int64 `env:"INGEST_MEMORY_BUDGET" envDefault:"1073741824"` // 1 GiB
	// UploadQuotaFilesPerDay and UploadQuotaBytesPerDay cap what one
	// contributor uploads per UTC day (0 = no cap); files beyond are
	// refused with 429 and Retry-After.
	UploadQuotaFilesPerDay int   `env:"UPLOAD_QUOTA_FILES_PER_DAY" envDefault:"0"`
	UploadQuotaBytesPerDay int64 `env:"UPLOAD_QUOTA_BYTES_PER_DAY" envDefault:"0"`

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
	// BuiltinTrainer makes serve run the project's CPU trainer in process,
	// against its own port, with a trainer token of a service account it
	// mints for itself, so that `make run` trains with no other setup.
	BuiltinTrainer bool `env:"BUILTIN_TRAINER" envDefault:"true"`

	// TrainingMaxConcurrent is how many trainings one user may have queued,
	// running or evaluating at once (docs/training.md).
	TrainingMaxConcurrent int `env:"TRAINING_MAX_CONCURRENT" envDefault:"1"`
	// TrainingMaxAttempts is how many leases a training run gets before a
	// trainer that keeps dying or failing ends it failed.
	TrainingMaxAttempts int `env:"TRAINING_MAX_ATTEMPTS" envDefault:"3"`
	// TrainingLease is how long a trainer holds a run without reporting
	// progress; it is told to report every third of it.
	TrainingLease time.Duration `env:"TRAINING_LEASE" envDefault:"2m"`
	// TrainingQueueTimeout ends a run that no trainer took within it
	// (failed, saying so): a recipe without a trainer, such as yolo-seg
	// on make run, must not hold its owner's slot for ever.
	TrainingQueueTimeout time.Duration `env:"TRAINING_QUEUE_TIMEOUT" envDefault:"24h"`
	// TrainingArtifactMaxBytes caps an uploaded trained model.
	TrainingArtifactMaxBytes int64 `env:"TRAINING_ARTIFACT_MAX_BYTES" envDefault:"536870912"`

	// ReviewLease is how long a reviewer holds an item without renewing
	// (the open review page renews it).
	ReviewLease time.Duration `env:"REVIEW_LEASE" envDefault:"10m"`
	// ReviewMaxInstances caps the instances of one submitted review.
	ReviewMaxInstances int `env:"REVIEW_MAX_INSTANCES" envDefault:"1000"`
	// PromptTimeout bounds one click-to-segment call to the interactive
	// model; PromptSlotWait is the longest a prompt waits for a free slot
	// of it; PromptMaxPoints caps the points of one prompt.
	PromptTimeout   time.Duration `env:"PROMPT_TIMEOUT" envDefault:"5s"`
	PromptSlotWait  time.Duration `env:"PROMPT_SLOT_WAIT" envDefault:"1s"`
	PromptMaxPoints int           `env:"PROMPT_MAX_POINTS" envDefault:"64"`
	// SecondReviewShare of first reviews get a blind second review; one
	// agreeing less than SecondReviewMinAgreement is flagged to admins.
	SecondReviewShare        float64 `env:"SECOND_REVIEW_SHARE" envDefault:"0.1"`
	SecondReviewMinAgreement float64 `env:"SECOND_REVIEW_MIN_AGREEMENT" envDefault:"0.7"`

	// Webhooks (docs/webhooks.md). WebhookTimeout bounds one try of a
	// delivery; a failed try is tried again after WebhookBackoff, doubling
	// up to WebhookMaxBackoff, WebhookMaxAttempts tries in all. An endpoint
	// is disabled once WebhookDisableAfterFailures tries in a row failed
	// over at least WebhookDisableAfter. WebhookAllowPrivate lets endpoints
	// be on loopback and private addresses (tests, one private network);
	// off, they are refused when registered and when dialled.
	WebhookTimeout              time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	WebhookMaxAttempts          int           `env:"WEBHOOK_MAX_ATTEMPTS" envDefault:"12"`
	WebhookBackoff              time.Duration `env:"WEBHOOK_BACKOFF" envDefault:"30s"`
	WebhookMaxBackoff           time.Duration `env:"WEBHOOK_MAX_BACKOFF" envDefault:"1h"`
	WebhookDisableAfterFailures int           `env:"WEBHOOK_DISABLE_AFTER_FAILURES" envDefault:"20"`
	WebhookDisableAfter         time.Duration `env:"WEBHOOK_DISABLE_AFTER" envDefault:"24h"`
	WebhookAllowPrivate         bool          `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
}

// WebhookSettings are the webhook delivery settings.
func (c *Config) WebhookSettings() webhook.Settings {
	return webhook.Settings{
		BaseURL: c.BaseURL, Timeout: c.WebhookTimeout, MaxAttempts: c.WebhookMaxAttempts,
		Backoff: c.WebhookBackoff, MaxBackoff: c.WebhookMaxBackoff,
		DisableAfterFailures: c.WebhookDisableAfterFailures, DisableAfter: c.WebhookDisableAfter,
		AllowPrivate: c.WebhookAllowPrivate,
	}
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
	if c.WebhookTimeout <= 0 || c.WebhookMaxAttempts < 1 || c.WebhookBackoff <= 0 || c.WebhookMaxBackoff < c.WebhookBackoff || c.WebhookDisableAfterFailures < 1 {
		return fmt.Errorf("WEBHOOK_TIMEOUT and WEBHOOK_BACKOFF must be positive, WEBHOOK_MAX_BACKOFF at least WEBHOOK_BACKOFF, WEBHOOK_MAX_ATTEMPTS and WEBHOOK_DISABLE_AFTER_FAILURES at least 1")
	}
	if c.DBMaxConns < 5 {
		return fmt.Errorf("DB_MAX_CONNS %d: want at least 5 (River keeps some connections busy)", c.DBMaxConns)
	}
	if c.LoginFreeAttempts < 1 || c.LoginFreeAttemptsPerClient < 1 {
		return fmt.Errorf("LOGIN_FREE_ATTEMPTS and LOGIN_FREE_ATTEMPTS_PER_CLIENT must be at least 1")
	}
	if c.PasswordHashCost < auth.MinPasswordCost || c.PasswordHashCost > auth.MaxPasswordCost {
		return fmt.Errorf("PASSWORD_HASH_COST must be between %d and %d", auth.MinPasswordCost, auth.MaxPasswordCost)
	}
	if c.LoginDelay < time.Second || c.LoginMaxDelay < c.LoginDelay || c.LoginFailureWindow < time.Minute {
		return fmt.Errorf("LOGIN_DELAY must be at least 1s, LOGIN_MAX_DELAY at least LOGIN_DELAY, LOGIN_FAILURE_WINDOW at least 1m")
	}
	if c.SignupMaxPerClient < 1 || c.SignupWindow < time.Minute {
		return fmt.Errorf("SIGNUP_MAX_PER_CLIENT must be at least 1 and SIGNUP_WINDOW at least 1m")
	}
	if _, err := clientip.New(c.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	if c.ImportMaxBytes < 1 {
		return fmt.Errorf("IMPORT_MAX_BYTES must be at least 1")
	}
	if c.UploadMaxFileBytes < 1 || c.UploadMaxRequestBytes < c.UploadMaxFileBytes || c.UploadMaxFiles < 1 || c.UploadMaxPixels < 1 {
		return fmt.Errorf("upload limits must be positive, and UPLOAD_MAX_REQUEST_BYTES at least UPLOAD_MAX_FILE_BYTES")
	}
	if c.IngestMemoryBudget < 64<<20 {
		return fmt.Errorf("INGEST_MEMORY_BUDGET %d: want at least 67108864 (64 MiB), in bytes", c.IngestMemoryBudget)
	}
	if c.UploadQuotaFilesPerDay < 0 || c.UploadQuotaBytesPerDay < 0 {
		return fmt.Errorf("UPLOAD_QUOTA_FILES_PER_DAY and UPLOAD_QUOTA_BYTES_PER_DAY must not be negative (0 turns the quota off)")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("METRICS_ADDR %q: want host:port, e.g. 127.0.0.1:9090: %w", c.MetricsAddr, err)
		}
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
	if c.TrainingMaxConcurrent < 1 || c.TrainingMaxAttempts < 1 || c.TrainingLease < time.Second || c.TrainingArtifactMaxBytes < 1 ||
		c.TrainingQueueTimeout < time.Second {
		return fmt.Errorf("TRAINING_MAX_CONCURRENT, TRAINING_MAX_ATTEMPTS and TRAINING_ARTIFACT_MAX_BYTES must be at least 1, TRAINING_LEASE and TRAINING_QUEUE_TIMEOUT at least 1s")
	}
	if c.SessionTTL < time.Minute || c.SessionMaxAge < time.Minute {
		return fmt.Errorf("SESSION_TTL %s and SESSION_MAX_AGE %s must be at least 1m", c.SessionTTL, c.SessionMaxAge)
	}
	return c.validateOIDC()
}

func (c *Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCRoleClaim != "" || c.OIDCRoleMap != "" {
			return fmt.Errorf("OIDC_CLIENT_ID, OIDC_ROLE_CLAIM and OIDC_ROLE_MAP need OIDC_ISSUER")
		}
		return nil
	}
	if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("OIDC_ISSUER %q: want an http or https URL", c.OIDCIssuer)
	}
	if c.OIDCClientID == "" || c.OIDCClientSecret == "" {
		return fmt.Errorf("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed too")
	}
	if !slices.Contains(strings.Fields(c.OIDCScopes), "openid") {
		return fmt.Errorf("OIDC_SCOPES %q: must include openid", c.OIDCScopes)
	}
	if (c.OIDCRoleClaim == "") != (c.OIDCRoleMap == "") {
		return fmt.Errorf("OIDC_ROLE_CLAIM and OIDC_ROLE_MAP go together: set both or neither")
	}
	c.OIDCRoles = nil
	for pair := range strings.SplitSeq(c.OIDCRoleMap, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		i := strings.LastIndexByte(pair, ':')
		if i < 1 {
			return fmt.Errorf("OIDC_ROLE_MAP entry %q: want value:role", pair)
		}
		value, role := strings.TrimSpace(pair[:i]), auth.Role(strings.TrimSpace(pair[i+1:]))
		if !role.Valid() {
			return fmt.Errorf("OIDC_ROLE_MAP entry %q: role must be one of contributor, reviewer, premium, admin", pair)
		}
		if c.OIDCRoles == nil {
			c.OIDCRoles = map[string]auth.Role{}
		}
		c.OIDCRoles[value] = role
	}
	return nil
}

// HTTPS reports whether cookies must be Secure (and take __Host- names): the
// site is served over https (BASE_URL), or SECURE_COOKIES=true forces it
// for an http BASE_URL behind a TLS-terminating proxy.
func (c *Config) HTTPS() bool {
	return c.SecureCookies || strings.HasPrefix(strings.ToLower(c.BaseURL), "https://")
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
