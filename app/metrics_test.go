package app

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDatabaseWideMetrics: queue depth and the age of the oldest waiting job
// come from PostgreSQL and carry scope="database", the label that tells a
// dashboard to take max() of them across replicas rather than sum().
func TestDatabaseWideMetrics(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	// A queue no worker of this process serves, so the job keeps waiting.
	_, err := tb.pool.Exec(context.Background(), `
		INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
		VALUES ('{}', 'metrics_test', 1, 1, 'stalled', 'available', now() - interval '90 seconds'),
		       ('{}', 'metrics_test', 1, 1, 'stalled', 'available', now() - interval '10 seconds')`)
	require.NoError(t, err)

	res := tb.client(t).get("/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	body := string(res.body)
	require.Contains(t, body, `imagehub_queue_jobs{queue="stalled",scope="database",state="available"} 2`)
	m := regexp.MustCompile(`imagehub_queue_oldest_available_age_seconds\{queue="stalled",scope="database"\} (\S+)`).FindStringSubmatch(body)
	require.NotNil(t, m, "%s", body)
	age, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.InDelta(t, 90, age, 30, "the oldest job's age, not the newest's")
}
