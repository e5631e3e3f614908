package jobs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/queries"
)

// labelIndex maps what a model may call a label (the hub's name, an
// external id such as an Open Images MID, or the display name, in any case)
// to the hub's label. It is read from the database at most once per
// refresh period, and again, at most once a second, when a model names a
// label it does not know, so a label added a moment ago is found.
type labelIndex struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	mu      sync.Mutex
	byAlias map[string]string    // alias → name
	byName  map[string]uuid.UUID // name → id
	loaded  time.Time
}

const labelRefresh = time.Minute

func newLabelIndex(pool *pgxpool.Pool, logger *slog.Logger) *labelIndex {
	return &labelIndex{pool: pool, logger: logger}
}

func (x *labelIndex) load(ctx context.Context, force bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	age := time.Since(x.loaded)
	if x.byName != nil && age < labelRefresh && (!force || age < time.Second) {
		return
	}
	rows, err := queries.New().LabelLookup(ctx, x.pool)
	if err != nil {
		x.logger.WarnContext(ctx, "error reading labels; using the last copy", "error", err)
		return
	}
	alias := make(map[string]string, 3*len(rows))
	names := make(map[string]uuid.UUID, len(rows))
	for _, r := range rows {
		names[r.Name] = r.ID
		alias[strings.ToLower(r.DisplayName)] = r.Name
		if r.ExternalID != nil {
			alias[strings.ToLower(*r.ExternalID)] = r.Name
		}
	}
	for _, r := range rows { // names win over other aliases
		alias[strings.ToLower(r.Name)] = r.Name
	}
	x.byAlias, x.byName, x.loaded = alias, names, time.Now()
}

// known returns the Expect.KnownLabel function for one answer.
func (x *labelIndex) known(ctx context.Context) func(string) (string, bool) {
	x.load(ctx, false)
	return func(s string) (string, bool) {
		key := strings.ToLower(strings.TrimSpace(s))
		x.mu.Lock()
		name, ok := x.byAlias[key]
		x.mu.Unlock()
		if !ok {
			x.load(ctx, true)
			x.mu.Lock()
			name, ok = x.byAlias[key]
			x.mu.Unlock()
		}
		return name, ok
	}
}

// ids is the current name → id map.
func (x *labelIndex) ids(ctx context.Context) map[string]uuid.UUID {
	x.load(ctx, false)
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.byName
}
