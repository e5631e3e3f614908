package intake

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deepimageshub/imagehub/queries"
)

// Quota is what one contributor may upload per UTC day; a zero field sets
// no limit.
type Quota struct {
	FilesPerDay int
	BytesPerDay int64
}

// Off reports whether the quota limits nothing.
func (q Quota) Off() bool { return q.FilesPerDay == 0 && q.BytesPerDay == 0 }

// Charge is one file counted against a quota, to give back with Refund when
// it is not stored after all.
type Charge struct {
	user  uuid.UUID
	day   pgtype.Date
	bytes int64
}

// TakeQuota counts a file of size bytes against user's quota for today;
// fits is false, and nothing is counted, when it would go over a limit. The
// check and the count are one statement, so parallel uploads (on any number
// of replicas) cannot pass the limit together.
func (s *Service) TakeQuota(ctx context.Context, user uuid.UUID, size int64, q Quota) (ch *Charge, fits bool, err error) {
	if q.Off() {
		return nil, true, nil
	}
	row, err := s.q.UploadQuotaTake(ctx, s.pool, queries.UploadQuotaTakeParams{
		UserID: user, Bytes: size, MaxFiles: int32(q.FilesPerDay), MaxBytes: q.BytesPerDay,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("error counting upload quota: %w", err)
	}
	return &Charge{user: user, day: row.Day, bytes: size}, true, nil
}

// Refund gives back a charge (nil is no charge). It runs even when ctx is
// cancelled, so a request cut off after a failed store does not keep the
// file counted.
func (s *Service) Refund(ctx context.Context, ch *Charge) {
	if ch == nil {
		return
	}
	if err := s.q.UploadQuotaRefund(context.WithoutCancel(ctx), s.pool, queries.UploadQuotaRefundParams{
		UserID: ch.user, Day: ch.day, Bytes: ch.bytes,
	}); err != nil {
		s.logger.WarnContext(ctx, "error refunding upload quota", "user", ch.user, "error", err)
	}
}
