-- name: ReviewLeaseCampaign :one
-- Leases the next item of an open campaign to one reviewer. The queue
-- serves open campaigns first, by priority, and within them (and among
-- campaigns of equal priority) by committee: the images where the models
-- agree least first (model_agreement; an image with one model counts as
-- agreeing, 1), and among equals the least confident proposals first. Each
-- open campaign's head is read from review_items_campaign_queue_idx, so a
-- lease sorts one row per campaign, never the queue. SKIP LOCKED hands
-- every item to one reviewer only, however many ask at once (a head locked
-- here and not picked is skipped by others only while this runs); an item
-- whose lease expired is free again. None: ReviewLeaseRest.
WITH heads AS (
    SELECT h.id, c.priority, h.agreement, h.confidence, h.created_at
    FROM campaigns c
    CROSS JOIN LATERAL (
        SELECT r.id, coalesce(r.model_agreement, 1) AS agreement, r.confidence, r.created_at
        FROM review_items r
        WHERE r.campaign_id = c.id AND r.done_at IS NULL
          AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
          AND (r.excluded_user IS NULL OR r.excluded_user <> sqlc.arg(reviewer)::uuid)
          AND (sqlc.narg(label_id)::uuid IS NULL OR EXISTS (
                SELECT 1 FROM image_labels il WHERE il.image_id = r.image_id AND il.label_id = sqlc.narg(label_id)::uuid))
        ORDER BY coalesce(r.model_agreement, 1), r.confidence NULLS LAST, r.created_at, r.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) h
    WHERE c.closes_at > now()
      AND (sqlc.narg(campaign_id)::uuid IS NULL OR c.id = sqlc.narg(campaign_id)::uuid)
), pick AS (
    SELECT heads.id FROM heads
    ORDER BY heads.priority DESC, heads.agreement, heads.confidence NULLS LAST, heads.created_at, heads.id
    LIMIT 1
)
UPDATE review_items SET leased_by = sqlc.arg(reviewer)::uuid, leased_at = now(),
    lease_expires_at = now() + make_interval(secs => sqlc.arg(lease_seconds)::float8)
FROM pick
WHERE review_items.id = pick.id
RETURNING review_items.*;

