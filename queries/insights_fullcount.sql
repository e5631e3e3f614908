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
