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
	Port           int    `env:"PORT" envDefault:"8080"`
	DatabaseURL    string `env:"DATABASE_URL"`
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
	if c.LoginMaxFailures < 1 || c.LoginMaxFailuresIP < 1 {
		return fmt.Errorf("LOGIN_MAX_FAILURES and LOGIN_MAX_FAILURES_PER_IP must be at least 1")
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