-- name: ReviewLeaseRest :one
-- Leases the next item outside open campaigns (ReviewLeaseCampaign found
-- none), in the committee order, read from review_items_committee_idx.
WITH pick AS (
    SELECT r.id AS picked_id
    FROM review_items r
    WHERE r.done_at IS NULL
      AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
      AND (r.excluded_user IS NULL OR r.excluded_user <> sqlc.arg(reviewer)::uuid)
      AND (r.campaign_id IS NULL OR r.campaign_id NOT IN (SELECT c.id FROM campaigns c WHERE c.closes_at > now()))
      AND (sqlc.narg(label_id)::uuid IS NULL OR EXISTS (
            SELECT 1 FROM image_labels il WHERE il.image_id = r.image_id AND il.label_id = sqlc.narg(label_id)::uuid))
      AND (sqlc.narg(campaign_id)::uuid IS NULL OR r.campaign_id = sqlc.narg(campaign_id)::uuid)
    ORDER BY coalesce(r.model_agreement, 1), r.confidence NULLS LAST, r.created_at, r.id
    LIMIT 1
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE review_items SET leased_by = sqlc.arg(reviewer)::uuid, leased_at = now(),
    lease_expires_at = now() + make_interval(secs => sqlc.arg(lease_seconds)::float8)
FROM pick
WHERE review_items.id = pick.picked_id
RETURNING review_items.*;

-- name: ReviewRenew :one
UPDATE review_items SET lease_expires_at = now() + make_interval(secs => sqlc.arg(lease_seconds)::float8)
WHERE id = sqlc.arg(id)::uuid AND leased_by = sqlc.arg(reviewer)::uuid
  AND lease_expires_at > now() AND done_at IS NULL
RETURNING lease_expires_at;

-- name: ReviewGetForUpdate :one
-- The item with its lease as the database sees it now.
SELECT review_items.*, coalesce(lease_expires_at > now(), false)::boolean AS lease_live
FROM review_items WHERE id = @id FOR UPDATE;

-- name: ReviewGet :one
SELECT * FROM review_items WHERE id = @id;

-- name: ReviewFinish :exec
-- The time spent is what the client measured, or else the time since the
-- lease began (capped at a day).
UPDATE review_items SET done_by = @done_by, done_at = now(),
    time_spent_ms = CASE WHEN sqlc.narg(time_spent_ms)::int > 0 THEN sqlc.narg(time_spent_ms)::int
        ELSE least(ceil(extract(epoch FROM now() - leased_at) * 1000), 86400000)::int END,
    leased_by = NULL, lease_expires_at = NULL, agreement = sqlc.narg(agreement), flagged = @flagged
WHERE id = @id;

-- name: ReviewQueueSecond :exec
-- A blind second review of an image, for anyone but its first reviewer.
INSERT INTO review_items (image_id, kind, confidence, excluded_user)
VALUES (@image_id, 'second', sqlc.narg(confidence), @excluded_user)
ON CONFLICT (image_id, kind) DO NOTHING;

-- name: ImageMarkReviewed :exec
UPDATE images SET status = 'reviewed', reason = NULL, updated_at = now()
WHERE id = @id AND status IN ('awaiting_review', 'reviewed');

-- name: AnnotationsReplace :exec
-- Marks an image's current first-review annotations as replaced by a new review.
UPDATE annotations a SET replaced_at = now()
FROM review_items r
WHERE a.review_item_id = r.id AND r.kind = 'first' AND a.image_id = @image_id AND a.replaced_at IS NULL;

-- name: AnnotationsInsert :exec
INSERT INTO annotations (id, image_id, review_item_id, label_id, proposal_id, iou, height, width, counts, bbox, area, content_sha256, author_id)
SELECT u.id, sqlc.arg(image_id)::uuid, sqlc.arg(review_item_id)::uuid, (@label_ids::uuid[])[u.n],
    nullif((@proposal_ids::uuid[])[u.n], '00000000-0000-0000-0000-000000000000'::uuid),
    nullif((@ious::real[])[u.n], -1::real),
    sqlc.arg(height)::int, sqlc.arg(width)::int, (@counts::text[])[u.n],
    ARRAY[(@xs::int[])[u.n], (@ys::int[])[u.n], (@ws::int[])[u.n], (@hs::int[])[u.n]],
    (@areas::int[])[u.n], (@hashes::bytea[])[u.n], sqlc.arg(author_id)::uuid
FROM unnest(@ids::uuid[]) WITH ORDINALITY AS u(id, n);

-- name: VerdictsInsert :exec
INSERT INTO proposal_verdicts (review_item_id, proposal_id, verdict)
SELECT sqlc.arg(review_item_id)::uuid, u.proposal_id, (@verdicts::text[])[u.n]
FROM unnest(@proposal_ids::uuid[]) WITH ORDINALITY AS u(proposal_id, n);

-- name: AnnotationsCurrent :many
-- An image's current annotations: its first review's, not replaced.
SELECT a.*, l.name AS label, u.name AS author_name
FROM annotations a
JOIN review_items r ON r.id = a.review_item_id AND r.kind = 'first'
JOIN labels l ON l.id = a.label_id
JOIN users u ON u.id = a.author_id
WHERE a.image_id = @image_id AND a.replaced_at IS NULL
ORDER BY a.created_at, a.id;

-- name: AnnotationsOfReview :many
SELECT a.*, l.name AS label FROM annotations a JOIN labels l ON l.id = a.label_id
WHERE a.review_item_id = @review_item_id ORDER BY a.id;

-- name: FirstReviewOf :one
SELECT * FROM review_items WHERE image_id = @image_id AND kind = 'first';

-- name: ProposalsOfImage :many
SELECT p.id, p.label_id, l.name AS label, p.score, p.bbox, p.height, p.width, p.counts
FROM proposals p JOIN labels l ON l.id = p.label_id
WHERE p.image_id = @image_id ORDER BY p.score DESC, p.id;

-- name: ReviewerStats :many
-- Per reviewer: first and second reviews done, those with a time and the
-- time they took, what their reviews made of the models' proposals, and how
-- well their first reviews agreed with the second reviews of the same
-- images. From reviewer_summary, kept by triggers (migration 00027);
-- ReviewerStatsFullCount is the same figures counted from the tables.
SELECT u.id, u.name, u.email,
    s.items::int AS items,
    s.timed_items::int AS timed_items,
    s.time_spent_ms::bigint AS time_spent_ms,
    s.accepted::int AS accepted,
    s.corrected::int AS corrected,
    s.rejected::int AS rejected,
    coalesce(s.agreement_sum / nullif(s.agreement_n, 0), 0)::float8 AS agreement,
    s.second_reviews::int AS second_reviews
FROM reviewer_summary_now s JOIN users u ON u.id = s.user_id
WHERE s.items > 0
  AND (sqlc.narg(user_id)::uuid IS NULL OR s.user_id = sqlc.narg(user_id)::uuid)
ORDER BY s.items DESC, u.name;

-- name: ReviewsFlagged :many
-- Second reviews that disagreed with the first, for admins, the latest
-- first (read from review_items_flagged_idx).
SELECT s.id, s.image_id, s.agreement, s.done_at, i.filename,
    f.done_by AS first_by, s.done_by AS second_by
FROM review_items s
JOIN review_items f ON f.image_id = s.image_id AND f.kind = 'first'
JOIN images i ON i.id = s.image_id
WHERE s.kind = 'second' AND s.flagged
ORDER BY s.done_at DESC
LIMIT 200;

-- name: ReviewRelease :execrows
-- Gives an item back before its lease ends (the reviewer left the page).
UPDATE review_items SET leased_by = NULL, lease_expires_at = NULL
WHERE id = @id AND leased_by = @reviewer AND done_at IS NULL;

-- name: ReviewLeasedImage :one
-- The image of an item that reviewer holds a live lease on, for prompts.
SELECT r.image_id, i.sha256, i.width, i.height
FROM review_items r JOIN images i ON i.id = r.image_id
WHERE r.id = @id AND r.leased_by = @reviewer AND r.done_at IS NULL AND r.lease_expires_at > now()
  AND i.sha256 IS NOT NULL;

-- name: ReviewUpcomingCampaign :many
-- The images of the items of open campaigns ReviewLeaseCampaign would hand
-- reviewer next, in its order, without leasing them: the hub prepares them
-- for prompts while the reviewer works on the one leased, so the first
-- click on the next waits for nothing. Items others lease meanwhile are
-- prepared all the same. Fewer than n: ReviewUpcomingRest.
SELECT h.image_id
FROM campaigns c
CROSS JOIN LATERAL (
    SELECT r.id, r.image_id, coalesce(r.model_agreement, 1) AS agreement, r.confidence, r.created_at
    FROM review_items r
    WHERE r.campaign_id = c.id AND r.done_at IS NULL
      AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
      AND (r.excluded_user IS NULL OR r.excluded_user <> sqlc.arg(reviewer)::uuid)
      AND (sqlc.narg(label_id)::uuid IS NULL OR EXISTS (
            SELECT 1 FROM image_labels il WHERE il.image_id = r.image_id AND il.label_id = sqlc.narg(label_id)::uuid))
    ORDER BY coalesce(r.model_agreement, 1), r.confidence NULLS LAST, r.created_at, r.id
    LIMIT sqlc.arg(n)
) h
WHERE c.closes_at > now()
  AND (sqlc.narg(campaign_id)::uuid IS NULL OR c.id = sqlc.narg(campaign_id)::uuid)
ORDER BY c.priority DESC, h.agreement, h.confidence NULLS LAST, h.created_at, h.id
LIMIT sqlc.arg(n);

-- name: ReviewUpcomingRest :many
-- The same for the items outside open campaigns (ReviewLeaseRest's order).
SELECT r.image_id
FROM review_items r
WHERE r.done_at IS NULL
  AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
  AND (r.excluded_user IS NULL OR r.excluded_user <> sqlc.arg(reviewer)::uuid)
  AND (r.campaign_id IS NULL OR r.campaign_id NOT IN (SELECT c.id FROM campaigns c WHERE c.closes_at > now()))
  AND (sqlc.narg(label_id)::uuid IS NULL OR EXISTS (
        SELECT 1 FROM image_labels il WHERE il.image_id = r.image_id AND il.label_id = sqlc.narg(label_id)::uuid))
  AND (sqlc.narg(campaign_id)::uuid IS NULL OR r.campaign_id = sqlc.narg(campaign_id)::uuid)
ORDER BY coalesce(r.model_agreement, 1), r.confidence NULLS LAST, r.created_at, r.id
LIMIT sqlc.arg(n);
