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
-- them the models agreed on (agreement at least @agree), and the mean
-- agreement.
SELECT label_id, count(*)::int AS images,
    count(*) FILTER (WHERE agreement >= @agree::real)::int AS agreed,
    avg(agreement)::float8 AS mean_agreement
FROM model_agreements
WHERE label_id = ANY(@label_ids::uuid[])
GROUP BY label_id;

-- name: LabelModelVerdicts :many
-- Per label and model version: what reviewers did with its proposals, to
-- show which model's proposals reviewers keep.
SELECT p.label_id, m.name AS model_name, m.version AS model_version,
    count(*) FILTER (WHERE v.verdict = 'accepted')::int AS accepted,
    count(*) FILTER (WHERE v.verdict = 'corrected')::int AS corrected,
    count(*)::int AS judged
FROM proposals p
JOIN proposal_verdicts v ON v.proposal_id = p.id
JOIN models m ON m.id = p.model_id
WHERE p.label_id = ANY(@label_ids::uuid[])
GROUP BY p.label_id, m.name, m.version
ORDER BY p.label_id, m.name, m.version;

-- name: CommitteePending :one
-- How many models' runs succeeded for an image whose first review waits
-- with no model agreement: two or more means a committee to measure.
SELECT count(*)::int FROM inference_runs r
JOIN review_items ri ON ri.image_id = r.image_id AND ri.kind = 'first' AND ri.model_agreement IS NULL AND ri.done_at IS NULL
WHERE r.image_id = @image_id AND r.state = 'succeeded';
