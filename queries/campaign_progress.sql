-- name: CampaignProgress :one
-- How far a campaign has come: photos uploaded into it, accepted by ingest
-- or a moderator, reviewed, and the reviewed instances of its labels.
WITH imgs AS (
    SELECT DISTINCT u.image_id FROM image_uploads u WHERE u.campaign_id = @id
)
SELECT
    (SELECT count(*) FROM imgs)::int AS uploads,
    (SELECT count(*) FROM imgs JOIN images i ON i.id = imgs.image_id
      WHERE i.status IN ('awaiting_inference', 'awaiting_review', 'reviewed'))::int AS accepted,
    (SELECT count(*) FROM imgs JOIN images i ON i.id = imgs.image_id WHERE i.status = 'reviewed')::int AS reviewed,
    (SELECT count(*) FROM imgs
      JOIN annotations a ON a.image_id = imgs.image_id AND a.replaced_at IS NULL
      JOIN review_items r ON r.id = a.review_item_id AND r.kind = 'first'
      JOIN campaign_labels cl ON cl.campaign_id = @id AND cl.label_id = a.label_id)::int AS instances;

-- name: CampaignCloseAtTarget :many
-- Closes the campaign of an image just accepted once as many of its photos
-- as its target have been accepted.
UPDATE campaigns c SET closes_at = now()
WHERE c.id = (SELECT campaign_id FROM images WHERE images.id = @image_id)
  AND c.closes_at > now()
  AND (SELECT count(DISTINCT u.image_id) FROM image_uploads u JOIN images i ON i.id = u.image_id
       WHERE u.campaign_id = c.id AND i.status IN ('awaiting_inference', 'awaiting_review', 'reviewed')) >= c.target_count
RETURNING c.id;
