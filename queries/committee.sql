-- name: CommitteeProposals :many
-- The proposals of an image that has just settled for review, per model
-- whose run succeeded (a model that found nothing counts, with no rows),
-- when its first review item has no model agreement yet.
SELECT r.model_id, p.id AS proposal_id, p.label_id, l.name AS label, p.height, p.width, p.counts
FROM inference_runs r
JOIN review_items ri ON ri.image_id = r.image_id AND ri.kind = 'first' AND ri.model_agreement IS NULL AND ri.done_at IS NULL
LEFT JOIN proposals p ON p.image_id = r.image_id AND p.model_id = r.model_id
LEFT JOIN labels l ON l.id = p.label_id
WHERE r.image_id = @image_id AND r.state = 'succeeded'
ORDER BY r.model_id, p.rank;

-- name: CommitteeAgreementSet :exec
UPDATE review_items SET model_agreement = @agreement
WHERE image_id = @image_id AND kind = 'first' AND done_at IS NULL;

-- name: CommitteeLabelsInsert :exec
INSERT INTO model_agreements (image_id, label_id, models, agreement)
SELECT sqlc.arg(image_id)::uuid, u.label_id, sqlc.arg(models)::int, (@agreements::real[])[u.n]
FROM unnest(@label_ids::uuid[]) WITH ORDINALITY AS u(label_id, n)
ON CONFLICT (image_id, label_id) DO UPDATE SET models = EXCLUDED.models, agreement = EXCLUDED.agreement;

-- name: CommitteeByLabel :many
-- Per label: the images two or more models proposed it for, how many of
-- them the models agreed on (agreement at least review.CommitteeAgreed,
-- 0.5, which the summary's trigger counts), and the mean agreement. From
-- model_agreement_summary (migration 00015).
SELECT label_id, images::int AS images, agreed::int AS agreed,
    (agreement_sum / images)::float8 AS mean_agreement
FROM model_agreement_summary_now
WHERE label_id = ANY(@label_ids::uuid[]) AND images > 0;

-- name: LabelModelVerdicts :many
-- Per label and model version: what reviewers did with its proposals, to
-- show which model's proposals reviewers keep. From proposal_summary.
SELECT s.label_id, m.name AS model_name, m.version AS model_version,
    coalesce(sum(s.n) FILTER (WHERE s.verdict = 'accepted'), 0)::int AS accepted,
    coalesce(sum(s.n) FILTER (WHERE s.verdict = 'corrected'), 0)::int AS corrected,
    sum(s.n)::int AS judged
FROM proposal_summary_parts s
JOIN models m ON m.id = s.model_id
WHERE s.label_id = ANY(@label_ids::uuid[]) AND s.verdict <> ''
GROUP BY s.label_id, m.name, m.version
HAVING sum(s.n) > 0
ORDER BY s.label_id, m.name, m.version;

-- name: CommitteePending :one
-- How many models' runs succeeded for an image whose first review waits
-- with no model agreement: two or more means a committee to measure.
SELECT count(*)::int FROM inference_runs r
JOIN review_items ri ON ri.image_id = r.image_id AND ri.kind = 'first' AND ri.model_agreement IS NULL AND ri.done_at IS NULL
WHERE r.image_id = @image_id AND r.state = 'succeeded';
