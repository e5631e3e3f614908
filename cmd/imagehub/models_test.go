package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/worker"
)

// TestModelsRegister: `imagehub models register` checks a real worker and
// saves the model, and a second run with another capacity updates it; a
// model file with an unknown field is refused before anything is saved.
func TestModelsRegister(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	ws := worker.New(worker.Config{Capacity: 2})
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	vars := map[string]string{"DATABASE_URL": url}
	_, stderr, err := runCmd(t, vars, "migrate")
	require.NoError(t, err, stderr)

	spec := `{"name": "` + ws.Model() + `", "version": "1", "task": "segmentation", "endpoints": ["` + srv.URL + `"], "capacity": %d, "enabled": true}`
	out, stderr, err := runCmd(t, vars, "models", "register", "--wait", "30s", "--file", write("a.json", fmt.Sprintf(spec, 3)))
	require.NoError(t, err, stderr)
	require.Contains(t, out, "registered model "+ws.Model()+" version 1 with 1 endpoint(s)")
	out, stderr, err = runCmd(t, vars, "models", "register", "--file", write("b.json", fmt.Sprintf(spec, 5)))
	require.NoError(t, err, stderr)
	require.Contains(t, out, "updated model")

	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var capacity int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT e.capacity FROM model_endpoints e JOIN models m ON m.id = e.model_id WHERE m.name = $1 AND e.base_url = $2`,
		ws.Model(), srv.URL).Scan(&capacity))
	require.Equal(t, 5, capacity)

	_, _, err = runCmd(t, vars, "models", "register", "--file", write("c.json", `{"name": "x", "version": "1", "endpoints": ["`+srv.URL+`"], "capacty": 2}`))
	require.Error(t, err, "an unknown field is refused")
	// A server that never answers: --wait gives up and saves nothing.
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	_, stderr, err = runCmd(t, vars, "models", "register", "--wait", "1s", "--file",
		write("d.json", `{"name": "x", "version": "1", "task": "segmentation", "endpoints": ["`+deadURL+`"], "capacity": 2}`))
	require.Error(t, err)
	require.Contains(t, stderr, "endpoints not ready after 1s")
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM models WHERE name = 'x'`).Scan(&n))
	require.Zero(t, n)
}
