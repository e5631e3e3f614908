-- name: CampaignInsert :one
INSERT INTO campaigns (title, description, target_count, priority, closes_at, created_by)
VALUES (@title, @description, @target_count, @priority, @closes_at, @created_by)
RETURNING *;

-- name: CampaignLabelInsert :exec
INSERT INTO campaign_labels (campaign_id, label_id) VALUES (@campaign_id, @label_id);

-- name: CampaignGet :one
SELECT * FROM campaigns WHERE id = @id;

-- name: CampaignList :many
-- Open campaigns first (soonest closing first), then closed ones, newest
-- first; only_id narrows it to one campaign.
SELECT c.*,
       (SELECT count(DISTINCT u.image_id) FROM image_uploads u
         JOIN images i ON i.id = u.image_id
        WHERE u.campaign_id = c.id AND i.status NOT IN ('rejected', 'failed'))::bigint AS image_count,
       coalesce((SELECT array_agg(l.name ORDER BY l.name) FROM campaign_labels cl JOIN labels l ON l.id = cl.label_id
                  WHERE cl.campaign_id = c.id), '{}')::text[] AS label_names
FROM campaigns c
WHERE (NOT @open_only::boolean OR c.closes_at > now())
  AND (sqlc.narg(only_id)::uuid IS NULL OR c.id = sqlc.narg(only_id))
ORDER BY (c.closes_at > now()) DESC, c.priority DESC,
         CASE WHEN c.closes_at > now() THEN c.closes_at END ASC,
         c.created_at DESC
LIMIT 500;

-- name: CampaignPage :many
-- One page of CampaignList's order, after the cursor's campaign: the order
-- written as one ascending key (closed, -priority, closes_at of an open one
-- else infinity, -created_at, id) so that a row comparison can resume it.
-- after_closed is whether that campaign was closed when its page was made.
SELECT c.*,
       (SELECT count(DISTINCT u.image_id) FROM image_uploads u
         JOIN images i ON i.id = u.image_id
        WHERE u.campaign_id = c.id AND i.status NOT IN ('rejected', 'failed'))::bigint AS image_count,
       coalesce((SELECT array_agg(l.name ORDER BY l.name) FROM campaign_labels cl JOIN labels l ON l.id = cl.label_id
                  WHERE cl.campaign_id = c.id), '{}')::text[] AS label_names
FROM campaigns c
WHERE (NOT @open_only::boolean OR c.closes_at > now())
  AND (sqlc.narg(after_id)::uuid IS NULL OR
       (c.closes_at <= now(), -c.priority, CASE WHEN c.closes_at > now() THEN c.closes_at ELSE 'infinity' END,
        -extract(epoch FROM c.created_at), c.id)
       > (@after_closed::boolean, -(sqlc.arg(after_priority)::int),
          CASE WHEN @after_closed::boolean THEN 'infinity' ELSE @after_closes_at::timestamptz END,
          -extract(epoch FROM @after_created_at::timestamptz), sqlc.narg(after_id)::uuid))
ORDER BY c.closes_at <= now(), c.priority DESC,
         CASE WHEN c.closes_at > now() THEN c.closes_at ELSE 'infinity' END,
         c.created_at DESC, c.id
LIMIT @lim;
