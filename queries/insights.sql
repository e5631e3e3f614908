-- name: ModelVerdictTotals :many
-- What reviewers did with each model version's proposals: accepted
-- unchanged, corrected, rejected, and the mean IoU of the final masks with
-- the proposals (a rejected one counting 0). From proposal_summary, kept
-- by triggers (migration 00018, read through 00028's proposal_summary_parts); ModelVerdictTotalsFullCount is the same
-- figure counted from the tables.
SELECT model_id,
    coalesce(sum(n) FILTER (WHERE verdict = 'accepted'), 0)::int AS accepted,
    coalesce(sum(n) FILTER (WHERE verdict = 'corrected'), 0)::int AS corrected,
    coalesce(sum(n) FILTER (WHERE verdict = 'rejected'), 0)::int AS rejected,
    coalesce(sum(iou_sum) / nullif(sum(iou_n), 0), 0)::float8 AS mean_iou
FROM proposal_summary_parts
WHERE model_id = ANY(@model_ids::uuid[]) AND verdict <> ''
GROUP BY model_id
HAVING sum(n) > 0;

-- name: ModelLabelConfusion :many
-- The label a model version proposed against the label reviewers kept; an
-- empty final label is a rejected proposal. From proposal_summary.
SELECT pl.name AS proposed, coalesce(al.name, '')::text AS final, sum(s.n)::int AS n
FROM proposal_summary_parts s
JOIN labels pl ON pl.id = s.label_id
LEFT JOIN labels al ON al.id = s.final_label_id
WHERE s.model_id = @model_id AND s.verdict <> ''
GROUP BY pl.name, al.name
HAVING sum(s.n) > 0
ORDER BY pl.name, al.name;

-- name: LabelReviewQuality :many
-- Per label, what reviewers did with every model's proposals of it. From
-- proposal_summary.
SELECT label_id,
    coalesce(sum(n) FILTER (WHERE verdict = 'accepted'), 0)::int AS accepted,
    sum(n)::int AS judged,
    coalesce(sum(iou_sum) / nullif(sum(iou_n), 0), 0)::float8 AS mean_iou
FROM proposal_summary_parts
WHERE label_id = ANY(@label_ids::uuid[]) AND verdict <> ''
GROUP BY label_id
HAVING sum(n) > 0;

-- name: EvaluationLatestForVersion :one
-- The latest finished evaluation on a version, on its test split if any.
SELECT * FROM evaluations
WHERE version_id = @version_id AND state = 'done'
ORDER BY (split = 'test') DESC, finished_at DESC, id DESC
LIMIT 1;

-- name: InsightCompactSummaries :one
-- Folds the summaries' deltas into them (migration 00015); how many delta
-- rows it folded.
SELECT insight_compact_summaries()::bigint AS folded;
