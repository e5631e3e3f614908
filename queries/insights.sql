-- name: ModelVerdictTotals :many
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

-- name: ModelLabelConfusion :many
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

-- name: LabelReviewQuality :many
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

-- name: EvaluationLatestForVersion :one
-- The latest finished evaluation on a version, on its test split if any.
SELECT * FROM evaluations
WHERE version_id = @version_id AND state = 'done'
ORDER BY (split = 'test') DESC, finished_at DESC, id DESC
LIMIT 1;
