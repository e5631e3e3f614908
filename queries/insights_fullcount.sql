-- The insights queries as full counts over proposals, verdicts,
-- annotations and model agreements: what the summaries of migration
-- 00015 must always equal. Only the tests run them (they are slow at a
-- million images).

-- name: ModelVerdictTotalsFullCount :many
-- What reviewers did with each model version's proposals: accepted
-- unchanged, corrected, rejected, and the mean IoU of the final masks with
-- the proposals (a rejected one counting 0).
SELECT p.model_id,
    count(*) FILTER (WHERE v.verdict = 'accepted')::int AS accepted,
    count(*) FILTER (WHERE v.verdict = 'corrected')::int AS corrected,
    count(*) FILTER (WHERE v.verdict = 'rejected')::int AS rejected,
    coalesce(avg(CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END), 0)::float8 AS mean_iou
FROM proposals p
JOIN proposal_verdicts v ON v.proposal_id = p.id
LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
WHERE p.model_id = ANY(@model_ids::uuid[])
GROUP BY p.model_id;

-- name: ModelLabelConfusionFullCount :many
-- The label a model version proposed against the label reviewers kept; an
-- empty final label is a rejected proposal.
SELECT pl.name AS proposed, coalesce(al.name, '')::text AS final, count(*)::int AS n
FROM proposals p
JOIN proposal_verdicts v ON v.proposal_id = p.id
JOIN labels pl ON pl.id = p.label_id
LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
LEFT JOIN labels al ON al.id = a.label_id
WHERE p.model_id = @model_id
GROUP BY pl.name, al.name
ORDER BY pl.name, al.name;

-- name: LabelReviewQualityFullCount :many
-- Per label, what reviewers did with every model's proposals of it.
SELECT p.label_id,
    count(*) FILTER (WHERE v.verdict = 'accepted')::int AS accepted,
    count(*)::int AS judged,
    coalesce(avg(CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END), 0)::float8 AS mean_iou
FROM proposals p
JOIN proposal_verdicts v ON v.proposal_id = p.id
LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
WHERE p.label_id = ANY(@label_ids::uuid[])
GROUP BY p.label_id;

-- name: ModelQualityFullCount :many
-- How reviewers judged each model version's proposals, per label (the label
-- the model proposed). mean_iou is over the reviewed proposals: the IoU
-- between a kept proposal and the final mask, a rejected one counting 0.
SELECT m.name AS model_name, m.version AS model_version, l.name AS label,
    count(p.id)::int AS proposals,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'accepted')::int AS accepted,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'corrected')::int AS corrected,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'rejected')::int AS rejected,
    coalesce(avg(CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END) FILTER (WHERE v.proposal_id IS NOT NULL), 0)::float8 AS mean_iou
FROM proposals p
JOIN models m ON m.id = p.model_id
JOIN labels l ON l.id = p.label_id
LEFT JOIN proposal_verdicts v ON v.proposal_id = p.id
LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
GROUP BY m.name, m.version, l.name
ORDER BY m.name, m.version, l.name;

-- name: CommitteeByLabelFullCount :many
-- Per label: the images two or more models proposed it for, how many of
-- them the models agreed on (agreement at least @agree), and the mean
-- agreement.
SELECT label_id, count(*)::int AS images,
    count(*) FILTER (WHERE agreement >= @agree::real)::int AS agreed,
    avg(agreement)::float8 AS mean_agreement
FROM model_agreements
WHERE label_id = ANY(@label_ids::uuid[])
GROUP BY label_id;

-- name: LabelModelVerdictsFullCount :many
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

-- name: ReviewerStatsFullCount :many
-- Per reviewer: first and second reviews done, those with a time and the
-- time they took, what their reviews made of the models' proposals, and how
-- well their first reviews agreed with the second reviews of the same
-- images. What reviewer_summary (migration 00027) must always equal.
SELECT u.id, u.name, u.email,
    count(r.id)::int AS items,
    count(r.id) FILTER (WHERE r.time_spent_ms > 0)::int AS timed_items,
    coalesce(sum(r.time_spent_ms) FILTER (WHERE r.time_spent_ms > 0), 0)::bigint AS time_spent_ms,
    (SELECT count(*) FROM proposal_verdicts v JOIN review_items vr ON vr.id = v.review_item_id
     WHERE vr.done_by = u.id AND v.verdict = 'accepted')::int AS accepted,
    (SELECT count(*) FROM proposal_verdicts v JOIN review_items vr ON vr.id = v.review_item_id
     WHERE vr.done_by = u.id AND v.verdict = 'corrected')::int AS corrected,
    (SELECT count(*) FROM proposal_verdicts v JOIN review_items vr ON vr.id = v.review_item_id
     WHERE vr.done_by = u.id AND v.verdict = 'rejected')::int AS rejected,
    coalesce((SELECT avg(s.agreement) FROM review_items f JOIN review_items s ON s.image_id = f.image_id AND s.kind = 'second'
     WHERE f.kind = 'first' AND f.done_by = u.id AND s.done_at IS NOT NULL), 0)::float8 AS agreement,
    (SELECT count(*) FROM review_items f JOIN review_items s ON s.image_id = f.image_id AND s.kind = 'second'
     WHERE f.kind = 'first' AND f.done_by = u.id AND s.done_at IS NOT NULL)::int AS second_reviews
FROM users u JOIN review_items r ON r.done_by = u.id
WHERE (sqlc.narg(user_id)::uuid IS NULL OR u.id = sqlc.narg(user_id)::uuid)
GROUP BY u.id
ORDER BY items DESC, u.name;
