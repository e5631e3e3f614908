// Package intake takes images into the hub: it checks a file (type, size,
// pixels, completeness), stores its bytes, and records the image, its
// uploader, its labels and its ingest job in one transaction. The web upload
// and the bulk import both go through it, so both apply the same rules.
package intake

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Service takes images in.
type Service struct {
	pool   *pgxpool.Pool
	q      *queries.Queries
	blobs  blob.Store
	river  *river.Client[pgx.Tx]
	limits imaging.Limits
	logger *slog.Logger
}

// NewService returns a Service. river may be an insert-only client.
func NewService(pool *pgxpool.Pool, blobs blob.Store, rc *river.Client[pgx.Tx], limits imaging.Limits, logger *slog.Logger) *Service {
	return &Service{pool: pool, q: queries.New(), blobs: blobs, river: rc, limits: limits, logger: logger}
}

// File is a file waiting on disk to be taken in, already hashed.
type File struct {
	Path     string
	Filename string // the client's name for it: a label, never a path
	Size     int64
	SHA256   [32]byte
}

// HashFile measures and hashes a file on disk.
func HashFile(path, filename string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("error opening %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("error reading %s: %w", path, err)
	}
	out := File{Path: path, Filename: filename, Size: n}
	copy(out.SHA256[:], h.Sum(nil))
	return out, nil
}

// Outcomes of Add.
const (
	Created   = "created"
	Duplicate = "duplicate"
	Refused   = "refused"
)

// Outcome is what became of one file.
type Outcome struct {
	Status  string
	Image   queries.Image    // for created and duplicate
	Refusal *imaging.Refusal // for refused
}

// ErrStorageUnavailable means the blob store did not take the bytes; nothing
// was recorded.
var ErrStorageUnavailable = errors.New("blob store unavailable")

// Add checks one file and, unless it is refused, stores it for user. The
// bytes go to the blob store before the transaction that records the image
// and its ingest job, so a committed row always has its bytes; bytes left by
// a transaction that failed are removed later by the blob sweeper. The same
// bytes already stored make a duplicate: the labels and the uploader are
// added to the existing image.
func (s *Service) Add(ctx context.Context, user uuid.UUID, f File, labels []queries.Label, campaignID *uuid.UUID) (Outcome, error) {
	existing, err := s.q.ImageGetByUploadHash(ctx, s.pool, f.SHA256[:])
	switch {
	case err == nil:
		// Known bytes: no need to check or store them again.
		return s.record(ctx, user, f, imaging.Header{}, labels, campaignID, &existing)
	case !errors.Is(err, pgx.ErrNoRows):
		return Outcome{}, fmt.Errorf("error looking up image: %w", err)
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return Outcome{}, fmt.Errorf("error opening %s: %w", f.Path, err)
	}
	defer fh.Close()
	hdr, err := imaging.Inspect(fh, s.limits)
	var ref *imaging.Refusal
	if errors.As(err, &ref) {
		return Outcome{Status: Refused, Refusal: ref}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return Outcome{}, fmt.Errorf("error rewinding %s: %w", f.Path, err)
	}
	key := blob.UploadKey(f.SHA256[:])
	if err := s.blobs.Put(ctx, key, fh, f.Size, hdr.ContentType); err != nil {
		s.logger.WarnContext(ctx, "blob store put failed", "key", key, "error", err)
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorageUnavailable, err)
	}
	return s.record(ctx, user, f, hdr, labels, campaignID, nil)
}

// record writes the image (unless it exists), the upload, the labels and the
// ingest job in one transaction.
func (s *Service) record(ctx context.Context, user uuid.UUID, f File, hdr imaging.Header,
	labels []queries.Label, campaignID *uuid.UUID, existing *queries.Image) (Outcome, error) {
	labelIDs := make([]uuid.UUID, len(labels))
	for i, l := range labels {
		labelIDs[i] = l.ID
	}
	out := Outcome{Status: Duplicate}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if existing != nil {
			out.Image = *existing
		} else {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("error making image id: %w", err)
			}
			img, err := s.q.ImageInsert(ctx, tx, queries.ImageInsertParams{
				ID: id, UploadSha256: f.SHA256[:], OwnerID: user, CampaignID: campaignID,
				Filename: f.Filename, ContentType: hdr.ContentType, ByteSize: f.Size,
				Width: int32(hdr.Width), Height: int32(hdr.Height),
			})
			switch {
			case err == nil:
				out.Status, out.Image = Created, img
				if _, err := s.river.InsertTx(ctx, tx, jobs.IngestArgs{ImageID: img.ID}, nil); err != nil {
					return fmt.Errorf("error queueing ingest: %w", err)
				}
			case errors.Is(err, pgx.ErrNoRows):
				// The same bytes committed a moment ago by another upload.
				if out.Image, err = s.q.ImageGetByUploadHash(ctx, tx, f.SHA256[:]); err != nil {
					return fmt.Errorf("error reading existing image: %w", err)
				}
			default:
				return fmt.Errorf("error recording image: %w", err)
			}
		}
		if err := s.q.ImageUploadInsert(ctx, tx, queries.ImageUploadInsertParams{
			ImageID: out.Image.ID, UserID: user, Filename: f.Filename, CampaignID: campaignID,
		}); err != nil {
			return fmt.Errorf("error recording upload: %w", err)
		}
		if len(labelIDs) > 0 {
			if err := s.q.ImageLabelsAdd(ctx, tx, queries.ImageLabelsAddParams{
				ImageID: out.Image.ID, LabelIds: labelIDs, AddedBy: user,
			}); err != nil {
				return fmt.Errorf("error adding labels: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// ResolveLabels maps label names to the taxonomy. An unknown name refuses the
// whole upload rather than be silently dropped.
func (s *Service) ResolveLabels(ctx context.Context, names []string) ([]queries.Label, error) {
	if len(names) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var uniq []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "" && !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	if len(uniq) > 50 {
		return nil, problem.BadInput("too_many_labels", "labels", "Give at most 50 labels per upload.")
	}
	labels, err := s.q.LabelGetByNames(ctx, s.pool, uniq)
	if err != nil {
		return nil, fmt.Errorf("error reading labels: %w", err)
	}
	if len(labels) != len(uniq) {
		found := map[string]bool{}
		for _, l := range labels {
			found[l.Name] = true
		}
		var missing []string
		for _, n := range uniq {
			if !found[n] {
				missing = append(missing, n)
			}
		}
		return nil, problem.BadInput("unknown_label", "labels",
			fmt.Sprintf("Unknown label %q; pick labels from the list (GET /api/v1/labels).", strings.Join(missing, `", "`)))
	}
	return labels, nil
}

// ResolveOpenCampaign checks that a campaign exists and is open.
func (s *Service) ResolveOpenCampaign(ctx context.Context, raw string) (*uuid.UUID, error) {
	if raw == "" {
		return nil, nil
	}
	unknown := problem.BadInput("unknown_campaign", "campaign_id", "There is no such campaign.")
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, unknown
	}
	c, err := s.q.CampaignGet(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, unknown
	}
	if err != nil {
		return nil, fmt.Errorf("error reading campaign: %w", err)
	}
	if !c.ClosesAt.After(time.Now()) {
		return nil, problem.New(http.StatusBadRequest, "campaign_closed", "campaign_id", "This campaign has closed; thank you all the same.")
	}
	return &id, nil
}
