package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
)

// rleBox is the compressed RLE of [x0, x1) × [y0, y1) on a w×h image.
func rleBox(w, h, x0, y0, x1, y1 int) mask.RLE {
	b := mask.NewBitmap(w, h)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b.Set(x, y, true)
		}
	}
	return mask.Encode(b)
}

// TestCommitteeImportedAndModel: an import's annotations taken in as
// proposals and an enabled model's proposals form a committee on the same
// photo, both calling what they found an object. The model (the worker, synthetic) proposes the middle half,
// [100, 300) × [75, 225) of a 400×300 photo; the import a box covering its
// upper two thirds ([100, 300) × [75, 175): IoU 20000/30000) and a small
// box elsewhere that nothing matches. The agreement is 2/3 over one match
// and one unmatched instance: 1/3.
func TestCommitteeImportedAndModel(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	ctx := context.Background()
	srv := httptest.NewServer(worker.New(worker.Config{Model: "halves", Synthetic: true, Capacity: 2}))
	t.Cleanup(srv.Close)
	res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "halves", "version": "1",
		"endpoints": []string{srv.URL}, "capacity": 2, "enabled": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)

	var adminID uuid.UUID
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT id FROM users WHERE email = 'admin@example.com'`).Scan(&adminID))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.jpg"), imagingtest.JPEG(imagingtest.Photo(400, 300, 93)), 0o644))
	seg := func(m mask.RLE) string {
		b, err := json.Marshal(map[string]any{"size": m.Size, "counts": m.Counts})
		require.NoError(t, err)
		return string(b)
	}
	coco := fmt.Sprintf(`{"images": [{"id": 7, "file_name": "p.jpg", "width": 400, "height": 300}],
"categories": [{"id": 1, "name": "object"}],
"annotations": [{"id": 70, "image_id": 7, "category_id": 1, "segmentation": %s},
                {"id": 71, "image_id": 7, "category_id": 1, "segmentation": %s}]}`,
		seg(rleBox(400, 300, 100, 75, 300, 175)), seg(rleBox(400, 300, 0, 0, 20, 20)))
	im := &importer.Importer{Pool: w.pool, Intake: w.server.intake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sum, err := im.COCO(ctx, strings.NewReader(coco), dir,
		importer.Options{Source: "committee.json", Importer: adminID, AsProposals: true})
	require.NoError(t, err)
	require.Equal(t, 2, sum.Added, "%s", sum)

	deadline := time.Now().Add(60 * time.Second)
	var image uuid.UUID
	for {
		err := w.pool.QueryRow(ctx, `SELECT id FROM images WHERE status = 'awaiting_review'`).Scan(&image)
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the image never waited for review")
		time.Sleep(50 * time.Millisecond)
	}
	var labels []string
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT array_agg(l.name || ' ' || m.name ORDER BY m.name) FROM proposals p
		JOIN labels l ON l.id = p.label_id JOIN models m ON m.id = p.model_id WHERE p.image_id = $1`, image).Scan(&labels))
	require.Equal(t, []string{"object halves", "object imported-committee.json", "object imported-committee.json"}, labels,
		"the model, given no hint, calls what it finds an object, as the import does")
	var agreement, object float64
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT r.model_agreement::float8, m.agreement::float8
		FROM review_items r JOIN model_agreements m ON m.image_id = r.image_id
		WHERE r.image_id = $1 AND r.kind = 'first'`, image).Scan(&agreement, &object))
	require.InDelta(t, 1.0/3, agreement, 1e-6)
	require.InDelta(t, 1.0/3, object, 1e-6)
}
